"""Workflow: generated set + decisions → an export folder with manifest and README.

One place builds what a manifest records — provenance (model hash, recipe, generation seed
and range), filter settings, the ``memorization`` record — so the CLI and the GUI write the
same manifest for the same model, data, seed and settings.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgan import export as export_pkg
from medgan.core.errors import ExportError
from medgan.curate.decisions import memorization_record, realism_only_decisions
from medgan.curate.filters import Decisions
from medgan.curate.labelled import class_summary
from medgan.curate.reference import match_mask_resolution, match_resolution
from medgan.export import (
    ExportConfig,
    ExportResult,
    Provenance,
    provenance_from_model,
    real_from_training,
    synthetic_from_engine,
)
from medgan.export.config import NEEDS_LABELS, NEEDS_MASKS
from medgan.export.items import SliceSet
from medgan.generate.sampling import GeneratedSet
from medgan.models.modelfile import read_metadata
from medgan.workflows.generation import GenerationResult
from medgan.workflows.progress import StageProgress, stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ExportRequest:
    """What to export and how.

    Args:
        generation: the result of :func:`medgan.workflows.generation.generate_and_score`.
        decisions: from :func:`medgan.workflows.curation.curate`; ``None`` keeps every slice
            (then nothing was filtered and, without scores, nothing checked).
        config: format, destination, overwrite, include real slices, synthetic identity.
        real_images: the training slices to include when ``config.include_real`` (default:
            the reference slices the set was scored against).
        real_labels / real_masks / real_mask_known: their classes (in the generated set's
            class table), masks and which masks are known (default: those of the reference
            slices, when ``real_images`` is not given). For a format that needs classes or
            masks, real slices without one are left out (counted in the manifest).
    """

    generation: GenerationResult
    decisions: Decisions | None
    config: ExportConfig
    real_images: np.ndarray | None = None
    real_labels: np.ndarray | None = None
    real_masks: np.ndarray | None = None
    real_mask_known: np.ndarray | None = None


def _provenance(model_path: str, generated: GeneratedSet) -> Provenance:
    n = int(len(generated.images))
    start = int(generated.indices[0]) if n else 0
    extra = {"generation": {"n": n, "seed": int(generated.seed), "start_index": start}}
    if model_path and os.path.exists(model_path):
        return provenance_from_model(
            model_path, read_metadata(model_path), seed=int(generated.seed), extra=extra
        )
    meta: dict[str, Any] = getattr(generated, "metadata", {}) or {}  # e.g. an injected set
    return Provenance(
        model_sha256="unknown", model_name="unknown", recipe=str(meta.get("recipe", "unknown")),
        resolution=int(generated.images.shape[-1]), seed=int(generated.seed),
        modality=str(meta.get("modality") or "OT").upper(), window=generated.window,
        extra=extra,
    )  # fmt: skip


def _leave_out_unusable_real(real: SliceSet, fmt: str) -> dict[str, int]:
    """For a labelled format, keep only the real slices that have what it needs (a class, a
    known mask); returns how many were left out per reason. All missing: left to the export's
    own check, which refuses with advice."""
    usable = np.ones(len(real), bool)
    no_label = no_mask = np.zeros(len(real), bool)
    if fmt in NEEDS_LABELS and real.labels is not None:
        no_label = real.labels < 0
    if fmt in NEEDS_MASKS and real.mask_present is not None:
        no_mask = ~real.mask_present.astype(bool)
    usable &= ~no_label & ~no_mask
    if usable.all() or not usable.any():
        return {"no_label": 0, "no_mask": 0}
    real.keep = usable
    real.reasons = [
        "" if u else ("no class" if a else "no known mask")
        for u, a in zip(usable, no_label, strict=True)
    ]
    log.info("Left out %d real slice(s) without a class or mask.", int((~usable).sum()))
    return {"no_label": int(no_label.sum()), "no_mask": int((no_mask & ~no_label).sum())}


def export_curated(
    request: ExportRequest,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
) -> ExportResult:
    """Write the kept slices (and optionally the real ones) atomically (stage ``export``).

    Raises:
        ExportError: nothing kept, destination exists, disk full, read-only...; nothing is
            left behind.
        Cancelled: ``cancel`` was set; nothing is left behind.
    """
    gen = request.generation
    generated, scores = gen.generated, gen.scores
    n = len(generated.images)
    decisions = request.decisions
    if decisions is None and scores is None:
        realism = gen.realism if gen.realism is not None else np.full(n, np.nan)
        decisions = realism_only_decisions(realism)
    synthetic = synthetic_from_engine(generated, scores, decisions, realism=gen.realism)
    if decisions is not None and not decisions.n_kept:
        detail = ", ".join(f"{k}: {v}" for k, v in decisions.counts.items() if v)
        raise ExportError(
            f"None of the {n} generated slices passed the filters ({detail}); "
            "nothing was exported.",
            advice="Generate more slices, relax the realism and top-k filters, or train longer.",
        )
    real = None
    left_out: dict[str, int] = {}
    resolution = int(generated.images.shape[-1])
    if request.config.include_real:
        given = request.real_images is not None
        images = request.real_images if given else gen.reference
        labels = request.real_labels if given else gen.reference_labels
        masks = request.real_masks if given else gen.reference_masks
        known = request.real_mask_known if given else gen.reference_mask_known
        if images is not None and len(images):
            real = real_from_training(
                match_resolution(images, resolution),
                labels=labels,
                masks=None if masks is None else match_mask_resolution(masks, resolution),
                mask_present=None if masks is None else known,
            )
            left_out = _leave_out_unusable_real(real, request.config.format)
    filter_settings: dict[str, Any] = {}
    if decisions is not None:
        filter_settings = decisions.to_dict()
        if scores is not None:
            filter_settings["scoring"] = scores.calibration_dict()
            per_class = class_summary(scores, decisions.keep, generated.class_names)
            if per_class:
                filter_settings["per_class"] = per_class
    if real is not None and any(left_out.values()):
        filter_settings["real_left_out"] = left_out
    memorization = memorization_record(decisions, scores, n_training_slices=gen.n_reference)
    return export_pkg.export_set(
        synthetic, request.config, _provenance(gen.model_path, generated),
        real=real, filter_settings=filter_settings, memorization=memorization,
        progress=stage(progress, "export"), cancel=cancel,
        class_names=generated.class_names, segment_names=generated.segment_names,
    )  # fmt: skip
