"""Synthetic "patients" for the scoring/metrics tests: smooth phantom volumes, no real data.

Every patient is one shared template anatomy with its own small jitter and texture, so
patients are about equally typical (as real patients of one protocol are).
"""

from __future__ import annotations

import numpy as np

_TEMPLATE = np.random.default_rng(12345)
_ORGANS = [
    (_TEMPLATE.uniform(-0.4, 0.4), _TEMPLATE.uniform(-0.3, 0.3), _TEMPLATE.uniform(0.12, 0.25),
     _TEMPLATE.uniform(0.12, 0.25), _TEMPLATE.uniform(-0.6, 0.9), _TEMPLATE.uniform(-1, 1))
    for _ in range(5)
]  # fmt: skip


def phantom_patient(rng: np.random.Generator, n_slices: int, size: int = 32) -> np.ndarray:
    """A stack of slices through one patient; neighbouring slices are similar."""
    yy, xx = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    body_a, body_b = 0.8 + rng.normal(0, 0.04), 0.7 + rng.normal(0, 0.04)
    organs = [
        (cx + rng.normal(0, 0.06), cy + rng.normal(0, 0.06), rx * rng.uniform(0.8, 1.2),
         ry * rng.uniform(0.8, 1.2), val + rng.normal(0, 0.1), dz)
        for cx, cy, rx, ry, val, dz in _ORGANS
    ]  # fmt: skip
    texture = rng.standard_normal((size, size)) * 0.04
    out = np.empty((n_slices, size, size), np.float32)
    for k in range(n_slices):
        z = (k / max(n_slices - 1, 1)) * 2 - 1
        img = np.full((size, size), -1.0)
        img[(xx / body_a) ** 2 + (yy / body_b) ** 2 < 1 - 0.3 * z**2] = -0.2
        for cx, cy, rx, ry, val, dz in organs:
            reach = 1 - 0.5 * (z - dz * 0.3) ** 2
            inside = ((xx - cx - 0.15 * z * dz) / rx) ** 2 + ((yy - cy) / ry) ** 2 < reach
            img[inside] = val
        img = img + texture * (img > -1)
        out[k] = np.clip(img, -1, 1)
    return out


def phantom_set(
    n_patients: int, n_slices: int, size: int = 32, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, size, size) in [-1, 1], hashed-looking patient keys (N,))."""
    rng = np.random.default_rng(seed)
    stacks, keys = [], []
    for p in range(n_patients):
        stacks.append(phantom_patient(rng, n_slices, size))
        keys += [f"pt{seed}-{p:03d}"] * n_slices
    return np.concatenate(stacks), np.asarray(keys)
