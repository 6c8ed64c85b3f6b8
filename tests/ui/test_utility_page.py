"""The "Does it help?" page: runs the utility job in a worker, shows the verdict, the plot
and the controls, saves JSON + PNG, and explains refusals."""

from __future__ import annotations

import json

import pytest

from medgan.dataset.training_set import TrainingSet, TrainingSetConfig
from medgan.dicom.window import Window
from medgan.utility.records import UtilityConfig
from medgan.workflows.utility import UtilityRequest
from tests.core._utility_data import good_synthetic, separable_data
from ui.pages.utility_page import UtilityPage
from ui.state import AppState


@pytest.fixture
def page(qtbot):
    data = separable_data(n_patients=6, per_class=3)
    ts = TrainingSet(data.images, data.keys, Window(40.0, 80.0), None, TrainingSetConfig(),
                     labels=data.labels, class_names=data.class_names)  # fmt: skip
    state = AppState()
    state.set_training_set(ts)
    p = UtilityPage(state)
    qtbot.addWidget(p)
    yield p
    p.shutdown()


def test_run_shows_verdict_plot_and_controls_then_saves(qtbot, page, tmp_path):
    assert page.run_button.isEnabled() and "6 patients" in page.data_label.text()
    request = page.build_request()  # the page's own settings: GAN per class by default
    assert request.gan is not None and request.config.seeds == 3
    config = UtilityConfig(seeds=1, folds=3, steps=4, batch_size=8, bootstrap=100, device="cpu")
    data = request.data
    assert page.start(UtilityRequest(config, data=data, synthetic=good_synthetic()))
    qtbot.waitUntil(lambda: not page.is_busy() and page.result is not None, timeout=60000)
    assert page.result.verdict in page.verdict.text()
    assert not page.plot.pixmap().isNull()
    assert "Shuffled labels" in page.controls_label.text()
    assert page.save_button.isEnabled()
    json_path, png_path = page.save(tmp_path / "result.json")
    assert json.loads(json_path.read_text())["format"] == "medgan-utility"
    assert png_path.read_bytes()[:4] == b"\x89PNG"


def test_refusal_is_shown_with_advice(qtbot, page):
    page.source.setCurrentIndex(1)  # an export folder, but none given
    page.folder.setText("/nonexistent/export")
    assert not page.start()
    assert "No export folder" in page.status.text() and "Give the folder" in page.status.text()
    assert page.run_button.isEnabled()


def test_without_a_training_set_the_run_button_is_off(qtbot):
    p = UtilityPage(AppState())
    qtbot.addWidget(p)
    assert not p.run_button.isEnabled()
    assert "Data page" in p.data_label.text()
