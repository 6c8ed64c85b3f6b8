"""Side-by-side view: an enlarged synthetic slice next to its nearest real training slice.

Both images share one window/level (drag the histogram's range or its edges) and one
zoom/pan, so a near-copy of a patient's slice is easy to spot.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget


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
    ) -> None:
        """Show one synthetic slice and (optionally) its nearest real one, same levels."""
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
        self.has_real = False
        self.left_title.setText("Synthetic")
        self.right_title.setText("Click an image in the gallery to compare it here.")

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
