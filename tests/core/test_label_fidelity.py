"""Label fidelity, mask plausibility and the labelled filters on tiny separable fixtures."""

from __future__ import annotations

import time

import numpy as np
import pytest

from medgan.core.errors import DataError
from medgan.curate.filters import FilterConfig, apply_filters
from medgan.curate.label_fidelity import FidelityConfig, label_fidelity, patient_folds
from medgan.curate.labelled import LabelledReference, class_summary, score_labelled
from medgan.curate.masks import best_mask_dice, mask_plausibility, mask_ranges
from medgan.curate.score import score_samples
from tests.core._labelled_data import CLASSES, SEGMENTS, labelled_set

FAST = FidelityConfig(epochs=15)


def test_fidelity_is_high_for_the_right_class_and_low_for_the_wrong_one() -> None:
    images, labels, _, keys = labelled_set(48)
    syn, syn_labels, _, _ = labelled_set(20, seed=5)
    start = time.perf_counter()
    right = label_fidelity(images, labels, keys, syn, syn_labels, n_classes=2, config=FAST)
    wrong = label_fidelity(images, labels, keys, syn, 1 - syn_labels, n_classes=2, config=FAST)
    assert time.perf_counter() - start < 30
    assert right.probability.min() > 0.8
    assert wrong.probability.max() < 0.2
    assert right.n_folds == 3 and right.cv_balanced_accuracy > 0.9
    assert (right.predicted == syn_labels).all()
    summary = right.summary(CLASSES)
    assert summary["cv_recall_per_class"].keys() == set(CLASSES)


def test_folds_never_split_a_patient() -> None:
    keys = np.array([f"p{i % 5}" for i in range(40)])
    folds = patient_folds(keys, 3)
    assert sum(f.sum() for f in folds) == 40
    for f in folds:
        assert not set(keys[f]) & set(keys[~f])


def test_fidelity_refuses_a_single_class() -> None:
    images, labels, _, keys = labelled_set(10)
    with pytest.raises(DataError) as err:
        label_fidelity(images, np.zeros(10, np.int64), keys, images, labels, n_classes=2)
    assert err.value.advice


def test_mask_outside_the_body_and_odd_sizes_are_flagged() -> None:
    images, _, masks, _ = labelled_set(20)
    ranges = mask_ranges(masks)
    syn = masks[:4].copy()
    syn[1] = 0
    syn[1, 0:5, 0:5] = 1  # a lesion in the air, outside the disc
    syn[2, 8:24, 8:24] = 1  # far larger than any real lesion
    syn[3, 14:16, 10:12] = 0
    syn[3, 20:22, 20:22] = 1  # two pieces of a tiny lesion
    out = mask_plausibility(syn, images[:4], ranges, SEGMENTS)
    assert out["mask_plausible"].tolist() == [True, False, False, False]
    assert "outside the body" in out["reasons"][1]
    assert "area" in out["reasons"][2]
    assert out["mask_inside_body"][0] == 1.0


def test_best_dice_finds_a_copied_mask() -> None:
    _, _, masks, _ = labelled_set(10)
    syn = np.zeros_like(masks[:2])
    syn[0] = masks[7]
    best, where = best_mask_dice(syn, masks)
    assert best[0] == pytest.approx(1.0) and masks[where[0]].tolist() == masks[7].tolist()
    assert best[1] == 0 and where[1] == -1


def _scored(n_syn: int = 16) -> tuple[object, np.ndarray]:
    images, labels, masks, keys = labelled_set(40)
    syn, syn_labels, syn_masks, _ = labelled_set(n_syn, seed=9)
    syn_masks[0] = masks[3]  # a copied real mask
    syn_masks[1] = 0
    syn_masks[1, 0:5, 0:5] = 1  # outside the body
    base = score_samples(syn, images, training_patient_keys=keys, device="cpu")
    ref = LabelledReference(images, labels, masks, keys, CLASSES, SEGMENTS)
    scores = score_labelled(base, syn, ref, labels=syn_labels, masks=syn_masks, fidelity=FAST)
    return scores, syn_labels


def test_labelled_scores_and_filters() -> None:
    scores, syn_labels = _scored()
    for col in ("label", "label_fidelity", "nn_class_robust_distance", "mask_plausible",
                "mask_memorized", "mask_best_dice"):  # fmt: skip
        assert col in scores.columns, col
    assert scores["mask_memorized"][0] and not scores["mask_plausible"][1]
    old = apply_filters(scores, FilterConfig(drop_implausible_masks=False))
    assert "memorized_mask" in old.codes[0] and old.memorized[0]
    d = apply_filters(scores, FilterConfig(per_class_keep_top=3, min_label_fidelity=0.5))
    assert "implausible_mask" in d.codes[1] and "outside the body" in d.reasons[1]
    for c in (0, 1):
        assert d.keep[syn_labels == c].sum() == 3
    assert any("class_top_k" in c for c in d.codes)
    assert "bright/disc" in " ".join(d.reasons) or "dark disc" in " ".join(d.reasons)
    rows = class_summary(scores, d.keep, CLASSES)
    assert [r["kept"] for r in rows] == [3, 3] and rows[1]["class"] == "bright/disc"
    assert scores.to_json()  # JSON-clean (strings, NaN-free)


def test_unlabelled_scores_filter_as_before() -> None:
    images, _, _, keys = labelled_set(30)
    syn, _, _, _ = labelled_set(8, seed=3)
    base = score_samples(syn, images, training_patient_keys=keys, device="cpu")
    a = apply_filters(base, FilterConfig())
    b = apply_filters(base, FilterConfig(per_class_keep_top=1, min_label_fidelity=0.9))
    assert a.keep.tolist() == b.keep.tolist()


def test_min_fidelity_on_an_unscorable_set_is_refused() -> None:
    from medgan.core.errors import ExportError
    from medgan.workflows.curation import CurateRequest, curate

    images, labels, _, keys = labelled_set(12)
    base = score_samples(images[:4], images, training_patient_keys=keys, device="cpu")
    ref = LabelledReference(images, None, None, keys, CLASSES, SEGMENTS)  # no real labels
    scores = score_labelled(base, images[:4], ref, labels=labels[:4])
    assert np.isnan(scores["label_fidelity"]).all()
    with pytest.raises(ExportError, match="could not be scored") as err:
        curate(CurateRequest(n=4, scores=scores, filters=FilterConfig(min_label_fidelity=0.5)))
    assert err.value.advice
    kept = curate(CurateRequest(n=4, scores=scores, filters=FilterConfig(per_class_keep_top=1)))
    assert kept.decisions.n_kept <= 2
