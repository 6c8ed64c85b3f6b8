"""Labelled training data for the ``conditional`` and ``paired`` recipes: checks and sampling.

:func:`prepare_labelled` turns a training set's labels and masks into what the step needs,
or refuses — before any network is built — with a message that says what to change: labels
with one class only, a class with fewer than :data:`MIN_SLICES_PER_CLASS` slices, more classes
than the recipe supports, no masks at all. Slices without a label (``-1``) or whose mask is
unknown (no mask source covers them: unknown is not empty) cannot teach a labelled model and
are left out, with a notice. :class:`BatchSampler` draws real batches, class-balanced on
request, from the run's random generator (so a resumed run draws the same batches).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from medgan.core.errors import DataError
from medgan.models import RECIPES
from medgan.models.labelled import MAX_CLASSES, MAX_SEGMENTS, masks_to_channels
from medgan.models.modelfile import segment_colours

log = logging.getLogger(__name__)

MIN_SLICES_PER_CLASS = 5
"""Fewer slices than this in a class cannot teach a generator what the class looks like."""


@dataclass
class LabelledData:
    """The training slices a labelled recipe uses, with their classes and masks."""

    images: np.ndarray  # float32 (N, R, R) in [-1, 1]
    labels: np.ndarray | None  # int64 (N,) into class_names (None: not class-conditional)
    masks: np.ndarray | None  # uint8 (N, R, R), k > 0 = segment_names[k - 1] (None: no masks)
    class_names: tuple[str, ...] = ()
    segment_names: tuple[str, ...] = ()
    notices: list[str] = field(default_factory=list)

    @property
    def n_classes(self) -> int:
        return len(self.class_names) if self.labels is not None else 1

    @property
    def n_segments(self) -> int:
        return len(self.segment_names) if self.masks is not None else 0

    def class_counts(self) -> list[int]:
        if self.labels is None:
            return []
        return [int(v) for v in np.bincount(self.labels, minlength=self.n_classes)]

    def model_kwargs(self) -> dict[str, int]:
        """The ``build_models`` arguments these data need (empty for image-only recipes)."""
        out: dict[str, int] = {}
        if self.labels is not None:
            out["n_classes"] = self.n_classes
        if self.masks is not None:
            out["n_segments"] = self.n_segments
        return out

    def table(self) -> dict[str, Any]:
        """Class and segment tables for events, checkpoints and the model file."""
        return {
            "classes": list(self.class_names) if self.labels is not None else [],
            "class_counts": self.class_counts(),
            "segments": list(self.segment_names) if self.masks is not None else [],
            "segment_colours": segment_colours(self.n_segments),
        }

    def real_tensor(self) -> torch.Tensor:
        """(N, 1 + n_segments, R, R) float32: the image, then ±1 mask channels."""
        x = torch.from_numpy(self.images).unsqueeze(1)
        if self.masks is None:
            return x
        m = masks_to_channels(torch.from_numpy(self.masks), self.n_segments)
        return torch.cat([x, m], dim=1)


def uses_labels(recipe: str, class_pairs: bool) -> bool:
    info = RECIPES[recipe]
    return info.needs_labels or (info.needs_masks and class_pairs)


def uses_masks(recipe: str, class_pairs: bool) -> bool:
    info = RECIPES[recipe]
    return info.needs_masks or (info.needs_labels and class_pairs)


def prepare_labelled(
    recipe: str,
    images: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    class_names: tuple[str, ...] | list[str] = (),
    masks: np.ndarray | None = None,
    mask_known: np.ndarray | None = None,
    segment_names: tuple[str, ...] | list[str] = (),
    class_pairs: bool = False,
) -> LabelledData:
    """Check labels and masks for ``recipe`` and keep the slices it can learn from.

    Image-only recipes get the images back unchanged (labels and masks are ignored).

    Raises:
        DataError: what is wrong, with advice (merge classes, add data, use ``default``).
    """
    n = len(images)
    class_names, segment_names = tuple(class_names), tuple(segment_names)
    want_labels, want_masks = uses_labels(recipe, class_pairs), uses_masks(recipe, class_pairs)
    if not (want_labels or want_masks):
        return LabelledData(images, None, None)
    keep = np.ones(n, bool)
    notices: list[str] = []
    if want_labels:
        if labels is None or not class_names:
            raise DataError(
                f"The {recipe} recipe trains on class labels, but the training set has none.",
                advice="Give a label CSV (--labels, or Labels on the Data page), or train "
                "with the default recipe.",
            )
        labels = np.asarray(labels, np.int64)
        if labels.shape != (n,):
            raise DataError(f"There must be one label per slice ({n}), got {labels.shape}.")
        unlabelled = labels < 0
        if unlabelled.all():
            raise DataError(
                "None of the training slices has a class label.",
                advice="Check that the label CSV names these series, or use the default recipe.",
            )
        if unlabelled.any():
            notices.append(
                f"{int(unlabelled.sum())} of {n} slices have no class label and are left out."
            )
        keep &= ~unlabelled
    if want_masks:
        if masks is None or not segment_names:
            raise DataError(
                f"The {recipe} recipe trains on image + mask pairs, but the training set has "
                "no masks.",
                advice="Give a SEG, RTSTRUCT or NIfTI mask (--masks), or train with the "
                "default recipe (or conditional, with class labels).",
            )
        if len(segment_names) > MAX_SEGMENTS:
            raise DataError(
                f"The masks have {len(segment_names)} segments; the {recipe} recipe draws at "
                f"most {MAX_SEGMENTS}.",
                advice="Merge segments into fewer labels, or train on a subset of them.",
            )
        known = np.ones(n, bool) if mask_known is None else np.asarray(mask_known, bool)
        unknown = keep & ~known
        if unknown.all() or not (keep & known).any():
            raise DataError(
                "No training slice has a known mask (no mask source covers them).",
                advice="Give masks for these series (--masks), or train with the default recipe.",
            )
        if unknown.any():
            notices.append(
                f"{int(unknown.sum())} of {n} slices have no mask (no SEG, RTSTRUCT or NIfTI "
                "covers them; unknown is not empty) and are left out."
            )
        keep &= known
    sel_labels = labels[keep] if want_labels and labels is not None else None
    if sel_labels is not None:
        _check_classes(recipe, sel_labels, class_names)
    out = LabelledData(
        images=np.ascontiguousarray(images[keep]),
        labels=sel_labels,
        masks=np.ascontiguousarray(np.asarray(masks)[keep], dtype=np.uint8)
        if want_masks and masks is not None
        else None,
        class_names=class_names if want_labels else (),
        segment_names=segment_names if want_masks else (),
        notices=notices,
    )
    if out.masks is not None and int(out.masks.max(initial=0)) > len(segment_names):
        raise DataError("The masks hold values beyond their segment table.")
    for note in notices:
        log.warning("%s", note)
    return out


def _check_classes(recipe: str, labels: np.ndarray, class_names: tuple[str, ...]) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    present = int((counts > 0).sum())
    table = ", ".join(f"{name} {int(c)}" for name, c in zip(class_names, counts, strict=False))
    if present < 2:
        raise DataError(
            f"The labels hold one class only ({table}); a class-conditional model needs at "
            "least two.",
            advice="Label slices of another class too (for example lesion and no lesion), or "
            "train with the default recipe.",
        )
    if len(class_names) > MAX_CLASSES:
        raise DataError(
            f"The labels have {len(class_names)} classes; the {recipe} recipe supports at "
            f"most {MAX_CLASSES}.",
            advice="Merge related classes in the label CSV, or train one default model per class.",
        )
    small = [
        f"{name} ({int(c)})"
        for name, c in zip(class_names, counts, strict=False)
        if c < MIN_SLICES_PER_CLASS
    ]
    if small:
        raise DataError(
            f"Too few training slices in class {', '.join(small)}: each class needs at least "
            f"{MIN_SLICES_PER_CLASS}.",
            advice="Add labelled slices of that class, merge it with a related class, or train "
            "with the default recipe.",
        )


class BatchSampler:
    """Indices of real batches: uniform over slices, or class-balanced (each class equally
    likely, then a slice of it), drawn from ``gen``."""

    def __init__(self, labels: np.ndarray | None, n: int, *, balanced: bool) -> None:
        self.n = n
        self.balanced = balanced and labels is not None
        self.members: list[torch.Tensor] = []
        if self.balanced and labels is not None:
            self.members = [
                torch.from_numpy(np.flatnonzero(labels == k)) for k in np.unique(labels)
            ]

    def draw(self, b: int, gen: torch.Generator) -> torch.Tensor:
        dev = gen.device
        if not self.balanced:
            return torch.randint(0, self.n, (b,), generator=gen, device=dev).cpu()
        k = torch.randint(0, len(self.members), (b,), generator=gen, device=dev).cpu()
        u = torch.rand(b, generator=gen, device=dev).cpu()
        out = torch.empty(b, dtype=torch.long)
        for c, idx in enumerate(self.members):
            sel = k == c
            if sel.any():
                pick = (u[sel] * len(idx)).long().clamp_(max=len(idx) - 1)
                out[sel] = idx[pick]
        return out


def grid_labels(n_samples: int, n_classes: int) -> np.ndarray:
    """Classes of a preview grid: one row per class (equal shares of ``n_samples``)."""
    return (np.arange(n_samples) * n_classes // max(1, n_samples)).astype(np.int64)


def select_classes(
    labels: np.ndarray,
    class_names: tuple[str, ...] | list[str],
    chosen: list[str] | tuple[str, ...],
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Keep the slices of the ``chosen`` classes: ``(keep mask, new labels, new names)``.

    The chosen classes keep their order in ``class_names``; unlabelled slices (-1) stay out.
    """
    names = tuple(class_names)
    kept = tuple(n for n in names if n in set(chosen))
    remap = np.full(len(names) + 1, -1, np.int64)  # index -1 maps through the last entry
    for new, name in enumerate(kept):
        remap[names.index(name)] = new
    labels = np.asarray(labels, np.int64)
    new_labels = remap[labels]
    keep = new_labels >= 0
    return keep, new_labels[keep], kept
