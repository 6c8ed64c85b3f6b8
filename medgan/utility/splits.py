"""Patient K-fold splits: no patient is ever on both sides, and every class is in every fold.

Patients, not slices, are split (slices of one patient are near-copies of each other, so a
slice split measures memory, not generalization). Patients that trained a given synthetic
model (``keep_in_train``) are never tested on. Each class must reach every fold's test
patients and training patients; when it cannot, the split is refused before anything trains.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from medgan.core.errors import DataError


@dataclass(frozen=True)
class Fold:
    """One fold: the patients (hashed keys) it trains and tests on."""

    index: int
    train: tuple[str, ...]
    test: tuple[str, ...]


def patient_classes(
    keys: np.ndarray, labels: np.ndarray | None, n_classes: int
) -> dict[str, frozenset[int]]:
    """The classes each patient has at least one slice of (``labels`` -1 = unlabelled)."""
    out: dict[str, set[int]] = {str(p): set() for p in np.unique(keys)}
    if labels is not None:
        for p, lab in zip(keys.tolist(), labels.tolist(), strict=True):
            if 0 <= lab < n_classes:
                out[str(p)].add(int(lab))
    return {p: frozenset(c) for p, c in out.items()}


def _spread(
    patients: list[str], classes: dict[str, frozenset[int]], k: int, rng: np.random.Generator
) -> list[list[str]]:
    """Rarest class first, each patient to the fold that has least of it (then the smallest)."""
    count = {c: sum(c in classes[p] for p in patients) for c in set().union(*classes.values())}
    order = list(rng.permutation(len(patients)))

    def rarity(i: int) -> int:
        own = classes[patients[i]]
        return min((count[c] for c in own), default=10**9)

    order.sort(key=rarity)
    folds: list[list[str]] = [[] for _ in range(k)]
    for i in order:
        p = patients[i]
        own = classes[p]

        def load(f: int, own: frozenset[int] = own) -> tuple[int, int]:
            have = sum(1 for q in folds[f] for c in own if c in classes[q])
            return have, len(folds[f])

        best = min(range(k), key=load)
        folds[best].append(p)
    return folds


def patient_folds(
    keys: np.ndarray,
    labels: np.ndarray | None,
    class_names: Sequence[str],
    k: int,
    *,
    seed: int = 0,
    keep_in_train: Iterable[str] = (),
) -> list[Fold]:
    """K folds by patient; every class in every fold's test and training patients.

    Args:
        keys: hashed patient key per slice.
        labels: class per slice (-1 unlabelled); for segmentation, 1 where a slice has a mask.
        keep_in_train: patients that may only ever train (e.g. those a given synthetic model
            learned from).
    Raises:
        DataError: too few patients, or a class too rare to reach every fold.
    """
    seen = set(map(str, keep_in_train))
    classes = patient_classes(keys, labels, len(class_names))
    testable = sorted(p for p in classes if p not in seen)
    held = sorted(p for p in classes if p in seen)
    if len(testable) < k or len(classes) < k + 1:
        extra = f" ({len(held)} more trained the synthetic model and cannot be tested)" if held else ""
        raise DataError(
            f"Too few patients for {k} folds: {len(testable)} patient(s) can be tested{extra}.",
            advice="Use fewer folds (--folds), add patients, or use a synthetic set made "
            "without these patients.",
        )
    for c, name in enumerate(class_names):
        n_test = sum(c in classes[p] for p in testable)
        n_all = sum(c in classes[p] for p in classes)
        if n_test < k or n_all < 2:
            raise DataError(
                f"Class {name!r} is found in {n_test} testable patient(s); each of the {k} "
                "folds needs it among its test patients and its training patients.",
                advice=f"Use --folds {max(2, n_test)} or fewer, merge classes (--group, "
                "--vs-rest), or add patients with this class.",
            )
    rng = np.random.default_rng(seed)
    for _ in range(64):
        parts = _spread(testable, classes, k, rng)
        folds = [
            Fold(i, tuple(sorted(held + [p for j, f in enumerate(parts) if j != i for p in f])),
                 tuple(sorted(part)))
            for i, part in enumerate(parts)
        ]  # fmt: skip
        if all(_covers(f, classes, len(class_names)) for f in folds):
            return folds
    raise DataError(
        f"No split into {k} folds keeps every class on both sides of every fold.",
        advice="Use fewer folds (--folds) or merge rare classes (--group, --vs-rest).",
    )


def _covers(fold: Fold, classes: dict[str, frozenset[int]], n: int) -> bool:
    if not fold.test or not fold.train:
        return False
    in_test = set().union(*(classes[p] for p in fold.test))
    in_train = set().union(*(classes[p] for p in fold.train))
    return all(c in in_test and c in in_train for c in range(n))


def subset_patients(
    patients: Sequence[str],
    fraction: float,
    classes: dict[str, frozenset[int]],
    n_classes: int,
    *,
    seed: int,
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``fraction`` of ``patients`` (at least one per class, rarest first), and the rest."""
    rng = np.random.default_rng(seed)
    pool = [patients[i] for i in rng.permutation(len(patients))]
    n = min(len(pool), max(1, round(fraction * len(pool))))
    chosen: list[str] = []
    for c in sorted(range(n_classes), key=lambda c: sum(c in classes[p] for p in pool)):
        if not any(c in classes[p] for p in chosen):
            first = next((p for p in pool if c in classes[p] and p not in chosen), None)
            if first is not None:
                chosen.append(first)
    for p in pool:
        if len(chosen) >= n:
            break
        if p not in chosen:
            chosen.append(p)
    rest = tuple(sorted(p for p in pool if p not in chosen))
    return tuple(sorted(chosen)), rest


def slice_mask(keys: np.ndarray, patients: Iterable[str]) -> np.ndarray:
    """Boolean mask of the slices that belong to ``patients``."""
    return np.isin(keys.astype(str), np.asarray(sorted(set(patients)), dtype=str))


def assert_disjoint(train: Iterable[str], test: Iterable[str]) -> None:
    """The leakage guard every run passes before it trains."""
    both = set(train) & set(test)
    if both:  # a bug, not a user error: never train on a test patient
        raise RuntimeError(f"{len(both)} test patient(s) in the training set")
