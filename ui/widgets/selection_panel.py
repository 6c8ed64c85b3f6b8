"""Training selection: the chosen series with their slice ranges, the slice count, the
training-set settings (resolution, window), the build button and a preview of the result.

The panel only shows and edits; the Data page owns the ranges and runs the build in a worker.
``build_preview`` (run in that worker) returns the training set and a mosaic of samples.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ui.widgets.series_tree import series_title

PREVIEW_COUNT = 32
COL_SERIES, COL_COUNT, COL_FROM, COL_TO = range(4)


def mosaic(images: np.ndarray, columns: int = 8) -> np.ndarray:
    """Tile (N, R, R) images into one 2D array (N padded to full rows with -1)."""
    n, r = images.shape[0], images.shape[-1]
    if n == 0:
        return np.full((r, r), -1.0, np.float32)
    columns = min(columns, n)
    rows = -(-n // columns)
    out = np.full((rows * (r + 2), columns * (r + 2)), -1.0, np.float32)
    for k in range(n):
        y, x = divmod(k, columns)
        out[y * (r + 2) : y * (r + 2) + r, x * (r + 2) : x * (r + 2) + r] = images[k]
    return out


def build_preview(
    series_list: list[Any],
    config: Any,
    slice_ranges: dict[str, tuple[int, int]],
    *,
    progress: Any = None,
    cancel: Any = None,
) -> tuple[Any, np.ndarray]:
    """Build the training set and a mosaic of evenly spaced samples (runs in a worker)."""
    from medgan.dataset.training_set import build_training_set

    ts = build_training_set(
        series_list, config, slice_ranges=slice_ranges, progress=progress, cancel=cancel
    )
    n = len(ts.images)
    picks = np.linspace(0, n - 1, num=min(PREVIEW_COUNT, n)).round().astype(int) if n else []
    return ts, mosaic(np.asarray(ts.images)[picks])


class SelectionPanel(QWidget):
    """See the module docstring. ``range_edited(uid, start or -1, stop or -1)``: a spin box
    changed (0-based, stop exclusive; -1 keeps that end)."""

    range_edited = Signal(str, int, int)
    settings_changed = Signal()
    label_ranges_requested = Signal()  # label the chosen slice ranges with a class

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 4, self)
        self.table.setObjectName("SelectionTable")
        self.table.setHorizontalHeaderLabels(["Series", "Slices", "From slice", "To slice"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(COL_SERIES, QHeaderView.ResizeMode.Stretch)
        for col, width in ((COL_COUNT, 64), (COL_FROM, 100), (COL_TO, 100)):
            header.setSectionResizeMode(col, QHeaderView.ResizeMode.Fixed)
            header.resizeSection(col, width)
        self.table.verticalHeader().hide()
        self.start_here = QPushButton("Start at viewed slice", self)
        self.end_here = QPushButton("End at viewed slice", self)
        self.label_ranges = QPushButton("Label ranges…", self)
        self.label_ranges.setObjectName("LabelRanges")
        self.label_ranges.setToolTip(
            "Give every chosen slice range a class label (kept in your workspace, not in the "
            "DICOM folder)"
        )
        self.label_ranges.clicked.connect(self.label_ranges_requested.emit)
        self.count_label = QLabel("No series chosen.", self)
        self.count_label.setObjectName("SliceCount")
        self.resolution_box = QComboBox(self)
        for r in (64, 128, 256):
            self.resolution_box.addItem(f"{r} × {r}", r)
        self.window_box = QComboBox(self)
        self.window_box.setToolTip(
            "How modality values map to the network's [-1, 1] range. "
            "File window: the one stored in the files (else automatic)."
        )
        self.window_box.addItem("File window", "file")
        self.window_box.addItem("Automatic", "auto")
        try:
            from medgan.dicom.window import CT_PRESETS

            for name in CT_PRESETS:
                self.window_box.addItem(f"CT {name}", f"preset:{name}")
        except ImportError:
            pass
        self.build_button = QPushButton("Build training set", self)
        self.build_button.setProperty("primary", True)
        self.build_button.setObjectName("BuildButton")
        self.build_button.setEnabled(False)
        self.build_cancel = QPushButton("Cancel", self)
        self.build_cancel.hide()
        self.build_progress = QProgressBar(self)
        self.build_progress.setRange(0, 1000)
        self.build_progress.hide()
        self.preview_label = QLabel("", self)
        self.preview_label.setObjectName("PreviewSummary")
        self.preview_label.setWordWrap(True)
        self.preview_view = pg.GraphicsLayoutWidget(self)
        self.preview_view.setBackground("#0b0d10")
        self.preview_box = self.preview_view.addViewBox(lockAspect=True, invertY=True)
        self.preview_box.setMenuEnabled(False)
        self.preview_item = pg.ImageItem(axisOrder="row-major")
        self.preview_box.addItem(self.preview_item)
        self._restore_choices()
        self.resolution_box.currentIndexChanged.connect(lambda _i: self._choices_changed())
        self.window_box.currentIndexChanged.connect(lambda _i: self._choices_changed())
        self._layout()

    def _restore_choices(self) -> None:
        """Resolution and window as the user left them last time (QSettings)."""
        stored = QSettings()
        for box, key in (
            (self.resolution_box, "data/resolution"),
            (self.window_box, "data/window"),
        ):
            value = stored.value(key)
            index = box.findData(int(value) if box is self.resolution_box and value else value)
            if value is not None and index >= 0:
                box.setCurrentIndex(index)

    def _choices_changed(self) -> None:
        stored = QSettings()
        resolution, window = self.settings()
        stored.setValue("data/resolution", resolution)
        stored.setValue("data/window", window)
        self.settings_changed.emit()

    def _layout(self) -> None:
        left = QVBoxLayout()
        left.addWidget(self.table, 1)
        row = QHBoxLayout()
        row.addWidget(self.start_here)
        row.addWidget(self.end_here)
        row.addWidget(self.label_ranges)
        row.addStretch(1)
        left.addLayout(row)
        left.addWidget(self.count_label)
        opts = QHBoxLayout()
        opts.addWidget(QLabel("Resolution:", self))
        opts.addWidget(self.resolution_box)
        opts.addWidget(QLabel("Window:", self))
        opts.addWidget(self.window_box)
        opts.addStretch(1)
        left.addLayout(opts)
        build_row = QHBoxLayout()
        build_row.addWidget(self.build_button)
        build_row.addWidget(self.build_progress, 1)
        build_row.addWidget(self.build_cancel)
        left.addLayout(build_row)
        right = QVBoxLayout()
        right.addWidget(self.preview_label)
        right.addWidget(self.preview_view, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left, 3)
        layout.addLayout(right, 2)

    def settings(self) -> tuple[int, str]:
        """(resolution, window spec) as ``medgan.dataset.training_set.TrainingSetConfig`` takes them."""
        return int(self.resolution_box.currentData()), str(self.window_box.currentData())

    def fill(self, chosen: list[Any], ranges: dict[str, tuple[int, int]]) -> None:
        """One row per chosen series: patient and series, count, 1-based inclusive range."""
        table = self.table
        table.setRowCount(len(chosen))
        for row, series in enumerate(chosen):
            start, stop = ranges[series.series_uid]
            who = series.patient_name or series.patient_id or "(no name)"
            name = QTableWidgetItem(f"{who} — {series_title(series)}")  # UI only, never logged
            name.setData(Qt.ItemDataRole.UserRole, series.series_uid)
            name.setFlags(name.flags() & ~Qt.ItemFlag.ItemIsEditable)
            table.setItem(row, COL_SERIES, name)
            first, last = QSpinBox(table), QSpinBox(table)
            first.setRange(1, series.n_images)
            last.setRange(1, series.n_images)
            first.setValue(start + 1)
            last.setValue(stop)
            uid = series.series_uid
            first.valueChanged.connect(lambda v, u=uid: self.range_edited.emit(u, v - 1, -1))
            last.valueChanged.connect(lambda v, u=uid: self.range_edited.emit(u, -1, v))
            table.setCellWidget(row, COL_FROM, first)
            table.setCellWidget(row, COL_TO, last)
            count = QTableWidgetItem(str(stop - start))
            count.setFlags(count.flags() & ~Qt.ItemFlag.ItemIsEditable)
            table.setItem(row, COL_COUNT, count)

    def show_range(self, uid: str, start: int, stop: int) -> None:
        """Reflect a range set elsewhere, without echoing ``range_edited``."""
        for row in range(self.table.rowCount()):
            item = self.table.item(row, COL_SERIES)
            if item is None or item.data(Qt.ItemDataRole.UserRole) != uid:
                continue
            for col, value in ((COL_FROM, start + 1), (COL_TO, stop)):
                box = self.table.cellWidget(row, col)
                if isinstance(box, QSpinBox):
                    box.blockSignals(True)
                    box.setValue(value)
                    box.blockSignals(False)
            count = self.table.item(row, COL_COUNT)
            if count is not None:
                count.setText(str(stop - start))

    def set_building(self, on: bool) -> None:
        self.build_cancel.setVisible(on)
        self.build_progress.setVisible(on)
        if on:
            self.build_progress.setValue(0)

    def show_preview(self, tiles: np.ndarray | None) -> None:
        if tiles is None:
            self.preview_item.clear()
            return
        self.preview_item.setImage(tiles, autoLevels=False, levels=(-1.0, 1.0))
        self.preview_box.autoRange(padding=0.01)
