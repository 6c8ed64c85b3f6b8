"""Generate page: generation + scoring in a worker, lazy gallery, filters, keyboard curation,
the memorization guard and its explicit override, compare view, cancel and error paths."""

from __future__ import annotations

import time

import numpy as np
import pytest
from PySide6.QtCore import Qt

from tests.ui.fake_engine import scored_set, tiny_model_file
from ui.pages.generate_page import GeneratePage
from ui.state import AppState
from ui.widgets import error_dialog
from ui.widgets.gallery import UNDECIDED, GalleryModel, GalleryView


@pytest.fixture(scope="module")
def data():
    return scored_set(n=40, m=20, copies=3)


@pytest.fixture
def page(qtbot, data):
    state = AppState()
    generated, scores, train = data
    state.set_training_set(train, {"modality": "CT"})
    p = GeneratePage(state)
    qtbot.addWidget(p)
    p.resize(1100, 700)
    p.show()
    p.load_generated(generated, scores, train)
    yield p
    p.shutdown()
    error_dialog.close_all()


def _row_of(page: GeneratePage, src: int) -> int:
    row = page.gallery_model.row_of(src)
    assert row is not None
    return row


def _select(qtbot, page: GeneratePage, src: int) -> None:
    page.gallery.setFocus()
    idx = page.gallery_model.index(_row_of(page, src))
    page.gallery.setCurrentIndex(idx)
    page.gallery.selectionModel().select(idx, page.gallery.selectionModel().SelectionFlag.ClearAndSelect)


def test_loaded_set_fills_gallery_scores_and_state(page, data):
    generated, scores, _ = data
    assert page.gallery_model.rowCount() == 40
    assert page.state.generated is generated and page.state.scores is scores
    decisions = page.current_decisions()
    memorized = np.asarray(scores["memorized"], bool)
    assert memorized[:3].all()
    # the guard is on by default: nothing memorized is kept
    assert not np.any(decisions.keep & memorized)
    assert f"Kept {decisions.n_kept}" in page.counts_label.text()
    # enlarged view shows the nearest real slice of image 0 (a copy of training slice 0)
    page.show_image(0)
    assert page.compare.has_real
    assert "#0" in page.compare.right_title.text()
    assert "memorization guard" in page.score_label.text()


def test_keyboard_reject_accept_toggle_and_guard(qtbot, page, data):
    _, scores, _ = data
    memorized = np.asarray(scores["memorized"], bool)
    free = int(np.flatnonzero(~memorized)[0])
    _select(qtbot, page, free)
    kept_before = page.current_decisions().keep[free]
    qtbot.keyClick(page.gallery, Qt.Key.Key_R)
    d = page.current_decisions()
    assert not d.keep[free] and d.reasons[free] == "rejected by the user"
    qtbot.keyClick(page.gallery, Qt.Key.Key_Space)
    assert page.current_decisions().keep[free]
    qtbot.keyClick(page.gallery, Qt.Key.Key_A)
    assert page.current_decisions().keep[free]
    page._reset_selection()
    assert page.gallery_model.manual[free] == UNDECIDED
    assert page.current_decisions().keep[free] == kept_before

    # accepting a memorized image is refused while the guard is on...
    _select(qtbot, page, 0)
    with qtbot.waitSignal(page.gallery.refused, timeout=1000):
        qtbot.keyClick(page.gallery, Qt.Key.Key_A)
    assert not page.current_decisions().keep[0]
    assert "too close" in page.counts_label.text()
    # ...and allowed, and recorded, with the explicit override
    page.allow_memorized.setChecked(True)
    page.apply_filters()
    _select(qtbot, page, 0)
    qtbot.keyClick(page.gallery, Qt.Key.Key_A)
    d = page.current_decisions()
    assert d.keep[0] and d.overridden[0] and d.override_used
    assert d.to_dict()["memorization_guard"] == "overridden"


