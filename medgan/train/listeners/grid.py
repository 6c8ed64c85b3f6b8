"""Tile a batch of [-1, 1] images into one uint8 grid (for event files and reports)."""

from __future__ import annotations

import math

import numpy as np


def tile_uint8(images: np.ndarray, *, max_images: int = 16, max_tile: int = 64) -> np.ndarray:
    """``images`` (N, H, W) in [-1, 1] → one (rows*h, cols*w) uint8 grid, square-ish.

    At most ``max_images`` images, each shrunk by an integer factor to at most ``max_tile``
    pixels a side (block mean), with a 1-pixel black gap.
    """
    arr = np.asarray(images, dtype=np.float32)[:max_images]
    if arr.ndim == 2:
        arr = arr[None]
    n, h, w = arr.shape
    factor = max(1, math.ceil(max(h, w) / max_tile))
    if factor > 1:
        hh, ww = h // factor * factor, w // factor * factor
        arr = arr[:, :hh, :ww].reshape(n, hh // factor, factor, ww // factor, factor).mean((2, 4))
        h, w = arr.shape[1:]
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.zeros((rows * (h + 1) - 1, cols * (w + 1) - 1), dtype=np.uint8)
    scaled = np.clip((arr + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    for k in range(n):
        r, c = divmod(k, cols)
        out[r * (h + 1) : r * (h + 1) + h, c * (w + 1) : c * (w + 1) + w] = scaled[k]
    return out
