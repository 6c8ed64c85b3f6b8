"""Data page: scan a folder in the background, browse patients/studies/series, view slices,
see every refused file and why, choose series and slice ranges, preview the training set.

All scanning, decoding and training-set building run in workers; this page only draws.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from medgan.workflows.dataset import TrainingSetRequest, build_training_set
from medgan.workflows.progress import overall_fraction
from ui.pages.base import Page
from ui.pages.data_labels import DataLabels
from ui.state import AppState
from ui.widgets.error_dialog import show_error
from ui.widgets.problems_panel import ProblemsPanel
from ui.widgets.selection_panel import (  # noqa: F401 - for callers
    COL_COUNT,
    COL_FROM,
    COL_TO,
    PREVIEW_COUNT,
    SelectionPanel,
    build_preview,
    mosaic,
)
from ui.widgets.series_tree import SeriesTree
from ui.widgets.slice_viewer import SliceViewer
from ui.widgets.thumbnails import ThumbnailWorker, to_pixmap
from ui.workers import FunctionWorker, WorkerHandle, start_worker

log = logging.getLogger(__name__)



def run_scan(root: str, *, progress: Any = None, cancel: Any = None) -> Any:
    """Scan ``root`` with the core indexer (module-level so tests can replace it)."""
    from medgan.dicom.index import scan_folder

    return scan_folder(root, progress=progress, cancel=cancel)


def run_build(
    series_list: list[Any], config: Any, slice_ranges: dict[str, tuple[int, int]], *,
    progress: Any = None, cancel: Any = None, labels: Any = None,
) -> tuple[Any, np.ndarray]:
    """Build the training set with :func:`medgan.workflows.dataset.build_training_set` (shared
    with the CLI) and a preview mosaic; module-level so tests can replace it."""
    if labels is not None and "labels" not in TrainingSetRequest.__dataclass_fields__:
        # The workflow does not take labels (yet): the dataset builder does.
        from medgan.dataset.training_set import build_training_set as build_labelled

        ts = build_labelled(series_list, config, slice_ranges=slice_ranges, labels=labels,
                            progress=progress, cancel=cancel)  # fmt: skip
        return ts, _preview(ts)
    extra = {"labels": labels} if labels is not None else {}
    request = TrainingSetRequest(config=config, series=tuple(series_list), slice_ranges=slice_ranges,
                                 **extra)  # fmt: skip
    built = build_training_set(
        request, progress=overall_fraction(progress, {"prepare": 1.0}) if progress else None,
        cancel=cancel,
    )
    ts = built.training_set
    return ts, _preview(ts)


def _preview(ts: Any) -> np.ndarray:
    n = len(ts.images)
    picks = np.linspace(0, n - 1, num=min(PREVIEW_COUNT, n)).round().astype(int) if n else []
    return mosaic(np.asarray(ts.images)[picks])


class DataPage(Page):
    """The first workflow step. See the module docstring. Emits ``Page.scan_finished`` and
    ``Page.demo_requested``."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self._scan_handle: WorkerHandle | None = None
        self._thumb_handle: WorkerHandle | None = None
        self._build_handle: WorkerHandle | None = None
        self._pending_root: str | None = None
        self._scan_root = ""
        self._ranges: dict[str, tuple[int, int]] = {}
        self._build_key: tuple[str, ...] = ()  # selection the running build is for
        self._built_key: tuple[str, ...] = ()  # selection the current training set is for

        # header
        self.open_button = QPushButton("Open DICOM folder…", self)
        self.open_button.setProperty("primary", True)
        self.open_button.clicked.connect(self.choose_folder)
        self.demo_button = QPushButton("Open demo study", self)
        self.demo_button.setToolTip(
            "A synthetic head-CT study (12 patients, lesion masks and labels), written on first use")
        self.demo_button.clicked.connect(self.demo_requested)
        self.rescan_button = QPushButton("Rescan", self)
        self.rescan_button.setEnabled(False)
        self.rescan_button.clicked.connect(lambda: self.scan_folder(self._scan_root))
        self.scan_progress = QProgressBar(self)
        self.scan_progress.setRange(0, 1000)
        self.scan_progress.hide()
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setShortcut(QKeySequence(Qt.Key.Key_Escape))
        self.cancel_button.setToolTip("Stop the scan (Esc); nothing is changed")
        self.cancel_button.hide()
        self.cancel_button.clicked.connect(self.cancel_scan)
        self.summary_label = QLabel("Open a folder of DICOM files (File → Open, or drop it here).", self)
        self.summary_label.setObjectName("ScanSummary")
        self.summary_label.setWordWrap(True)
        header = QHBoxLayout()
        header.addWidget(self.open_button)
        header.addWidget(self.demo_button)
        header.addWidget(self.rescan_button)
        header.addWidget(self.scan_progress, 3)
        header.addWidget(self.cancel_button)
        header.addStretch(1)

        # tree + viewer
        self.tree = SeriesTree(self)
        self.viewer = SliceViewer(self)
        check_all = QPushButton("Check all trainable", self)
        check_all.clicked.connect(lambda: self.tree.check_all_trainable(True))
        check_none = QPushButton("Uncheck all", self)
        check_none.clicked.connect(lambda: self.tree.check_all_trainable(False))
        left = QWidget(self)
        left_layout = QVBoxLayout(left)
        left_layout.setContentsMargins(0, 0, 0, 0)
        left_layout.addWidget(self.tree, 1)
        buttons = QHBoxLayout()
        buttons.addWidget(check_all)
        buttons.addWidget(check_none)
        buttons.addStretch(1)
        left_layout.addLayout(buttons)
        top_split = QSplitter(Qt.Orientation.Horizontal, self)
        top_split.addWidget(left)
        top_split.addWidget(self.viewer)
        top_split.setSizes([620, 520])

        # bottom tabs: selection / problems
        self.selection = SelectionPanel(self)
        self.problems = ProblemsPanel(self)
        self.tabs = QTabWidget(self)
        self.tabs.addTab(self.selection, "Training selection")
        self.tabs.addTab(self.problems, "Problems")
        # short names for the parts other code and tests reach for
        sel = self.selection
        self.selection_table, self.count_label = sel.table, sel.count_label
        self.resolution_box, self.window_box = sel.resolution_box, sel.window_box
        self.build_button, self.build_cancel = sel.build_button, sel.build_cancel
        self.build_progress, self.preview_label = sel.build_progress, sel.preview_label
        self.preview_item, self.preview_box = sel.preview_item, sel.preview_box
        self.problems_table, self.problems_label = self.problems.table, self.problems.label
        sel.start_here.clicked.connect(lambda: self._range_from_viewer(start=True))
        sel.end_here.clicked.connect(lambda: self._range_from_viewer(start=False))
        sel.build_button.clicked.connect(self.build_training_set)
        sel.build_cancel.clicked.connect(lambda: self._build_handle and self._build_handle.cancel())
        sel.range_edited.connect(
            lambda uid, start, stop: self.set_slice_range(uid, None if start < 0 else start,
                                                          None if stop < 0 else stop))
        sel.settings_changed.connect(self._selection_edited)

        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(top_split)
        split.addWidget(self.tabs)
        split.setSizes([560, 320])
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.summary_label)
        layout.addWidget(split, 1)

        self.tree.current_series_changed.connect(self._on_current_series)
        self.tree.checked_changed.connect(self._on_checked)
        self.state.scan_changed.connect(self._show_scan)
        self.labels = DataLabels(self)  # label sources, user labels, overlay, label problems
        self.labels.changed.connect(self._selection_edited)

    # -- scanning ---------------------------------------------------------------------------
    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open DICOM folder", self._scan_root or str(Path.home()))
        if folder:
            self.scan_folder(folder)

    def is_scanning(self) -> bool:
        return self._scan_handle is not None

    def scan_folder(self, root: str) -> None:
        """Scan ``root`` in the background; a running scan is cancelled first."""
        root = os.path.abspath(os.path.expanduser(str(root)))
        if self._scan_handle is not None:
            self._pending_root = root
            self._scan_handle.cancel()
            return
        self._scan_root = root
        self._set_scanning(True)
        self.summary_label.setText(f"Scanning {root} …")
        self.state.set_task("Scanning folder…", -1.0, key="scan")
        log.info("Scanning a folder")  # its name may identify a patient: not logged
        self._scan_handle = start_worker(
            FunctionWorker(run_scan, root, name="scan"), self,
            on_progress=self._on_scan_progress, on_result=self._on_scan_result,
            on_failed=self._on_scan_failed, on_cancelled=self._on_scan_cancelled,
            on_finished=self._on_scan_finished)

    def cancel_scan(self) -> None:
        if self._scan_handle is not None:
            self._pending_root = None
            self._scan_handle.cancel()
            self.cancel_button.setEnabled(False)
            self.summary_label.setText("Cancelling the scan…")

    def _set_scanning(self, on: bool) -> None:
        self.scan_progress.setVisible(on)
        self.scan_progress.setValue(0)
        self.cancel_button.setVisible(on)
        self.cancel_button.setEnabled(on)
        self.open_button.setEnabled(not on)
        self.demo_button.setEnabled(not on)
        self.rescan_button.setEnabled(not on and bool(self._scan_root))

    def _on_scan_progress(self, fraction: float, _message: str) -> None:
        if fraction < 0:
            self.scan_progress.setRange(0, 0)
        else:
            self.scan_progress.setRange(0, 1000)
            self.scan_progress.setValue(int(fraction * 1000))
        self.state.set_task("Scanning folder…", fraction, key="scan")

    def _on_scan_result(self, scan: Any) -> None:
        self.state.set_scan(scan)
        self.scan_finished.emit(self._scan_root, True)

    def _on_scan_failed(self, message: str, advice: str) -> None:
        self.summary_label.setText(f"The folder could not be scanned: {message}")
        show_error(self, message, advice, title="Scan failed")
        self.scan_finished.emit(self._scan_root, False)

    def _on_scan_cancelled(self) -> None:
        self.summary_label.setText("Scan cancelled. Nothing was changed.")
        log.info("Scan cancelled")

    def _on_scan_finished(self) -> None:
        self._scan_handle = None
        self._set_scanning(False)
        self.state.clear_task("scan")
        if self._pending_root:
            root, self._pending_root = self._pending_root, None
            self.scan_folder(root)

    # -- showing a scan ---------------------------------------------------------------------
    def _show_scan(self, scan: Any) -> None:
        self.viewer.set_series(None)
        self._ranges = {}
        self.tree.show_scan(scan)
        self._fill_problems(scan)
        self.labels.load(scan)
        if scan is None:
            return
        n_trainable = sum(1 for s in scan.series if s.trainable)
        n_images = sum(s.n_images for s in scan.series)
        patients = len({s.patient_id for s in scan.series})
        text = (f"{scan.root}: {scan.n_files} files → {patients} patients, {len(scan.series)} series "
                f"({n_trainable} trainable), {n_images} images. ")
        if scan.problems or scan.skipped_non_image or scan.skipped_non_dicom:
            text += (f"{len(scan.problems)} files refused, {len(scan.skipped_non_image)} without image, "
                     f"{scan.skipped_non_dicom} not DICOM (see Problems).")
        if not scan.series:
            text += " No images found: is this the right folder?"
        self.summary_label.setText(text)
        if scan.series:
            self.tree.select_series(scan.series[0].series_uid)
            self._start_thumbnails(scan.series)

    def _fill_problems(self, scan: Any) -> None:
        rows = self.problems.show_scan(scan)
        self.tabs.setTabText(1, f"Problems ({rows})" if scan is not None else "Problems")

    def _start_thumbnails(self, series_list: list[Any]) -> None:
        if self._thumb_handle is not None:
            self._thumb_handle.cancel()
        handle = start_worker(ThumbnailWorker(series_list), self, on_event=self._on_thumbnail)
        self._thumb_handle = handle
        handle.finished.connect(lambda h=handle: self._thumb_done(h))

    def _thumb_done(self, handle: WorkerHandle) -> None:
        if self._thumb_handle is handle:
            self._thumb_handle = None

    def _on_thumbnail(self, payload: tuple[str, np.ndarray | None]) -> None:
        uid, thumb = payload
        if thumb is not None:
            self.tree.set_thumbnail(uid, to_pixmap(thumb))

    def _series(self, uid: str) -> Any:
        scan = self.state.scan
        try:
            return scan.series_by_uid(uid) if scan is not None and uid else None
        except KeyError:
            return None

    def _on_current_series(self, uid: str) -> None:
        series = self._series(uid)
        if series is not None and series is not self.viewer.series:
            self.viewer.set_series(series)

    # -- selection --------------------------------------------------------------------------
    def _on_checked(self, uids: list[str]) -> None:
        chosen = [s for s in (self._series(u) for u in uids) if s is not None]
        for s in chosen:
            self._ranges.setdefault(s.series_uid, (0, s.n_images))
        self._ranges = {u: r for u, r in self._ranges.items() if u in uids}
        self.state.set_selection(chosen, self._ranges)
        self.selection.fill(chosen, self._ranges)
        self._selection_edited()

    def set_slice_range(self, uid: str, start: int | None, stop: int | None) -> None:
        """Set the [start, stop) range of a checked series (None keeps that end)."""
        if uid not in self._ranges:
            return
        series = self._series(uid)
        old_start, old_stop = self._ranges[uid]
        start = old_start if start is None else int(np.clip(start, 0, series.n_images - 1))
        stop = old_stop if stop is None else int(np.clip(stop, 1, series.n_images))
        if stop <= start:  # keep the range non-empty, moving the other end
            if start != old_start:
                stop = start + 1
            else:
                start = stop - 1
        self._ranges[uid] = (start, stop)
        self.selection.show_range(uid, start, stop)
        self.state.set_selection(self.state.selected_series, self._ranges)
        self._selection_edited()

    def _range_from_viewer(self, *, start: bool) -> None:
        series = self.viewer.series
        if series is None or series.series_uid not in self._ranges:
            show_error(self, "Check the viewed series first.",
                       "Tick its box in the tree, then set where its range starts or ends.")
            return
        index = self.viewer.index()
        if start:
            self.set_slice_range(series.series_uid, index, None)
        else:
            self.set_slice_range(series.series_uid, None, index + 1)

    def trainable_slice_count(self) -> int:
        return self.state.selected_slice_count()

    def _selection_edited(self) -> None:
        n = self.trainable_slice_count()
        chosen = self.state.selected_series
        if not chosen:
            self.count_label.setText("No series chosen: tick the series to learn from in the tree.")
        else:
            note = "" if n >= 100 else "  (few slices: expect a rough model; 300+ is better)"
            self.count_label.setText(f"{n} slices chosen from {len(chosen)} series.{note}")
        self.build_button.setEnabled(n > 0 and self._build_handle is None)
        key = self._selection_key()
        if self.state.training_set is not None and key != self._built_key:
            self.state.set_training_set(None)
            self.selection.show_preview(None)
            self.preview_label.setText("The selection changed: build the training set again.")

    def _selection_key(self) -> tuple[str, ...]:
        chosen = tuple(f"{s.series_uid}:{self._ranges.get(s.series_uid)}"
                       for s in self.state.selected_series)
        return chosen + tuple(map(str, self.selection.settings())) + (f"labels:{self.labels.version}",)

    # -- training set -----------------------------------------------------------------------
    def build_training_set(self) -> None:
        """Decode, resize and window the chosen slices in a worker; preview a sample."""
        chosen = self.state.selected_series
        if not chosen or self._build_handle is not None:
            return
        try:
            from medgan.dataset.training_set import TrainingSetConfig

            resolution, window = self.selection.settings()
            config = TrainingSetConfig(resolution=resolution, window=window)
        except Exception as exc:  # noqa: BLE001 - a config error is the user's to fix
            show_error(self, f"These settings cannot be used: {exc}")
            return
        self._build_key = self._selection_key()
        self.build_button.setEnabled(False)
        self.selection.set_building(True)
        self.preview_label.setText("Building the training set…")
        self.state.set_task("Building training set…", 0.0, key="build")
        self._build_handle = start_worker(
            FunctionWorker(run_build, chosen, config, dict(self._ranges), name="training-set",
                           **self._label_kwargs()), self,
            on_progress=self._on_build_progress, on_result=self._on_built,
            on_failed=self._on_build_failed,
            on_cancelled=self._on_build_cancelled,
            on_finished=self._on_build_finished)

    def _label_kwargs(self) -> dict[str, Any]:
        labels = self.labels.labels()
        return {"labels": labels} if labels is not None and (labels.labels or labels.masks) else {}

    def _on_build_cancelled(self) -> None:
        self.preview_label.setText("Building the training set was cancelled.")

    def _on_build_progress(self, fraction: float, _message: str) -> None:
        self.build_progress.setValue(int(max(fraction, 0.0) * 1000))
        self.state.set_task("Building training set…", fraction, key="build")

    def _on_built(self, payload: tuple[Any, np.ndarray]) -> None:
        ts, tiles = payload
        if self._build_key != self._selection_key():
            self.preview_label.setText("The selection changed while building: build again.")
            return
        self._built_key = self._build_key
        self.state.set_training_set(ts)
        self.selection.show_preview(tiles)
        info = self.state.training_summary
        window = getattr(ts, "window", None)
        win = f", window L {window.center:.0f} / W {window.width:.0f}" if window is not None else ""
        dropped = info.get("dropped_empty", info.get("n_dropped"))
        extra = f", {dropped} near-empty slices left out" if dropped else ""
        if info.get("class_counts"):
            extra += "; labels: " + ", ".join(f"{k} {v}" for k, v in info["class_counts"].items())
        self.preview_label.setText(
            f"Training set: {len(ts.images)} images of {ts.images.shape[-1]}×{ts.images.shape[-1]}{win}{extra}. "
            f"Showing {min(PREVIEW_COUNT, len(ts.images))}. Next: the Train page.")

    def _on_build_failed(self, message: str, advice: str) -> None:
        self.preview_label.setText(f"Could not build the training set: {message}")
        show_error(self, message, advice, title="Training set")

    def _on_build_finished(self) -> None:
        self._build_handle = None
        self.selection.set_building(False)
        self.state.clear_task("build")
        self.build_button.setEnabled(self.trainable_slice_count() > 0)

    # -- lifecycle --------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Cancel this page's jobs (the main window waits for them)."""
        for handle in (self._scan_handle, self._thumb_handle, self._build_handle):
            if handle is not None:
                handle.cancel()
        self._pending_root = None
        self.labels.shutdown()
        self.viewer.shutdown()
