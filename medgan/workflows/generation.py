"""Workflow: model file → seeded samples → scores against the training slices.

Both front ends call :func:`generate_and_score`: the CLI with the slices it rebuilt from
``--data`` (see :func:`medgan.workflows.dataset.config_for_model`), the GUI with the training
set of its Data page. Without reference slices nothing can be checked against the training
data; the discriminator's realism is still computed when the model file holds one.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import numpy as np

from medgan.core.errors import Cancelled, ExportError
from medgan.curate.label_fidelity import FidelityConfig
from medgan.curate.labelled import LabelledReference, score_labelled
from medgan.curate.realism import batched_logits, discriminator_realism
from medgan.curate.reference import match_mask_resolution, match_resolution, remap_labels
from medgan.curate.score import ScoreTable, score_samples
from medgan.generate.sampling import GeneratedSet, generate, load_generator
from medgan.models.modelfile import LoadedModel, load_model
from medgan.workflows.progress import StageProgress, stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GenerateRequest:
    """What to sample and what to score against.

    Args:
        model_path: the ``.safetensors`` model file.
        n / seed / start_index: samples ``start_index … start_index + n - 1`` of ``seed``.
        reference_images: the training slices (N, R, R) in [-1, 1] (resized to the model's
            resolution when needed); ``None``: no scores, no memorization check.
        reference_keys: hashed patient key per reference slice (calibrates across patients).
        reference_labels / reference_masks: the training slices' classes (int64, ``-1``
            unlabelled) and masks (uint8), for labelled generated sets (label fidelity, mask
            plausibility, mask copies) and labelled mixed exports; ``class_names`` /
            ``segment_names`` are their tables (``TrainingSet`` conventions).
        fidelity: settings of the label-fidelity classifier (``None``: defaults).
    """

    model_path: str
    n: int
    seed: int = 0
    batch_size: int = 64
    device: str = "auto"
    start_index: int = 0
    reference_images: np.ndarray | None = None
    reference_keys: np.ndarray | None = None
    reference_labels: np.ndarray | None = None
    reference_masks: np.ndarray | None = None
    reference_mask_known: np.ndarray | None = None  # bool: a mask source covers the slice
    class_names: tuple[str, ...] = ()
    segment_names: tuple[str, ...] = ()
    fidelity: FidelityConfig | None = None
    # Class-conditional models: samples per class name, or shares of n (None: n split evenly).
    per_class: dict[str, int] | None = None
    class_proportions: dict[str, float] | None = None

    def __post_init__(self) -> None:
        if self.n < 1 and not (self.per_class and sum(self.per_class.values()) > 0):
            raise ExportError("The number of slices to generate must be at least 1.")
        if self.batch_size < 1:
            raise ExportError("The generation batch size must be at least 1.")


@dataclass
class GenerationResult:
    """The generated set, its scores (``None`` without reference slices), the reference slices
    the scores refer to, and the discriminator's realism (always, when the file has one)."""

    generated: GeneratedSet
    scores: ScoreTable | None
    reference: np.ndarray | None
    model_path: str
    realism: np.ndarray | None = None
    reference_keys: np.ndarray | None = None
    reference_labels: np.ndarray | None = None  # in the generated set's class table
    reference_masks: np.ndarray | None = None
    reference_mask_known: np.ndarray | None = None

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.generated.class_names

    @property
    def segment_names(self) -> tuple[str, ...]:
        return self.generated.segment_names

    @property
    def n_reference(self) -> int:
        return 0 if self.reference is None else int(len(self.reference))


def _realism_only(
    loaded: LoadedModel,
    images: np.ndarray,
    device: str,
    cancel: threading.Event | None,
    progress: StageProgress | None,
) -> np.ndarray:
    """Discriminator realism (probability) per sample; NaN without a discriminator."""
    if "discriminator" not in loaded.state:
        return np.full(len(images), np.nan, np.float32)
    logits = batched_logits(
        discriminator_realism(loaded, device=device), images, cancel, stage(progress, "score")
    )
    return (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float32)


def generate_and_score(
    request: GenerateRequest,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
) -> GenerationResult:
    """Sample ``request.n`` images and score them against the reference slices.

    Stages: ``generate`` (samples) then ``score``. Realism comes from the model's own
    discriminator when the file holds one.

    Raises:
        ModelFileError: the model file cannot be read or rebuilt.
        Cancelled: ``cancel`` was set.
    """
    loaded = load_model(request.model_path)
    model = load_generator(loaded, device=request.device)
    generated = generate(
        model, request.n, seed=request.seed, batch_size=request.batch_size,
        device=request.device, progress=stage(progress, "generate"), cancel=cancel,
        start_index=request.start_index, per_class=request.per_class,
        class_proportions=request.class_proportions,
    )  # fmt: skip
    return score_generated(generated, request, loaded, progress=progress, cancel=cancel)


def score_generated(
    generated: GeneratedSet,
    request: GenerateRequest,
    loaded: LoadedModel | None = None,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
) -> GenerationResult:
    """Score a generated set against ``request``'s reference slices (stage ``score``; labelled
    sets also ``labels``). ``loaded``: the model file, for its discriminator's realism."""
    if cancel is not None and cancel.is_set():
        raise Cancelled()
    resolution = int(generated.images.shape[-1])
    ref_labels = remap_labels(
        request.reference_labels, tuple(request.class_names), generated.class_names
    )
    ref_masks = None
    if request.reference_masks is not None:
        ref_masks = match_mask_resolution(request.reference_masks, resolution)
    has_reference = request.reference_images is not None and len(request.reference_images) > 0
    if not has_reference:
        realism = (
            np.full(len(generated.images), np.nan, np.float32)
            if loaded is None
            else _realism_only(loaded, generated.images, request.device, cancel, progress)
        )
        return GenerationResult(generated, None, None, request.model_path, realism=realism)
    assert request.reference_images is not None
    reference = match_resolution(request.reference_images, resolution)
    keys = None if request.reference_keys is None else np.asarray(request.reference_keys)
    if keys is not None and len(keys) != len(reference):
        log.warning("Patient keys do not match the reference slices; scoring without them.")
        keys = None
    scores = score_samples(
        generated.images, reference, training_patient_keys=keys,
        discriminator=loaded if loaded is not None and "discriminator" in loaded.state else None,
        device=request.device, progress=stage(progress, "score"), cancel=cancel,
    )  # fmt: skip
    if generated.labels is not None or generated.masks is not None:
        labels_progress = stage(progress, "labels")
        if labels_progress is not None:
            labels_progress(0, 1)
        ref = LabelledReference(
            reference, ref_labels, ref_masks, keys, generated.class_names,
            generated.segment_names or tuple(request.segment_names),
        )  # fmt: skip
        scores = score_labelled(
            scores, generated.images, ref, labels=generated.labels, masks=generated.masks,
            fidelity=request.fidelity, device=request.device, cancel=cancel,
        )  # fmt: skip
        if labels_progress is not None:
            labels_progress(1, 1)
    return GenerationResult(
        generated, scores, reference, request.model_path,
        realism=np.asarray(scores["realism"]), reference_keys=keys,
        reference_labels=ref_labels, reference_masks=ref_masks,
        reference_mask_known=request.reference_mask_known,
    )  # fmt: skip
