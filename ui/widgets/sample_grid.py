"""Live sample grid: a batch of generator samples in [-1, 1] tiled into one grayscale image."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QImage, QPixmap
from PySide6.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget


def to_uint8(images: np.ndarray, low: float = -1.0, high: float = 1.0) -> np.ndarray:
    """Map values in [low, high] to uint8 [0, 255], clipping outside; NaN becomes 0."""
    scaled = (np.nan_to_num(np.asarray(images, dtype=np.float32), nan=low) - low) / (high - low)
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def tile_images(images: np.ndarray, ncols: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, H, W) float images in [-1, 1] into one uint8 (rows*H, cols*W) mosaic."""
    imgs = np.asarray(images)
    if imgs.ndim == 2:
        imgs = imgs[None]
    if imgs.ndim == 4:  # (N, 1, H, W)
        imgs = imgs[:, 0]
    n, h, w = imgs.shape
    if n == 0:
        return np.zeros((1, 1), dtype=np.uint8)
    cols = ncols or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 40, dtype=np.uint8)
    u8 = to_uint8(imgs)
    for i in range(n):
        r, c = divmod(i, cols)
        y, x = pad + r * (h + pad), pad + c * (w + pad)
        out[y : y + h, x : x + w] = u8[i]
    return out


def gray_qimage(u8: np.ndarray) -> QImage:
    """A QImage that owns a copy of a 2D uint8 array."""
    arr = np.ascontiguousarray(u8)
    h, w = arr.shape
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_Grayscale8).copy()


class _ScaledLabel(QLabel):
    """A label that rescales its pixmap to fit, keeping the aspect ratio."""

    def __init__(self) -> None:
        super().__init__()
        self._pixmap: QPixmap | None = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(QSize(96, 96))
        # Ignored: the pixmap's size must not feed back into the layout (no resize loops).
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)

    def set_source(self, pixmap: QPixmap | None) -> None:
        self._pixmap = pixmap
        self._rescale()

    def resizeEvent(self, event: object) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)  # type: ignore[arg-type]
        self._rescale()

    def _rescale(self) -> None:
        if self._pixmap is None or self._pixmap.isNull():
            self.setPixmap(QPixmap())
            return
        mode = Qt.TransformationMode.FastTransformation  # keep pixels crisp when enlarging
        self.setPixmap(self._pixmap.scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio, mode))


class SampleGrid(QWidget):
    """Shows the latest samples from the trainer's fixed noise, with their step."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.step: int | None = None
        self.mosaic: np.ndarray | None = None
        self.caption = QLabel("Samples appear here during training.")
        self.caption.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.caption.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.view = _ScaledLabel()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.caption)

    def set_images(self, images: np.ndarray, step: int | None = None) -> None:
        """Display (N, H, W) samples in [-1, 1]."""
        self.mosaic = tile_images(images)
        self.step = step
        self.view.set_source(QPixmap.fromImage(gray_qimage(self.mosaic)))
        n = int(np.asarray(images).shape[0]) if np.asarray(images).ndim >= 3 else 1
        self.caption.setText(
            f"{n} samples from fixed noise" + (f" — step {step}" if step is not None else "")
        )

    def set_labelled(self, event: Any) -> None:
        """Display a labelled run's preview (``medgan.train.events.SampleGrid`` with labels
        or masks): one row per class, masks tinted over their images."""
        from ui.widgets.labelled_grid import labelled_mosaic, rgb_qimage

        images = np.asarray(event.images)
        labels = getattr(event, "labels", None)
        masks = getattr(event, "masks", None)
        step = getattr(event, "step", None)
        self.mosaic = labelled_mosaic(images, labels, masks)
        self.step = step
        self.view.set_source(QPixmap.fromImage(rgb_qimage(self.mosaic)))
        names = tuple(getattr(event, "class_names", ()) or ())
        rows = f"rows: {', '.join(names)}" if labels is not None and names else ""
        text = f"{len(images)} samples from fixed noise" + (f" — step {step}" if step else "")
        self.caption.setText(text + (f" ({rows})" if rows else ""))

    def clear(self) -> None:
        self.mosaic = None
        self.step = None
        self.view.set_source(None)
        self.caption.setText("Samples appear here during training.")
