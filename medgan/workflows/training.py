"""Train, then write the model file: the job behind ``medgan train`` and the app's Train page.

The model file's metadata is built here and nowhere else (:func:`model_metadata`), from the
run's config, the training set's de-identified summary and the trainer's selection (which
step the file holds, every quality probe). The CLI and the GUI are thin callers.

Example::

    outcome = train_and_save(
        TrainRequest(config, trainset.images, training_summary=trainset.summary(),
                     out="head.safetensors"),
        on_event=print, stop=threading.Event())
    outcome.status, outcome.model_path     # ("finished", Path("head.safetensors"))
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from medgan.models.modelfile import LoadedModel, ModelMetadata, check_compatible, load_model
from medgan.models.modelfile import save_model as _save_model
from medgan.train.config import TrainConfig
from medgan.train.events import EventListener
from medgan.train.listeners import HistoryRecorder, fan_out

if TYPE_CHECKING:
    from medgan.train.hooks import HookLike

log = logging.getLogger(__name__)

# Keys a training summary may carry into a model file: counts, sizes and modality only.
_SUMMARY_KEYS_BLOCKLIST = (
    "name",
    "patient_id",
    "patientid",
    "birth",
    "date",
    "time",
    "institution",
    "physician",
    "accession",
    "station",
    "operator",
    "address",
    "path",
    "folder",
    "dir",
    "uid",
    "description",
    "comment",
)


class TrainedModel(Protocol):
    """What saving needs from a trainer (the real one, or a test stand-in)."""

    def model_state(self) -> dict[str, dict[str, Any]]: ...


@dataclass(frozen=True)
class TrainRequest:
    """One training job.

    ``training_summary`` is the training set's ``summary()`` (de-identified again here before
    it enters a model file). ``init_model`` (a model file path or a loaded model) fine-tunes;
    ``resume_from`` (a checkpoint file or run folder) continues a run. ``out=None`` trains
    without writing a model file (the app saves later, on request, with :func:`save_trained`).
    """

    config: TrainConfig
    images: np.ndarray
    training_summary: dict[str, Any] = field(default_factory=dict)
    out: str | Path | None = None
    init_model: str | Path | LoadedModel | None = None
    resume_from: str | Path | None = None
    hooks: Sequence[HookLike] = ()
    # Hashed patient keys of the training images (TrainingSet.patient_keys): recorded as the
    # summary's sorted "patients" list so `medgan utility` can refuse a model that saw its
    # test patients. Hashes only (medgan.core.privacy.hash_id), never raw IDs.
    patient_keys: Sequence[str] = ()
    # Labelled recipes (conditional, paired): TrainingSet.labels/class_names and
    # masks/mask_known/segment_names; image-only recipes ignore them.
    labels: np.ndarray | None = None
    class_names: tuple[str, ...] = ()
    masks: np.ndarray | None = None
    mask_known: np.ndarray | None = None
    segment_names: tuple[str, ...] = ()
    # Each slice's level in its series (TrainingSet.levels), for ``levels`` in the settings.
    slice_levels: np.ndarray | None = None

    def labelled_kwargs(self) -> dict[str, Any]:
        """The trainer arguments for labels and masks ({} when there are none)."""
        out: dict[str, Any] = {}
        if self.labels is not None:
            out.update(labels=self.labels, class_names=tuple(self.class_names))
        if self.masks is not None:
            out.update(
                masks=self.masks,
                mask_known=self.mask_known,
                segment_names=tuple(self.segment_names),
            )
        return out


@dataclass(frozen=True)
class TrainOutcome:
    """How the job ended; ``status`` is the trainer's ("finished", "cancelled", "failed")."""

    status: str
    step: int
    message: str
    advice: str | None
    checkpoint_path: str | None
    model_path: Path | None
    selection: dict[str, Any]
    elapsed_s: float
    trainer: Any = field(default=None, repr=False, compare=False)
    checkpoint_failures: int = 0  # checkpoint writes that failed; training went on
    history: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)


# --------------------------------------------------------------------------- metadata
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


def selection_of(trainer: Any, step: int) -> dict[str, Any]:
    """The trainer's :meth:`~medgan.train.trainer.Trainer.selection`; a trainer without
    quality probes (or a stand-in) holds its last step."""
    select = getattr(trainer, "selection", None)
    if callable(select):
        return dict(select())
    return {"trained_steps": step, "selected_step": step}


def labelled_of(trainer: Any) -> dict[str, Any]:
    """The trainer's class and segment tables for the model file ({} for image-only runs)."""
    fn = getattr(trainer, "labelled_metadata", None)
    return dict(fn()) if callable(fn) else {}


