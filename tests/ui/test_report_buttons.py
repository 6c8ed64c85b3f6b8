""""Report…" on the Train page (after saving a model), the Export page (after an export) and
the Utility page (after a run): the report is written in a worker and opened in the browser; the Train page's
optional TensorBoard/CSV logging writes into the run folder."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from tests.ui.fake_engine import fake_factory, scored_set
from ui.pages.export_page import ExportPage
from ui.pages.train_page import TrainPage
from ui.state import AppState
from ui.widgets import error_dialog


@pytest.fixture
def train_page(qtbot, tmp_path):
    state = AppState()
    state.set_training_set(np.zeros((12, 32, 32), np.float32), {"modality": "CT", "n_patients": 2})
    p = TrainPage(state)
    qtbot.addWidget(p)
    p.runs_dir = tmp_path / "runs"
    p.settings.set_resolution(32)
    p.settings.steps.setValue(40)
    p.settings.batch.setValue(4)
    p.config_overrides = {"sample_every": 10, "checkpoint_every": 20}
    p.trainer_factory = fake_factory(step_s=0.002)
    yield p
    p.shutdown(10000)
    error_dialog.close_all()


def test_train_page_report_after_saving(qtbot, train_page, tmp_path):
    page = train_page
    page.settings.log_run.setChecked(True)
    opened: list[str] = []
    page.open_url = lambda url: opened.append(url.toLocalFile()) or True
    assert not page.report_button.isEnabled()
    with qtbot.waitSignal(page.run_ended, timeout=10000):
        assert page.start_training()
    qtbot.waitUntil(lambda: page.phase == "finished" and not page.is_training(), timeout=10000)
    assert not page.report_button.isEnabled()  # nothing saved yet

    with qtbot.waitSignal(page.model_saved, timeout=10000) as saved:
        page.save_model_to(str(tmp_path / "model.safetensors"))
    qtbot.waitUntil(page.report_button.isEnabled, timeout=10000)
    assert (tmp_path / "model.history.json").is_file()  # the run's history, for the report
    page.report_button.click()
    qtbot.waitUntil(lambda: bool(opened), timeout=30000)
    report = Path(opened[0])
    assert report == tmp_path / "model.report.html" and report == page.last_report
    text = report.read_text(encoding="utf-8")
    assert '<section id="losses">' in text and "Fixed-noise samples at step 40" in text
    assert "holds no training history" not in text
    qtbot.waitUntil(page.report_button.isEnabled, timeout=5000)

    run_dir = Path(page.worker.config.checkpoint_dir)  # TensorBoard + CSV in the run folder
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    assert rows and rows[-1]["step"] == "40"
    assert saved.args[0] == str(tmp_path / "model.safetensors")


def test_export_page_report_after_an_export(qtbot, tmp_path):
    from medgan.curate.filters import apply_filters

    generated, scores, train = scored_set(n=12, m=8, copies=1)
    state = AppState()
    state.set_training_set(train, {"modality": "CT"})
    state.set_generated(generated, scores, apply_filters(scores))
    page = ExportPage(state)
    qtbot.addWidget(page)
    opened: list[str] = []
    page.open_url = lambda url: opened.append(url.toLocalFile()) or True
    try:
        assert not page.report_button.isEnabled()
        page.destination.setText(str(tmp_path / "out"))
        assert page.start_export()
        qtbot.waitUntil(lambda: not page.is_busy(), timeout=60000)
        assert page.outcome == "done" and page.report_button.isEnabled()
        assert not page.report_real_pairs.isChecked()  # real slices only when asked for
        page.report_button.click()
        qtbot.waitUntil(lambda: bool(opened), timeout=30000)
        assert opened == [str(tmp_path / "out" / "report.html")]
        text = Path(opened[0]).read_text(encoding="utf-8")
        assert '<section id="checksums">' in text and "No real patient slice is shown" in text
        qtbot.waitUntil(page.report_button.isEnabled, timeout=5000)
    finally:
        page.shutdown()
        error_dialog.close_all()


def test_utility_page_report_after_a_run(qtbot, tmp_path):
    from medgan.dataset.training_set import TrainingSet, TrainingSetConfig
    from medgan.dicom.window import Window
    from medgan.utility.records import UtilityConfig
    from medgan.workflows.utility import UtilityRequest
    from tests.core._utility_data import good_synthetic, separable_data
    from ui.pages.utility_page import UtilityPage

    data = separable_data(n_patients=6, per_class=3)
    ts = TrainingSet(data.images, data.keys, Window(40.0, 80.0), None, TrainingSetConfig(),
                     labels=data.labels, class_names=data.class_names)  # fmt: skip
    state = AppState()
    state.set_training_set(ts)
    page = UtilityPage(state)
    qtbot.addWidget(page)
    page.results_dir = tmp_path / "results"
    opened: list[str] = []
    page.open_url = lambda url: opened.append(url.toLocalFile()) or True
    try:
        assert not page.report_button.isEnabled()  # no result yet
        config = UtilityConfig(seeds=1, folds=3, steps=4, batch_size=8, bootstrap=100,
                               device="cpu")  # fmt: skip
        assert page.start(UtilityRequest(config, data=page.build_request().data,
                                         synthetic=good_synthetic()))  # fmt: skip
        qtbot.waitUntil(lambda: not page.is_busy() and page.result is not None, timeout=60000)
        # the buttons follow in the worker's queued "finished" slot, a moment later
        qtbot.waitUntil(page.report_button.isEnabled, timeout=5000)
        page.report_button.click()  # unsaved: saved into results_dir first, then the report
        qtbot.waitUntil(lambda: bool(opened), timeout=30000)
        report = Path(opened[0])
        assert report == page.last_report and report.parent == tmp_path / "results"
        assert report.name.endswith(".report.html") and page.saved_json is not None
        assert report == page.saved_json.with_name(page.saved_json.stem + ".report.html")
        text = report.read_text(encoding="utf-8")
        assert '<section id="verdict">' in text and '<section id="controls">' in text
        qtbot.waitUntil(page.report_button.isEnabled, timeout=5000)

        opened.clear()  # after "Save result…": the report goes next to the chosen JSON
        page.save(tmp_path / "mine.json")
        page.report_button.click()
        qtbot.waitUntil(lambda: bool(opened), timeout=30000)
        assert opened == [str(tmp_path / "mine.report.html")]
        qtbot.waitUntil(page.report_button.isEnabled, timeout=5000)
    finally:
        page.shutdown()
        error_dialog.close_all()
