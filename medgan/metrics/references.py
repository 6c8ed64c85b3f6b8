"""Reference degradations of real slices that calibrate what a quality figure means.

A number such as "SWD 120" or "AUC 0.8" says little alone. Scoring real slices that were
damaged in a known way, with the same metric and the same sample sizes, turns it into a
statement: :func:`erase_structure` keeps each slice's outline, skull, air and mean intensities
but smooths away everything inside (ventricles, sulci, grey/white contrast, texture) — exactly
a "blob generator" that has learnt the outline only. A generator that cannot beat it has not
learnt internal anatomy, whatever its SWD.
"""

from __future__ import annotations

import numpy as np

SATURATION = 0.98  # |value| above this is air or bone at the window's ends: kept as it is


def erase_structure(images: np.ndarray, sigma_fraction: float = 1.0 / 16.0) -> np.ndarray:
    """Real slices (N, R, R) in [-1, 1] with their inner structure smoothed away.

    Pixels inside the window (soft tissue: ``|x| < 0.98``) are replaced by a Gaussian average
    (sigma = ``sigma_fraction`` × R, 4 px at 64²) over soft-tissue pixels only, so air, bone and
    the outline stay sharp and the brain becomes a smooth, featureless blob.
    """
    from scipy import ndimage

    x = np.asarray(images, np.float32)
    soft = (np.abs(x) < SATURATION).astype(np.float32)
    sigma = (0.0, sigma_fraction * x.shape[-2], sigma_fraction * x.shape[-1])
    num = ndimage.gaussian_filter(x * soft, sigma, mode="nearest")
    den = ndimage.gaussian_filter(soft, sigma, mode="nearest")
    smooth = num / np.maximum(den, 1e-3)
    return np.where(soft > 0, smooth, x).astype(np.float32)


def blur(images: np.ndarray, sigma_px: float = 1.4) -> np.ndarray:
    """Real slices blurred with a Gaussian (the former "recognizable" reference: fine texture lost,
    layout kept)."""
    from scipy import ndimage

    x = np.asarray(images, np.float32)
    return ndimage.gaussian_filter(x, (0.0, sigma_px, sigma_px), mode="reflect").astype(np.float32)
