"""Building the training state: models, optimizers, EMA, initial weights, freezing, resume.

The loop in :mod:`medgan.train.trainer` only runs steps; everything that decides what the
networks start from lives here, including the compatibility checks with clear messages.
"""

from __future__ import annotations

import copy
import logging
import random
from typing import Any

import numpy as np
import torch
from torch import nn

from medgan.core.errors import DataError, ModelFileError, TrainingError
from medgan.dataset.positions import position_bins
from medgan.models.levels import is_level_conditioned
from medgan.models.mask_first import MaskFirstGenerator, is_mask_first
from medgan.train.checkpoint import Checkpoint
from medgan.train.config import ARCHITECTURE_FIELDS, TrainConfig, TrainConfigError
from medgan.train.labelled import LabelledData
from medgan.train.paint_check import PaintCheck

log = logging.getLogger(__name__)

RESUME_MUST_MATCH = (*ARCHITECTURE_FIELDS, "freeze_d_blocks", "paint_check")


def check_images(images: Any, config: TrainConfig) -> np.ndarray:
    """Validate the training array: float32 (N, R, R), finite, within [-1, 1]."""
    if not isinstance(images, np.ndarray):
        raise DataError(f"Training images must be a NumPy array, got {type(images).__name__}.")
    r = config.resolution
    if images.ndim != 3 or images.shape[1:] != (r, r) or images.shape[0] < 1:
        raise DataError(
            f"Training images have shape {images.shape}; expected (N, {r}, {r}) for the chosen "
            f"resolution {r}.",
            advice="Rebuild the training set at this resolution or change the resolution.",
        )
    if images.dtype != np.float32:
        images = images.astype(np.float32)
    lo, hi = float(np.min(images)), float(np.max(images))
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise DataError(
            "Training images contain NaN or infinite values.",
            advice="Rebuild the training set; some slices did not decode cleanly.",
        )
    if lo < -1.001 or hi > 1.001:
        raise DataError(
            f"Training images range over [{lo:.3g}, {hi:.3g}], not [-1, 1].",
            advice="Window the slices to [-1, 1] (the training-set builder does this).",
        )
    return images


def build_networks(
    config: TrainConfig, device: torch.device, model_kwargs: dict[str, Any] | None = None
) -> tuple[nn.Module, nn.Module]:
    """Build G and D with weights drawn from ``config.seed`` without touching global RNGs.

    ``model_kwargs``: extra recipe arguments (``n_classes``, ``n_segments`` of labelled data).
    """
    from medgan.models import build_models

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        G, D = build_models(
            config.recipe,
            config.resolution,
            z_dim=config.z_dim,
            channels=config.channels,
            width=config.width,
            **config.network_options(),
            **(model_kwargs or {}),
        )
    n_blocks = len(D.blocks)  # type: ignore[arg-type]
    if config.freeze_d_blocks >= n_blocks:
        raise TrainConfigError(
            f"freeze_d_blocks={config.freeze_d_blocks} would freeze the whole discriminator, "
            f"which has {n_blocks} blocks at {config.resolution}².",
            advice=f"Use at most {n_blocks - 1}.",
        )
    G, D = G.to(device), D.to(device)
    if config.channels_last:
        G = G.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        D = D.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    return G, D


def learn_segment_patterns(G: nn.Module, data: LabelledData) -> None:
    """A mask-first generator that draws segment patterns learns their shares (per class)
    from the training masks (:meth:`medgan.models.mask_first.MaskFirstGenerator.set_presence`);
    after any starting model's weights, so fine-tuning draws the new data's patterns."""
    if data.masks is None or not isinstance(G, MaskFirstGenerator):
        return
    labels = None if data.labels is None else torch.from_numpy(data.labels)
    G.set_presence(torch.from_numpy(data.masks), labels)


def learn_slice_levels(
    G: nn.Module, config: TrainConfig, slice_levels: np.ndarray | None, n_images: int
) -> np.ndarray | None:
    """A level-conditioned generator (``levels``) learns the levels' shares from the training
    slices' levels in their series (``TrainingSet.levels``); returns each slice's level bin, for
    D. Without levels (images given on their own) every slice counts as the middle level."""
    if not is_level_conditioned(G):
        return None
    if slice_levels is None:
        log.warning(
            "No slice levels were given: every slice counts as the middle of its series, so "
            "the generator learns no difference between levels."
        )
        slice_levels = np.full(n_images, 0.5, np.float32)
    slice_levels = np.asarray(slice_levels, np.float32)
    if slice_levels.shape != (n_images,):
        raise DataError(
            f"{len(slice_levels)} slice levels were given for {n_images} training images.",
            advice="Pass the training set's own levels (TrainingSet.levels).",
        )
    bins = position_bins(slice_levels, config.levels)
    G.set_level_shares(torch.from_numpy(bins))  # type: ignore[operator]
    return bins


