"""Labels and masks of the training set: gathered per chosen slice, resized like the images
(nearest neighbour), exempted from empty-slice filtering, and a class-aware patient hold-out.

Labels are ints into a class-name table (``-1``: unlabelled); masks are uint8 with value
``k`` = ``segment_names[k - 1]`` (0 background), one per slice (all 0 where no mask covers it).
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from medgan.dicom.labels.records import LabelSet
from medgan.dicom.records import SeriesRecord

log = logging.getLogger(__name__)

UNLABELLED = -1


@dataclass
class ChosenLabels:
    """Labels and masks of the chosen slices, in training-set order (before filtering)."""

    labels: np.ndarray | None  # int64 (N,), -1 unlabelled; None when nothing is labelled
    class_names: tuple[str, ...]
    masks: list[np.ndarray | None] | None  # native-size uint8 per slice; None: no masks at all
    segment_names: tuple[str, ...]
    digest: str  # changes whenever any label or mask of the chosen slices changes


def gather(
    series_list: Sequence[SeriesRecord], indices: Sequence[Sequence[int]], labels: LabelSet | None
) -> ChosenLabels:
    """Per chosen slice, its class (by name, then index) and its mask, with a content digest."""
    if labels is None:
        return ChosenLabels(None, (), None, (), "")
    table = labels.class_table().names
    seg_names = labels.segment_names()
    h = hashlib.sha256(repr((table, seg_names)).encode())
    out_labels: list[int] = []
    out_masks: list[np.ndarray | None] = []
    for s, idx in zip(series_list, indices, strict=True):
        per_slice = labels.labels.get(s.series_uid, {})
        for i in idx:
            name = per_slice.get(i)
            out_labels.append(table.index(name) if name is not None else UNLABELLED)
            mask = labels.mask_for(s.series_uid, i, seg_names)
            out_masks.append(mask)
            h.update(f"{out_labels[-1]}|".encode())
            h.update(mask.tobytes() if mask is not None else b"-")
    have_labels = any(v != UNLABELLED for v in out_labels)
    have_masks = any(m is not None for m in out_masks)
    return ChosenLabels(
        np.asarray(out_labels, np.int64) if have_labels else None,
        table if have_labels else (),
        out_masks if have_masks else None,
        tuple(seg_names) if have_masks else (),
        h.hexdigest()[:24] if (have_labels or have_masks) else "",
    )


def resize_masks(masks: np.ndarray, resolution: int) -> np.ndarray:
    """(n, H, W) uint8 → (n, R, R): pad to a square with 0 and resize, nearest neighbour,
    with the same centring as the images' pad and resize."""
    from monai.transforms import Resize, ResizeWithPadOrCrop

    n, rows, cols = masks.shape
    side = max(rows, cols)
    arr = masks.astype(np.float32)
    if rows != cols:
        pad = ResizeWithPadOrCrop((side, side), mode="constant", value=0.0)
        arr = np.asarray(pad(arr))  # type: ignore[arg-type]
    if side != resolution:
        arr = np.asarray(Resize((resolution, resolution), mode="nearest-exact")(arr))  # type: ignore[arg-type]
    return np.rint(arr).astype(np.uint8)


def exempt_from_filter(labels: np.ndarray | None, masks: np.ndarray | None) -> np.ndarray | None:
    """Slices the empty-slice filter must keep: a mask with a segment, or a label of any class
    other than the most common one (a minority class is never dropped)."""
    keep = None
    if masks is not None:
        keep = masks.reshape(len(masks), -1).any(axis=1)
    if labels is not None:
        known = labels[labels != UNLABELLED]
        if known.size:
            majority = Counter(known.tolist()).most_common(1)[0][0]
            minority = (labels != UNLABELLED) & (labels != majority)
            keep = minority if keep is None else keep | minority
    return None if keep is None else np.asarray(keep, dtype=bool)


def class_counts(labels: np.ndarray | None, names: Sequence[str]) -> dict[str, int]:
    if labels is None:
        return {}
    counts = Counter(labels.tolist())
    out = {name: int(counts.get(k, 0)) for k, name in enumerate(names)}
    if counts.get(UNLABELLED):
        out["(unlabelled)"] = int(counts[UNLABELLED])
    return out


def holdout_patients(
    keys: np.ndarray, labels: np.ndarray | None, fraction: float, seed: int
) -> set[str]:
    """Hold out ``fraction`` of the patients, trying (deterministically) to leave every class
    on both sides; without labels, one seeded draw."""
    unique = sorted(set(keys.tolist()))
    if fraction <= 0:
        return set()
    if len(unique) < 2:
        log.warning("Only one patient: no hold-out split is possible (it must be by patient).")
        return set()
    k = min(len(unique) - 1, max(1, round(fraction * len(unique))))
    if labels is None:
        order = np.random.default_rng(seed).permutation(len(unique))
        return {unique[i] for i in order[:k]}
    classes = set(labels[labels != UNLABELLED].tolist())
    by_patient = {p: set(labels[(keys == p) & (labels != UNLABELLED)].tolist()) for p in unique}
    best: tuple[int, set[str]] | None = None
    rng = np.random.default_rng(seed)
    for _ in range(256):
        order = rng.permutation(len(unique))
        held = {unique[i] for i in order[:k]}
        in_held = set().union(*(by_patient[p] for p in held))
        in_train = set().union(*(by_patient[p] for p in unique if p not in held))
        score = len(classes & in_held & in_train)
        if best is None or score > best[0]:
            best = (score, held)
        if score == len(classes):
            break
    assert best is not None
    if best[0] < len(classes):
        log.warning(
            "The patient hold-out could not keep every class on both sides (%d of %d do).",
            best[0],
            len(classes),
        )
    return best[1]
