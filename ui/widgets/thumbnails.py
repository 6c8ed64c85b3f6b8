"""Series thumbnails: the middle slice of each series, decoded and windowed in a worker.

The worker sends small uint8 arrays (never Qt images) through ``event``; the UI thread only
wraps them in a ``QPixmap``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from PySide6.QtGui import QImage, QPixmap

from ui.workers import Worker

log = logging.getLogger(__name__)

THUMB_PIXELS = 96


def auto_levels(pixels: np.ndarray) -> tuple[float, float]:
    """(low, high) display levels from robust percentiles (fallback if the core has none)."""
    finite = pixels[np.isfinite(pixels)]
    if finite.size == 0:
        return 0.0, 1.0
    lo, hi = np.percentile(finite, [1.0, 99.0])
    if hi <= lo:
        hi = lo + 1.0
    return float(lo), float(hi)


def series_levels(series: Any, pixels: np.ndarray) -> tuple[float, float]:
    """Display levels: the file's window when it has one, else the automatic window."""
    if getattr(series, "window", None):
        center, width = series.window
        if width and width > 0:
            return center - width / 2, center + width / 2
    try:
        from medgan.dicom.window import auto_window

        win = auto_window(pixels)
        return win.center - win.width / 2, win.center + win.width / 2
    except ImportError:
        return auto_levels(pixels)


def make_thumbnail(
    pixels: np.ndarray, levels: tuple[float, float], size: int = THUMB_PIXELS
) -> np.ndarray:
    """A uint8 thumbnail no larger than ``size`` on its longer side."""
    step = max(1, int(np.ceil(max(pixels.shape) / size)))
    small = pixels[::step, ::step].astype(np.float32)
    lo, hi = levels
    scaled = np.clip((small - lo) / max(hi - lo, 1e-6), 0.0, 1.0) * 255.0
    return np.ascontiguousarray(scaled.astype(np.uint8))


def to_pixmap(gray: np.ndarray) -> QPixmap:
    """Wrap a 2D uint8 array in a QPixmap (copies the data)."""
    gray = np.ascontiguousarray(gray, dtype=np.uint8)
    h, w = gray.shape
    image = QImage(gray.data, w, h, gray.strides[0], QImage.Format.Format_Grayscale8)
    return QPixmap.fromImage(image.copy())


class ThumbnailWorker(Worker):
    """Decodes the middle slice of each series; emits ``event((uid, uint8 array or None))``."""

    def __init__(self, series_list: list[Any], size: int = THUMB_PIXELS) -> None:
        super().__init__(name="thumbnails")
        self._series = list(series_list)
        self._size = size

    def work(self) -> int:
        from medgan.core.errors import MedganError
        from medgan.dicom.decode import read_image

        done = 0
        for i, series in enumerate(self._series):
            self.check_cancelled()
            if not series.images:
                continue
            ref = series.images[series.n_images // 2]
            try:
                pixels = read_image(ref)
                thumb = make_thumbnail(pixels, series_levels(series, pixels), self._size)
            except (MedganError, ValueError, OSError) as exc:
                log.info("No thumbnail for a series: %s", exc)
                thumb = None
            self.event.emit((series.series_uid, thumb))
            self.report_progress(i + 1, len(self._series))
            done += 1
        return done