def load_init_model(G: nn.Module, D: nn.Module, init: dict[str, Any], config: TrainConfig) -> None:
    """Copy a model's weights (``{"generator": sd, "discriminator": sd}``) into G and D."""
    if not isinstance(init, dict) or "generator" not in init:
        raise ModelFileError(
            "The starting model holds no generator weights.",
            advice="Choose a model file saved by MedGAN Studio.",
        )
    for key, want in (("recipe", config.recipe), ("resolution", config.resolution)):
        have = init.get(key, (init.get("metadata") or {}).get(key))
        if have is not None and have != want:
            raise ModelFileError(
                f"The starting model was trained with {key} {have!r}, but this run uses {want!r}.",
                advice=f"Set the {key} to {have!r} to fine-tune this model, or train from scratch.",
            )
    _load_state(G, init["generator"], "generator", config)
    if init.get("discriminator"):
        _load_state(D, init["discriminator"], "discriminator", config)
    else:
        log.warning("The starting model has no discriminator; it starts from scratch.")


def _load_state(module: nn.Module, state: dict[str, Any], what: str, config: TrainConfig) -> None:
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    hint = (
        f"Choose the recipe and resolution the model was trained with "
        f"(this run: recipe {config.recipe!r}, {config.resolution}², z_dim {config.z_dim})."
    )
    if missing or unexpected:
        example = (missing or unexpected)[0]
        raise ModelFileError(
            f"The starting model's {what} does not fit this run: {len(missing)} weight(s) "
            f"missing, {len(unexpected)} unexpected (e.g. {example!r}).",
            advice=hint,
        )
    for key, value in state.items():
        if tuple(value.shape) != tuple(own[key].shape):
            raise ModelFileError(
                f"The starting model's {what} weight {key!r} has shape {tuple(value.shape)}, "
                f"this run needs {tuple(own[key].shape)}.",
                advice=hint,
            )
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()})


def freeze_blocks(D: nn.Module, n: int) -> list[nn.Module]:
    """Freeze the first ``n`` discriminator blocks (FreezeD, Mo et al. 2020)."""
    frozen = list(D.blocks[:n]) if n else []  # type: ignore[index]
    for block in frozen:
        block.requires_grad_(False)
    return frozen


def make_paint_check(G: nn.Module, config: TrainConfig, device: torch.device) -> PaintCheck | None:
    """The paint check of mask-first pairs (``paint_check`` > 0; :mod:`medgan.train.paint_check`),
    learning at D's rate; None when off, or when the networks are not mask first (logged)."""
    if config.paint_check <= 0:
        return None
    if not is_mask_first(G):
        log.warning("paint_check applies to mask-first image + mask pairs only; ignored here.")
        return None
    betas = (float(config.betas[0]), float(config.betas[1]))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed + 1)
        return PaintCheck(
            channels=config.channels,
            n_segments=int(getattr(G, "n_segments", 0)),
            weight=config.paint_check,
            lr=config.lr_d,
            betas=betas,
            device=device,
        )


def make_optimizers(
    G: nn.Module, D: nn.Module, config: TrainConfig, lr_scale: float
) -> tuple[torch.optim.Optimizer, torch.optim.Optimizer]:
    """Adam for each network (TTUR: separate learning rates)."""
    betas = (float(config.betas[0]), float(config.betas[1]))
    opt_g = torch.optim.Adam(G.parameters(), lr=config.lr_g * lr_scale, betas=betas)
    opt_d = torch.optim.Adam(
        [p for p in D.parameters() if p.requires_grad], lr=config.lr_d * lr_scale, betas=betas
    )
    return opt_g, opt_d


def make_ema(G: nn.Module, config: TrainConfig) -> nn.Module | None:
    if config.ema_decay <= 0:
        return None
    return copy.deepcopy(G)


def check_resume(ckpt: Checkpoint, config: TrainConfig) -> None:
    """Refuse to resume a checkpoint whose networks differ from this run's."""
    try:
        saved = TrainConfig.from_dict(ckpt.meta["config"])
    except (KeyError, TrainConfigError) as exc:
        raise TrainingError(f"Checkpoint {ckpt.path} has no usable settings ({exc}).") from exc
    ours, theirs = config.architecture(), saved.architecture()
    ours["freeze_d_blocks"], theirs["freeze_d_blocks"] = (
        config.freeze_d_blocks,
        saved.freeze_d_blocks,
    )
    ours["paint_check"], theirs["paint_check"] = config.paint_check > 0, saved.paint_check > 0
    diff = [k for k in RESUME_MUST_MATCH if ours[k] != theirs[k]]
    if diff:
        detail = ", ".join(f"{k} {theirs[k]!r} (now {ours[k]!r})" for k in diff)
        raise TrainingError(
            f"Checkpoint {ckpt.path} belongs to a different run: {detail}.",
            advice="Resume with the checkpoint's own settings (TrainConfig from the checkpoint).",
        )


def capture_rng(gen: torch.Generator) -> dict[str, Any]:
    return {
        "torch_cpu": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": gen.get_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng(rng: dict[str, Any], gen: torch.Generator) -> None:
    torch.set_rng_state(rng["torch_cpu"])
    if rng.get("cuda") and torch.cuda.is_available():
        states = rng["cuda"][: torch.cuda.device_count()]
        torch.cuda.set_rng_state_all(states)
    if rng.get("generator") is not None:
        try:
            gen.set_state(rng["generator"])
        except RuntimeError:  # saved on another device type (CUDA Philox vs CPU Mersenne)
            log.warning(
                "The checkpoint's random state is from another device; the resumed run "
                "continues with a fresh random stream."
            )
            gen.manual_seed(int(rng.get("fallback_seed", 0)))
    np.random.set_state(rng["numpy"])
    random.setstate(rng["python"])
