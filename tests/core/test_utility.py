"""The "Does it help?" protocol: no leakage, controls that can fail, the verdict from the
interval, determinism, resume, and clear refusals before anything trains."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from medgan.core.errors import Cancelled, DataError
from medgan.utility import stats
from medgan.utility.records import CLASSIC, RunKey, RunResult, UtilityConfig
from medgan.utility.sources import ArraySource
from medgan.utility.splits import patient_folds
from medgan.workflows.utility import UtilityRequest, run_utility
from tests.core._utility_data import good_synthetic, separable_data

MARKER = 0.987654


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def tiny(**kw) -> UtilityConfig:
    base = dict(seeds=1, folds=3, steps=8, batch_size=8, fractions=(1.0,), bootstrap=200,
                device="cpu", controls=False)  # fmt: skip
    base.update(kw)
    return UtilityConfig(**base)


def test_folds_are_by_patient_and_every_class_is_in_every_fold():
    data = separable_data(n_patients=9)
    folds = patient_folds(data.keys, data.labels, data.class_names, 3, seed=0)
    assert len(folds) == 3
    tested = [p for f in folds for p in f.test]
    assert sorted(tested) == sorted(set(data.keys.tolist()))  # each patient tested once
    for f in folds:
        assert not set(f.train) & set(f.test)
        for side in (f.train, f.test):
            labels = data.labels[np.isin(data.keys, side)]
            assert set(labels.tolist()) == {0, 1}


def test_a_test_patients_marker_slice_never_reaches_a_training_batch():
    data = separable_data(n_patients=6, per_class=3)
    marked = "p03"
    where = np.flatnonzero(data.keys == marked)[0]
    data.images[where] = MARKER
    folds = patient_folds(data.keys, data.labels, data.class_names, 3, seed=0)
    test_fold = next(f.index for f in folds if marked in f.test)
    seen: dict[int, int] = {}
    drawn_leaks: list[int] = []

    def on_batch(key: RunKey, images: np.ndarray) -> None:
        hits = int(np.all(np.isclose(images, MARKER), axis=(1, 2)).sum())
        seen[key.fold] = seen.get(key.fold, 0) + hits

    def on_draw(request) -> None:
        if request.fold == test_fold:
            drawn_leaks.append(int(np.isclose(request.train.images, MARKER).all(axis=(1, 2)).sum()))
            assert marked not in request.train_patients

    cfg = tiny(steps=10, batch_size=16, fractions=(1.0,))
    run_utility(UtilityRequest(cfg, data=data, synthetic=good_synthetic()),
                on_batch=on_batch, on_draw=on_draw)  # fmt: skip
    assert seen[test_fold] == 0
    assert sum(v for k, v in seen.items() if k != test_fold) > 0  # the probe does see it
    assert drawn_leaks and sum(drawn_leaks) == 0


def _mean(result, arm: str, metric: str = "auc") -> float:
    return result.summary[f"{result.config.fractions[0]:g}"][arm][metric]["mean"]


def test_shuffled_labels_drop_auc_and_extra_real_patients_raise_it():
    # Faint blobs and few real patients: there is room to gain and to lose.
    data = separable_data(n_patients=12, per_class=4, seed=3)
    data.images[:] = np.clip(data.images + np.random.default_rng(0).normal(0, 0.35, data.images.shape), -1, 1)
    cfg = tiny(seeds=1, steps=30, batch_size=16, fractions=(0.25,), controls=True, ratios=(4.0,))
    result = run_utility(UtilityRequest(cfg, data=data, synthetic=good_synthetic(80)))
    classic = _mean(result, CLASSIC)
    shuffled = _mean(result, "shuffled@4")
    extra = _mean(result, "extra_real")
    assert shuffled < classic - 0.1 and abs(shuffled - 0.5) < abs(classic - 0.5)
    assert extra >= classic
    assert result.controls["shuffled"]["ok"]


def test_verdict_follows_the_interval():
    assert stats.verdict(0.01, 0.2) == "helps"
    assert stats.verdict(-0.3, -0.02) == "hurts"
    assert stats.verdict(-0.1, 0.1) == "no measurable effect"

    def runs(delta: float) -> list[RunResult]:
        out = []
        for fold in range(3):
            for seed in range(3):
                base = 0.7 + 0.01 * fold + 0.005 * seed
                out.append(RunResult(RunKey(1.0, fold, seed, CLASSIC), {"auc": base}, 10, 0, 1))
                v = base + delta + 0.002 * (seed - 1)
                out.append(RunResult(RunKey(1.0, fold, seed, "synthetic@1"), {"auc": v}, 10, 10, 1))
        return out

    for delta, expected in ((0.05, "helps"), (-0.05, "hurts"), (0.0, "no measurable effect")):
        (c,) = stats.compare(runs(delta), ["auc"], n_boot=500)
        assert c.verdict == expected, (delta, c)
        assert c.ci_low <= c.mean_diff <= c.ci_high


def test_same_seed_same_numbers_on_cpu():
    data = separable_data(n_patients=6, per_class=3)
    cfg = tiny(steps=6)

    def once():
        r = run_utility(UtilityRequest(cfg, data=data, synthetic=good_synthetic()))
        return [(x.key, x.metrics) for x in r.runs]

    assert once() == once()


def test_result_json_is_plain_and_carries_no_patient_key():
    data = separable_data(n_patients=6, per_class=3)
    result = run_utility(UtilityRequest(tiny(controls=True, fractions=(0.5,)), data=data,
                                        synthetic=good_synthetic()))  # fmt: skip
    doc = result.to_dict()
    text = json.dumps(doc, allow_nan=False)
    for key in ("format", "version", "verdict", "verdict_text", "controls", "summary",
                "comparisons", "runs", "trustworthy", "config", "data"):  # fmt: skip
        assert key in doc
    assert doc["format"] == "medgan-utility"
    assert not any(f"p{i:02d}" in text for i in range(6))


def test_cancel_then_resume_from_the_checkpoint_folder(tmp_path):
    data = separable_data(n_patients=6, per_class=3)
    cfg = tiny(steps=5)
    cancel = threading.Event()
    done: list[str] = []

    def on_run(r, n, total, eta):
        done.append(r.key.name())
        if n == 2:
            cancel.set()

    request = UtilityRequest(cfg, data=data, synthetic=good_synthetic(), checkpoint_dir=tmp_path)
    with pytest.raises(Cancelled):
        run_utility(request, cancel=cancel, on_run=on_run)
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2
    trained: set[str] = set()
    result = run_utility(request, on_batch=lambda key, _: trained.add(key.name()))
    assert len(result.runs) == 3 * 3  # 3 folds x 3 arms
    assert not trained & set(done[:2])  # the saved runs were not trained again
    other = UtilityRequest(tiny(steps=6), data=data, synthetic=good_synthetic(),
                           checkpoint_dir=tmp_path)  # fmt: skip
    with pytest.raises(DataError, match="another utility job"):
        run_utility(other)


# --------------------------------------------------------------------------- refusals
def _refused(request: UtilityRequest, match: str) -> DataError:
    batches: list[int] = []
    with pytest.raises(DataError, match=match) as info:
        run_utility(request, on_batch=lambda *_: batches.append(1))
    assert not batches, "something trained before the refusal"
    assert info.value.advice
    return info.value


def test_too_few_patients_for_the_split():
    data = separable_data(n_patients=2, per_class=3)
    _refused(UtilityRequest(tiny(folds=3), data=data, synthetic=good_synthetic()),
             "Too few patients")  # fmt: skip


def test_a_class_absent_from_a_fold():
    data = separable_data(n_patients=6, per_class=3)
    only_two = ~((data.labels == 1) & ~np.isin(data.keys, ["p00", "p01"]))
    data = type(data)(data.images[only_two], data.keys[only_two], data.labels[only_two],
                      data.class_names)  # fmt: skip
    _refused(UtilityRequest(tiny(folds=3), data=data, synthetic=good_synthetic()),
             "Class 'lesion' is found in 2")  # fmt: skip


def test_a_synthetic_set_without_labels():
    data = separable_data(n_patients=6, per_class=3)
    unlabelled = ArraySource(good_synthetic().images, None, patients=frozenset())
    _refused(UtilityRequest(tiny(), data=data, synthetic=unlabelled), "has no labels")


def test_a_model_trained_on_the_test_patients():
    data = separable_data(n_patients=6, per_class=3)
    saw_all = good_synthetic()
    saw_all.patients = frozenset(data.keys.tolist())
    _refused(UtilityRequest(tiny(), data=data, synthetic=saw_all), "trained on 6 of the 6")


def test_a_synthetic_set_whose_patients_are_unknown_needs_consent():
    data = separable_data(n_patients=6, per_class=3)
    unknown = good_synthetic()
    unknown.patients = None
    _refused(UtilityRequest(tiny(), data=data, synthetic=unknown), "does not say which patients")
    result = run_utility(UtilityRequest(tiny(steps=2), data=data, synthetic=unknown,
                                        allow_unchecked=True))  # fmt: skip
    assert any("unknown" in w for w in result.warnings)


def test_patients_a_model_saw_are_only_ever_trained_on():
    data = separable_data(n_patients=8, per_class=3)
    partly = good_synthetic()
    partly.patients = frozenset({"p00", "p01"})
    tested: set[int] = set()
    result = run_utility(UtilityRequest(tiny(steps=2), data=data, synthetic=partly),
                         on_draw=lambda r: tested.add(r.fold))  # fmt: skip
    folds = patient_folds(data.keys, data.labels, data.class_names, 3, seed=0,
                          keep_in_train={"p00", "p01"})  # fmt: skip
    assert all(not {"p00", "p01"} & set(f.test) for f in folds)
    assert result.runs
