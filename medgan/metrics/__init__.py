"""Evaluation metrics on image arrays, with no downloaded weights.

- :mod:`.swd` — sliced Wasserstein distance on Laplacian pyramids (ProGAN's metric);
- :mod:`.ssim` — SSIM / MS-SSIM diversity between random pairs of slices;
- :mod:`.histogram` — Wasserstein-1 distance between pixel-intensity histograms;
- :mod:`.memorization` — thresholds calibrated on real-vs-real distances and the memorization rate;
- :mod:`.evaluation` — all of them together, as the JSON report of ``medgan evaluate``.

All are deterministic for a seed, chunked, and run with torch on the CPU or the GPU.
"""

from __future__ import annotations

from medgan.metrics.memorization import (
    MemorizationCalibration,
    calibrate_memorization,
    memorization_rate,
)

__all__ = ["MemorizationCalibration", "calibrate_memorization", "memorization_rate"]
