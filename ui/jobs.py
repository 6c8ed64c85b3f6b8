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
from dataclasses import dataclass
from typing import Any

import numpy as np

from medgan.core.device import available_devices

log = logging.getLogger(__name__)

Progress = Callable[..., Any] | None

# Keys a training summary may carry into a model file: counts, sizes and modality only.
_SUMMARY_KEYS_BLOCKLIST = ("name", "patient_id", "patientid", "birth", "date", "time",
                           "institution", "physician", "accession", "station", "operator",
                           "address", "path", "folder", "dir", "uid", "description", "comment")


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


def _plain(value: Any) -> bool:
    """Numbers, short strings, and lists of them: values that cannot carry free text."""
    if value is None or isinstance(value, (bool, int, float)):
        return True
    if isinstance(value, str):
        return len(value) <= 32
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return False


def deidentified_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """Keep only plain, non-identifying values of a training-set summary for a model file.

    Defence in depth (the engine's summary is already de-identified): keys that name people,
    places, dates, identifiers, paths or free text are dropped, as are long strings.
    """
    out: dict[str, Any] = {}
    for key, value in summary.items():
        if any(bad in key.lower() for bad in _SUMMARY_KEYS_BLOCKLIST):
            continue
        if isinstance(value, dict):
            inner = deidentified_summary(value)
            if inner:
                out[key] = inner
        elif _plain(value):
            out[key] = list(value) if isinstance(value, tuple) else value
    return out


def save_trained_model(worker: Any, path: str, summary: dict[str, Any]) -> str:
    """Save a finished :class:`~ui.train_worker.TrainWorker`'s model; returns the path written."""
    from medgan.models.modelfile import ModelMetadata, save_model

    config = worker.config
    result = getattr(worker.trainer, "result", None)
    step = int(getattr(result, "step", 0) or worker.last_step)
    selection_of = getattr(worker.trainer, "selection", None)
    selection: dict[str, Any] = selection_of() if callable(selection_of) else {}
    step = int(selection.get("selected_step", step))
    to_dict = getattr(config, "to_dict", None)
    config_dict = to_dict() if callable(to_dict) else {}
    config_dict.pop("checkpoint_dir", None)  # a local path: not part of a portable model
    clean = deidentified_summary(summary)
    window = clean.get("window")
    if isinstance(window, dict):
        window = (window.get("center"), window.get("width"))
    width = getattr(config, "width", None)
    spacing = clean.get("model_pixel_spacing_mm")
    meta_kwargs: dict[str, Any] = {
        "recipe": getattr(config, "recipe", "default"),
        "resolution": int(getattr(config, "resolution", worker.images.shape[-1])),
        "z_dim": int(getattr(config, "z_dim", 128)),
        "channels": int(getattr(config, "channels", 1)),
        "model_kwargs": {"width": int(width)} if width else {},
        "pixel_spacing": (float(spacing[0]), float(spacing[1])) if spacing else None,
        "training_summary": clean,
        "train_config": config_dict,
        "seed": int(getattr(config, "seed", 0)),
        "step": step,
        "quality": selection,
        "modality": str(clean.get("modality", "") or ""),
    }
    if window and all(isinstance(v, (int, float)) for v in window):
        meta_kwargs["window"] = (float(window[0]), float(window[1]))
    meta = ModelMetadata(**meta_kwargs)
    written = save_model(path, worker.model_state(), meta)
    return str(written)


@dataclass
class GenerationResult:
    """What the Generate page shows: the generated set, its scores (None when there was no
    training set to score against) and the training slices the scores refer to."""

    generated: Any
    scores: Any
    reference: np.ndarray | None
    model_path: str


def _sub_progress(progress: Progress, start: float, span: float) -> Callable[..., None]:
    def report(done: float, total: float | None = None) -> None:
        if progress is None:
            return
        fraction = float(done) / float(total) if total else float(done)
        progress(start + span * min(1.0, fraction))

    return report


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
) -> GenerationResult:
    """Sample ``n`` images from a model file and score them against the training set.

    Realism comes from the model's own discriminator when the file holds one.
    """
    from medgan.core.errors import Cancelled
    from medgan.generate.sampling import generate, load_generator
    from medgan.models.modelfile import load_model
    from ui.train_worker import leave_a_core_for_the_ui

    leave_a_core_for_the_ui()
    loaded = load_model(model_path)
    model = load_generator(loaded, device=device)
    has_reference = training_images is not None and len(training_images) > 0
    generated = generate(
        model, n, seed=seed, batch_size=batch_size, device=device,
        progress=_sub_progress(progress, 0.0, 0.4 if has_reference else 1.0), cancel=cancel,
    )
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    if not has_reference:
        return GenerationResult(generated, None, None, model_path)
    from medgan.curate.score import score_samples
    from ui.train_worker import resize_images

    reference = resize_images(np.asarray(training_images), model.resolution)
    keys = None if patient_keys is None else np.asarray(patient_keys)
    if keys is not None and len(keys) != len(reference):
        keys = None
    scores = score_samples(
        generated.images,
        reference,
        training_patient_keys=keys,
        discriminator=loaded if "discriminator" in loaded.state else None,
        device=device,
        progress=_sub_progress(progress, 0.4, 0.6),
        cancel=cancel,
    )
    return GenerationResult(generated, scores, reference, model_path)


def export_job(
    generated: Any,
    scores: Any,
    decisions: Any,
    model_path: str,
    config: Any,
    *,
    real_images: np.ndarray | None = None,
    progress: Progress = None,
    cancel: threading.Event | None = None,
) -> Any:
    """Write the kept slices (and optionally the real ones) with ``medgan.export.export_set``."""
    from medgan.export import (
        Provenance,
        export_set,
        provenance_from_model,
        real_from_training,
        synthetic_from_engine,
    )

    synthetic = synthetic_from_engine(generated, scores, decisions)
    if model_path and os.path.exists(model_path):
        from medgan.models.modelfile import read_metadata

        provenance = provenance_from_model(model_path, read_metadata(model_path), seed=int(generated.seed))
    else:
        meta = getattr(generated, "metadata", {}) or {}
        provenance = Provenance(
            model_sha256="unknown", model_name="unknown", recipe=str(meta.get("recipe", "unknown")),
            resolution=int(generated.images.shape[-1]), seed=int(generated.seed),
            modality=str(meta.get("modality") or "OT").upper(), window=generated.window,
        )
    real = None
    if config.include_real and real_images is not None and len(real_images):
        from ui.train_worker import resize_images

        real = real_from_training(resize_images(real_images, int(generated.images.shape[-1])))
    memorization = {
        "checked": scores is not None,
        "override": bool(decisions is not None and decisions.config.allow_memorized),
    }
    if scores is not None:
        memorization["calibration"] = scores.calibration_dict()
    return export_set(
        synthetic,
        config,
        provenance,
        real=real,
        filter_settings=decisions.to_dict() if decisions is not None else None,
        memorization=memorization,
        progress=progress,
        cancel=cancel,
    )


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
