"""Bridges from the engine's values (model file, GeneratedSet, ScoreTable, Decisions,
TrainingSet) to the export's plain :class:`SliceSet` and :class:`Provenance`.

Only model facts and arrays cross over; series records and headers never do.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from medgan.dicom.window import Window
from medgan.export.items import Provenance, SliceSet

#: Score columns copied to the manifest (links into the training set are left out).
MANIFEST_SCORES = (
    "realism",
    "d_logit",
    "typicality",
    "memorization_risk",
    "memorized",
    "nn_pixel_distance",
    "nn_robust_distance",
    "nn_synthetic_distance",
    "duplicate_group",
    "out_of_range_fraction",
    "foreground_fraction",
    "empty",
    # labelled sets (medgan.curate.labelled)
    "label_fidelity",
    "predicted_label",
    "nn_class_robust_distance",
    "mask_inside_body",
    "mask_area",
    "mask_components",
    "mask_plausible",
    "mask_best_dice",
    "mask_memorized",
)

_UNITS = {"CT": "HU"}


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def provenance_from_model(
    model_path: str | os.PathLike[str],
    metadata: Any,
    *,
    seed: int,
    extra: dict[str, Any] | None = None,
) -> Provenance:
    """Model facts for the manifest from a model file and its ``ModelMetadata``."""
    modality = (getattr(metadata, "modality", "") or "OT").upper()
    window = getattr(metadata, "window", None)
    spacing = getattr(metadata, "pixel_spacing", None)
    return Provenance(
        model_sha256=file_sha256(model_path),
        model_name=Path(model_path).name,
        recipe=str(metadata.recipe),
        resolution=int(metadata.resolution),
        seed=int(seed),
        modality=modality,
        window=Window.coerce(window),
        units=_UNITS.get(modality, "") if window is not None else "",
        pixel_spacing=None if spacing is None else (float(spacing[0]), float(spacing[1])),
        model_step=int(getattr(metadata, "step", 0) or 0),
        extra=dict(extra or {}),
    )


def synthetic_from_engine(
    generated: Any, scores: Any = None, decisions: Any = None, *, realism: Any = None
) -> SliceSet:
    """A synthetic :class:`SliceSet` from ``GeneratedSet`` (+ ``ScoreTable``, ``Decisions``).

    ``realism`` (discriminator probability per slice) is the only score column of a set that
    has no ``ScoreTable`` (no training data to score against).
    """
    n = len(generated.images)
    columns: dict[str, np.ndarray] = {}
    if scores is not None:
        for name in MANIFEST_SCORES:
            if name in scores.columns:
                columns[name] = np.asarray(scores.columns[name]).astype(np.float64)
    elif realism is not None:
        columns["realism"] = np.asarray(realism).astype(np.float64)
    keep = reasons = override = None
    if decisions is not None:
        keep = np.asarray(decisions.keep, bool)
        reasons = list(decisions.reasons)
        override = np.asarray(decisions.overridden, bool)
    return SliceSet(
        generated.images,
        kind="synthetic",
        modality=getattr(generated, "modality", None),
        seeds=np.full(n, int(generated.seed), dtype=np.int64),
        indices=np.asarray(generated.indices, dtype=np.int64),
        scores=columns,
        keep=keep,
        reasons=reasons,
        override=override,
        labels=getattr(generated, "labels", None),
        masks=getattr(generated, "masks", None),
    )


def real_from_training(
    images: np.ndarray,
    *,
    labels: np.ndarray | None = None,
    masks: np.ndarray | None = None,
    mask_present: np.ndarray | None = None,
) -> SliceSet:
    """Real training slices (float32 in [-1, 1]) as a ``real`` SliceSet, with their classes
    (``-1`` unlabelled), masks and which masks are known, when given; nothing else is kept."""
    return SliceSet(
        np.asarray(images, dtype=np.float32), kind="real", labels=labels, masks=masks,
        mask_present=mask_present,
    )  # fmt: skip
