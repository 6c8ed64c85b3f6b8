"""Preview mosaics of labelled runs: one row per class, masks drawn over their images."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QImage

from medgan.models.modelfile import segment_colours


def _to_uint8(images: np.ndarray) -> np.ndarray:
    """[-1, 1] → [0, 255] (as the grayscale sample grid; NaN becomes 0)."""
    scaled = (np.nan_to_num(images, nan=-1.0) + 1.0) / 2.0
    return (np.clip(scaled, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def labelled_mosaic(
    images: np.ndarray,
    labels: np.ndarray | None,
    masks: np.ndarray | None,
    alpha: float = 0.45,
    pad: int = 2,
) -> np.ndarray:
    """(rows·H, cols·W, 3) uint8: a row per class (or one row per √N without classes), each
    mask value k > 0 tinted with its segment colour at ``alpha``."""
    imgs = np.asarray(images, np.float32)
    n, h, w = imgs.shape
    if labels is None:
        cols = max(1, int(np.ceil(np.sqrt(n))))
        rows_of = [list(range(r * cols, min(n, (r + 1) * cols))) for r in range(-(-n // cols))]
    else:
        classes = sorted(set(int(v) for v in labels))
        rows_of = [list(np.flatnonzero(labels == k)) for k in classes]
        cols = max(len(r) for r in rows_of)
    rgb = np.repeat(_to_uint8(imgs)[..., None], 3, axis=-1).astype(np.float32)
    if masks is not None:
        m = np.asarray(masks)
        colours = np.array([[0, 0, 0], *segment_colours(int(m.max(initial=0)))], np.float32)
        tint = colours[m]
        on = (m > 0)[..., None]
        rgb = np.where(on, (1 - alpha) * rgb + alpha * tint, rgb)
    out = np.full((len(rows_of) * (h + pad) + pad, cols * (w + pad) + pad, 3), 40, np.uint8)
    for r, row in enumerate(rows_of):
        for c, i in enumerate(row):
            y, x = pad + r * (h + pad), pad + c * (w + pad)
            out[y : y + h, x : x + w] = rgb[i].round().astype(np.uint8)
    return out


def rgb_qimage(rgb: np.ndarray) -> QImage:
    """A QImage that owns a copy of an (H, W, 3) uint8 array."""
    arr = np.ascontiguousarray(rgb)
    h, w, _ = arr.shape
    return QImage(arr.data, w, h, arr.strides[0], QImage.Format.Format_RGB888).copy()
