"""Chunked nearest-neighbour search between image sets, with memory bounded independently of N x M.

The query and reference sets are cut into blocks sized from a memory budget; each block's
squared distances come from one matrix product (``|q|^2 + |r|^2 - 2 q.r``) and only a running
minimum and argmin per query row are kept. The winning pair's distance is then recomputed
exactly, so near-copies get an accurate (not cancellation-rounded) distance. Runs on the GPU
when there is one.

Two feature spaces are offered:

- ``"pixel"``: the raw slice, distances as RMS difference per pixel (units of the [-1, 1] scale,
  so thresholds do not depend on the resolution);
- ``"robust"``: area-downsampled (by 2 or more) to at most 32 x 32 and blurred, then standardised per image
  (zero mean, unit variance). Distances there are ``sqrt(2 (1 - correlation))``: insensitive to
  noise, a one-pixel shift, and brightness or contrast changes, so a lightly altered copy of a
  training slice is still close.

Example::

    result = nearest_neighbours(synthetic, training, space="robust")
    result.distances, result.indices
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from medgan.core.device import resolve_device
from medgan.core.errors import Cancelled, DataError

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

Space = Literal["pixel", "robust"]
ProgressFn = Callable[[int, int], None]

#: Default memory budget for the working buffers of one search (distance block + chunk copies)
#: on the CPU; on a GPU bigger blocks run faster and device memory is plentiful.
DEFAULT_MEMORY_BUDGET = 64 * 1024**2
GPU_MEMORY_BUDGET = 1024**3
ROBUST_SIZE = 32  # side of the robust-space image
_EPS = 1e-6


@dataclass(frozen=True)
class NNResult:
    """Nearest reference item for every query item."""

    distances: np.ndarray  # float32 (N,), inf where no allowed reference exists
    indices: np.ndarray  # int64 (N,), -1 where no allowed reference exists
    space: str


@dataclass(frozen=True)
class ChunkPlan:
    """Block sizes of a search; ``workspace_bytes`` is what the blocks need at most."""

    query_chunk: int
    reference_chunk: int
    workspace_bytes: int


def plan_chunks(
    n_query: int,
    n_reference: int,
    dim: int,
    *,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    copies: bool = True,
) -> ChunkPlan:
    """Choose block sizes so that the working buffers stay within ``memory_budget`` bytes.

    Per block we hold the ``q x r`` float32 distance block plus a temporary of the same size,
    and, when ``copies`` (the inputs are copied to a GPU), the query and reference chunks
    (``dim`` float32 per row). On the CPU the chunks are views of the inputs and cost nothing.
    """
    if n_query <= 0 or n_reference <= 0:
        return ChunkPlan(max(n_query, 1), max(n_reference, 1), 0)
    row = 4 * dim if copies else 0

    def ref_rows(q: int) -> int:
        left = memory_budget - q * row
        return int(left // (row + 2 * 4 * q + 4)) if left > 0 else 0

    q = min(n_query, 1024)
    while q > 1 and ref_rows(q) < min(n_reference, 256):
        q //= 2
    r = max(1, min(n_reference, ref_rows(q)))
    workspace = q * row + r * row + 2 * 4 * q * r + 4 * r
    return ChunkPlan(q, r, int(workspace))


def features(
    images: np.ndarray, space: Space, *, device: str | torch.device = "cpu", batch: int = 512
) -> np.ndarray:
    """Flattened float32 features (N, D) of ``images`` (N, H, W) in the given space."""
    images = _as_stack(images)
    if space == "pixel":
        return images.reshape(len(images), int(np.prod(images.shape[1:])))
    if space != "robust":
        raise ValueError(f"unknown space {space!r}; use 'pixel' or 'robust'")
    import torch

    dev = resolve_device(device)
    out: list[np.ndarray] = []
    with torch.no_grad():
        for start in range(0, len(images), batch):
            x = torch.from_numpy(images[start : start + batch]).to(dev)
            out.append(_robust_features(x).cpu().numpy())
    side = _robust_side(images.shape[1], images.shape[2])
    return np.concatenate(out) if out else np.zeros((0, side * side), np.float32)


def nearest_neighbours(
    query: np.ndarray,
    reference: np.ndarray,
    *,
    space: Space = "pixel",
    query_groups: np.ndarray | None = None,
    reference_groups: np.ndarray | None = None,
    exclude_self: bool = False,
    device: str | torch.device = "auto",
    memory_budget: int | None = None,
    chunk_sizes: tuple[int, int] | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> NNResult:
    """For each query image, the nearest reference image and its distance.

    Args:
        query: (N, H, W) images (or (N, D) features when ``space="pixel"``).
        reference: (M, H, W) images of the same size.
        space: ``"pixel"`` or ``"robust"`` (see the module docstring).
        query_groups, reference_groups: integer group codes (e.g. patients); a reference in
            the same group as the query is never its neighbour (cross-patient search).
        exclude_self: query and reference are the same set; item i is not its own neighbour.
        device: ``"auto"``, ``"cpu"``, ``"cuda"``...
        memory_budget: bytes allowed for working buffers (not counting the inputs); ``None``:
            64 MiB on the CPU, 1 GiB on a GPU.
        chunk_sizes: explicit (query_chunk, reference_chunk), overriding the budget.
        progress: ``progress(done_blocks, total_blocks)``.
        cancel: set it to stop; raises :class:`medgan.core.errors.Cancelled`.
    """
    import torch

    q_img, r_img = _as_stack(query), _as_stack(reference)
    if q_img.shape[1:] != r_img.shape[1:]:
        raise DataError(
            f"Cannot compare images of size {q_img.shape[1:]} with {r_img.shape[1:]}.",
            advice="Use training slices at the model's resolution.",
        )
    if exclude_self and len(q_img) != len(r_img):
        raise ValueError("exclude_self needs query and reference to be the same set")
    if (query_groups is None) != (reference_groups is None):
        raise ValueError("give both query_groups and reference_groups, or neither")
    dev = resolve_device(device)
    q_feat = features(q_img, space, device=dev)
    r_feat = features(r_img, space, device=dev)
    n, m, dim = len(q_feat), len(r_feat), q_feat.shape[1] if q_feat.ndim == 2 else 0
    best_d = np.full(n, np.inf, np.float32)
    best_i = np.full(n, -1, np.int64)
    if n == 0 or m == 0:
        return NNResult(best_d, best_i, space)

    if memory_budget is None:
        memory_budget = GPU_MEMORY_BUDGET if dev.type == "cuda" else DEFAULT_MEMORY_BUDGET
    if chunk_sizes is not None:
        qc, rc = max(1, int(chunk_sizes[0])), max(1, int(chunk_sizes[1]))
    else:
        plan = plan_chunks(n, m, dim, memory_budget=memory_budget, copies=dev.type != "cpu")
        qc, rc = plan.query_chunk, plan.reference_chunk
    n_q_blocks, n_r_blocks = math.ceil(n / qc), math.ceil(m / rc)
    total = n_q_blocks * n_r_blocks
    log.debug("NN search %dx%d (dim %d, %s) on %s in %dx%d blocks", n, m, dim, space, dev, qc, rc)

    qg = torch.from_numpy(np.asarray(query_groups, np.int64)) if query_groups is not None else None
    rg = (
        torch.from_numpy(np.asarray(reference_groups, np.int64))
        if reference_groups is not None
        else None
    )
    done = 0
    with torch.no_grad():
        for qs in range(0, n, qc):
            qe = min(n, qs + qc)
            qb = torch.from_numpy(np.ascontiguousarray(q_feat[qs:qe])).to(dev)
            q_norm = torch.linalg.vector_norm(qb, dim=1, keepdim=True).square()
            run_d = torch.full((qe - qs,), math.inf, device=dev)
            run_i = torch.full((qe - qs,), -1, dtype=torch.int64, device=dev)
            for rs in range(0, m, rc):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("Nearest-neighbour search cancelled.")
                re_ = min(m, rs + rc)
                rb = torch.from_numpy(np.ascontiguousarray(r_feat[rs:re_])).to(dev)
                r_norm = torch.linalg.vector_norm(rb, dim=1).square()  # no (r, dim) temporary
                d2 = torch.addmm(q_norm + r_norm[None, :], qb, rb.T, alpha=-2.0)
                _mask_block(d2, qs, rs, exclude_self, qg, rg, dev)
                blk_d, blk_i = d2.min(dim=1)
                better = blk_d < run_d
                run_d = torch.where(better, blk_d, run_d)
                run_i = torch.where(better, blk_i + rs, run_i)
                del d2
                done += 1
                if progress is not None:
                    progress(done, total)
            best_d[qs:qe] = run_d.cpu().numpy()
            best_i[qs:qe] = run_i.cpu().numpy()

    found = np.isfinite(best_d)
    best_i[~found] = -1
    exact = _exact_distances(q_feat, r_feat, best_i)
    best_d = np.where(found, exact, np.inf).astype(np.float32)
    return NNResult(best_d, best_i, space)


def brute_force_nearest(
    query: np.ndarray, reference: np.ndarray, *, space: Space = "pixel", exclude_self: bool = False
) -> NNResult:
    """Reference implementation: the whole N x M distance matrix at once (for tests, benchmarks)."""
    import torch

    q = torch.from_numpy(np.ascontiguousarray(features(query, space), dtype=np.float32))
    r = torch.from_numpy(np.ascontiguousarray(features(reference, space), dtype=np.float32))
    d = torch.cdist(q.double(), r.double())
    if exclude_self:
        d.fill_diagonal_(math.inf)
    dist, idx = d.min(dim=1)
    scale = math.sqrt(q.shape[1])
    return NNResult((dist / scale).float().numpy(), idx.numpy().astype(np.int64), space)


# --------------------------------------------------------------------------------------------
def _as_stack(images: np.ndarray) -> np.ndarray:
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 4 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim == 2:  # already (N, D) features / flattened images
        return np.ascontiguousarray(arr[:, :, None])
    if arr.ndim != 3:
        raise DataError(f"Expected a stack of 2D images (N, H, W); got shape {arr.shape}.")
    return np.ascontiguousarray(arr)


def _robust_side(h: int, w: int) -> int:
    """At least a factor 2 of downsampling (so a one-pixel shift barely matters), at most 32 px."""
    return max(1, min(ROBUST_SIZE, h // 2, w // 2))


def _robust_features(x: torch.Tensor) -> torch.Tensor:
    """Area-downsample to <= 32 x 32, blur lightly, standardise per image; flattened (B, D).

    The area average is the anti-aliasing filter; the [1, 2, 1] blur at low resolution then
    spreads each value over its neighbours, so a shift of a pixel or two changes little.
    """
    import torch.nn.functional as F

    b, h, w = x.shape
    side = _robust_side(h, w)
    y = F.adaptive_avg_pool2d(x[:, None].float(), (side, side))
    if side >= 4:  # separable [1, 2, 1] / 4 by shifted sums (faster than a 1-channel conv)
        y = F.pad(y, (1, 1, 1, 1), mode="replicate")
        y = 0.25 * y[..., :-2] + 0.5 * y[..., 1:-1] + 0.25 * y[..., 2:]
        y = 0.25 * y[..., :-2, :] + 0.5 * y[..., 1:-1, :] + 0.25 * y[..., 2:, :]
    y = y.reshape(b, -1)
    y = y - y.mean(1, keepdim=True)
    std = y.pow(2).mean(1, keepdim=True).sqrt()
    return y / (std + _EPS)


def _mask_block(
    d2: torch.Tensor,
    qs: int,
    rs: int,
    exclude_self: bool,
    qg: torch.Tensor | None,
    rg: torch.Tensor | None,
    dev: torch.device,
) -> None:
    import torch

    nq, nr = d2.shape
    if exclude_self:
        lo, hi = max(qs, rs), min(qs + nq, rs + nr)
        if lo < hi:
            rows = torch.arange(lo - qs, hi - qs, device=dev)
            d2[rows, rows + qs - rs] = math.inf
    if qg is not None and rg is not None:
        same = qg[qs : qs + nq].to(dev)[:, None] == rg[rs : rs + nr].to(dev)[None, :]
        d2.masked_fill_(same, math.inf)


def _exact_distances(q_feat: np.ndarray, r_feat: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """RMS (pixel) or plain (robust, already standardised) distance of each query to its match."""
    out = np.full(len(q_feat), np.inf, np.float32)
    dim = q_feat.shape[1]
    step = 32
    for s in range(0, len(q_feat), step):
        sel = idx[s : s + step]
        ok = sel >= 0
        diff = q_feat[s : s + step][ok].astype(np.float64) - r_feat[sel[ok]].astype(np.float64)
        block = np.sqrt((diff * diff).sum(1) / dim)
        chunk = out[s : s + step]
        chunk[ok] = block
    return out
