"""Classifier two-sample test, structure-erased reference, per-level SWD floors, verdict."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from medgan.core.errors import Cancelled, DataError
from medgan.metrics.c2st import C2STConfig, c2st_auc, roc_auc
from medgan.metrics.evaluation import structure_verdict
from medgan.metrics.references import erase_structure
from medgan.metrics.swd import swd_levels_against_floor
from tests.core._score_data import phantom_set

FAST = C2STConfig(seeds=(0, 1), steps=15, batch=16, width=8, folds=2, device="cpu")


@pytest.fixture(scope="module")
def real32() -> tuple[np.ndarray, np.ndarray]:
    return phantom_set(6, 8, 32, seed=0)


def test_roc_auc_is_the_mann_whitney_probability() -> None:
    rng = np.random.default_rng(0)
    pos, neg = rng.normal(1, 1, 30), rng.normal(0, 1, 40)
    brute = np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])
    assert roc_auc(pos, neg) == pytest.approx(brute)
    assert roc_auc(np.ones(3), np.ones(5)) == 0.5
    assert roc_auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0


def test_c2st_tells_inverted_slices_apart_with_an_interval_over_seeds(real32: tuple) -> None:
    real, keys = real32
    fake = -real[::-1].copy()  # bone black, air white: trivially different
    result = c2st_auc(real, fake, groups=keys, config=FAST)
    assert result.auc > 0.9 and len(result.per_seed) == 2
    assert 0.0 <= result.low <= result.auc <= result.high <= 1.0
    assert result.held_out_by_patient and sum(result.n_test) == len(real) + len(fake)
    one = C2STConfig(seeds=(1,), steps=15, batch=16, width=8, folds=2, device="cpu")
    assert c2st_auc(real, fake, groups=keys, config=one).per_seed == result.per_seed[1:]
    assert set(result.to_dict()) >= {"auc", "low", "high", "per_seed"}


def test_c2st_checks_inputs_and_cancels(real32: tuple) -> None:
    real, keys = real32
    with pytest.raises(DataError, match="at least 4"):
        c2st_auc(real[:2], real[:2], config=FAST)
    with pytest.raises(DataError):
        c2st_auc(real, real[:, :16, :16], config=FAST)
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        c2st_auc(real, real, groups=keys, config=FAST, cancel=stop)


def test_erase_structure_keeps_outline_and_mean_but_flattens_the_inside() -> None:
    yy, xx = np.mgrid[:32, :32]
    head = np.where((yy - 16) ** 2 + (xx - 16) ** 2 < 140, 0.0, -1.0).astype(np.float32)
    head[(yy - 16) ** 2 + (xx - 16) ** 2 > 110] = np.where(head > -1, 1.0, -1.0)[
        (yy - 16) ** 2 + (xx - 16) ** 2 > 110
    ]  # a skull rim at +1
    inner = (yy - 16) ** 2 + (xx - 16) ** 2 < 100
    head[inner & (np.abs(xx - 16) < 3)] = -0.6  # a "ventricle"
    erased = erase_structure(head[None])[0]
    assert np.array_equal(erased[np.abs(head) >= 0.98], head[np.abs(head) >= 0.98])
    assert erased[inner].std() < 0.7 * head[inner].std()
    assert abs(erased[inner].mean() - head[inner].mean()) < 0.05


def test_per_level_swd_has_floor_and_blob_reference_of_equal_sizes(real32: tuple) -> None:
    real, keys = real32
    levels = swd_levels_against_floor(real[::-1].copy(), real, keys, seed=0,
                                      descriptors_per_image=16, device="cpu")  # fmt: skip
    assert levels is not None
    assert list(levels.samples) == list(levels.floor_per_level) == list(levels.erased) == [32, 16]
    assert levels.n_per_set[0] + levels.n_per_set[1] == len(real)
    d = levels.to_dict()
    assert set(d["ratio_to_floor"]) == {"32", "16"}
    assert levels.floor > 0


def test_structure_verdict_needs_both_checks() -> None:
    class Levels:
        samples = {64: 30.0, 32: 10.0}
        floor_per_level = {64: 20.0, 32: 8.0}
        erased = {64: 50.0, 32: 12.0}

    good = {"auc": 0.6, "low": 0.5, "high": 0.7}
    blob = {"auc": 0.95, "low": 0.9, "high": 1.0}
    ok = structure_verdict(Levels(), good, blob)  # type: ignore[arg-type]
    assert ok["shows_structure"] and ok["reference_informative"] and ok["finest_level"] == 64
    bad = structure_verdict(Levels(), {"auc": 0.97, "low": 0.95, "high": 1.0}, blob)  # type: ignore[arg-type]
    assert not bad["shows_structure"] and bad["swd_ok"] and not bad["c2st_ok"]
