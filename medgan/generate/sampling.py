"""Seeded sampling from a model file.

Each sample's noise depends only on ``(seed, index)`` — ``(seed, index, class)`` for a
class-conditional model, whose classes each have their own index range — so the same seed gives
the same images whatever the batch size, and ``start_index`` continues a set without repeating
it. Models that draw masks (recipe ``paired``, or ``conditional`` with segments) return them
as integer labels with the images. Samples come
back in [-1, 1] and in modality units through the window stored in the model file
(``center + v * width / 2``; e.g. Hounsfield units for CT). ``to_modality`` is
:func:`medgan.dicom.window.to_modality`, re-exported here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medgan.core.device import resolve_device
from medgan.core.errors import Cancelled, DataError, ModelFileError
from medgan.dicom.window import Window, to_modality
from medgan.models.modelfile import LoadedModel, ModelMetadata, load_model

if TYPE_CHECKING:  # pragma: no cover
    import torch
    from torch import nn

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], Any]


@dataclass
class GeneratorModel:
    """A generator ready to sample, with the metadata that describes it."""

    module: nn.Module
    metadata: ModelMetadata
    device: torch.device
    path: str = ""

    @property
    def resolution(self) -> int:
        return self.metadata.resolution

    @property
    def z_dim(self) -> int:
        return self.metadata.z_dim


@dataclass
class GeneratedSet:
    """Samples with their provenance: ``images`` in [-1, 1], ``modality`` in modality units."""

    images: np.ndarray  # float32 (N, R, R)
    modality: np.ndarray  # float32 (N, R, R), e.g. HU; equals images when no window is known
    seed: int
    indices: np.ndarray  # int64 (N,): sample index i used with the seed
    window: Window | None = None  # maps ``images`` to ``modality``
    metadata: dict[str, Any] = field(default_factory=dict)
    # Labelled sets (same conventions as medgan.dataset.training_set.TrainingSet):
    labels: np.ndarray | None = None  # int64 (N,): intended class, index into class_names
    class_names: tuple[str, ...] = ()
    masks: np.ndarray | None = None  # uint8 (N, R, R): k > 0 = segment_names[k - 1]
    segment_names: tuple[str, ...] = ()
    segment_colours: tuple[tuple[int, ...], ...] = ()  # RGB per segment, for display

    def __post_init__(self) -> None:
        self.window = Window.coerce(self.window)  # a (center, width) pair is accepted
        n = len(self.images)
        if self.labels is not None:
            self.labels = np.asarray(self.labels, dtype=np.int64)
            if self.labels.shape != (n,):
                raise ValueError(f"labels must hold one class per sample ({n}).")
            if len(self.labels) and (
                self.labels.min() < 0 or self.labels.max() >= len(self.class_names)
            ):
                raise ValueError("labels must index into class_names.")
        if self.masks is not None:
            self.masks = np.asarray(self.masks, dtype=np.uint8)
            if self.masks.shape != np.shape(self.images):
                raise ValueError("masks must have the same (N, R, R) shape as the images.")
        self.class_names = tuple(self.class_names)
        self.segment_names = tuple(self.segment_names)
        self.segment_colours = tuple(tuple(int(v) for v in c[:3]) for c in self.segment_colours)

    @property
    def is_labelled(self) -> bool:
        """True when every sample has an intended class."""
        return self.labels is not None

    @property
    def has_masks(self) -> bool:
        return self.masks is not None


def load_generator(
    path_or_loaded: str | os.PathLike[str] | LoadedModel, device: str = "auto"
) -> GeneratorModel:
    """Rebuild the generator described by a model file and load its weights (strict)."""
    from medgan.models import RECIPES, build_models

    loaded = (
        path_or_loaded if isinstance(path_or_loaded, LoadedModel) else load_model(path_or_loaded)
    )
    meta = loaded.metadata
    if meta.recipe not in RECIPES:
        raise ModelFileError(
            f"The model uses recipe {meta.recipe!r}, which this MedGAN Studio does not know.",
            advice="Update MedGAN Studio or use a model trained with " + ", ".join(RECIPES) + ".",
        )
    dev = resolve_device(device)
    try:
        generator, _ = build_models(
            meta.recipe,
            meta.resolution,
            z_dim=meta.z_dim,
            channels=meta.channels,
            **meta.model_kwargs,
        )
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"Cannot rebuild the model's network: {exc}") from exc
    try:
        generator.load_state_dict(loaded.state["generator"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(
            f"The generator weights in the model file do not fit the {meta.recipe} network at "
            f"{meta.resolution}x{meta.resolution} ({first}).",
            advice="The file was written by an incompatible version or was altered.",
        ) from exc
    generator.eval().requires_grad_(False).to(dev)
    return GeneratorModel(generator, meta, dev, path=loaded.path)


def sample_noise(
    seed: int, indices: np.ndarray, z_dim: int, classes: np.ndarray | None = None
) -> np.ndarray:
    """Noise for each sample index (and class), independent of how the indices are batched.

    Without ``classes`` the stream of ``(seed, index)`` is Philox keyed on both; class ``c``
    starts the same key's counter at ``2**192·(c + 1)``, a stream no unconditional sample and
    no other class ever reaches.
    """
    out = np.empty((len(indices), z_dim), dtype=np.float32)
    for row, index in enumerate(indices):
        key = [int(seed) & (2**64 - 1), int(index)]
        if classes is None:
            bits = np.random.Philox(key=key)
        else:
            bits = np.random.Philox(key=key, counter=[0, 0, 0, int(classes[row]) + 1])
        out[row] = np.random.Generator(bits).standard_normal(z_dim, dtype=np.float32)
    return out


def class_counts(
    class_names: tuple[str, ...] | list[str],
    n: int,
    *,
    per_class: Mapping[str, int] | None = None,
    proportions: Mapping[str, float] | None = None,
) -> list[int]:
    """How many samples of each class to draw: ``per_class`` counts, ``proportions`` of ``n``
    (largest remainder, so they add up to ``n``), or ``n`` split evenly.

    Raises:
        DataError: a class the model does not know, a negative count or no positive share.
    """
    names = list(class_names)
    given = per_class if per_class is not None else proportions
    if given is not None:
        unknown = [k for k in given if k not in names]
        if unknown:
            raise DataError(
                f"The model has no class {', '.join(map(repr, unknown))}.",
                advice="Its classes are " + ", ".join(names) + " (names as in the labels).",
            )
        if any(float(v) < 0 for v in given.values()):
            raise DataError("Per-class counts and proportions must not be negative.")
    if per_class is not None:
        return [int(per_class.get(k, 0)) for k in names]
    shares = [1.0] * len(names)
    if proportions is not None:
        shares = [float(proportions.get(k, 0.0)) for k in names]
    total = sum(shares)
    if total <= 0:
        raise DataError(
            "The class proportions add up to zero.", advice="Give at least one class a share."
        )
    exact = [n * w / total for w in shares]
    counts = [int(np.floor(v)) for v in exact]
    order = sorted(range(len(names)), key=lambda i: (counts[i] - exact[i], i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return counts


def generate(
    model: GeneratorModel | LoadedModel | str | os.PathLike[str],
    n: int,
    *,
    seed: int = 0,
    batch_size: int = 64,
    device: str = "auto",
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    start_index: int = 0,
    per_class: Mapping[str, int] | None = None,
    class_proportions: Mapping[str, float] | None = None,
) -> GeneratedSet:
    """Draw samples with indices ``start_index …`` for ``seed``.

    An unconditional model draws ``n`` samples. A class-conditional one draws, per class,
    ``per_class[name]`` samples, or ``class_proportions`` of ``n``, or ``n`` split evenly;
    each class has indices ``start_index … start_index + n_c - 1`` and the set comes out
    class by class, with ``labels`` and ``class_names``. Models that draw masks add ``masks``
    (uint8 labels) and ``segment_names``.

    Args:
        model: a loaded generator, a loaded model file or a path to one.
        batch_size: samples per forward pass (memory only; results do not depend on it).
        progress: ``progress(done, total)`` after each batch.
        cancel: set it to stop; raises :class:`medgan.core.errors.Cancelled`.
    """
    import torch

    from medgan.models.labelled import channels_to_masks

    if n < 0 or batch_size < 1:
        raise ValueError("n must be >= 0 and batch_size >= 1")
    if not isinstance(model, GeneratorModel):
        model = load_generator(model, device=device)
    dev = model.device if device == "auto" else resolve_device(device)
    if dev != model.device:
        model.module.to(dev)
        model.device = dev
    meta = model.metadata
    res = model.resolution
    conditional = meta.n_classes > 1
    class_names = tuple(meta.classes) if conditional else ()
    if not conditional and (per_class is not None or class_proportions is not None):
        raise DataError(
            "This model is not class-conditional, so it cannot draw samples per class.",
            advice="Train with the conditional recipe on labelled slices, or give a plain count.",
        )
    if conditional:
        counts = class_counts(class_names, n, per_class=per_class, proportions=class_proportions)
        labels = np.concatenate(
            [np.full(c, k, np.int64) for k, c in enumerate(counts)] or [np.zeros(0, np.int64)]
        )
        indices = np.concatenate(
            [np.arange(start_index, start_index + c, dtype=np.int64) for c in counts]
            or [np.zeros(0, np.int64)]
        )
    else:
        labels = None
        indices = np.arange(start_index, start_index + n, dtype=np.int64)
    total = len(indices)
    n_seg = meta.n_segments
    images = np.empty((total, res, res), dtype=np.float32)
    masks = np.zeros((total, res, res), dtype=np.uint8) if n_seg > 0 else None
    ch = meta.channels
    for start in range(0, total, batch_size):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        batch = indices[start : start + batch_size]
        cls = labels[start : start + batch_size] if labels is not None else None
        z = torch.from_numpy(sample_noise(seed, batch, model.z_dim, cls)).to(dev)
        with torch.inference_mode():
            if cls is not None:
                out = model.module(z, torch.from_numpy(cls).to(dev)).float()
            else:
                out = model.module(z).float()
        images[start : start + len(batch)] = out[:, 0].clamp(-1.0, 1.0).cpu().numpy()
        if masks is not None:
            masks[start : start + len(batch)] = channels_to_masks(out[:, ch:]).cpu().numpy()
        if progress is not None:
            progress(start + len(batch), total)
    window = Window.coerce(meta.window)
    log.info("Generated %d samples (seed %d) at %dx%d on %s.", total, seed, res, res, dev)
    return GeneratedSet(
        images=images,
        modality=to_modality(images, window),
        seed=seed,
        indices=indices,
        window=window,
        metadata={
            "recipe": meta.recipe,
            "resolution": res,
            "modality": meta.modality,
            "step": meta.step,
        },
        labels=labels,
        class_names=class_names,
        masks=masks,
        segment_names=tuple(meta.segments) if masks is not None else (),
        segment_colours=tuple(tuple(c) for c in meta.segment_colours) if masks is not None else (),
    )


__all__ = [
    "GeneratedSet",
    "class_counts",
    "GeneratorModel",
    "generate",
    "load_generator",
    "sample_noise",
    "to_modality",
]
