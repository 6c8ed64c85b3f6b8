"""A slice's level in its series: where between the first and the last slice it lies.

A series' images are sorted along the slice normal (:mod:`medgan.dicom.sorting`), so a slice's
index over the series' length is its level — 0 at the first slice, 1 at the last. Levels let
the ``default`` recipe learn what each part of a series looks like (``levels``,
:mod:`medgan.models.levels`); they carry nothing identifying.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def series_levels(indices: Sequence[int], n_in_series: int, n_out: int | None = None) -> np.ndarray:
    """Levels (float32) of the slices ``indices`` of a series of ``n_in_series`` images; a
    one-slice series is at 0.5. ``n_out``: the number of images they decoded to, when it
    differs (then spread evenly over the chunk's span)."""
    idx = np.asarray(list(indices), np.float64)
    if n_out is not None and n_out != len(idx):
        lo, hi = (idx.min(), idx.max()) if len(idx) else (0.0, 0.0)
        idx = np.linspace(lo, hi, n_out)
    if n_in_series <= 1:
        return np.full(len(idx), 0.5, np.float32)
    return np.clip(idx / (n_in_series - 1), 0.0, 1.0).astype(np.float32)


def position_bins(levels: np.ndarray, n_bins: int) -> np.ndarray:
    """Levels in [0, 1] → bin indices 0 … n_bins − 1 (int64), equal-width bins."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}.")
    pos = np.clip(np.asarray(levels, np.float64), 0.0, 1.0)
    return np.minimum((pos * n_bins).astype(np.int64), n_bins - 1)