def model_metadata(
    config: TrainConfig,
    training_summary: dict[str, Any],
    selection: dict[str, Any],
    history: dict[str, Any] | None = None,
    labelled: dict[str, Any] | None = None,
) -> ModelMetadata:
    """The model file's metadata: THE one place it is built (CLI and app alike).

    ``labelled``: :meth:`~medgan.train.trainer.Trainer.labelled_metadata` (class and segment
    tables, the extra network arguments) for the labelled recipes.
    """
    lab = dict(labelled or {})
    model_kwargs: dict[str, Any] = {"width": int(config.width)} if config.width else {}
    model_kwargs.update(config.network_options())
    model_kwargs.update(lab.get("model_kwargs") or {})
    clean = deidentified_summary(training_summary)
    train_config = config.to_dict()
    train_config.pop("checkpoint_dir", None)  # a local path: may name a patient's folder
    window = clean.get("window")
    win: tuple[float, float] | None = None
    if isinstance(window, dict) and all(
        isinstance(window.get(k), (int, float)) for k in ("center", "width")
    ):
        win = (float(window["center"]), float(window["width"]))
    spacing = clean.get("model_pixel_spacing_mm")
    return ModelMetadata(
        recipe=config.recipe,
        resolution=config.resolution,
        z_dim=config.z_dim,
        channels=config.channels,
        model_kwargs=model_kwargs,
        window=win,
        modality=str(clean.get("modality", "") or ""),
        pixel_spacing=(float(spacing[0]), float(spacing[1])) if spacing else None,
        training_summary=clean,
        train_config=train_config,
        seed=config.seed,
        step=int(selection.get("selected_step", 0)),
        quality=selection,
        history=dict(history or {}),  # medgan.train.listeners.TrainingHistory (for reports)
        classes=[str(v) for v in lab.get("classes", [])],
        class_counts=[int(v) for v in lab.get("class_counts", [])],
        segments=[str(v) for v in lab.get("segments", [])],
        segment_colours=[list(c) for c in lab.get("segment_colours", [])],
        masks_from=str(lab.get("masks_from", "")),
    )


def save_trained(
    trainer: TrainedModel,
    config: TrainConfig,
    training_summary: dict[str, Any],
    path: str | Path,
    *,
    step: int = 0,
    history: dict[str, Any] | None = None,
) -> Path:
    """Write ``trainer``'s model (see ``Trainer.model_state``) to ``path``; returns the path.

    ``history``: a :class:`~medgan.train.listeners.TrainingHistory` dict for the model report.
    """
    meta = model_metadata(
        config, training_summary, selection_of(trainer, step), history, labelled_of(trainer)
    )
    return Path(_save_model(path, trainer.model_state(), meta))


# --------------------------------------------------------------------------- the job
def _init_weights(init: str | Path | LoadedModel | None, config: TrainConfig) -> Any:
    if init is None:
        return None
    loaded = init if isinstance(init, LoadedModel) else load_model(init)  # refuses tampering
    check_compatible(loaded, config.recipe, config.resolution)
    return loaded.as_init()


def with_patients(summary: dict[str, Any], patient_keys: Any) -> dict[str, Any]:
    """``summary`` plus the sorted hashed ``patients`` list (the keys are hashes already:
    :func:`medgan.dicom.summary.patient_key`), so that ``medgan utility`` can refuse a model
    that saw its test patients. CLI and GUI both record it through this function."""
    out = dict(summary)
    if patient_keys is not None and len(patient_keys):
        out["patients"] = sorted({str(k) for k in patient_keys})
    return out


def train_and_save(
    request: TrainRequest,
    *,
    on_event: EventListener | None = None,
    stop: threading.Event | None = None,
    pause: threading.Event | None = None,
    trainer_factory: Callable[..., Any] | None = None,
    on_trainer: Callable[[Any], None] | None = None,
) -> TrainOutcome:
    """Train ``request.config`` on ``request.images``; write the model file unless the run
    failed (a stopped run is saved too: the state reached is kept).

    ``trainer_factory`` (default :class:`~medgan.train.trainer.Trainer`) is for tests;
    ``on_trainer`` receives the trainer as soon as it is built.
    """
    factory: Callable[..., Any]
    if trainer_factory is not None:
        factory = trainer_factory
    else:
        from medgan.train.trainer import Trainer  # heavy: torch

        factory = Trainer

    recorder = HistoryRecorder()  # a compact history for the model file (and its report)
    kwargs: dict[str, Any] = {}
    if request.hooks:
        kwargs["hooks"] = list(request.hooks)
    kwargs.update(request.labelled_kwargs())
    if request.slice_levels is not None and request.config.levels:
        kwargs["slice_levels"] = request.slice_levels
    trainer = factory(
        request.config,
        request.images,
        on_event=fan_out(recorder, on_event),
        stop=stop,
        pause=pause,
        init_model=_init_weights(request.init_model, request.config),
        resume_from=request.resume_from,
        **kwargs,
    )
    if on_trainer is not None:
        on_trainer(trainer)
    result = trainer.run()
    status, step = str(result.status), int(result.step)
    selection = selection_of(trainer, step) if status != "failed" else {}
    model_path: Path | None = None
    summary = with_patients(request.training_summary, request.patient_keys)
    if status != "failed" and request.out is not None:
        model_path = save_trained(
            trainer,
            request.config,
            summary,
            request.out,
            step=step,
            history=recorder.history.to_dict(),
        )
    return TrainOutcome(
        status=status,
        step=step,
        message=str(getattr(result, "message", "") or ""),
        advice=getattr(result, "advice", None),
        checkpoint_path=result.checkpoint_path,
        model_path=model_path,
        selection=selection,
        elapsed_s=float(getattr(result, "elapsed_s", 0.0) or 0.0),
        trainer=trainer,
        checkpoint_failures=int(getattr(result, "checkpoint_failures", 0) or 0),
        history=recorder.history.to_dict(),
    )


__all__ = [
    "TrainOutcome",
    "TrainRequest",
    "deidentified_summary",
    "labelled_of",
    "model_metadata",
    "save_trained",
    "selection_of",
    "train_and_save",
    "with_patients",
]
