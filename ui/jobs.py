"""Plain functions the pages run in workers: device probe, model saving, generate + score,
export. They take ``progress``/``cancel`` keywords where the work is long and return plain
values (numpy arrays, dataclasses) so results can cross the thread boundary.

torch and the engine are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from medgan.core.device import available_devices
from medgan.workflows.exporting import ExportRequest, export_curated
from medgan.workflows.generation import GenerateRequest, GenerationResult
from medgan.workflows.generation import generate_and_score as workflow_generate
from medgan.workflows.progress import overall_fraction
from medgan.workflows.training import (  # noqa: F401 - deidentified_summary: moved, re-exported
    deidentified_summary,
    save_trained,
)

log = logging.getLogger(__name__)

Progress = Callable[..., Any] | None


def format_duration(seconds: float | None) -> str:
    """``75`` → ``1:15``; ``3725`` → ``1:02:05``; None → ``—``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    s = max(0, int(round(seconds)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def probe_devices() -> list[dict[str, Any]]:
    """Available compute devices (:func:`medgan.core.device.available_devices`).

    Runs in a worker when the Train page first shows, and also warms up the training imports
    so that pressing Start does not stall the window.
    """
    from ui.train_worker import warm_up_training

    warm_up_training()
    return available_devices()


def save_trained_model(worker: Any, path: str, summary: dict[str, Any]) -> str:
    """Save a finished :class:`~ui.train_worker.TrainWorker`'s model; returns the path written.

    The metadata comes from :func:`medgan.workflows.training.save_trained` (shared with the CLI).
    """
    written = save_trained(
        worker.trainer, worker.config, summary, path, step=int(worker.result_step())
    )
    return str(written)


def generate_and_score(
    model_path: str,
    n: int,
    *,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "auto",
    training_images: np.ndarray | None = None,
    patient_keys: Any = None,
    progress: Progress = None,
    cancel: threading.Event | None = None,
    per_class: dict[str, int] | None = None,
    training_set: Any = None,
) -> GenerationResult:
    """The Generate page's job: :func:`medgan.workflows.generation.generate_and_score`, with one
    CPU core left for the window.

    ``training_set``: the :class:`~medgan.dataset.training_set.TrainingSet` behind
    ``training_images``, when there is one: its classes and masks let labelled sets be scored
    per class (label fidelity, mask plausibility and copies), as the CLI does with ``--data``.
    """
    from ui.train_worker import leave_a_core_for_the_ui

    leave_a_core_for_the_ui()
    scored = training_images is not None and len(training_images) > 0
    weights = {"generate": 0.4, "score": 0.6} if scored else {"generate": 0.9, "score": 0.1}
    request = GenerateRequest(
        model_path=model_path, n=int(n), seed=int(seed), batch_size=int(batch_size),
        device=device, reference_images=training_images,
        reference_keys=None if patient_keys is None else np.asarray(patient_keys),
        per_class=per_class, **_labelled_reference(training_set),
    )  # fmt: skip
    return workflow_generate(
        request, progress=overall_fraction(progress, weights) if progress else None, cancel=cancel
    )


def _labelled_reference(training_set: Any) -> dict[str, Any]:
    """The GenerateRequest fields for a labelled training set ({} for bare images)."""
    labels = getattr(training_set, "labels", None)
    masks = getattr(training_set, "masks", None)
    if labels is None and masks is None:
        return {}
    return {
        "reference_labels": labels,
        "reference_masks": masks,
        "reference_mask_known": getattr(training_set, "mask_known", None),
        "class_names": tuple(getattr(training_set, "class_names", ())),
        "segment_names": tuple(getattr(training_set, "segment_names", ())),
    }


def export_job(
    generated: Any,
    scores: Any,
    decisions: Any,
    model_path: str,
    config: Any,
    *,
    real_images: np.ndarray | None = None,
    reference: np.ndarray | None = None,
    progress: Progress = None,
    cancel: threading.Event | None = None,
) -> Any:
    """The Export page's job: :func:`medgan.workflows.exporting.export_curated`.

    ``reference``: the training slices the set was scored against (their count goes into the
    manifest); ``real_images``: the slices to include when ``config.include_real``.
    """
    ref = reference if reference is not None else real_images
    generation = GenerationResult(generated, scores, ref, model_path)
    request = ExportRequest(generation, decisions, config, real_images=real_images)
    return export_curated(
        request, progress=overall_fraction(progress, {"export": 1.0}) if progress else None,
        cancel=cancel,
    )  # fmt: skip


def warm_up_export() -> None:
    """Write (and delete) a one-slice DICOM export, so the first real export does not hold the
    interpreter lock for ~0.5 s building highdicom's caches. Run it in a worker while idle."""
    import shutil
    import tempfile

    from medgan.export import ExportConfig, Provenance, SliceSet, export_set

    root = tempfile.mkdtemp(prefix="medgan-warmup-")
    export_log = logging.getLogger("medgan.export")
    level = export_log.level
    export_log.setLevel(logging.WARNING)  # a practice run: keep it out of the user's log panel
    try:
        export_set(
            SliceSet(np.zeros((1, 8, 8), np.float32)),
            ExportConfig(format="dicom", destination=os.path.join(root, "export")),
            Provenance("0" * 64, "warm-up", "dcgan", 8, 0, modality="OT"),
            durable=False,
        )
    finally:
        export_log.setLevel(level)
        shutil.rmtree(root, ignore_errors=True)