def test_filters_sort_and_show_modes(qtbot, page, data):
    _, scores, _ = data
    n_before = page.current_decisions().n_kept
    page.min_realism.setValue(90)
    page.apply_filters()
    d = page.current_decisions()
    assert d.n_kept < n_before
    realism = np.asarray(scores["realism"])
    assert np.all(realism[d.keep] >= 0.9)
    assert any("realism" in r for r in d.reasons)
    page.min_realism.setValue(0)
    page.min_distance.setValue(100)  # everything closer than the farthest image goes
    page.apply_filters()
    d = page.current_decisions()
    assert d.n_kept <= 1 and d.counts["min_distance"] > 0
    page.min_distance.setValue(0)
    page.apply_filters()

    page.sort_combo.setCurrentIndex(page.sort_combo.findData("realism"))
    first = page.gallery_model.source_index(0)
    assert realism[first] == pytest.approx(np.nanmax(realism))
    page.show_combo.setCurrentIndex(page.show_combo.findData("rejected"))
    kept = page.gallery_model.kept()
    assert page.gallery_model.rowCount() == int((~kept).sum())
    assert all(not kept[page.gallery_model.source_index(r)] for r in range(page.gallery_model.rowCount()))


def test_gallery_renders_thumbnails_lazily_for_thousands(qtbot):
    model = GalleryModel(thumb_size=64)
    view = GalleryView(model)
    qtbot.addWidget(view)
    view.resize(600, 400)
    view.show()
    images = np.random.default_rng(1).uniform(-1, 1, (5000, 64, 64)).astype(np.float32)
    start = time.perf_counter()
    model.set_images(images, {"realism": np.linspace(0, 1, 5000)})
    qtbot.wait(50)
    assert time.perf_counter() - start < 2.0
    assert 0 < model.renders < 300  # only what is on screen, not 5,000
    view.scrollToBottom()
    qtbot.wait(50)
    assert model.renders < 600 and model.cached <= model.cache_size
    start = time.perf_counter()
    model.set_order(np.argsort(-np.linspace(0, 1, 5000)))
    assert time.perf_counter() - start < 0.5
    assert model.source_index(0) == 4999


def test_generate_and_score_in_a_worker(qtbot, tmp_path, data, stall_probe):
    _, _, train = data
    state = AppState()
    state.set_training_set(train, {"modality": "CT"})
    page = GeneratePage(state)
    qtbot.addWidget(page)
    assert not page.generate_button.isEnabled()  # no model yet
    state.set_model_path(str(tiny_model_file(tmp_path / "m.safetensors")))
    assert page.generate_button.isEnabled()
    page.count.setValue(24)
    page.batch.setValue(8)
    stall_probe.start()
    with qtbot.waitSignal(page.generated, timeout=60000):
        assert page.start_generation()
        assert page.cancel_button.isEnabled() and not page.generate_button.isEnabled()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=10000)
    stall_probe.assert_responsive(100)
    assert page.gallery_model.rowCount() == 24
    assert state.generated.images.shape == (24, 32, 32)
    assert state.scores is not None and len(state.scores) == 24
    assert state.scores.realism_source == "discriminator"
    assert page.current_decisions() is not None
    assert page.generate_button.isEnabled() and not page.cancel_button.isEnabled()
    assert state.task_text == ""


def test_cancel_and_bad_model_leave_the_page_usable(qtbot, tmp_path, data):
    state = AppState()
    page = GeneratePage(state)
    qtbot.addWidget(page)
    state.set_model_path(str(tiny_model_file(tmp_path / "m.safetensors")))
    page.count.setValue(100_000)
    page.batch.setValue(1)
    page.start_generation()
    qtbot.wait(300)
    page.cancel()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=30000)
    assert "cancelled" in page.counts_label.text()
    assert page.gallery_model.rowCount() == 0 and page.generate_button.isEnabled()

    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x80\x04not a model at all")
    state.set_model_path(str(bad))
    page.count.setValue(4)
    page.start_generation()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=30000)
    dialogs = error_dialog.shown_dialogs()
    assert dialogs and "Generation failed" in dialogs[-1].text()
    assert page.generate_button.isEnabled()
    error_dialog.close_all()
