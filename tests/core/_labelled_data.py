"""Tiny labelled fixtures: bright vs dark discs with a lesion mask, in [-1, 1]."""

from __future__ import annotations

import numpy as np

CLASSES = ("dark disc", "bright/disc")  # the slash: not a valid folder name
SEGMENTS = ("lesion",)


def disc(res: int, level: float, rng: np.random.Generator, *, radius: float = 0.35) -> np.ndarray:
    yy, xx = np.mgrid[:res, :res] / res - 0.5
    cy, cx = rng.uniform(-0.05, 0.05, 2)
    inside = (yy - cy) ** 2 + (xx - cx) ** 2 < radius**2
    img = np.where(inside, level, -1.0) + rng.normal(0, 0.03, (res, res))
    return np.clip(img, -1, 1).astype(np.float32)


def lesion(res: int, rng: np.random.Generator, *, size: int = 5) -> np.ndarray:
    m = np.zeros((res, res), np.uint8)
    y, x = (rng.integers(res // 2 - 4, res // 2 + 4) for _ in range(2))
    m[y : y + size, x : x + size] = 1
    return m


def labelled_set(
    n: int, res: int = 32, *, seed: int = 0, patients: int = 6
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(images, labels, masks, patient_keys): class 0 dark discs, class 1 bright discs."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n, dtype=np.int64) % 2
    images = np.stack([disc(res, -0.3 if c == 0 else 0.7, rng) for c in labels])
    masks = np.stack([lesion(res, rng) for _ in labels])
    keys = np.array([f"p{i % patients}" for i in range(n)])
    return images, labels, masks, keys
