"""Downstream scores on the test patients' slices.

Classification: ROC AUC (binary: of the second class; more classes: one-vs-rest macro mean),
balanced accuracy, and sensitivity/specificity per class (one-vs-rest). Segmentation: Dice
and HD95 (MONAI metrics) per segment, averaged over segments, over slices where the segment
is in the ground truth or the prediction.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

#: Metrics where lower is better (their paired difference is flipped so > 0 is a gain).
LOWER_IS_BETTER = frozenset({"hd95"})


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); NaN for one class."""
    from scipy.stats import rankdata

    pos = positive.astype(bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    ranks = rankdata(scores)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_scores(
    probs: np.ndarray, labels: np.ndarray, class_names: Sequence[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Overall metrics and per-class sensitivity/specificity/AUC."""
    pred = probs.argmax(axis=1)
    per_class: dict[str, dict[str, float]] = {}
    recalls, aucs = [], []
    for c, name in enumerate(class_names):
        is_c = labels == c
        tp = int((is_c & (pred == c)).sum())
        tn = int((~is_c & (pred != c)).sum())
        sens = tp / int(is_c.sum()) if is_c.any() else math.nan
        spec = tn / int((~is_c).sum()) if (~is_c).any() else math.nan
        auc = roc_auc(probs[:, c], is_c)
        per_class[name] = {"sensitivity": sens, "specificity": spec, "auc": auc, "n": int(is_c.sum())}
        if not math.isnan(sens):
            recalls.append(sens)
        if not math.isnan(auc):
            aucs.append(auc)
    overall = {
        "auc": per_class[class_names[1]]["auc"] if len(class_names) == 2 else _mean(aucs),
        "balanced_accuracy": _mean(recalls),
        "accuracy": float((pred == labels).mean()) if len(labels) else math.nan,
    }
    if len(class_names) == 2:  # the second class is the "positive" one (e.g. lesion)
        overall["sensitivity"] = per_class[class_names[1]]["sensitivity"]
        overall["specificity"] = per_class[class_names[1]]["specificity"]
    return overall, per_class


def segmentation_scores(
    pred: np.ndarray, truth: np.ndarray, segment_names: Sequence[str]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """Dice and HD95 (pixels) per segment, and their means over segments."""
    import torch
    from monai.metrics import compute_dice, compute_hausdorff_distance

    per: dict[str, dict[str, float]] = {}
    dices, hds = [], []
    for k, name in enumerate(segment_names, start=1):
        p, t = pred == k, truth == k
        present = p.reshape(len(p), -1).any(1) | t.reshape(len(t), -1).any(1)
        if not present.any():
            per[name] = {"dice": math.nan, "hd95": math.nan, "n": 0}
            continue
        pt = torch.from_numpy(p[present][:, None].astype(np.float32))
        tt = torch.from_numpy(t[present][:, None].astype(np.float32))
        dice = compute_dice(pt, tt, include_background=True, ignore_empty=False)
        both = p[present].reshape(int(present.sum()), -1).any(1) & t[present].reshape(
            int(present.sum()), -1
        ).any(1)
        diag = float(math.hypot(*truth.shape[1:]))
        hd = np.full(int(present.sum()), diag, np.float64)  # one side empty: worst distance
        if both.any():
            with warnings.catch_warnings():  # MONAI 1.5 warns about its own internal argument
                warnings.simplefilter("ignore", FutureWarning)
                hd_both = compute_hausdorff_distance(pt[both], tt[both], percentile=95)
            hd[both] = hd_both.numpy().ravel()
        d = float(np.nanmean(dice.numpy()))
        h = float(np.nanmean(hd))
        per[name] = {"dice": d, "hd95": h, "n": int(t.reshape(len(t), -1).any(1).sum())}
        dices.append(d)
        hds.append(h)
    return {"dice": _mean(dices), "hd95": _mean(hds)}, per


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else math.nan


def clean(metrics: dict[str, Any]) -> dict[str, Any]:
    """NaN/inf → None for JSON."""
    out: dict[str, Any] = {}
    for k, v in metrics.items():
        if isinstance(v, dict):
            out[k] = clean(v)
        elif isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        else:
            out[k] = v
    return out
