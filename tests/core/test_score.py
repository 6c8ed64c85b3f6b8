"""Per-slice scores: memorization guard, duplicates, intensity sanity, realism, serialisation."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.core.errors import Cancelled, DataError
from medgan.curate.score import (
    COLUMNS,
    ScoreTable,
    calibration_of,
    discriminator_realism,
    score_samples,
)
from tests.core._score_data import phantom_set


@pytest.fixture(scope="module")
def training() -> tuple[np.ndarray, np.ndarray]:
    return phantom_set(16, 12, 32, seed=0)


@pytest.fixture(scope="module")
def copy_scores(training: tuple) -> tuple[ScoreTable, np.ndarray]:
    """A "generator" that returns training slices plus tiny noise."""
    images, keys = training
    rng = np.random.default_rng(7)
    src = rng.choice(len(images), 60, replace=False)
    fake = images[src] + rng.normal(0, 0.01, (60, 32, 32)).astype(np.float32)
    return score_samples(fake, images, training_patient_keys=keys, device="cpu"), src


def test_a_copying_generator_is_flagged_memorized_for_every_sample(copy_scores: tuple) -> None:
    scores, src = copy_scores
    assert scores["memorized"].all()
    assert np.array_equal(scores["nn_pixel_index"], src)  # points at the copied training slice
    assert np.all(scores["nn_pixel_distance"] < 0.02)
    assert np.all(scores["memorization_risk"] >= 0.95)
    cal = scores.calibration
    assert cal.cross_patient and np.all(scores["nn_pixel_distance"] < cal.pixel_threshold)


def test_rescaled_copies_are_caught_in_the_robust_space(training: tuple) -> None:
    images, keys = training
    src = np.arange(0, len(images), 9)
    rng = np.random.default_rng(3)
    altered = 0.8 * images[src] + 0.1 + rng.normal(0, 0.02, images[src].shape)
    scores = score_samples(altered.astype(np.float32), images, training_patient_keys=keys)
    cal = scores.calibration
    assert np.all(scores["nn_pixel_distance"] > cal.pixel_threshold)  # pixel space misses them
    assert scores["memorized"].all()  # the robust space does not
    assert np.array_equal(scores["nn_robust_index"], src)


def test_shifted_copies_are_caught_at_128_pixels() -> None:
    images, keys = phantom_set(12, 8, 128, seed=0)
    src = np.arange(0, len(images), 7)
    shifted = np.clip(0.8 * np.roll(images[src], 1, axis=2) + 0.1, -1, 1).astype(np.float32)
    scores = score_samples(shifted, images, training_patient_keys=keys)
    assert scores["memorized"].all()
    # nearest robust neighbour: the source slice (or its neighbour) of the same patient
    assert np.array_equal(keys[scores["nn_robust_index"]], keys[src])
    assert np.all(np.abs(scores["nn_robust_index"] - src) <= 1)


def test_slices_of_new_patients_are_mostly_not_flagged(training: tuple) -> None:
    images, keys = training
    fresh, _ = phantom_set(6, 12, 32, seed=1)
    scores = score_samples(fresh, images, training_patient_keys=keys, device="cpu")
    assert scores["memorized"].mean() < 0.2
    assert np.median(scores["typicality"]) > 0.2  # they look like real slices
    assert scores.realism_source == "distance"
    np.testing.assert_array_equal(scores["realism"], scores["typicality"])


def test_near_duplicates_among_synthetic_slices_are_grouped(training: tuple) -> None:
    images, keys = training
    fresh, _ = phantom_set(4, 12, 32, seed=2)
    rng = np.random.default_rng(0)
    base = fresh[[0, 15, 30, 45]]
    triples = np.concatenate([base + rng.normal(0, 0.005, base.shape) for _ in range(3)])
    triples = triples.astype(np.float32)
    scores = score_samples(triples, images, training_patient_keys=keys, device="cpu")
    groups = scores["duplicate_group"]
    assert np.all(groups >= 0)
    for k in range(4):  # copies k, k+4, k+8 share one group, distinct from the others
        assert groups[k] == groups[k + 4] == groups[k + 8]
    assert len(set(groups.tolist())) == 4
    assert np.all(scores["nn_synthetic_index"] % 4 == np.arange(12) % 4)


def test_intensity_sanity_flags_out_of_range_and_empty_slices(training: tuple) -> None:
    images, keys = training
    sample = images[:4].copy() * 0.9
    sample[1, :8] = 1.5  # 25 % out of range
    sample[2] = -1.0  # empty
    sample[3, 0, :4] = np.nan
    scores = score_samples(sample, images, training_patient_keys=keys, device="cpu")
    oor = scores["out_of_range_fraction"]
    assert oor[0] == 0.0 and oor[1] == pytest.approx(0.25) and oor[3] == pytest.approx(4 / 1024)
    assert list(scores["empty"]) == [False, False, True, False]
    assert scores["foreground_fraction"][2] == 0.0


def test_realism_from_a_function_and_from_a_discriminator_module(training: tuple) -> None:
    images, keys = training
    sample = images[:10]
    scores = score_samples(sample, images, training_patient_keys=keys,
                           realism_fn=lambda x: x.mean(axis=(1, 2)) * 4)  # fmt: skip
    want = 1 / (1 + np.exp(-sample.mean(axis=(1, 2)) * 4))
    np.testing.assert_allclose(scores["realism"], want, rtol=1e-5)
    assert scores.realism_source == "function"

    class Mean(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x.mean(dim=(1, 2, 3)) * 4

    from_module = score_samples(sample, images, training_patient_keys=keys,
                                discriminator=Mean(), calibration=scores.calibration)  # fmt: skip
    np.testing.assert_allclose(from_module["realism"], want, rtol=1e-5)
    assert from_module.realism_source == "discriminator"
    np.testing.assert_allclose(from_module["d_logit"], sample.mean(axis=(1, 2)) * 4, rtol=1e-5)


def test_realism_from_a_model_file_uses_its_final_discriminator(tmp_path: Path) -> None:
    from medgan.models import build_models
    from medgan.models.modelfile import ModelMetadata, save_model

    torch.manual_seed(0)
    g, d = build_models("dcgan", 32, z_dim=16)
    path = save_model(tmp_path / "m.safetensors",
                      {"generator": g.state_dict(), "discriminator": d.state_dict()},
                      ModelMetadata(recipe="dcgan", resolution=32, z_dim=16))  # fmt: skip
    images, _ = phantom_set(2, 4, 32, seed=0)
    fn = discriminator_realism(str(path), device="cpu")
    d.eval()
    with torch.no_grad():
        want = d(torch.from_numpy(images)[:, None]).reshape(-1).numpy()
    np.testing.assert_allclose(fn(images), want, rtol=1e-4, atol=1e-5)


def test_table_serialises_to_records_and_json(copy_scores: tuple, tmp_path: Path) -> None:
    scores, _ = copy_scores
    records = scores.to_records()
    assert len(records) == len(scores) == 60
    assert list(records[0]) == list(COLUMNS)
    assert records[0]["d_logit"] is None  # NaN → null
    assert isinstance(records[0]["memorized"], bool)
    out = tmp_path / "scores.json"
    data = json.loads(scores.to_json(str(out)))
    assert json.loads(out.read_text()) == data
    assert data["calibration"]["memorization"]["pixel_threshold"] > 0
    assert calibration_of(scores)["memorization"]["cross_patient"] is True
    sub = scores.subset(scores["index"] % 2 == 0)
    assert len(sub) == 30 and list(sub["index"][:3]) == [0, 2, 4]
    assert sub.memorized.all()  # attribute access to columns


def test_progress_cancel_and_bad_input(training: tuple) -> None:
    images, keys = training
    seen: list[tuple[int, int]] = []
    score_samples(
        images[:8], images, training_patient_keys=keys, progress=lambda d, t: seen.append((d, t))
    )
    assert seen[-1] == (1000, 1000)
    assert all(b[0] >= a[0] for a, b in zip(seen, seen[1:], strict=False))
    stop = threading.Event()
    stop.set()
    with pytest.raises(Cancelled):
        score_samples(images[:8], images, training_patient_keys=keys, cancel=stop)
    with pytest.raises(DataError, match="resolution"):
        score_samples(images[:4, :16, :16], images)
