"""Final curation decisions: automatic filters + distance filter + the user's choices.

:func:`medgan.curate.filters.apply_filters` decides from a full score table. This module adds
what both front ends need around it:

- :func:`distance_mask` — the minimum-distance-to-training filter of the Generate page;
- :func:`compose_decisions` — folds the filters and per-image user choices into one
  :class:`~medgan.curate.filters.Decisions` whose reasons say why each slice was rejected;
- :func:`realism_only_decisions` — the decisions when there is no training data (no guard, no
  nearest-neighbour scores): ``min_realism`` and ``keep_top_k`` on the discriminator's realism;
- :func:`memorization_record` — the manifest's ``memorization`` record, one shape whichever
  front end exports;
- :func:`sort_order` — gallery order by a score column.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from medgan.curate.filters import REASON_CODES, Decisions, FilterConfig
from medgan.curate.score import ScoreTable

USER_ACCEPT, USER_REJECT, UNDECIDED = 1, 0, -1


def distance_mask(scores: ScoreTable, min_distance: float | None) -> np.ndarray:
    """True where a slice is at least ``min_distance`` from its nearest training slice
    (robust space, RMS on the [-1, 1] scale); all True when the filter is off."""
    n = len(scores)
    if not min_distance:
        return np.ones(n, dtype=bool)
    return np.asarray(scores["nn_robust_distance"], dtype=np.float64) >= float(min_distance)


def undecided(n: int) -> np.ndarray:
    """Manual choices with nothing decided (int8, all :data:`UNDECIDED`)."""
    return np.full(n, UNDECIDED, dtype=np.int8)


def compose_decisions(
    auto: Decisions,
    manual: np.ndarray | None = None,
    *,
    far_enough: np.ndarray | None = None,
    min_distance: float | None = None,
    allow_memorized: bool = False,
) -> Decisions:
    """``auto`` + distance filter + manual choices → a new ``Decisions``.

    Manual choices win over the filters, except that a memorized slice stays rejected unless
    ``allow_memorized`` (the guard's explicit override) is set.
    """
    n = len(auto.keep)
    manual = undecided(n) if manual is None else np.asarray(manual, dtype=np.int8)
    far = np.ones(n, dtype=bool) if far_enough is None else np.asarray(far_enough, dtype=bool)
    memorized = np.asarray(auto.memorized, dtype=bool)
    filtered = np.asarray(auto.keep, dtype=bool) & far
    keep = np.where(manual == UNDECIDED, filtered, manual == USER_ACCEPT)
    if not allow_memorized:
        keep &= ~memorized
    reasons: list[str] = []
    codes: list[tuple[str, ...]] = []
    for i in range(n):
        auto_reason, auto_codes = auto.reasons[i], tuple(auto.codes[i])
        if keep[i]:
            reasons.append(
                "kept by the user" if manual[i] == USER_ACCEPT and not filtered[i] else ""
            )
            codes.append(())
            continue
        if manual[i] == USER_REJECT:
            reasons.append("rejected by the user")
            codes.append(("user",))
        elif not far[i] and auto.keep[i]:
            reasons.append(f"closer than {min_distance:.4f} to a training slice (distance filter)")
            codes.append(("min_distance",))
        else:
            reasons.append(auto_reason or "too close to a training slice (memorization guard)")
            codes.append(auto_codes or ("memorized",))
    overridden = keep & memorized
    counts = dict(auto.counts)
    counts["user"] = int(np.count_nonzero(manual[~keep] == USER_REJECT))
    counts["user_kept"] = int(np.count_nonzero(manual[keep] == USER_ACCEPT))
    counts["min_distance"] = sum(c == ("min_distance",) for c in codes)
    config = auto.config
    if config.allow_memorized != allow_memorized:
        config = dataclasses.replace(config, allow_memorized=allow_memorized)
    return dataclasses.replace(
        auto,
        keep=keep.astype(bool),
        reasons=reasons,
        codes=codes,
        override_used=bool(allow_memorized and overridden.any()),
        overridden=overridden,
        config=config,
        counts=counts,
    )


def realism_only_decisions(
    realism: np.ndarray,
    *,
    min_realism: float | None = None,
    keep_top_k: int | None = None,
    allow_memorized: bool = False,
) -> Decisions:
    """Decisions without training data: only ``min_realism`` and ``keep_top_k`` can run.

    ``realism`` is the discriminator's probability per slice (NaN when the model file holds no
    discriminator; then both filters must be off). The result says the guard did not run.
    """
    score = np.nan_to_num(np.asarray(realism, dtype=np.float64), nan=-np.inf)
    n = len(score)
    keep = np.ones(n, bool)
    reasons = ["" for _ in range(n)]
    codes: list[tuple[str, ...]] = [() for _ in range(n)]
    if min_realism is not None:
        for i in np.flatnonzero(score < min_realism):
            keep[i] = False
            reasons[i] = f"discriminator realism {score[i]:.3f} < minimum {min_realism:.3f}"
            codes[i] = ("low_realism",)
    if keep_top_k is not None:
        survivors = np.flatnonzero(keep)
        order = survivors[np.argsort(-score[survivors], kind="stable")]
        for rank, i in enumerate(order[keep_top_k:], start=keep_top_k + 1):
            keep[i] = False
            reasons[i] = f"not in the top {keep_top_k} by discriminator realism (rank {rank})"
            codes[i] = ("top_k",)
    config = FilterConfig(
        min_realism=min_realism,
        max_out_of_range=None,
        drop_empty=False,
        keep_top_k=keep_top_k,
        dedupe=False,
        allow_memorized=allow_memorized,
    )
    return Decisions(
        keep=keep,
        reasons=reasons,
        codes=codes,
        memorized=np.zeros(n, bool),
        override_used=False,
        overridden=np.zeros(n, bool),
        config=config,
        dedupe_threshold=None,
        counts={c: sum(c in cs for cs in codes) for c in REASON_CODES},
        guard_ran=False,
    )


def memorization_record(
    decisions: Decisions | None,
    scores: ScoreTable | None,
    *,
    n_training_slices: int | None,
) -> dict[str, Any]:
    """The manifest's ``memorization`` record (same keys whichever front end exports).

    ``checked``: the guard compared every sample with the training slices; ``override``: the
    user allowed near-copies (or, unchecked, allowed exporting without the check).
    """
    checked = scores is not None and decisions is not None and decisions.guard_ran
    override = bool(decisions is not None and decisions.config.allow_memorized)
    record: dict[str, Any] = {
        "checked": bool(checked),
        "override": override,
        "n_memorized": int(np.count_nonzero(decisions.memorized))
        if checked and decisions
        else None,
        "n_overridden": int(np.count_nonzero(decisions.overridden)) if decisions is not None else 0,
        "n_training_slices": int(n_training_slices) if checked and n_training_slices else None,
        "calibration": scores.calibration_dict() if scores is not None else None,
        "note": "",
    }
    if not checked:
        record["note"] = (
            "no training data given; the user allowed exporting unchecked samples"
            if override
            else "no training data given; the samples were not checked"
        )
    return record


def sort_order(scores: ScoreTable | None, key: str, n: int) -> np.ndarray:
    """Source indices sorted by a score column (best first for realism, closest first for
    distances); ``index`` or no scores keeps generation order."""
    if scores is None or key == "index" or key not in getattr(scores, "columns", {}):
        return np.arange(n, dtype=np.int64)
    values = np.nan_to_num(np.asarray(scores[key], dtype=np.float64), nan=-np.inf)
    descending = key in ("realism", "typicality", "memorization_risk")
    return np.argsort(-values if descending else values, kind="stable").astype(np.int64)


__all__ = [
    "UNDECIDED",
    "USER_ACCEPT",
    "USER_REJECT",
    "compose_decisions",
    "distance_mask",
    "memorization_record",
    "realism_only_decisions",
    "sort_order",
    "undecided",
]
