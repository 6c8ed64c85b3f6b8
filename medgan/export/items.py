"""Plain values an export is made of: slices with their provenance, scores and decisions.

Writers and the manifest only see these, so they can be tested with plain numpy arrays and do
not depend on the engine. :mod:`medgan.export.adapters` adapts the engine's
``GeneratedSet`` / ``ScoreTable`` / ``Decisions``. ``to_modality`` is
:func:`medgan.dicom.window.to_modality`, re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from medgan.core.errors import ExportError
from medgan.dicom.window import Window, WindowLike, to_modality

KINDS = ("synthetic", "real")


@dataclass(frozen=True)
class Provenance:
    """Where the slices come from. Never holds patient data: only model facts.

    ``window`` is the :class:`~medgan.dicom.window.Window` in modality units that the model's
    [-1, 1] range maps to (a ``(center, width)`` pair is accepted and converted); ``units``
    names those units ("HU" for CT). Numbers are written only by :meth:`to_dict`.
    """

    model_sha256: str
    model_name: str
    recipe: str
    resolution: int
    seed: int
    modality: str = "OT"
    window: Window | None = None
    units: str = ""
    pixel_spacing: tuple[float, float] | None = None
    model_step: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "window", Window.coerce(self.window))

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_sha256": self.model_sha256,
            "model_name": self.model_name,
            "recipe": self.recipe,
            "resolution": self.resolution,
            "seed": self.seed,
            "modality": self.modality,
            "window": list(self.window.as_tuple()) if self.window else None,
            "units": self.units,
            "pixel_spacing": list(self.pixel_spacing) if self.pixel_spacing else None,
            "model_step": self.model_step,
            **({"extra": self.extra} if self.extra else {}),
        }


@dataclass
class SliceSet:
    """N slices of one kind, with optional per-slice scores and filter decisions.

    Args:
        images: float32 (N, R, R) in [-1, 1] (the model's normalized range).
        kind: ``synthetic`` or ``real``.
        modality: float32 (N, R, R) in modality units, or ``None`` to derive it from the
            provenance window (or to use ``images`` when there is no window).
        seeds / indices: per-slice generation seed and index within that seed's stream
            (``None`` for real slices).
        scores: per-slice score columns (name → (N,) array), written to the manifest.
        keep: (N,) bool, which slices are exported; ``None`` keeps all.
        reasons: per-slice reasons for the decision (``""`` when kept without remark).
        override: (N,) bool, slices kept although the memorization guard flagged them.
        labels: (N,) int64 class per slice, an index into the export's class table
            (``-1``: unlabelled); ``None``: the set has no labels.
        masks: (N, R, R) uint8 label masks (``k`` = segment ``k`` of the export's segment
            table, 0 background); ``None``: no masks.
        mask_present: (N,) bool, which slices really have a mask (default: all, when
            ``masks`` is given); an all-zero mask is a valid "nothing segmented".
    """

    images: np.ndarray
    kind: str = "synthetic"
    modality: np.ndarray | None = None
    seeds: np.ndarray | None = None
    indices: np.ndarray | None = None
    scores: dict[str, np.ndarray] = field(default_factory=dict)
    keep: np.ndarray | None = None
    reasons: list[str] | None = None
    override: np.ndarray | None = None
    labels: np.ndarray | None = None
    masks: np.ndarray | None = None
    mask_present: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ExportError(f"Unknown slice kind {self.kind!r}; expected one of {KINDS}.")
        images = np.asarray(self.images, dtype=np.float32)
        if images.ndim != 3:
            raise ExportError(f"Slices must be a (N, rows, cols) stack, got shape {images.shape}.")
        self.images = images
        n = len(images)
        if self.modality is not None:
            self.modality = np.asarray(self.modality, dtype=np.float32)
            if self.modality.shape != images.shape:
                raise ExportError("Modality-unit slices must have the same shape as the images.")
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=np.uint8)
            if self.masks.shape != images.shape:
                raise ExportError(
                    f"Masks must have the same shape as the images ({images.shape}), "
                    f"got {self.masks.shape}."
                )
            if self.mask_present is None:
                self.mask_present = np.ones(n, dtype=bool)
        elif self.mask_present is not None:
            raise ExportError("'mask_present' was given without masks.")
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
        for name in ("seeds", "indices", "keep", "override", "labels", "mask_present"):
            value = getattr(self, name)
            if value is not None:
                value = np.asarray(value)
                if value.shape != (n,):
                    raise ExportError(f"'{name}' must hold one value per slice ({n}).")
                setattr(self, name, value)
        for key, column in list(self.scores.items()):
            column = np.asarray(column)
            if column.shape != (n,):
                raise ExportError(f"Score column {key!r} must hold one value per slice ({n}).")
            self.scores[key] = column
        if self.reasons is not None and len(self.reasons) != n:
            raise ExportError(f"'reasons' must hold one entry per slice ({n}).")

    def __len__(self) -> int:
        return len(self.images)

    @property
    def kept(self) -> np.ndarray:
        """Indices of the slices to export."""
        if self.keep is None:
            return np.arange(len(self))
        return np.flatnonzero(self.keep.astype(bool))

    def modality_units(self, window: WindowLike | None) -> np.ndarray:
        """Slices in modality units (from ``modality`` or by inverting ``window``)."""
        if self.modality is not None:
            return self.modality
        return to_modality(self.images, window)
