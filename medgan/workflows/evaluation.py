"""Workflow: model file + DICOM folder → samples → quality report (``medgan evaluate``).

The real slices are prepared exactly as for training (:func:`config_for_model`), so the
metrics compare like with like. The metrics dictionary of
:func:`medgan.metrics.evaluation.evaluate_sets` is passed through as it is: a metric added
there appears in the report without a change here.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medgan.core.errors import DataError
from medgan.export.adapters import file_sha256
from medgan.generate.sampling import generate, load_generator
from medgan.metrics.evaluation import EvaluationConfig, evaluate_sets
from medgan.metrics.swd import sliced_wasserstein
from medgan.models.modelfile import load_model
from medgan.workflows.dataset import TrainingSetRequest, build_training_set, config_for_model
from medgan.workflows.progress import StageProgress, stage


@dataclass(frozen=True)
class EvaluateRequest:
    """Model, real data and sizes. ``series_uids``: UIDs or unique prefixes (default: the
    trainable series of the main modality)."""

    model_path: str
    folder: str
    series_uids: tuple[str, ...] | None = None
    n: int = 1000
    seed: int = 0
    n_pairs: int = 500
    device: str = "auto"
    metrics: EvaluationConfig | None = None  # full metric settings; None: from the fields above

    def __post_init__(self) -> None:
        if self.n < 2:
            raise DataError("Evaluate needs at least 2 samples.", advice="Use -n 100 or more.")


@dataclass
class EvaluateResult:
    """``report``: the JSON report (model facts + every metric); the rest for messages."""

    report: dict[str, Any]
    n_real: int
    n_patients: int
    resolution: int
    notes: list[str] = field(default_factory=list)


def evaluate(
    request: EvaluateRequest,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
) -> EvaluateResult:
    """Rebuild the real slices, sample the model, run every metric.

    Stages: ``scan``, ``prepare``, ``generate``, ``evaluate`` (metric stages, counted).
    """
    loaded = load_model(request.model_path)
    meta = loaded.metadata
    built = build_training_set(
        TrainingSetRequest(
            config=config_for_model(meta, holdout=True), folder=request.folder,
            series_uids=request.series_uids,
        ),
        progress=progress, cancel=cancel,
    )  # fmt: skip
    trainset = built.training_set
    generator = load_generator(loaded, device=request.device)
    samples = generate(
        generator, request.n, seed=request.seed, device=request.device,
        progress=stage(progress, "generate"), cancel=cancel,
    )  # fmt: skip
    metric_progress = stage(progress, "evaluate")

    def on_stage(_name: str, done: int, total: int) -> None:
        if metric_progress is not None:
            metric_progress(done, total)

    metrics = evaluate_sets(
        samples.images, trainset.images, patient_keys=trainset.patient_keys,
        config=request.metrics or EvaluationConfig(seed=request.seed, n_pairs=request.n_pairs,
                                                   device=request.device),
        progress=on_stage, cancel=cancel,
    )  # fmt: skip
    holdout = trainset.holdout
    if holdout is not None and len(holdout.images) >= 2:
        metrics["holdout"] = _holdout_metrics(
            samples.images, trainset.images, holdout.images, request, cancel
        )
    sha = file_sha256(request.model_path)
    report = {
        "model": {
            "file": Path(request.model_path).name,
            "sha256": sha,
            "recipe": meta.recipe,
            "resolution": meta.resolution,
            "step": meta.step,
        },
        "model_sha256": sha,
        "sample_seed": request.seed,
        **metrics,
    }
    return EvaluateResult(
        report,
        n_real=int(len(trainset.images)),
        n_patients=int(len(set(np.asarray(trainset.patient_keys).tolist()))),
        resolution=int(meta.resolution),
        notes=built.notes,
    )


def _holdout_metrics(
    samples: np.ndarray,
    train: np.ndarray,
    held: np.ndarray,
    request: EvaluateRequest,
    cancel: threading.Event | None,
) -> dict[str, Any]:
    """SWD against patients the model never saw, with train-vs-held-out as the floor."""

    def swd(a: np.ndarray, b: np.ndarray) -> float:
        return sliced_wasserstein(a, b, seed=request.seed, device=request.device,
                                  cancel=cancel).swd  # fmt: skip

    return {
        "n_real": int(len(held)),
        "swd": swd(samples, held),
        "real_swd": swd(train, held),
        "note": "held-out patients (never trained on); real_swd compares training with held-out",
    }
