"""Mean ± sd over folds and seeds, the paired bootstrap interval, and the verdict.

Runs of one (fold, seed) share the test patients, the real slices and the initial weights, so
an arm is compared with real + classic augmentation by the paired difference of each (fold,
seed). The 95 % interval is a percentile bootstrap of the mean paired difference; the verdict
follows it: above zero "helps", below zero "hurts", across zero "no measurable effect".
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from medgan.utility.records import CLASSIC, Comparison, RunResult
from medgan.utility.scores import LOWER_IS_BETTER


def verdict(ci_low: float, ci_high: float) -> str:
    """"helps" when the whole interval is above 0, "hurts" below, else no measurable effect."""
    if math.isnan(ci_low) or math.isnan(ci_high):
        return "no measurable effect"
    if ci_low > 0:
        return "helps"
    if ci_high < 0:
        return "hurts"
    return "no measurable effect"


def bootstrap_ci(
    diffs: Sequence[float], *, n: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``diffs`` (NaN with fewer than 2)."""
    d = np.asarray([v for v in diffs if math.isfinite(v)], np.float64)
    if len(d) < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, len(d), size=(n, len(d)))].mean(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


def summarize(runs: Sequence[RunResult]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """fraction → arm → metric → {mean, sd, n} over folds and seeds."""
    acc: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for r in runs:
        for m, v in r.metrics.items():
            if v is not None and math.isfinite(v):
                acc[(f"{r.key.fraction:g}", r.key.arm, m)].append(float(v))
    out: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for (f, arm, m), values in sorted(acc.items()):
        arr = np.asarray(values)
        out.setdefault(f, {}).setdefault(arm, {})[m] = {
            "mean": float(arr.mean()),
            "sd": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
            "n": int(len(arr)),
        }
    return out


def paired_differences(
    runs: Sequence[RunResult], fraction: float, arm: str, metric: str, *, baseline: str = CLASSIC
) -> list[float]:
    """arm − baseline per (fold, seed) present in both (flipped where lower is better)."""
    base = {(r.key.fold, r.key.seed): r.metrics.get(metric) for r in runs
            if r.key.arm == baseline and r.key.fraction == fraction}  # fmt: skip
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    out = []
    for r in sorted(runs, key=lambda r: (r.key.fold, r.key.seed)):
        if r.key.arm != arm or r.key.fraction != fraction:
            continue
        b, v = base.get((r.key.fold, r.key.seed)), r.metrics.get(metric)
        if b is not None and v is not None and math.isfinite(b) and math.isfinite(v):
            out.append(sign * (float(v) - float(b)))
    return out


def compare(
    runs: Sequence[RunResult], metrics: Sequence[str], *, n_boot: int = 2000
) -> list[Comparison]:
    """Every arm (except the baseline) against real + classic, per fraction and metric."""
    out = []
    keys = sorted({(r.key.fraction, r.key.arm) for r in runs if r.key.arm != CLASSIC})
    for fraction, arm in keys:
        for metric in metrics:
            d = paired_differences(runs, fraction, arm, metric)
            if not d:
                continue
            lo, hi = bootstrap_ci(d, n=n_boot)
            out.append(
                Comparison(
                    fraction, arm, metric, float(np.mean(d)),
                    float(np.std(d, ddof=1)) if len(d) > 1 else 0.0, lo, hi, len(d),
                    verdict(lo, hi),
                )
            )  # fmt: skip
    return out
