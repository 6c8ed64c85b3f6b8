"""Mask overlay for the slice viewer: one colour per segment, an opacity slider, a toggle
(the M key), a legend, and a badge with the slice's class label.

It draws the merged mask of the shown slice (``LabelSet.mask_for``) as an RGBA image on top of
the slice, in the same millimetre rectangle, so it pans and zooms with it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QSlider, QWidget

# Distinct colours (RGB) for segment values 1, 2, ... (cycled).
PALETTE = (
    (235, 64, 52), (66, 135, 245), (245, 197, 66), (76, 209, 55), (186, 85, 211),
    (0, 206, 209), (255, 140, 0), (240, 98, 146),
)  # fmt: skip


def colour_lut(n_segments: int, alpha: float) -> np.ndarray:
    """(n + 1, 4) uint8 RGBA lookup: value 0 transparent, k → ``PALETTE[(k - 1) % len]``."""
    lut = np.zeros((n_segments + 1, 4), np.uint8)
    for k in range(1, n_segments + 1):
        lut[k, :3] = PALETTE[(k - 1) % len(PALETTE)]
        lut[k, 3] = int(round(255 * alpha))
    return lut


class MaskOverlay(QWidget):
    """Controls plus the overlay item; :meth:`show_slice` updates both for a slice."""

    def __init__(self, viewbox: pg.ViewBox, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.labels: Any = None
        self._names: list[str] = []
        self.item = pg.ImageItem(axisOrder="row-major")
        self.item.setZValue(10)
        viewbox.addItem(self.item)
        self.toggle_box = QCheckBox("Masks (M)", self)
        self.toggle_box.setObjectName("MaskToggle")
        self.toggle_box.setChecked(True)
        self.toggle_box.toggled.connect(lambda _on: self._redraw())
        self.opacity = QSlider(Qt.Orientation.Horizontal, self)
        self.opacity.setObjectName("MaskOpacity")
        self.opacity.setRange(0, 100)
        self.opacity.setValue(45)
        self.opacity.setFixedWidth(90)
        self.opacity.setToolTip("Mask opacity")
        self.opacity.valueChanged.connect(lambda _v: self._redraw())
        self.legend = QLabel("", self)
        self.legend.setObjectName("MaskLegend")
        self.badge = QLabel("", self)
        self.badge.setObjectName("LabelBadge")
        self.badge.setStyleSheet(
            "QLabel#LabelBadge { background: #3b4252; border-radius: 4px; padding: 1px 6px; }"
        )
        self.badge.hide()
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.badge)
        layout.addWidget(self.toggle_box)
        layout.addWidget(self.opacity)
        layout.addWidget(self.legend)
        self._mask: np.ndarray | None = None
        self._rect: QRectF | None = None
        self.set_labels(None)

    def set_labels(self, labels: Any) -> None:
        """Use a ``medgan.dicom.labels.LabelSet`` (None: no labels)."""
        self.labels = labels
        self._names = labels.segment_names() if labels is not None else []
        has_masks = bool(self._names)
        for w in (self.toggle_box, self.opacity, self.legend):
            w.setVisible(has_masks)
        lut = colour_lut(len(self._names), 1.0)
        self.legend.setText(
            "  ".join(
                f"<span style='color: rgb({r},{g},{b})'>■</span> {name}"
                for name, (r, g, b, _a) in zip(self._names, lut[1:], strict=True)
            )
        )
        self._mask = None
        self._redraw()

    def toggle(self) -> None:
        self.toggle_box.setChecked(not self.toggle_box.isChecked())

    def visible_mask(self) -> np.ndarray | None:
        """The mask drawn now (None when hidden or when the slice has none)."""
        return self._mask if self.toggle_box.isChecked() else None

    def show_slice(self, series: Any, index: int, rect: QRectF) -> None:
        self._rect = rect
        self._mask = None
        label = None
        if self.labels is not None and series is not None:
            uid = series.series_uid
            self._mask = self.labels.mask_for(uid, index, self._names)
            label = self.labels.labels.get(uid, {}).get(index)
        self.badge.setVisible(label is not None)
        self.badge.setText(str(label or ""))
        self._redraw()

    def _redraw(self) -> None:
        mask = self.visible_mask()
        if mask is None or not mask.any() or self._rect is None:
            self.item.clear()
            self.item.setVisible(False)
            return
        rgba = colour_lut(len(self._names), self.opacity.value() / 100.0)[mask]
        self.item.setImage(rgba, autoLevels=False, levels=(0, 255))
        self.item.setRect(self._rect)
        self.item.setVisible(True)
