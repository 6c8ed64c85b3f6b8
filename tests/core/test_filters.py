"""Filters: memorization guard on by default, override recorded, thresholds, dedupe, top-k."""

from __future__ import annotations

import json

import numpy as np
import pytest

from medgan.curate.filters import REASON_CODES, Decisions, FilterConfig, apply_filters
from medgan.curate.score import ScoreTable
from medgan.metrics.memorization import MemorizationCalibration


def _table(**overrides: list) -> ScoreTable:
    """Eight slices; slice 1 memorized (pixel), slice 6 memorized (robust only)."""
    n = 8
    cols = {
        "index": np.arange(n),
        "realism": np.array([0.9, 0.8, 0.2, 0.7, 0.6, 0.95, 0.5, 0.4], np.float32),
        "memorized": np.array([0, 1, 0, 0, 0, 0, 1, 0], bool),
        "nn_pixel_distance": np.array([0.3, 0.01, 0.3, 0.3, 0.3, 0.3, 0.25, 0.3], np.float32),
        "nn_pixel_index": np.array([5, 42, 1, 2, 3, 4, 5, 6]),
        "nn_robust_distance": np.array([0.5, 0.1, 0.5, 0.5, 0.5, 0.5, 0.02, 0.5], np.float32),
        "nn_robust_index": np.array([5, 42, 1, 2, 3, 4, 17, 6]),
        "nn_synthetic_distance": np.array([0.3, 0.3, 0.3, 0.01, 0.01, 0.3, 0.3, 0.3], np.float32),
        "nn_synthetic_index": np.array([1, 0, 1, 4, 3, 0, 0, 0]),
        "duplicate_group": np.array([-1, -1, -1, 0, 0, -1, -1, -1]),
        "out_of_range_fraction": np.array([0, 0, 0, 0, 0, 0.2, 0, 0], np.float32),
        "foreground_fraction": np.array([0.3] * 7 + [0.0], np.float32),
        "empty": np.array([0, 0, 0, 0, 0, 0, 0, 1], bool),
    }
    cols.update({k: np.asarray(v) for k, v in overrides.items()})
    cal = MemorizationCalibration(
        quantile=0.05, duplicate_quantile=0.01, duplicate_factor=0.5, pixel_threshold=0.05,
        robust_threshold=0.05, duplicate_threshold=0.05, n_training=100, n_calibration=100,
        n_patients=5, cross_patient=True, seed=0,
        pixel_distances=np.linspace(0.05, 0.5, 100), robust_distances=np.linspace(0.05, 0.9, 100),
    )  # fmt: skip
    return ScoreTable(cols, cal, "discriminator")


def test_default_guard_rejects_memorized_slices_with_a_reason() -> None:
    d = apply_filters(_table())
    assert FilterConfig().allow_memorized is False
    assert not d.keep[1] and not d.keep[6]
    assert "training slice #42" in d.reasons[1] and "pixel distance 0.0100" in d.reasons[1]
    assert "robust distance 0.0200" in d.reasons[6] and "#17" in d.reasons[6]
    assert d.codes[1] == ("memorized",)
    assert d.override_used is False and not d.overridden.any()
    # defaults: out-of-range (5), empty (7), the less realistic duplicate (4) also go
    assert d.kept_indices.tolist() == [0, 2, 3]
    assert d.codes[5] == ("out_of_range",) and d.codes[7] == ("empty",)
    assert d.codes[4] == ("duplicate",) and "synthetic slice #3" in d.reasons[4]
    assert all(r == "" for r, k in zip(d.reasons, d.keep, strict=True) if k)


def test_override_keeps_memorized_slices_and_is_recorded() -> None:
    d = apply_filters(_table(), FilterConfig(allow_memorized=True))
    assert d.keep[1] and d.keep[6]
    assert d.override_used is True
    assert d.overridden.tolist() == [False, True, False, False, False, False, True, False]
    summary = d.to_dict()
    assert summary["memorization_guard"] == "overridden"
    assert summary["memorization_override_used"] is True and summary["n_memorized_kept"] == 2
    json.dumps(summary)
    # override asked for but nothing memorized kept → not "used"
    clean = _table(memorized=np.zeros(8, bool))
    assert apply_filters(clean, FilterConfig(allow_memorized=True)).override_used is False


def test_min_realism_and_top_k() -> None:
    d = apply_filters(_table(), FilterConfig(min_realism=0.65, drop_empty=False, dedupe=False))
    assert d.kept_indices.tolist() == [0, 3]  # 5 is out of range; 2, 4 below 0.65
    assert "discriminator realism 0.200 < minimum 0.650" in d.reasons[2]
    top = apply_filters(_table(), FilterConfig(keep_top_k=2, max_out_of_range=None))
    assert top.kept_indices.tolist() == [0, 5]  # the two most realistic survivors
    assert top.codes[3] == ("top_k",) and "rank 3" in top.reasons[3]
    assert apply_filters(_table(), FilterConfig(keep_top_k=0)).n_kept == 0


def test_dedupe_threshold_override_and_switch() -> None:
    table = _table()
    off = apply_filters(table, FilterConfig(dedupe=False))
    assert off.keep[3] and off.keep[4]
    wide = apply_filters(table, FilterConfig(dedupe_threshold=0.35, max_out_of_range=None))
    # every slice is within 0.35 of its nearest synthetic neighbour: groups {0,1,2,5,6,7}
    # and {3,4}; the most realistic survivor of each is kept
    assert wide.kept_indices.tolist() == [3, 5]
    assert wide.dedupe_threshold == 0.35 and wide.counts["duplicate"] == 3


def test_counts_records_and_config_round_trip() -> None:
    d = apply_filters(_table(), FilterConfig(min_realism=0.45))
    assert set(d.counts) == set(REASON_CODES)
    assert d.counts["memorized"] == 2 and d.counts["low_realism"] == 2  # slices 2 and 7
    rows = d.records()
    assert rows[7]["rejected_by"] == "empty;low_realism"
    assert rows[0] == {
        "keep": True,
        "reason": "",
        "rejected_by": "",
        "memorization_override": False,
    }
    cfg = FilterConfig(min_realism=0.3, keep_top_k=10, allow_memorized=True)
    assert FilterConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert isinstance(d, Decisions)


@pytest.mark.parametrize(
    "bad", [{"min_realism": 1.5}, {"keep_top_k": -1}, {"max_out_of_range": 2.0},
            {"dedupe_threshold": -0.1}],
)  # fmt: skip
def test_invalid_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError):
        FilterConfig(**bad)


def test_works_on_real_scores_end_to_end() -> None:
    from medgan.curate.score import score_samples
    from tests.core._score_data import phantom_set

    train, keys = phantom_set(10, 8, 32, seed=0)
    fresh, _ = phantom_set(3, 8, 32, seed=1)
    copies = train[:5] + 0.001
    scores = score_samples(np.concatenate([fresh, copies]), train, training_patient_keys=keys)
    d = apply_filters(scores)
    assert not d.keep[-5:].any()  # every copy is refused by the guard
    assert d.keep[:24].mean() > 0.5
