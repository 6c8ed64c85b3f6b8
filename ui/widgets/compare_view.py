"""Side-by-side view: an enlarged synthetic slice next to its nearest real training slice.

Both images share one window/level (drag the histogram's range or its edges) and one
zoom/pan, so a near-copy of a patient's slice is easy to spot.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ui.widgets.mask_overlay import colour_lut


class CompareView(QWidget):
    """Synthetic (left) and nearest real (right) slices with linked window/level and zoom."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("k")
        self.left_box = self.graphics.addViewBox(row=0, col=0, lockAspect=True, invertY=True)
        self.right_box = self.graphics.addViewBox(row=0, col=1, lockAspect=True, invertY=True)
        self.right_box.setXLink(self.left_box)
        self.right_box.setYLink(self.left_box)
        self.left_image = pg.ImageItem(axisOrder="row-major")
        self.right_image = pg.ImageItem(axisOrder="row-major")
        self.left_box.addItem(self.left_image)
        self.right_box.addItem(self.right_image)
        self.histogram = pg.HistogramLUTItem(image=self.left_image)
        self.graphics.addItem(self.histogram, row=0, col=2)
        self.histogram.sigLevelsChanged.connect(self._sync_levels)
        # Mask overlays (labelled sets): drawn above both images, toggled by the checkbox.
        self.left_mask = pg.ImageItem(axisOrder="row-major")
        self.right_mask = pg.ImageItem(axisOrder="row-major")
        for box, item in ((self.left_box, self.left_mask), (self.right_box, self.right_mask)):
            item.setZValue(10)
            box.addItem(item)
        self.mask_toggle = QCheckBox("Masks")
        self.mask_toggle.setObjectName("CompareMaskToggle")
        self.mask_toggle.setChecked(True)
        self.mask_toggle.setVisible(False)
        self.mask_toggle.toggled.connect(lambda _on: self._draw_masks())
        self._masks: tuple[np.ndarray | None, np.ndarray | None] = (None, None)
        self._n_segments = 0

        self.left_title = QLabel("Synthetic")
        self.right_title = QLabel("Nearest real training slice")
        for label in (self.left_title, self.right_title):
            label.setAlignment(Qt.AlignmentFlag.AlignCenter)
            label.setWordWrap(True)
        self.reset_button = QPushButton("Reset window/level")
        self.reset_button.clicked.connect(self.reset_levels)
        titles = QHBoxLayout()
        titles.addWidget(self.left_title, 1)
        titles.addWidget(self.right_title, 1)
        titles.addWidget(self.mask_toggle)
        titles.addWidget(self.reset_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(titles)
        layout.addWidget(self.graphics, 1)
        self._default_levels = (-1.0, 1.0)
        self.has_real = False

    def set_pair(
        self,
        synthetic: np.ndarray,
        real: np.ndarray | None,
        *,
        left_text: str = "Synthetic",
        right_text: str = "Nearest real training slice",
        levels: tuple[float, float] = (-1.0, 1.0),
        mask: np.ndarray | None = None,
        real_mask: np.ndarray | None = None,
        n_segments: int = 0,
    ) -> None:
        """Show one synthetic slice and (optionally) its nearest real one, same levels; with
        ``mask`` / ``real_mask`` (uint8, value k = segment k) their overlays too."""
        self._masks = (mask, real_mask if real is not None else None)
        self._n_segments = int(n_segments)
        self.mask_toggle.setVisible(mask is not None or real_mask is not None)
        self._draw_masks()
        self._default_levels = levels
        self.left_image.setImage(np.asarray(synthetic, dtype=np.float32), autoLevels=False)
        self.has_real = real is not None
        if real is not None:
            self.right_image.setImage(np.asarray(real, dtype=np.float32), autoLevels=False)
        else:
            self.right_image.clear()
            right_text = "No training slice available to compare"
        self.left_title.setText(left_text)
        self.right_title.setText(right_text)
        self.histogram.setLevels(*levels)
        self._sync_levels()
        self.left_box.autoRange(padding=0.0)

    def clear(self) -> None:
        self.left_image.clear()
        self.right_image.clear()
        self._masks = (None, None)
        self.mask_toggle.setVisible(False)
        self._draw_masks()
        self.has_real = False
        self.left_title.setText("Synthetic")
        self.right_title.setText("Click an image in the gallery to compare it here.")

    def visible_masks(self) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The (synthetic, real) masks drawn now (None where hidden or absent)."""
        if not self.mask_toggle.isChecked():
            return None, None
        return self._masks

    def _draw_masks(self) -> None:
        for item, mask in zip((self.left_mask, self.right_mask), self.visible_masks(), strict=True):
            if mask is None or not np.asarray(mask).any():
                item.clear()
                item.setVisible(False)
                continue
            mask = np.asarray(mask, dtype=np.uint8)
            rgba = colour_lut(max(self._n_segments, int(mask.max())), 0.45)[mask]
            item.setImage(rgba, autoLevels=False, levels=(0, 255))
            item.setVisible(True)

    def levels(self) -> tuple[float, float]:
        low, high = self.histogram.getLevels()
        return float(low), float(high)

    def set_levels(self, low: float, high: float) -> None:
        self.histogram.setLevels(low, high)

    def reset_levels(self) -> None:
        self.histogram.setLevels(*self._default_levels)

    def _sync_levels(self, *args: object) -> None:
        low, high = self.levels()
        self.left_image.setLevels((low, high))
        if self.has_real:
            self.right_image.setLevels((low, high))
