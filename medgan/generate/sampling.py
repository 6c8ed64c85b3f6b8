"""Seeded sampling from a model file.

Each sample's noise depends only on ``(seed, index)``, so the same seed gives the same images
whatever the batch size, and ``start_index`` continues a set without repeating it. Samples come
back in [-1, 1] and in modality units through the window stored in the model file
(``center + v * width / 2``; e.g. Hounsfield units for CT). ``to_modality`` is
:func:`medgan.dicom.window.to_modality`, re-exported here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from medgan.core.device import resolve_device
from medgan.core.errors import Cancelled, ModelFileError
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


def sample_noise(seed: int, indices: np.ndarray, z_dim: int) -> np.ndarray:
    """Noise for each sample index, independent of how the indices are batched."""
    out = np.empty((len(indices), z_dim), dtype=np.float32)
    for row, index in enumerate(indices):
        rng = np.random.Generator(np.random.Philox(key=[int(seed) & (2**64 - 1), int(index)]))
        out[row] = rng.standard_normal(z_dim, dtype=np.float32)
    return out


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
) -> GeneratedSet:
    """Draw ``n`` samples with indices ``start_index … start_index + n - 1`` for ``seed``.

    Args:
        model: a loaded generator, a loaded model file or a path to one.
        batch_size: samples per forward pass (memory only; results do not depend on it).
        progress: ``progress(done, n)`` after each batch.
        cancel: set it to stop; raises :class:`medgan.core.errors.Cancelled`.
    """
    import torch

    if n < 0 or batch_size < 1:
        raise ValueError("n must be >= 0 and batch_size >= 1")
    if not isinstance(model, GeneratorModel):
        model = load_generator(model, device=device)
    dev = model.device if device == "auto" else resolve_device(device)
    if dev != model.device:
        model.module.to(dev)
        model.device = dev
    res = model.resolution
    indices = np.arange(start_index, start_index + n, dtype=np.int64)
    images = np.empty((n, res, res), dtype=np.float32)
    for start in range(0, n, batch_size):
        if cancel is not None and cancel.is_set():
            raise Cancelled()
        batch = indices[start : start + batch_size]
        z = torch.from_numpy(sample_noise(seed, batch, model.z_dim)).to(dev)
        with torch.inference_mode():
            out = model.module(z).float()[:, 0].clamp(-1.0, 1.0).cpu().numpy()
        images[start : start + len(batch)] = out
        if progress is not None:
            progress(start + len(batch), n)
    window = Window.coerce(model.metadata.window)
    log.info("Generated %d samples (seed %d) at %dx%d on %s.", n, seed, res, res, dev)
    return GeneratedSet(
        images=images,
        modality=to_modality(images, window),
        seed=seed,
        indices=indices,
        window=window,
        metadata={
            "recipe": model.metadata.recipe,
            "resolution": res,
            "modality": model.metadata.modality,
            "step": model.metadata.step,
        },
    )


__all__ = [
    "GeneratedSet",
    "GeneratorModel",
    "generate",
    "load_generator",
    "sample_noise",
    "to_modality",
]
