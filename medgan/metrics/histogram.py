"""Intensity-histogram distance: Wasserstein-1 (earth mover's) between pixel-value distributions.

Pixel values on the [-1, 1] scale are binned (1024 bins, values outside clipped to the edges)
image batch by image batch; the distance is the area between the two cumulative histograms,
in units of the [-1, 1] scale (multiply by window width / 2 for modality units such as HU).
0 for identical intensity distributions; a uniform shift by ``s`` gives ``s``.
"""

from __future__ import annotations

import threading

import numpy as np

from medgan.core.errors import Cancelled, DataError

BINS = 1024


def pixel_histogram(
    images: np.ndarray, *, bins: int = BINS, batch: int = 512, cancel: threading.Event | None = None
) -> np.ndarray:
    """Normalised histogram (``bins``,) of all pixel values on [-1, 1], chunked."""
    hist = np.zeros(bins, np.float64)
    for s in range(0, len(images), batch):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Histogram computation cancelled.")
        x = np.asarray(images[s : s + batch], np.float32).ravel()
        x = np.clip(np.nan_to_num(x, nan=0.0), -1.0, 1.0)
        idx = np.minimum(((x + 1.0) * (bins / 2.0)).astype(np.int64), bins - 1)
        hist += np.bincount(idx, minlength=bins)
    total = hist.sum()
    if total == 0:
        raise DataError("Cannot compute an intensity histogram of an empty set.")
    return hist / total


def histogram_distance(
    a: np.ndarray, b: np.ndarray, *, bins: int = BINS, cancel: threading.Event | None = None
) -> float:
    """Wasserstein-1 distance between the pixel-value distributions of two image sets."""
    ha = pixel_histogram(a, bins=bins, cancel=cancel)
    hb = pixel_histogram(b, bins=bins, cancel=cancel)
    return float(np.abs(np.cumsum(ha - hb)).sum() * (2.0 / bins))
