"""Combine the automatic filters with the user's choices into one ``Decisions`` for export.

The Generate page runs ``medgan.curate.filters.apply_filters`` (thresholds, duplicates, memorization
guard), adds its own minimum-distance filter, then lets the user accept or reject single
images. :func:`compose_decisions` folds all of that into a ``Decisions`` value whose reasons
say, for every rejected slice, why — and which records any memorization override.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

USER_ACCEPT, USER_REJECT, UNDECIDED = 1, 0, -1


def distance_mask(scores: Any, min_distance: float | None) -> np.ndarray:
    """True where a slice is at least ``min_distance`` from its nearest training slice
    (robust space, RMS on the [-1, 1] scale); all True when the filter is off."""
    n = len(scores)
    if not min_distance:
        return np.ones(n, dtype=bool)
    return np.asarray(scores["nn_robust_distance"], dtype=np.float64) >= float(min_distance)


def compose_decisions(
    auto: Any,
    manual: np.ndarray,
    *,
    far_enough: np.ndarray | None = None,
    min_distance: float | None = None,
    allow_memorized: bool = False,
) -> Any:
    """``auto`` (a ``Decisions``) + distance filter + manual choices → a new ``Decisions``.

    Manual choices win over the filters, except that a memorized slice stays rejected unless
    ``allow_memorized`` (the guard's explicit override) is set.
    """
    n = len(auto.keep)
    manual = np.asarray(manual, dtype=np.int8)
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
            reasons.append("kept by the user" if manual[i] == USER_ACCEPT and not filtered[i] else "")
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


def sort_order(scores: Any, key: str, n: int) -> np.ndarray:
    """Source indices sorted by a score column (best first for realism, closest first for
    distances); ``index`` or no scores keeps generation order."""
    if scores is None or key == "index" or key not in getattr(scores, "columns", {}):
        return np.arange(n, dtype=np.int64)
    values = np.nan_to_num(np.asarray(scores[key], dtype=np.float64), nan=-np.inf)
    descending = key in ("realism", "typicality", "memorization_risk")
    return np.argsort(-values if descending else values, kind="stable").astype(np.int64)
