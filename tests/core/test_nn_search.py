"""Chunked nearest-neighbour search: equals brute force, bounded memory, cancel, robust space."""

from __future__ import annotations

import math
import threading
from unittest import mock

import numpy as np
import pytest
import torch

from medgan.core.errors import Cancelled, DataError
from medgan.metrics.nn_search import (
    brute_force_nearest,
    features,
    nearest_neighbours,
    plan_chunks,
)


def _sets(n: int = 37, m: int = 53, size: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return (
        rng.uniform(-1, 1, (n, size, size)).astype(np.float32),
        rng.uniform(-1, 1, (m, size, size)).astype(np.float32),
    )


@pytest.mark.parametrize("space", ["pixel", "robust"])
@pytest.mark.parametrize("chunks", [(1, 1), (5, 7), (37, 53), (64, 3)])
def test_chunked_search_equals_brute_force(space: str, chunks: tuple[int, int]) -> None:
    q, r = _sets()
    got = nearest_neighbours(q, r, space=space, chunk_sizes=chunks, device="cpu")
    want = brute_force_nearest(q, r, space=space)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_allclose(got.distances, want.distances, rtol=1e-5, atol=1e-6)


def test_exclude_self_never_returns_the_query_itself() -> None:
    _, r = _sets()
    got = nearest_neighbours(r, r, exclude_self=True, chunk_sizes=(6, 11), device="cpu")
    want = brute_force_nearest(r, r, exclude_self=True)
    assert not np.any(got.indices == np.arange(len(r)))
    np.testing.assert_array_equal(got.indices, want.indices)
    assert np.all(got.distances > 0)


def test_groups_exclude_same_patient_neighbours() -> None:
    q, r = _sets(20, 30)
    qg = np.arange(20) % 3
    rg = np.arange(30) % 3
    got = nearest_neighbours(q, r, query_groups=qg, reference_groups=rg, chunk_sizes=(4, 7),
                             device="cpu")  # fmt: skip
    full = torch.cdist(torch.from_numpy(q.reshape(20, -1)).double(),
                       torch.from_numpy(r.reshape(30, -1)).double()).numpy()  # fmt: skip
    full[qg[:, None] == rg[None, :]] = np.inf
    np.testing.assert_array_equal(got.indices, full.argmin(1))
    assert np.all(rg[got.indices] != qg)


def test_a_query_with_no_allowed_reference_gets_minus_one() -> None:
    q, r = _sets(3, 4)
    got = nearest_neighbours(q, r, query_groups=np.zeros(3, int), reference_groups=np.zeros(4, int))
    assert list(got.indices) == [-1, -1, -1] and np.all(np.isinf(got.distances))


def test_distance_is_rms_per_pixel_and_exact_for_near_copies() -> None:
    _, r = _sets(size=64)
    q = r[:5] + 1e-4  # a constant offset of 1e-4 is an RMS distance of exactly 1e-4
    got = nearest_neighbours(q, r, device="cpu")
    assert list(got.indices) == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(got.distances, 1e-4, rtol=1e-2)


@pytest.mark.parametrize("budget_mib", [0.25, 1, 8])
def test_plan_respects_the_memory_budget_whatever_the_reference_size(budget_mib: float) -> None:
    budget = int(budget_mib * 1024**2)
    plans = [
        plan_chunks(1000, m, 128 * 128, memory_budget=budget, copies=copies)
        for m in (10**4, 10**6, 10**8)
        for copies in (True, False)
    ]
    for plan in plans:
        assert 0 < plan.workspace_bytes <= budget
    # the workspace does not grow with the reference set (bounded independently of N x M)
    assert len({p.workspace_bytes for p in plans[0::2]}) == 1
    assert len({p.workspace_bytes for p in plans[1::2]}) == 1


def test_distance_blocks_stay_within_the_budget() -> None:
    q, r = _sets(40, 90, size=16)
    budget = 4 * 1024  # forces many small blocks
    shapes: list[tuple[int, ...]] = []
    real_addmm = torch.addmm

    def spy(*args: object, **kwargs: object) -> torch.Tensor:
        out = real_addmm(*args, **kwargs)  # type: ignore[arg-type]
        shapes.append(tuple(out.shape))
        return out

    with mock.patch("torch.addmm", side_effect=spy):
        got = nearest_neighbours(q, r, memory_budget=budget, device="cpu")
    plan = plan_chunks(40, 90, 256, memory_budget=budget, copies=False)  # CPU: views
    assert len(shapes) == math.ceil(40 / plan.query_chunk) * math.ceil(90 / plan.reference_chunk)
    assert len(shapes) > 4
    assert max(a * b for a, b in shapes) * 4 * 2 <= budget
    np.testing.assert_array_equal(got.indices, brute_force_nearest(q, r).indices)


def test_progress_reaches_the_total_and_cancel_stops() -> None:
    q, r = _sets()
    seen: list[tuple[int, int]] = []
    nearest_neighbours(q, r, chunk_sizes=(10, 10), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (24, 24) and [d for d, _ in seen] == list(range(1, 25))
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        nearest_neighbours(q, r, chunk_sizes=(10, 10), cancel=stop)


def test_robust_space_ignores_brightness_contrast_and_noise() -> None:
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:64, 0:64] / 64.0
    base = np.stack([np.sin(6 * xx * (k + 1)) * np.cos(4 * yy + k) for k in range(20)])
    base = base.astype(np.float32) * 0.8
    altered = 0.5 * base[3] + 0.3 + rng.normal(0, 0.05, base[3].shape).astype(np.float32)
    pixel = nearest_neighbours(altered[None], base, space="pixel")
    robust = nearest_neighbours(altered[None], base, space="robust")
    assert robust.indices[0] == 3
    assert robust.distances[0] < 0.1  # sqrt(2 (1 - corr)): correlation > 0.995
    assert pixel.distances[0] > 5 * robust.distances[0]
    assert features(base, "robust").shape == (20, 32 * 32)


def test_bad_inputs_are_explained() -> None:
    q, r = _sets(size=12)
    with pytest.raises(DataError, match="Cannot compare"):
        nearest_neighbours(q, r[:, :8, :8])
    with pytest.raises(DataError, match="stack of 2D images"):
        nearest_neighbours(np.zeros((2, 3, 4, 5)), r)
    empty = nearest_neighbours(q[:0], r)
    assert empty.distances.shape == (0,) and empty.indices.shape == (0,)
