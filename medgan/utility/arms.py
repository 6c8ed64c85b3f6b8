"""The arms of the test and the training pool each one gets.

(a) ``real``: the real training slices only; (b) ``real+classic``: the same with classic
augmentation (the baseline); (c) ``synthetic@r``: real + classic + ``r`` x the real count of
synthetic slices (per class); controls ``shuffled@r`` (the same synthetic slices with shuffled
labels) and ``extra_real`` (real slices of training patients left out of the real set, as many
as ``shuffled@r`` adds where there are enough). Synthetic sets for smaller ratios are the first
slices of the largest one, so the arms are nested.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from medgan.core.errors import DataError
from medgan.utility.controls import shuffle_labels, take_per_class
from medgan.utility.records import CLASSIC, EXTRA_REAL, REAL, SHUFFLED, SYNTHETIC
from medgan.utility.tasks import Pool


def parse_arm(arm: str) -> tuple[str, float]:
    """``"synthetic@0.5"`` → ``("synthetic", 0.5)``; other arms have ratio 0."""
    if "@" in arm:
        kind, ratio = arm.split("@", 1)
        return kind, float(ratio)
    if arm not in (REAL, CLASSIC, EXTRA_REAL):
        raise DataError(f"Unknown arm {arm!r}.")
    return arm, 0.0


def wanted_counts(real: Pool, ratio: float, class_names: Sequence[str], task: str) -> dict[str, int]:
    """Synthetic slices per class for ``ratio`` x the real count ({"*": n} for segmentation)."""
    if task == "segment" or real.labels is None:
        return {"*": int(round(ratio * len(real)))}
    counts = np.bincount(real.labels, minlength=len(class_names))
    return {name: int(round(ratio * counts[c])) for c, name in enumerate(class_names)}


def first_per_class(pool: Pool, counts: dict[str, int], class_names: Sequence[str]) -> Pool:
    """The first ``counts[c]`` slices of each class of ``pool`` (nested smaller ratios)."""
    if pool.labels is None or "*" in counts:
        n = sum(counts.values())
        return Pool(pool.images[:n], None, pool.masks[:n] if pool.masks is not None else None)
    keep = np.zeros(len(pool), bool)
    for name, n in counts.items():
        idx = np.flatnonzero(pool.labels == class_names.index(name))[:n]
        keep[idx] = True
    return Pool(pool.images[keep], pool.labels[keep],
                pool.masks[keep] if pool.masks is not None else None)  # fmt: skip


def build_pool(
    arm: str,
    real: Pool,
    *,
    synthetic: Pool | None,
    spare: Pool | None,
    class_names: Sequence[str],
    task: str,
    seed: int,
    control_ratio: float = 1.0,
) -> tuple[Pool, bool, int]:
    """(training pool, classic augmentation on?, slices added to the real ones)."""
    kind, ratio = parse_arm(arm)
    if kind == REAL:
        return real, False, 0
    if kind == CLASSIC:
        return real, True, 0
    if kind in (SYNTHETIC, SHUFFLED):
        if synthetic is None:
            raise DataError("No synthetic set for the synthetic arms.")
        added = first_per_class(synthetic, wanted_counts(real, ratio, class_names, task), class_names)
        if kind == SHUFFLED:
            added = shuffle_labels(added, seed)
        return Pool.concat([real, added]), True, len(added)
    if kind == EXTRA_REAL:
        if spare is None or len(spare) == 0:
            raise DataError("No spare real patients for the extra-real control.")
        wanted = wanted_counts(real, control_ratio, class_names, task).values()
        extra = take_per_class(spare, dict(enumerate(wanted)), seed)
        return Pool.concat([real, extra]), True, len(extra)
    raise DataError(f"Unknown arm {arm!r}.")
