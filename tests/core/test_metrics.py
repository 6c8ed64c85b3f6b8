"""Evaluation metrics: SWD on Laplacian pyramids, SSIM diversity, histogram distance, memorization."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from medgan.core.errors import Cancelled, DataError
from medgan.metrics.evaluation import EvaluationConfig, evaluate_sets
from medgan.metrics.histogram import histogram_distance
from medgan.metrics.memorization import calibrate_memorization, memorization_rate
from medgan.metrics.ssim import diversity, ms_ssim, ms_ssim_scales, ssim
from medgan.metrics.swd import _blur, laplacian_pyramid, sliced_wasserstein
from tests.core._score_data import phantom_set


@pytest.fixture(scope="module")
def real64() -> tuple[np.ndarray, np.ndarray]:
    return phantom_set(6, 8, 64, seed=0)


def _noisy(a: np.ndarray, sigma: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(a + rng.normal(0, sigma, a.shape), -1, 1).astype(np.float32)


def test_laplacian_pyramid_levels_reconstruct_the_image() -> None:
    x = torch.rand(2, 1, 64, 64) * 2 - 1
    levels = laplacian_pyramid(x)
    assert [lv.shape[-1] for lv in levels] == [64, 32, 16]
    rec = levels[-1]
    for band in reversed(levels[:-1]):
        up = rec.new_zeros(band.shape)
        up[..., ::2, ::2] = rec
        rec = band + 4.0 * _blur(up)
    torch.testing.assert_close(rec, x, atol=1e-5, rtol=0)


def test_swd_is_zero_for_identical_sets_and_grows_with_a_shift(real64: tuple) -> None:
    a, _ = real64
    same = sliced_wasserstein(a, a.copy(), seed=3, descriptors_per_image=32)
    assert same.swd == 0.0 and list(same.per_level) == [64, 32, 16]
    values = [
        sliced_wasserstein(a, _noisy(a, s), seed=3, descriptors_per_image=32).swd
        for s in (0.02, 0.1, 0.4)
    ]
    assert 0 < values[0] < values[1] < values[2]
    blurred = _blur(torch.from_numpy(a)[:, None])[:, 0].numpy()
    fine = sliced_wasserstein(a, blurred, seed=3, descriptors_per_image=32).per_level
    assert fine[64] > fine[16]  # blurring changes the finest band most


def test_swd_is_deterministic_for_a_seed(real64: tuple) -> None:
    a, _ = real64
    b = _noisy(a, 0.1)
    first = sliced_wasserstein(a, b, seed=5, descriptors_per_image=32)
    assert sliced_wasserstein(a, b, seed=5, descriptors_per_image=32) == first
    other = sliced_wasserstein(a, b, seed=6, descriptors_per_image=32).swd
    assert other != first.swd and abs(other - first.swd) < 0.2 * first.swd


def test_swd_handles_sets_of_different_sizes(real64: tuple) -> None:
    a, _ = real64
    r = sliced_wasserstein(a, a[:10], seed=0, descriptors_per_image=32)
    shifted = sliced_wasserstein(a, _noisy(a, 0.4)[:10], seed=0, descriptors_per_image=32)
    assert np.isfinite(r.swd) and r.swd < shifted.swd
    with pytest.raises(DataError):
        sliced_wasserstein(a, a[:, :32, :32])


def test_ssim_and_ms_ssim_basics() -> None:
    x = torch.rand(3, 1, 64, 64) * 2 - 1
    torch.testing.assert_close(ssim(x, x), torch.ones(3))
    torch.testing.assert_close(ms_ssim(x, x), torch.ones(3))
    y = torch.rand(3, 1, 64, 64) * 2 - 1  # independent noise: no shared structure
    assert abs(float(ssim(x, y).mean())) < 0.05
    assert (ms_ssim_scales(32), ms_ssim_scales(64), ms_ssim_scales(128), ms_ssim_scales(256)) == (
        2, 3, 4, 5,
    )  # fmt: skip
    assert ms_ssim_scales(8) == 0


def test_diversity_is_lower_for_a_collapsed_set(real64: tuple) -> None:
    a, _ = real64
    collapsed = _noisy(np.repeat(a[:2], 32, axis=0), 0.01, seed=1)
    varied = diversity(a, n_pairs=96, seed=0, device="cpu")
    mode = diversity(collapsed, n_pairs=96, seed=0, device="cpu")
    assert mode.ssim > varied.ssim + 0.1
    assert mode.ms_ssim is not None and varied.ms_ssim is not None
    assert mode.ms_ssim > varied.ms_ssim + 0.1
    assert varied.ms_ssim_scales == 3  # 64 px: 3 scales fit the 11 px window
    assert diversity(a, n_pairs=96, seed=0) == varied
    with pytest.raises(DataError):
        diversity(a[:1])


def test_histogram_distance_measures_intensity_shifts(real64: tuple) -> None:
    a, _ = real64
    assert histogram_distance(a, a.copy()) == 0.0
    half = (a * 0.5).astype(np.float32)
    assert histogram_distance(half, half + 0.1) == pytest.approx(0.1, abs=0.005)
    assert histogram_distance(half, half + 0.3) == pytest.approx(0.3, abs=0.005)
    assert histogram_distance(half, half + 0.1) == pytest.approx(
        histogram_distance(half + 0.1, half)
    )


def test_memorization_rate_separates_copies_from_new_patients() -> None:
    train, keys = phantom_set(16, 12, 32, seed=0)
    fresh, _ = phantom_set(6, 12, 32, seed=1)
    rng = np.random.default_rng(2)
    copies = _noisy(train[rng.choice(len(train), 40)], 0.01, seed=3)
    rate_copy, cal = memorization_rate(copies, train, keys, seed=0)
    rate_fresh, _ = memorization_rate(fresh, train, keys, calibration=cal)
    assert rate_copy == 1.0
    assert rate_fresh < 0.2
    assert cal.cross_patient and cal.n_patients == 16


def test_calibration_without_patient_keys_uses_the_nearest_other_slice(caplog) -> None:
    train, keys = phantom_set(6, 8, 32, seed=0)
    with caplog.at_level("WARNING"):
        cal = calibrate_memorization(train, None, seed=0)
    assert not cal.cross_patient and "No patient keys" in caplog.text
    across = calibrate_memorization(train, keys, seed=0)
    # adjacent slices of one patient are closer than slices of two patients
    assert cal.pixel_threshold < across.pixel_threshold
    assert json.dumps(across.to_dict())


def test_evaluate_sets_report_is_complete_and_deterministic(real64: tuple) -> None:
    a, keys = real64
    b = _noisy(a[::2], 0.05, seed=4)
    cfg = EvaluationConfig(seed=1, n_pairs=64, descriptors_per_image=32, device="cpu",
                           c2st_seeds=(0,), c2st_steps=10)  # fmt: skip
    stages: list[str] = []
    report = evaluate_sets(b, a, patient_keys=keys, config=cfg,
                           progress=lambda s, d, t: stages.append(s))  # fmt: skip
    for key in ("swd", "swd_per_level", "diversity_ssim", "real_diversity_ssim", "ms_ssim",
                "real_ms_ssim", "histogram_distance", "memorization_rate", "n_synthetic"):  # fmt: skip
        assert key in report
    assert stages == ["swd", "diversity", "histogram", "memorization", "classifier", "done"]
    assert set(report["swd_levels"]["real_floor"]) == {"64", "32", "16"}
    assert "c2st" not in report and "64" in report["c2st_skipped"]  # too few slices
    assert isinstance(report["structure"]["shows_structure"], bool)
    big = evaluate_sets(np.concatenate([b] * 3), np.concatenate([a] * 2),
                        patient_keys=np.concatenate([keys] * 2), config=cfg)  # fmt: skip
    assert 0.0 <= big["c2st"]["auc"] <= 1.0 and "auc" in big["c2st_erased_reference"]
    assert "c2st_ok" in big["structure"]
    assert report["n_synthetic"] == 24 and report["n_real"] == 48
    assert 0 < report["swd"] and 0.0 <= report["memorization_rate"] <= 1.0
    assert report["real_swd"] is not None and report["real_swd"] > 0
    json.dumps(report, allow_nan=False)
    again = evaluate_sets(b, a, patient_keys=keys, config=cfg)
    for key in ("swd", "diversity_ssim", "ms_ssim", "histogram_distance", "memorization_rate",
                "swd_levels"):  # fmt: skip
        assert again[key] == report[key]
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        evaluate_sets(b, a, patient_keys=keys, config=cfg, cancel=stop)
