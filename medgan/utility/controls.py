"""The controls that can fail: synthetic slices with shuffled labels (must not help) and
extra real patients used as if they were synthetic (an upper reference that should help).

A result whose controls misbehave — shuffled labels that "help", or extra real patients that
"hurt" — is flagged as untrustworthy: the test itself is then too noisy or broken.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medgan.utility.records import EXTRA_REAL, Comparison, shuffled_arm
from medgan.utility.tasks import Pool


def shuffle_labels(pool: Pool, seed: int) -> Pool:
    """The same slices with their labels (classify) or masks (segment) permuted."""
    rng = np.random.default_rng(seed + 7919)
    order = rng.permutation(len(pool))
    labels = pool.labels[order] if pool.labels is not None else None
    masks = pool.masks[order] if pool.masks is not None else None
    return Pool(pool.images, labels, masks)


def take_per_class(pool: Pool, counts: dict[int, int], seed: int) -> Pool:
    """Up to ``counts[c]`` slices of each class (all classes alike when unlabelled)."""
    rng = np.random.default_rng(seed + 104729)
    picks: list[np.ndarray] = []
    if pool.labels is None:
        n = sum(counts.values())
        picks.append(rng.permutation(len(pool))[:n])
    else:
        for c, n in sorted(counts.items()):
            idx = np.flatnonzero(pool.labels == c)
            picks.append(rng.permutation(idx)[:n])
    sel = np.sort(np.concatenate(picks)) if picks else np.zeros(0, np.int64)
    return Pool(
        pool.images[sel],
        pool.labels[sel] if pool.labels is not None else None,
        pool.masks[sel] if pool.masks is not None else None,
    )


def judge(comparisons: Sequence[Comparison], metric: str, fraction: float, ratio: float) -> dict[str, Any]:
    """How the controls came out at ``fraction``, and whether the result can be trusted."""
    def find(arm: str) -> Comparison | None:
        return next((c for c in comparisons if c.arm == arm and c.metric == metric
                     and c.fraction == fraction), None)  # fmt: skip

    out: dict[str, Any] = {"metric": metric, "fraction": fraction, "trustworthy": True, "notes": []}
    shuffled = find(shuffled_arm(ratio))
    extra = find(EXTRA_REAL)
    if shuffled is not None:
        ok = shuffled.verdict != "helps"
        out["shuffled"] = {**shuffled.to_dict(), "ok": ok, "expected": "no help (should hurt)"}
        if not ok:
            out["trustworthy"] = False
            out["notes"].append(
                "Synthetic slices with shuffled labels 'helped': the gain is not about labels, "
                "so the test cannot tell what helps (too few test patients or too few steps)."
            )
    if extra is not None:
        ok = extra.verdict != "hurts"
        out["extra_real"] = {**extra.to_dict(), "ok": ok, "expected": "helps (upper reference)"}
        if not ok:
            out["trustworthy"] = False
            out["notes"].append(
                "Extra real patients 'hurt': the test is too noisy to measure a gain."
            )
        elif extra.verdict != "helps":
            out["notes"].append(
                "Even extra real patients did not measurably help: this test may be too small "
                "(patients, seeds, steps) to show a gain from synthetic slices either."
            )
    else:
        out["notes"].append(
            "No extra-real control: every training patient is already used (fraction 1)."
        )
    return out
