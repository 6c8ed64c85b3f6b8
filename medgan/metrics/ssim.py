"""SSIM and MS-SSIM (Wang et al. 2003/2004) in torch, and diversity between random pairs.

Images are on the [-1, 1] scale (data range 2). Gaussian window 11 x 11, sigma 1.5, valid
convolution. MS-SSIM uses the standard five scale weights; small images get fewer scales (the
coarsest scale must still hold an 11 x 11 window: 3 scales at 64², 4 at 128², 5 at 256²) with the
first weights renormalised. Negative contrast-structure terms are clamped at 0 so that
fractional powers stay real.

Diversity: mean (MS-)SSIM over random pairs of distinct slices of one set. Lower = more
diverse; a collapsed generator scores near 1. Compare with the same number on real slices.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medgan.core.device import resolve_device
from medgan.core.errors import Cancelled, DataError

if TYPE_CHECKING:
    import torch

WINDOW = 11
SIGMA = 1.5
DATA_RANGE = 2.0
MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


@dataclass(frozen=True)
class Diversity:
    ssim: float  # mean SSIM over pairs
    ms_ssim: float | None  # mean MS-SSIM over pairs (None when images are smaller than 11 px)
    ms_ssim_scales: int
    n_pairs: int


def ms_ssim_scales(size: int) -> int:
    """Number of MS-SSIM scales that fit an image side of ``size`` pixels (0 if none)."""
    if size < WINDOW:
        return 0
    return int(min(len(MS_WEIGHTS), math.floor(math.log2(size / WINDOW)) + 1))


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """SSIM per pair of (B, 1, H, W) images on the [-1, 1] scale → (B,)."""
    s, _ = _ssim_cs(x, y)
    return s


def ms_ssim(x: torch.Tensor, y: torch.Tensor, scales: int | None = None) -> torch.Tensor:
    """MS-SSIM per pair of (B, 1, H, W) images → (B,), with as many scales as fit."""
    import torch
    import torch.nn.functional as F

    n = scales or ms_ssim_scales(min(x.shape[-2:]))
    if n < 1:
        raise DataError(f"Images of {x.shape[-1]} px are too small for MS-SSIM (need {WINDOW}).")
    w = torch.tensor(MS_WEIGHTS[:n], dtype=torch.float64)
    w = w / w.sum()
    # combined in float64 on the CPU (Apple MPS has no float64)
    out = torch.ones(x.shape[0], dtype=torch.float64)
    for i in range(n):
        s, cs = _ssim_cs(x, y)
        term = s if i == n - 1 else cs
        out = out * term.cpu().double().clamp_min(0.0) ** w[i]
        if i < n - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return out.float()


def diversity(
    images: np.ndarray,
    *,
    n_pairs: int = 500,
    seed: int = 0,
    batch: int = 128,
    device: str = "auto",
    cancel: threading.Event | None = None,
) -> Diversity:
    """Mean SSIM and MS-SSIM over ``n_pairs`` seeded random pairs of distinct slices."""
    import torch

    imgs = np.asarray(images, dtype=np.float32)
    if imgs.ndim != 3 or len(imgs) < 2:
        raise DataError("Diversity needs at least two slices (N, H, W).")
    rng = np.random.default_rng(seed)
    i = rng.integers(0, len(imgs), n_pairs)
    j = (i + rng.integers(1, len(imgs), n_pairs)) % len(imgs)  # never i itself
    dev = resolve_device(device)
    scales = ms_ssim_scales(min(imgs.shape[1:]))
    s_vals, m_vals = [], []
    with torch.no_grad():
        for s in range(0, n_pairs, batch):
            if cancel is not None and cancel.is_set():
                raise Cancelled("Diversity computation cancelled.")
            x = torch.from_numpy(imgs[i[s : s + batch]]).to(dev)[:, None]
            y = torch.from_numpy(imgs[j[s : s + batch]]).to(dev)[:, None]
            s_vals.append(ssim(x, y).cpu())
            if scales:
                m_vals.append(ms_ssim(x, y, scales).cpu())
    return Diversity(
        ssim=float(torch.cat(s_vals).mean()),
        ms_ssim=float(torch.cat(m_vals).mean()) if m_vals else None,
        ms_ssim_scales=scales,
        n_pairs=n_pairs,
    )


def _ssim_cs(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    import torch
    import torch.nn.functional as F

    x, y = x.float(), y.float()
    win = min(WINDOW, x.shape[-1], x.shape[-2])
    t = torch.arange(win, dtype=torch.float32, device=x.device) - (win - 1) / 2
    g = torch.exp(-(t**2) / (2 * SIGMA**2))
    g = g / g.sum()

    def filt(z: torch.Tensor) -> torch.Tensor:
        z = F.conv2d(z, g.view(1, 1, 1, -1))
        return F.conv2d(z, g.view(1, 1, -1, 1))

    c1, c2 = (0.01 * DATA_RANGE) ** 2, (0.03 * DATA_RANGE) ** 2
    mx, my = filt(x), filt(y)
    vx = filt(x * x) - mx * mx
    vy = filt(y * y) - my * my
    cov = filt(x * y) - mx * my
    cs_map = (2 * cov + c2) / (vx + vy + c2)
    s_map = ((2 * mx * my + c1) / (mx * mx + my * my + c1)) * cs_map
    return s_map.mean(dim=(1, 2, 3)), cs_map.mean(dim=(1, 2, 3))
