"""Workflow: generated set + decisions → an export folder with manifest and README.

One place builds what a manifest records — provenance (model hash, recipe, generation seed
and range), filter settings, the ``memorization`` record — so the CLI and the GUI write the
same manifest for the same model, data, seed and settings.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgan import export as export_pkg
from medgan.core.errors import ExportError
from medgan.curate.decisions import memorization_record, realism_only_decisions
from medgan.curate.filters import Decisions
from medgan.curate.reference import match_resolution
from medgan.export import (
    ExportConfig,
    ExportResult,
    Provenance,
    provenance_from_model,
    real_from_training,
    synthetic_from_engine,
)
from medgan.generate.sampling import GeneratedSet
from medgan.models.modelfile import read_metadata
from medgan.workflows.generation import GenerationResult
from medgan.workflows.progress import StageProgress, stage


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
    """

    generation: GenerationResult
    decisions: Decisions | None
    config: ExportConfig
    real_images: np.ndarray | None = None


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
    if request.config.include_real:
        images = request.real_images if request.real_images is not None else gen.reference
        if images is not None and len(images):
            real = real_from_training(match_resolution(images, int(generated.images.shape[-1])))
    filter_settings: dict[str, Any] = {}
    if decisions is not None:
        filter_settings = decisions.to_dict()
        if scores is not None:
            filter_settings["scoring"] = scores.calibration_dict()
    memorization = memorization_record(decisions, scores, n_training_slices=gen.n_reference)
    return export_pkg.export_set(
        synthetic, request.config, _provenance(gen.model_path, generated),
        real=real, filter_settings=filter_settings, memorization=memorization,
        progress=stage(progress, "export"), cancel=cancel,
    )  # fmt: skip
