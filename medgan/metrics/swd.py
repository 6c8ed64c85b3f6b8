"""Sliced Wasserstein distance on Laplacian pyramids — the metric of ProGAN (Karras et al. 2018).

For every pyramid level (full resolution down to 16 x 16) we take random 7 x 7 neighbourhoods
(128 per image by default) from both sets, normalise each set's descriptors per channel (mean 0,
std 1), project them on random unit directions (4 repeats x 128 directions), sort, and average
the absolute differences. Values are reported x 1e3, as in the paper. Low is good: a level's
value tells at which scale (fine texture ... coarse layout) the two sets differ.

Deterministic for a seed: patch positions and directions come from seeded CPU generators, and
both sets use the same position stream, so identical sets give exactly 0.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from medgan.core.device import resolve_device
from medgan.core.errors import Cancelled, DataError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

PATCH = 7
MIN_RESOLUTION = 16
SCALE = 1e3


@dataclass(frozen=True)
class SWDResult:
    swd: float  # mean over levels, x 1e3
    per_level: dict[int, float]  # level resolution → SWD x 1e3 (finest first)


@dataclass(frozen=True)
class SWDLevels:
    """Per-level SWD of samples next to real-vs-real and structure-erased references.

    All three compare a set of the same size with the same real half B (split by patient), so
    their values are directly comparable level by level (SWD grows as sets shrink).
    """

    samples: dict[int, float]  # samples (as many as half A) vs half B
    floor_per_level: dict[int, float]  # real half A vs half B
    erased: dict[int, float]  # structure-erased half A vs half B (the blob reference)
    n_per_set: tuple[int, int]  # (half A, half B)

    @property
    def floor(self) -> float:
        return float(np.mean(list(self.floor_per_level.values())))

    def to_dict(self) -> dict[str, object]:
        return {
            "samples": {str(k): v for k, v in self.samples.items()},
            "real_floor": {str(k): v for k, v in self.floor_per_level.items()},
            "structure_erased": {str(k): v for k, v in self.erased.items()},
            "ratio_to_floor": {
                str(k): v / max(self.floor_per_level[k], 1e-9) for k, v in self.samples.items()
            },
            "n_per_set": list(self.n_per_set),
        }


def real_halves(n: int, patient_keys: np.ndarray | list[str] | None, seed: int) -> np.ndarray:
    """Boolean mask of half A of the real slices: whole patients where keys are known."""
    rng = np.random.default_rng(seed)
    if patient_keys is not None and len(set(np.asarray(patient_keys).tolist())) >= 2:
        keys = np.asarray(patient_keys)
        patients = np.unique(keys)
        rng.shuffle(patients)
        return np.isin(keys, patients[: len(patients) // 2])
    first = np.zeros(n, bool)
    first[rng.permutation(n)[: n // 2]] = True
    return first


def swd_levels_against_floor(
    samples: np.ndarray,
    real: np.ndarray,
    patient_keys: np.ndarray | list[str] | None = None,
    *,
    seed: int = 0,
    cancel: threading.Event | None = None,
    **kw: object,
) -> SWDLevels | None:
    """Per-level SWD of samples, real half A and structure-erased half A, each against half B.

    Returns None when the real slices cannot be split into two non-empty halves.
    """
    from medgan.metrics.references import erase_structure

    real = _stack(real)
    first = real_halves(len(real), patient_keys, seed)
    if first.sum() < 1 or (~first).sum() < 1:
        return None
    half_a, half_b = real[first], real[~first]
    rng = np.random.default_rng([seed, 0x5A])
    samples = _stack(samples)
    pick = samples[np.sort(rng.permutation(len(samples))[: len(half_a)])]

    def levels(a: np.ndarray) -> dict[int, float]:
        return sliced_wasserstein(a, half_b, seed=seed, cancel=cancel, **kw).per_level  # type: ignore[arg-type]

    return SWDLevels(
        samples=levels(pick),
        floor_per_level=levels(half_a),
        erased=levels(erase_structure(half_a)),
        n_per_set=(int(len(half_a)), int(len(half_b))),
    )


def laplacian_pyramid(x: torch.Tensor, min_resolution: int = MIN_RESOLUTION) -> list[torch.Tensor]:
    """Levels of (B, 1, H, W) images: band-pass levels, then the coarsest Gaussian level."""
    levels = []
    g = x
    while min(g.shape[-2:]) > min_resolution and min(g.shape[-2:]) % 2 == 0:
        down = _blur(g)[..., ::2, ::2]
        up = g.new_zeros(g.shape)
        up[..., ::2, ::2] = down
        levels.append(g - 4.0 * _blur(up))
        g = down
    levels.append(g)
    return levels


def sliced_wasserstein(
    a: np.ndarray,
    b: np.ndarray,
    *,
    seed: int = 0,
    descriptors_per_image: int = 128,
    max_descriptors: int = 2**17,
    dir_repeats: int = 4,
    dirs_per_repeat: int = 128,
    batch: int = 256,
    device: str = "auto",
    cancel: threading.Event | None = None,
) -> SWDResult:
    """SWD between two image sets (N, H, W) and (M, H, W) of the same size, per pyramid level."""
    import torch

    a, b = _stack(a), _stack(b)
    if a.shape[1:] != b.shape[1:]:
        raise DataError(f"Cannot compare {a.shape[1:]} images with {b.shape[1:]} images.")
    if len(a) == 0 or len(b) == 0:
        raise DataError("SWD needs at least one image in each set.")
    if min(a.shape[1:]) < PATCH:
        raise DataError(f"Images must be at least {PATCH} pixels wide for SWD.")
    dev = resolve_device(device)
    per_image = max(1, min(descriptors_per_image, max_descriptors // max(len(a), len(b))))
    desc_a = _descriptors(a, per_image, seed, batch, dev, cancel)
    desc_b = _descriptors(b, per_image, seed, batch, dev, cancel)
    per_level: dict[int, float] = {}
    with torch.no_grad():
        for (res, da), (_, db) in zip(desc_a, desc_b, strict=True):
            gen = torch.Generator().manual_seed(seed * 7919 + res)
            total = 0.0
            for _ in range(dir_repeats):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("SWD cancelled.")
                dirs = torch.randn(da.shape[1], dirs_per_repeat, generator=gen)
                dirs = (dirs / dirs.norm(dim=0, keepdim=True)).to(dev)
                # (dirs, n) rows: sorting along the contiguous last axis is much faster
                pa = _sort_rows((da @ dirs).T.contiguous())
                pb = _sort_rows((db @ dirs).T.contiguous())
                pa, pb = _match_quantiles(pa, pb)
                total += float((pa - pb).abs().mean())
            per_level[res] = SCALE * total / dir_repeats
    swd = float(np.mean(list(per_level.values())))
    return SWDResult(swd, per_level)


def _descriptors(
    images: np.ndarray,
    per_image: int,
    seed: int,
    batch: int,
    dev: torch.device,
    cancel: threading.Event | None,
) -> list[tuple[int, torch.Tensor]]:
    """Per level: (resolution, normalised descriptors (N * per_image, 49))."""
    import torch

    gens: dict[int, torch.Generator] = {}
    chunks: dict[int, list[torch.Tensor]] = {}
    offs = torch.arange(PATCH)
    with torch.no_grad():
        for s in range(0, len(images), batch):
            if cancel is not None and cancel.is_set():
                raise Cancelled("SWD cancelled.")
            x = torch.from_numpy(images[s : s + batch]).to(dev)[:, None].float()
            for level in laplacian_pyramid(x):
                res = int(level.shape[-1])
                gen = gens.setdefault(res, torch.Generator().manual_seed(seed * 104729 + res))
                bsz, _, h, w = level.shape
                ys = torch.randint(0, h - PATCH + 1, (bsz, per_image), generator=gen)
                xs = torch.randint(0, w - PATCH + 1, (bsz, per_image), generator=gen)
                bi = torch.arange(bsz)[:, None, None, None]
                yi = (ys[:, :, None, None] + offs[None, None, :, None]).to(dev)
                xi = (xs[:, :, None, None] + offs[None, None, None, :]).to(dev)
                patches = level[:, 0][bi.to(dev), yi, xi]  # (B, P, 7, 7)
                chunks.setdefault(res, []).append(patches.reshape(-1, PATCH * PATCH))
    out = []
    for res in sorted(chunks, reverse=True):
        d = torch.cat(chunks[res])
        d = d - d.mean()
        d = d / (d.std() + 1e-8)  # one channel: per-channel normalisation of the set
        out.append((res, d))
    return out


def _sort_rows(x: torch.Tensor) -> torch.Tensor:
    """Sort each row; on the CPU numpy's vectorised sort is several times faster than torch's."""
    import torch

    if x.device.type == "cpu":
        return torch.from_numpy(np.sort(x.numpy(), axis=1))
    return torch.sort(x, dim=1).values


def _match_quantiles(pa: torch.Tensor, pb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted projections (dirs, n) of unequal length → the same number of evenly spaced quantiles."""
    import torch

    n = min(pa.shape[1], pb.shape[1])

    def pick(p: torch.Tensor) -> torch.Tensor:
        m = p.shape[1]
        if m == n:
            return p
        idx = ((torch.arange(n, device=p.device) + 0.5) * m / n).long().clamp_max(m - 1)
        return p[:, idx]

    return pick(pa), pick(pb)


def _blur(x: torch.Tensor) -> torch.Tensor:
    """Separable 5-tap binomial filter, reflect padding."""
    import torch
    import torch.nn.functional as F

    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=x.device, dtype=x.dtype) / 16.0
    c = x.shape[1]
    y = F.pad(x, (2, 2, 2, 2), mode="reflect")
    y = F.conv2d(y, k.view(1, 1, 1, 5).expand(c, 1, 1, 5), groups=c)
    return F.conv2d(y, k.view(1, 1, 5, 1).expand(c, 1, 5, 1), groups=c)


def _stack(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 3:
        raise DataError(f"Expected a stack of 2D images (N, H, W); got shape {arr.shape}.")
    return np.ascontiguousarray(np.nan_to_num(arr, nan=0.0, posinf=1.0, neginf=-1.0))
