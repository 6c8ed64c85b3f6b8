"""Scores of labelled generated sets: per class, label fidelity, mask plausibility and copies.

:func:`score_labelled` adds columns to the :class:`~medgan.curate.score.ScoreTable` that
:func:`~medgan.curate.score.score_samples` computed against **all** training slices (so the
image guard never depends on the class):

- ``label`` (intended class), ``label_fidelity`` (classifier probability of that class),
  ``predicted_label``; ``nn_class_robust_distance``: nearest training slice of the same class;
- with masks: ``mask_inside_body``, ``mask_area``, ``mask_components``, ``mask_plausible``,
  ``mask_reason``, ``mask_best_dice`` / ``mask_best_index`` (best Dice with any real mask) and
  ``mask_memorized`` (a copy of a real mask, which the guard treats like a memorized image).

The settings record the classifier's cross-validation, the real mask ranges and the class and
segment tables (names only).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from medgan.core.errors import DataError
from medgan.curate.label_fidelity import FidelityConfig, label_fidelity
from medgan.curate.masks import (
    COPY_DICE,
    COPY_MIN_AREA,
    best_mask_dice,
    mask_plausibility,
    mask_ranges,
)
from medgan.curate.score import ScoreTable
from medgan.metrics.nn_search import nearest_neighbours

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabelledReference:
    """The real training slices with their labels / masks (same order as ``images``)."""

    images: np.ndarray  # float32 (M, R, R) in [-1, 1]
    labels: np.ndarray | None = None  # int64 (M,), -1 unlabelled
    masks: np.ndarray | None = None  # uint8 (M, R, R)
    patient_keys: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    segment_names: tuple[str, ...] = ()


def score_labelled(
    scores: ScoreTable,
    synthetic: np.ndarray,
    reference: LabelledReference,
    *,
    labels: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    fidelity: FidelityConfig | None = None,
    copy_dice: float = COPY_DICE,
    margin: float = 0.25,
    device: str = "cpu",
    cancel: threading.Event | None = None,
) -> ScoreTable:
    """A new score table with the labelled columns (see the module docstring)."""
    n = len(synthetic)
    cols = dict(scores.columns)
    settings = dict(scores.settings)
    if labels is not None:
        labels = np.asarray(labels, np.int64)
        cols["label"] = labels
        settings["class_names"] = list(reference.class_names)
        ref_labels = reference.labels
        if ref_labels is None:
            log.warning("The training slices carry no labels; label fidelity not scored.")
            settings["label_fidelity"] = {"note": "no labelled real slices"}
            cols["label_fidelity"] = np.full(n, np.nan, np.float32)
        else:
            try:
                fid = label_fidelity(
                    reference.images, ref_labels, reference.patient_keys, synthetic, labels,
                    n_classes=max(len(reference.class_names), int(labels.max(initial=0)) + 1),
                    config=fidelity, cancel=cancel,
                )  # fmt: skip
                cols["label_fidelity"] = fid.probability
                cols["predicted_label"] = fid.predicted
                settings["label_fidelity"] = fid.summary(reference.class_names)
            except DataError as exc:
                log.warning("Label fidelity not scored: %s", exc)
                cols["label_fidelity"] = np.full(n, np.nan, np.float32)
                settings["label_fidelity"] = {"note": str(exc)}
            cols["nn_class_robust_distance"] = _class_distances(
                synthetic, labels, reference.images, ref_labels, device
            )
    if masks is not None:
        masks = np.asarray(masks, np.uint8)
        settings["segment_names"] = list(reference.segment_names)
        if reference.masks is None:
            log.warning("The training slices carry no masks; mask plausibility not checked.")
            settings["mask_plausibility"] = {"note": "no real masks"}
        else:
            ranges = mask_ranges(reference.masks, margin=margin)
            plaus = mask_plausibility(masks, synthetic, ranges, reference.segment_names)
            for key in ("mask_inside_body", "mask_area", "mask_components", "mask_plausible"):
                cols[key] = plaus[key]
            cols["mask_reason"] = np.asarray(plaus["reasons"], dtype=object)
            best, where = best_mask_dice(masks, reference.masks)
            cols["mask_best_dice"] = best
            cols["mask_best_index"] = where
            cols["mask_memorized"] = (best >= copy_dice) & (plaus["mask_area"] >= COPY_MIN_AREA)
            settings["mask_plausibility"] = ranges.to_dict(reference.segment_names)
            settings["mask_copy"] = {"dice": copy_dice, "min_area": COPY_MIN_AREA}
    return ScoreTable(cols, scores.calibration, scores.realism_source, settings)


def _class_distances(
    synthetic: np.ndarray,
    labels: np.ndarray,
    images: np.ndarray,
    ref_labels: np.ndarray,
    device: str,
) -> np.ndarray:
    """Robust distance of each sample to the nearest training slice of its intended class."""
    out = np.full(len(synthetic), np.nan, np.float32)
    for c in np.unique(labels):
        mine, theirs = labels == c, np.asarray(ref_labels) == c
        if mine.any() and theirs.any():
            nn = nearest_neighbours(synthetic[mine], images[theirs], space="robust", device=device)
            out[mine] = nn.distances
    return out


def class_summary(
    scores: ScoreTable, keep: np.ndarray | None, class_names: tuple[str, ...]
) -> list[dict[str, object]]:
    """Per class: generated, kept, mean realism and mean label fidelity (for the manifest/GUI)."""
    if "label" not in scores.columns:
        return []
    labels = np.asarray(scores["label"])
    keep = np.ones(len(labels), bool) if keep is None else np.asarray(keep, bool)
    rows: list[dict[str, object]] = []
    for k, name in enumerate(class_names):
        sel = labels == k

        def mean(col: str, sel: np.ndarray = sel) -> float | None:
            if col not in scores.columns or not sel.any():
                return None
            v = np.asarray(scores[col], np.float64)[sel]
            v = v[np.isfinite(v)]
            return round(float(v.mean()), 4) if len(v) else None

        rows.append({
            "class": name, "generated": int(sel.sum()), "kept": int((sel & keep).sum()),
            "mean_realism": mean("realism"), "mean_label_fidelity": mean("label_fidelity"),
        })  # fmt: skip
    return rows


__all__ = ["LabelledReference", "class_summary", "score_labelled"]
