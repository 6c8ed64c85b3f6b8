"""Slice viewer: scroll a series with wheel/slider/keys, window/level by preset or by right-drag,
zoom (Ctrl+wheel) and pan (left-drag). Slices are decoded in a worker, a few neighbours ahead,
and kept in a small LRU cache; the UI thread only sets levels and draws.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from ui.widgets.mask_overlay import MaskOverlay
from ui.widgets.thumbnails import auto_levels
from ui.workers import Worker, WorkerHandle, start_worker

log = logging.getLogger(__name__)

CACHE_BYTES = 256 * 2**20
PREFETCH = 2  # neighbours decoded on each side of the wanted slice
FILE_PRESET = "File window"
AUTO_PRESET = "Auto"
CUSTOM_PRESET = "Custom"


class SliceCache:
    """LRU cache of decoded slices, bounded in bytes."""

    def __init__(self, max_bytes: int = CACHE_BYTES) -> None:
        self.max_bytes = max_bytes
        self._data: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._bytes = 0

    def get(self, key: tuple[str, int]) -> np.ndarray | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: tuple[str, int], value: np.ndarray) -> None:
        if key in self._data:
            self._bytes -= self._data.pop(key).nbytes
        self._data[key] = value
        self._bytes += value.nbytes
        while self._bytes > self.max_bytes and len(self._data) > 1:
            _, old = self._data.popitem(last=False)
            self._bytes -= old.nbytes

    def __contains__(self, key: object) -> bool:
        return key in self._data

    def __len__(self) -> int:
        return len(self._data)

    def clear(self) -> None:
        self._data.clear()
        self._bytes = 0


class SliceDecodeWorker(Worker):
    """Decodes the given slices in order; ``event((uid, index, array or None, reason))``."""

    def __init__(self, uid: str, refs: list[tuple[int, Any]]) -> None:
        super().__init__(name="slice-decode")
        self._uid = uid
        self._refs = refs

    def work(self) -> None:
        from medgan.core.errors import MedganError
        from medgan.dicom.decode import read_image

        for index, ref in self._refs:
            if self.is_cancelled():
                return None
            try:
                pixels = np.ascontiguousarray(read_image(ref), dtype=np.float32)
                self.event.emit((self._uid, index, pixels, ""))
            except (MedganError, ValueError, OSError) as exc:
                self.event.emit((self._uid, index, None, str(exc)))
        return None


class _SliceViewBox(pg.ViewBox):
    """Wheel scrolls slices (Ctrl+wheel zooms); right-drag (or left in W/L mode) sets W/L."""

    wheel_steps = Signal(int)
    window_drag = Signal(float, float)

    def __init__(self) -> None:
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)
        self.wl_mode = False

    def wheelEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 - Qt override
        if ev.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(ev, axis)
            return
        delta = ev.delta() if hasattr(ev, "delta") else ev.angleDelta().y()
        if delta:
            self.wheel_steps.emit(-1 if delta > 0 else 1)
        ev.accept()

    def mouseDragEvent(self, ev: Any, axis: Any = None) -> None:  # noqa: N802 - Qt override
        wl_button = ev.button() == Qt.MouseButton.RightButton or (
            self.wl_mode and ev.button() == Qt.MouseButton.LeftButton
        )
        if wl_button:
            ev.accept()
            delta = ev.screenPos() - ev.lastScreenPos()
            self.window_drag.emit(float(delta.x()), float(delta.y()))
        else:
            super().mouseDragEvent(ev, axis)


class SliceViewer(QWidget):
    """Shows one series; see the module docstring for the controls."""

    index_changed = Signal(int)
    window_changed = Signal(float, float)  # center, width
    slice_shown = Signal(int)  # a decoded slice is now on screen

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SliceViewer")
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.cache = SliceCache()
        self._failed: set[tuple[str, int]] = set()
        self._series: Any = None
        self._index = 0
        self._shown_index = -1
        self._center, self._width = 40.0, 400.0
        self._handle: WorkerHandle | None = None
        self._presets = self._load_presets()

        self.view = pg.GraphicsView(self)
        self.view.setBackground("#0b0d10")
        self.viewbox = _SliceViewBox()
        self.view.setCentralItem(self.viewbox)
        self.image_item = pg.ImageItem(axisOrder="row-major")
        self.viewbox.addItem(self.image_item)
        self.viewbox.wheel_steps.connect(lambda step: self.set_index(self._index + step))
        self.viewbox.window_drag.connect(self._drag_window)

        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setObjectName("SliceSlider")
        self.slider.valueChanged.connect(self.set_index)
        self.index_label = QLabel("–", self)
        self.index_label.setMinimumWidth(90)
        self.preset_box = QComboBox(self)
        self.preset_box.setObjectName("WindowPreset")
        self.preset_box.addItems([FILE_PRESET, AUTO_PRESET, *self._presets, CUSTOM_PRESET])
        self.preset_box.currentTextChanged.connect(self._on_preset)
        self.wl_button = QPushButton("W/L drag", self)
        self.wl_button.setCheckable(True)
        self.wl_button.setToolTip(
            "Drag with the left button to change window/level (right-drag always does)"
        )
        self.wl_button.toggled.connect(lambda on: setattr(self.viewbox, "wl_mode", on))
        fit = QPushButton("Fit", self)
        fit.setToolTip("Reset zoom and pan")
        fit.clicked.connect(self.fit)
        self.window_label = QLabel("", self)
        self.window_label.setMinimumWidth(140)
        self.message_label = QLabel("Select a series to view it.", self)
        self.message_label.setProperty("role", "hint")
        self.value_label = QLabel("", self)
        self.value_label.setObjectName("PixelValue")
        self.value_label.setMinimumWidth(200)
        self._spacing = (1.0, 1.0)
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.overlay = MaskOverlay(self.viewbox, self)

        controls = QHBoxLayout()
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.index_label)
        controls.addWidget(self.value_label)
        tools = QHBoxLayout()
        tools.addWidget(QLabel("Window:", self))
        tools.addWidget(self.preset_box)
        tools.addWidget(self.wl_button)
        tools.addWidget(fit)
        tools.addWidget(self.window_label)
        tools.addStretch(1)
        tools.addWidget(self.overlay)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(tools)
        layout.addWidget(self.view, 1)
        layout.addLayout(controls)
        layout.addWidget(self.message_label)
        self._set_enabled(False)

    # -- public API -------------------------------------------------------------------------
    @staticmethod
    def _load_presets() -> dict[str, tuple[float, float]]:
        try:
            from medgan.dicom.window import CT_PRESETS
        except ImportError:
            return {}
        return {
            name.capitalize(): (float(w.center), float(w.width)) for name, w in CT_PRESETS.items()
        }

    @property
    def series(self) -> Any:
        return self._series

    def index(self) -> int:
        return self._index

    def shown_index(self) -> int:
        """Index of the slice currently drawn (-1 when none)."""
        return self._shown_index

    def window(self) -> tuple[float, float]:
        return self._center, self._width

    def image(self) -> np.ndarray | None:
        """The modality-unit pixels on screen."""
        return self.image_item.image

    def set_series(self, series: Any) -> None:
        """Show ``series`` (a ``SeriesRecord``) from its middle slice; None clears."""
        self._cancel_decode()
        self._series = series
        self._shown_index = -1
        self.image_item.clear()
        self.overlay.show_slice(None, -1, QRectF())
        if series is None or not series.images:
            self._set_enabled(False)
            self.message_label.setText("Select a series to view it.")
            self.index_label.setText("–")
            return
        self._set_enabled(True)
        self.message_label.setText("")
        spacing = series.pixel_spacing or (1.0, 1.0)
        self._spacing = (float(spacing[0]) or 1.0, float(spacing[1]) or 1.0)
        self.slider.blockSignals(True)
        self.slider.setRange(0, series.n_images - 1)
        self.slider.blockSignals(False)
        modality = (series.modality or "").upper()
        preferred = FILE_PRESET if series.window else AUTO_PRESET
        if modality == "CT" and not series.window and "Brain" in self._presets:
            preferred = "Brain"
        self.preset_box.blockSignals(True)
        self.preset_box.setCurrentText(preferred)
        self.preset_box.blockSignals(False)
        self._pending_fit = True
        self._index = -1
        self.set_index(series.n_images // 2)

    def set_index(self, index: int) -> None:
        if self._series is None or not self._series.images:
            return
        index = int(np.clip(index, 0, self._series.n_images - 1))
        if index == self._index:
            return
        self._index = index
        self.slider.blockSignals(True)
        self.slider.setValue(index)
        self.slider.blockSignals(False)
        self.index_label.setText(f"{index + 1} / {self._series.n_images}")
        self.index_changed.emit(index)
        pixels = self.cache.get((self._series.series_uid, index))
        if pixels is not None:
            self._show(index, pixels)
        self._ensure_decoding()

    def set_window(self, center: float, width: float, *, preset: str | None = None) -> None:
        self._center, self._width = float(center), max(float(width), 1e-3)
        if preset is not None:
            self.preset_box.blockSignals(True)
            self.preset_box.setCurrentText(preset)
            self.preset_box.blockSignals(False)
        self._apply_levels()
        self.window_changed.emit(self._center, self._width)

    def set_labels(self, labels: Any) -> None:
        """Show the masks and slice labels of a ``LabelSet`` (None hides them)."""
        self.overlay.set_labels(labels)
        if self._shown_index >= 0 and self.image_item.image is not None:
            rect = self._image_rect(self.image_item.image)
            self.overlay.show_slice(self._series, self._shown_index, rect)

    def _image_rect(self, pixels: np.ndarray) -> QRectF:
        return QRectF(0, 0, pixels.shape[1] * self._spacing[1], pixels.shape[0] * self._spacing[0])

    def fit(self) -> None:
        self.viewbox.autoRange(padding=0.02)

    def shutdown(self) -> None:
        self._cancel_decode()

    # -- decoding ---------------------------------------------------------------------------
    def _ensure_decoding(self) -> None:
        if self._series is None or (self._handle is not None and not self._handle.done):
            return
        uid = self._series.series_uid
        wanted = [self._index]
        for k in range(1, PREFETCH + 1):
            wanted += [self._index + k, self._index - k]
        refs = [
            (i, self._series.images[i])
            for i in wanted
            if 0 <= i < self._series.n_images
            and (uid, i) not in self.cache
            and (uid, i) not in self._failed
        ]
        if not refs:
            return
        self._handle = start_worker(
            SliceDecodeWorker(uid, refs),
            self,
            on_event=self._on_decoded,
            on_finished=self._on_decode_finished,
        )

    def _on_decoded(self, payload: tuple[str, int, np.ndarray | None, str]) -> None:
        uid, index, pixels, reason = payload
        if pixels is None:
            self._failed.add((uid, index))
            if self._series is not None and uid == self._series.series_uid and index == self._index:
                self.message_label.setText(f"Slice {index + 1} cannot be shown: {reason}")
            return
        self.cache.put((uid, index), pixels)
        if self._series is not None and uid == self._series.series_uid and index == self._index:
            self._show(index, pixels)

    def _on_decode_finished(self) -> None:
        self._handle = None
        self._ensure_decoding()  # the user may have moved on meanwhile

    def _cancel_decode(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    # -- drawing ----------------------------------------------------------------------------
    def _show(self, index: int, pixels: np.ndarray) -> None:
        first = self._shown_index < 0
        self._shown_index = index
        self.message_label.setText("")
        if first:
            self._on_preset(self.preset_box.currentText(), pixels=pixels, emit=True)
        self.image_item.setImage(pixels, autoLevels=False, levels=self._levels())
        self.image_item.setRect(self._image_rect(pixels))  # in mm: true aspect
        self.overlay.show_slice(self._series, index, self._image_rect(pixels))
        if first or getattr(self, "_pending_fit", False):
            self._pending_fit = False
            self.fit()
        self.slice_shown.emit(index)

    def pixel_at(self, scene_pos: Any) -> tuple[int, int, float] | None:
        """(row, col, value) under a scene position, or None outside the image."""
        pixels = self.image_item.image
        if pixels is None:
            return None
        point = self.viewbox.mapSceneToView(scene_pos)
        row = int(np.floor(point.y() / self._spacing[0]))
        col = int(np.floor(point.x() / self._spacing[1]))
        if 0 <= row < pixels.shape[0] and 0 <= col < pixels.shape[1]:
            return row, col, float(pixels[row, col])
        return None

    def _on_mouse_moved(self, scene_pos: Any) -> None:
        hit = self.pixel_at(scene_pos)
        if hit is None:
            self.value_label.setText("")
            return
        row, col, value = hit
        unit = (
            " HU"
            if self._series is not None and (self._series.modality or "").upper() == "CT"
            else ""
        )
        self.value_label.setText(f"({col}, {row}): {value:.0f}{unit}")

    def _levels(self) -> tuple[float, float]:
        return self._center - self._width / 2, self._center + self._width / 2

    def _apply_levels(self) -> None:
        if self.image_item.image is not None:
            self.image_item.setLevels(self._levels())
        self.window_label.setText(f"W {self._width:.0f}  L {self._center:.0f}")

    def _on_preset(self, name: str, *, pixels: np.ndarray | None = None, emit: bool = True) -> None:
        if pixels is None:
            pixels = self.image_item.image
        if name == CUSTOM_PRESET:
            return
        if name in self._presets:
            center, width = self._presets[name]
        elif name == FILE_PRESET and self._series is not None and self._series.window:
            center, width = self._series.window
        elif pixels is not None:
            center, width = self._auto_window(pixels)
        else:
            return
        self._center, self._width = float(center), max(float(width), 1e-3)
        self._apply_levels()
        if emit:
            self.window_changed.emit(self._center, self._width)

    @staticmethod
    def _auto_window(pixels: np.ndarray) -> tuple[float, float]:
        try:
            from medgan.dicom.window import auto_window

            win = auto_window(pixels)
            return float(win.center), float(win.width)
        except ImportError:
            lo, hi = auto_levels(pixels)
            return (lo + hi) / 2, hi - lo

    def _drag_window(self, dx: float, dy: float) -> None:
        scale = max(self._width, 1.0) * 0.005
        self.set_window(
            self._center - dy * scale, max(1.0, self._width + dx * scale * 2), preset=CUSTOM_PRESET
        )

    def _set_enabled(self, on: bool) -> None:
        for w in (self.slider, self.preset_box, self.wl_button):
            w.setEnabled(on)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        steps = {
            Qt.Key.Key_Up: -1,
            Qt.Key.Key_Down: 1,
            Qt.Key.Key_PageUp: -10,
            Qt.Key.Key_PageDown: 10,
        }
        if key in steps:
            self.set_index(self._index + steps[key])
        elif key == Qt.Key.Key_Home:
            self.set_index(0)
        elif key == Qt.Key.Key_End and self._series is not None:
            self.set_index(self._series.n_images - 1)
        elif key == Qt.Key.Key_M:
            self.overlay.toggle()
        else:
            super().keyPressEvent(event)
