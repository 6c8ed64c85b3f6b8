"""Tiny labelled fixtures for the utility tests: a trivially separable two-class set."""

from __future__ import annotations

import numpy as np

from medgan.utility.sources import ArraySource
from medgan.workflows.utility import LabelledData

RES = 16


def blobs(n: int, label: int, rng: np.random.Generator) -> np.ndarray:
    """Noise slices; class 1 has a bright square in the middle."""
    x = rng.normal(-0.5, 0.1, size=(n, RES, RES)).astype(np.float32)
    if label == 1:
        x[:, 5:11, 5:11] += 1.2
    return np.clip(x, -1, 1)


def separable_data(n_patients: int = 9, per_class: int = 4, seed: int = 0) -> LabelledData:
    """``n_patients`` patients, each with ``per_class`` slices of both classes."""
    rng = np.random.default_rng(seed)
    images, keys, labels = [], [], []
    for p in range(n_patients):
        for c in (0, 1):
            images.append(blobs(per_class, c, rng))
            keys += [f"p{p:02d}"] * per_class
            labels += [c] * per_class
    return LabelledData(np.concatenate(images), np.asarray(keys), np.asarray(labels, np.int64),
                        ("none", "lesion"))  # fmt: skip


def good_synthetic(n: int = 40, seed: int = 1) -> ArraySource:
    """Correctly labelled synthetic slices of both classes, trained on no patient of ours."""
    rng = np.random.default_rng(seed)
    images = np.concatenate([blobs(n, 0, rng), blobs(n, 1, rng)])
    return ArraySource(images, ["none"] * n + ["lesion"] * n, patients=frozenset())
