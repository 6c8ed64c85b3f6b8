"""Data page workflows: scan → tree/problems/viewer → choose series and slices → training set;
cancel and failure paths; the event loop stays responsive throughout."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt

from tests import dicom_factory as f
from ui.pages import data_page as data_page_module
from ui.pages.data_page import DataPage
from ui.state import AppState
from ui.widgets.error_dialog import close_all, shown_dialogs
from ui.widgets.series_tree import COL_IMAGES, COL_NAME, COL_TRAINABLE


def warm_up_heavy_imports() -> None:
    """What the main window's warm-up does after launch: import torch and MONAI once.

    Importing them holds the interpreter lock for a few hundred ms, which is why the app
    does it while idle and not in the middle of a job.
    """
    from ui.main_window import warm_up, warm_up_data_stack

    warm_up_data_stack()
    warm_up()


def warm_up_data_stack() -> None:
    from ui.main_window import warm_up_data_stack as stack

    stack()


MARKERS = ("Marker^Alice", "PID-ALICE", "Marker^Bob", "PID-BOB")


@pytest.fixture
def page(qtbot):
    state = AppState()
    widget = DataPage(state)
    qtbot.addWidget(widget)
    widget.resize(1200, 800)
    widget.show()
    yield widget
    widget.shutdown()
    close_all()


@pytest.fixture
def messy_folder(dicom_folder: Path) -> Path:
    """The shared folder plus a truncated and a broken DICOM file."""
    source = next((dicom_folder / "p1" / "ct").iterdir())
    f.write_truncated(dicom_folder / "cut.dcm", source, keep=0.6)
    f.write_broken_header(dicom_folder / "broken.dcm")
    return dicom_folder


def scan(qtbot, page: DataPage, folder: Path, timeout: int = 30000) -> None:
    with qtbot.waitSignal(page.scan_finished, timeout=timeout):
        page.scan_folder(str(folder))
    qtbot.waitUntil(lambda: not page.is_scanning(), timeout=5000)


def test_scan_fills_tree_problems_and_viewer(qtbot, page, messy_folder, stall_probe, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    warm_up_data_stack()  # the main window does this right after it shows
    assert not page.cancel_button.isVisible()
    stall_probe.start()
    page.scan_folder(str(messy_folder))
    assert page.cancel_button.isVisible() and not page.open_button.isEnabled()
    qtbot.waitUntil(lambda: page.state.scan is not None, timeout=30000)
    qtbot.waitUntil(lambda: not page.is_scanning(), timeout=5000)
    # tree: 2 patients (names shown in the UI), 3 series with image counts
    tree = page.tree
    assert tree.topLevelItemCount() == 2
    assert {tree.topLevelItem(i).text(COL_NAME) for i in range(2)} == {"Marker^Alice", "Marker^Bob"}
    assert len(tree.series_uids()) == 3
    counts = sorted(int(tree.item_for(u).text(COL_IMAGES)) for u in tree.series_uids())
    assert counts == [6, 8, 12]
    assert all(tree.item_for(u).text(COL_TRAINABLE) == "yes" for u in tree.series_uids())
    # problems: every refused file with a reason, plus the non-image object
    rows = page.problems_table.rowCount()
    listed = {page.problems_table.item(r, 0).text(): page.problems_table.item(r, 2).text() for r in range(rows)}
    assert "report.dcm" in listed
    refused = [p for p in ("cut.dcm", "broken.dcm") if p in listed]
    scan_result = page.state.scan
    assert len(scan_result.problems) + len(scan_result.skipped_non_image) == rows
    assert refused or scan_result.skipped_non_dicom >= 3
    assert all(reason.strip() for reason in listed.values())
    assert f"Problems ({rows})" == page.tabs.tabText(1)
    assert "not DICOM" in page.problems_label.text()
    # viewer: the first series' middle slice is decoded (in a worker) and shown
    viewer = page.viewer
    qtbot.waitUntil(lambda: viewer.shown_index() >= 0, timeout=10000)
    first = viewer.series
    assert viewer.shown_index() == first.n_images // 2
    assert viewer.image().shape == (first.rows, first.cols)
    # thumbnails arrive as icons
    qtbot.waitUntil(lambda: all(not tree.item_for(u).icon(COL_NAME).isNull() for u in tree.series_uids()),
                    timeout=10000)
    stall_probe.assert_responsive(100)
    assert not page.cancel_button.isVisible() and page.open_button.isEnabled()
    # privacy: names and IDs appear in the tree, never in the log
    logged = caplog.text
    assert not any(marker in logged for marker in MARKERS)


def test_slice_viewer_scroll_window_presets_and_drag(qtbot, page, dicom_folder) -> None:
    scan(qtbot, page, dicom_folder)
    viewer = page.viewer
    ct = next(s for s in page.state.scan.series if s.n_images == 12)
    page.tree.select_series(ct.series_uid)
    qtbot.waitUntil(lambda: viewer.series is ct and viewer.shown_index() == 6, timeout=10000)
    middle = viewer.image().copy()
    # slider / keys move through slices; the decoded pixels change (fixture: +100 per slice)
    viewer.slider.setValue(7)
    qtbot.waitUntil(lambda: viewer.shown_index() == 7, timeout=10000)
    assert viewer.image().mean() == pytest.approx(middle.mean() + 100, abs=1e-3)
    viewer.setFocus()
    qtbot.keyClick(viewer, Qt.Key.Key_Home)
    qtbot.waitUntil(lambda: viewer.shown_index() == 0, timeout=10000)
    # wheel over the image scrolls one slice
    from PySide6.QtGui import QWheelEvent

    pos = QPointF(viewer.view.width() / 2, viewer.view.height() / 2)
    wheel = QWheelEvent(pos, viewer.view.mapToGlobal(pos), QPoint(0, 0), QPoint(0, -120),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier,
                        Qt.ScrollPhase.NoScrollPhase, False)
    from PySide6.QtWidgets import QApplication

    QApplication.sendEvent(viewer.view.viewport(), wheel)
    qtbot.waitUntil(lambda: viewer.index() == 1, timeout=3000)
    # presets: the file window (40/400), a CT preset, then a drag makes it custom
    assert viewer.window() == pytest.approx((40.0, 400.0))
    viewer.preset_box.setCurrentText("Lung")
    from medgan.dicom.window import CT_PRESETS

    assert viewer.window() == pytest.approx((CT_PRESETS["lung"].center, CT_PRESETS["lung"].width))
    levels_before = tuple(viewer.image_item.levels)
    viewer._drag_window(40.0, -20.0)  # right-drag: wider and higher
    center, width = viewer.window()
    assert width > CT_PRESETS["lung"].width and center > CT_PRESETS["lung"].center
    assert viewer.preset_box.currentText() == "Custom"
    assert tuple(viewer.image_item.levels) != levels_before
    viewer.preset_box.setCurrentText("Auto")
    assert viewer.window()[1] > 0 and viewer.window() != (center, width)


def test_selection_count_and_training_set_preview(qtbot, page, dicom_folder, stall_probe) -> None:
    scan(qtbot, page, dicom_folder)
    state = page.state
    ct_series = [s for s in state.scan.series if s.modality == "CT"]
    assert not page.build_button.isEnabled()
    for s in ct_series:
        page.tree.set_checked(s.series_uid, True)
    assert [s.series_uid for s in state.selected_series] == [s.series_uid for s in ct_series]
    assert page.selection_table.rowCount() == 2
    assert "18 slices chosen from 2 series" in page.count_label.text()
    big = next(s for s in ct_series if s.n_images == 12)
    page.set_slice_range(big.series_uid, 2, 10)
    assert state.slice_ranges[big.series_uid] == (2, 10)
    assert state.selected_slice_count() == 14
    assert "14 slices" in page.count_label.text()
    # the spin boxes show the 1-based inclusive range
    row = [page.selection_table.item(r, 0).data(Qt.ItemDataRole.UserRole)
           for r in range(2)].index(big.series_uid)
    assert page.selection_table.cellWidget(row, data_page_module.COL_FROM).value() == 3
    assert page.selection_table.cellWidget(row, data_page_module.COL_TO).value() == 10
    assert page.selection_table.item(row, data_page_module.COL_COUNT).text() == "8"
    assert page.build_button.isEnabled()

    warm_up_heavy_imports()  # the app does this at launch, before any job
    stall_probe.start()
    with qtbot.waitSignal(state.training_set_changed, timeout=60000) as blocker:
        page.build_button.click()
    assert not page.build_button.isEnabled() or blocker.args[0] is not None
    qtbot.waitUntil(lambda: page.build_button.isEnabled(), timeout=10000)
    stall_probe.assert_responsive(100)
    images = state.training_images
    assert images is not None and images.dtype == np.float32
    assert images.shape[1:] == (64, 64) and 0 < images.shape[0] <= 14
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert state.training_summary["n_images"] == images.shape[0]
    assert page.preview_item.image is not None
    assert f"{images.shape[0]} images" in page.preview_label.text()

    # changing the selection invalidates the training set
    page.set_slice_range(big.series_uid, 0, None)
    assert state.training_set is None
    assert "build the training set again" in page.preview_label.text()


def test_mixed_modalities_fail_with_advice_and_button_comes_back(qtbot, page, dicom_folder) -> None:
    scan(qtbot, page, dicom_folder)
    page.tree.check_all_trainable(True)
    page.build_training_set()
    qtbot.waitUntil(lambda: page.build_button.isEnabled(), timeout=30000)
    dialogs = shown_dialogs()
    assert dialogs and "modalit" in dialogs[-1].text()
    assert dialogs[-1].informativeText()  # the advice
    assert page.state.training_set is None


def test_cancel_scan_restores_the_page(qtbot, page, tmp_path, monkeypatch, stall_probe) -> None:
    started = []

    def slow_scan(root, *, progress=None, cancel=None):
        started.append(root)
        for i in range(10000):
            if cancel.is_set():
                from medgan.core.errors import Cancelled

                raise Cancelled()
            progress(i, 10000)
            time.sleep(0.005)
        raise AssertionError("never cancelled")

    monkeypatch.setattr(data_page_module, "run_scan", slow_scan)
    stall_probe.start()
    page.scan_folder(str(tmp_path))
    qtbot.waitUntil(lambda: page.scan_progress.value() > 0, timeout=5000)
    assert page.state.task_text.startswith("Scanning")
    t0 = time.monotonic()
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not page.is_scanning(), timeout=3000)
    assert time.monotonic() - t0 < 1.5
    stall_probe.assert_responsive(100)
    assert page.open_button.isEnabled() and not page.cancel_button.isVisible()
    assert "cancelled" in page.summary_label.text().lower()
    assert page.state.scan is None and page.state.task_text == ""
    assert not shown_dialogs()


def test_unusable_folder_shows_error_and_keeps_buttons(qtbot, page, tmp_path) -> None:
    with qtbot.waitSignal(page.scan_finished, timeout=10000) as blocker:
        page.scan_folder(str(tmp_path / "does-not-exist"))
    assert blocker.args[1] is False
    qtbot.waitUntil(lambda: not page.is_scanning(), timeout=3000)
    assert page.open_button.isEnabled()
    assert shown_dialogs() and shown_dialogs()[-1].text()
    assert "could not be scanned" in page.summary_label.text()


def test_event_loop_stays_responsive_scanning_and_browsing_a_study(qtbot, page, tmp_path,
                                                                   stall_probe) -> None:
    """A few hundred files: scan, thumbnails, viewer decoding, all with the loop < 100 ms."""
    from medgan.demo.study import write_demo_study

    folder = write_demo_study(tmp_path / "study", n_patients=4, slices_per_patient=60, size=128)
    warm_up_data_stack()
    stall_probe.start()
    page.scan_folder(str(folder))
    qtbot.waitUntil(lambda: page.state.scan is not None and not page.is_scanning(), timeout=60000)
    tree = page.tree
    qtbot.waitUntil(lambda: all(not tree.item_for(u).icon(COL_NAME).isNull()
                                for u in tree.series_uids()), timeout=30000)
    viewer = page.viewer
    for index in range(0, 60, 3):  # scrub through a series faster than it decodes
        viewer.set_index(index)
        qtbot.wait(5)
    qtbot.waitUntil(lambda: viewer.shown_index() == 57, timeout=30000)
    stall_probe.assert_responsive(100)
    assert sum(s.n_images for s in page.state.scan.series) == 240
    assert len(viewer.cache) >= 10  # decoded slices are kept for scrolling back


def test_viewer_reads_pixel_values_in_modality_units(qtbot, page, dicom_folder) -> None:
    scan(qtbot, page, dicom_folder)
    viewer = page.viewer
    ct = next(s for s in page.state.scan.series if s.n_images == 12)
    page.tree.select_series(ct.series_uid)
    qtbot.waitUntil(lambda: viewer.series is ct and viewer.shown_index() == 6, timeout=10000)
    # the image is laid out in millimetres (0.5 mm pixels): pixel (row 3, col 5) sits at (2.75, 1.75)
    scene = viewer.viewbox.mapViewToScene(QPointF(5 * 0.5 + 0.25, 3 * 0.5 + 0.25))
    row, col, value = viewer.pixel_at(scene)
    assert (row, col) == (3, 5)
    # fixture: stored value k*100 + row + col, rescaled by slope 1, intercept -1024
    assert value == pytest.approx(6 * 100 + 3 + 5 - 1024)
    viewer._on_mouse_moved(scene)
    assert viewer.value_label.text().endswith(f"{value:.0f} HU")


def test_cancel_training_set_build(qtbot, page, dicom_folder, monkeypatch) -> None:
    def slow_build(series_list, config, ranges, *, progress=None, cancel=None):
        from medgan.core.errors import Cancelled

        for i in range(1000):
            if cancel.is_set():
                raise Cancelled()
            progress(i, 1000)
            time.sleep(0.005)
        raise AssertionError("never cancelled")

    monkeypatch.setattr(data_page_module, "run_build", slow_build)
    scan(qtbot, page, dicom_folder)
    ct = next(s for s in page.state.scan.series if s.n_images == 12)
    page.tree.set_checked(ct.series_uid, True)
    page.build_button.click()
    assert not page.build_button.isEnabled() and page.build_cancel.isVisible()
    qtbot.waitUntil(lambda: page.build_progress.value() > 0, timeout=5000)
    page.build_cancel.click()
    qtbot.waitUntil(page.build_button.isEnabled, timeout=3000)
    assert not page.build_cancel.isVisible()
    assert "cancelled" in page.preview_label.text()
    assert page.state.training_set is None and page.state.task_text == ""
    assert not shown_dialogs()


def test_training_set_choices_are_remembered(qtbot) -> None:
    first = DataPage(AppState())
    qtbot.addWidget(first)
    first.resolution_box.setCurrentIndex(first.resolution_box.findData(128))
    first.window_box.setCurrentIndex(first.window_box.findData("auto"))
    second = DataPage(AppState())
    qtbot.addWidget(second)
    assert second.selection.settings() == (128, "auto")
    second.resolution_box.setCurrentIndex(second.resolution_box.findData(64))
    second.window_box.setCurrentIndex(second.window_box.findData("file"))


def test_demo_labels_show_as_overlay_counts_badge_and_problems(qtbot, page, tmp_path, monkeypatch) -> None:
    """Demo SEGs and labels.csv: counts per series in the tree, the SEG under its series, an
    overlay with a colour per segment (M toggles it), a label badge, bad rows in Problems,
    and user labels kept outside the DICOM folder."""
    from medgan.demo.study import write_demo_study
    from ui.widgets.series_tree import COL_LABELS, MASK_ROLE

    monkeypatch.setenv("MEDGAN_CONFIG_DIR", str(tmp_path / "config"))
    folder = write_demo_study(tmp_path / "study", n_patients=2, slices_per_patient=16, size=48)
    with (folder / "labels.csv").open("a") as fh:
        fh.write("1.2.3.4.999,haemorrhage\n")  # a row that matches nothing
    scan(qtbot, page, folder)
    qtbot.waitUntil(lambda: not page.labels.is_loading(), timeout=30000)
    labels = page.labels.labels()
    uid = page.state.scan.series[0].series_uid
    item = page.tree.item_for(uid)
    assert "none" in item.text(COL_LABELS)
    masks = [item.child(k) for k in range(item.childCount()) if item.child(k).data(COL_NAME, MASK_ROLE)]
    assert len(masks) == 1 and masks[0].text(1) == "SEG"
    assert any("row 34" in page.problems_table.item(r, 2).text()
               for r in range(page.problems_table.rowCount()))
    # Show a slice with a lesion: the overlay draws it in its segment's colour.
    index = min(labels.masked_indices(uid) & {i for i, m in labels.masks[uid][0].masks.items() if m.any()})
    viewer = page.viewer
    page.tree.select_series(uid)
    viewer.set_index(index)
    qtbot.waitUntil(lambda: viewer.shown_index() == index, timeout=20000)
    mask = viewer.overlay.visible_mask()
    assert mask is not None and mask.any() and viewer.overlay.item.isVisible()
    from ui.widgets.mask_overlay import PALETTE

    value = int(mask[mask > 0][0])
    rgba = viewer.overlay.item.image
    assert tuple(int(v) for v in rgba[mask == value][0][:3]) == PALETTE[value - 1]
    assert viewer.overlay.badge.isVisible() and viewer.overlay.badge.text() != ""
    qtbot.keyClick(viewer, Qt.Key.Key_M)
    assert viewer.overlay.visible_mask() is None and not viewer.overlay.item.isVisible()
    viewer.overlay.opacity.setValue(80)
    qtbot.keyClick(viewer, Qt.Key.Key_M)
    assert viewer.overlay.item.isVisible() and int(viewer.overlay.item.image[mask > 0][0][3]) == 204
    # The user's own label: kept in the workspace, shown at once.
    page.labels.label_series(uid, "reviewed")
    assert "reviewed" in item.text(COL_LABELS)
    assert list((tmp_path / "config" / "labels").glob("*.json"))
    assert not [p for p in folder.rglob("*.json")]
    page.labels.export_csv(str(tmp_path / "out.csv"))
    assert "reviewed" in (tmp_path / "out.csv").read_text()
