"""Realism from the final discriminator: a model file, a loaded model or a torch module → logits.

The discriminator saved in the model file (``state["discriminator"]``) is rebuilt with the
recipe's network and loaded strictly; its logits, through a sigmoid, are the per-slice realism
probability of :func:`medgan.curate.score.score_samples`.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from medgan.core.device import resolve_device
from medgan.core.errors import Cancelled

RealismFn = Callable[[np.ndarray], np.ndarray]


def discriminator_realism(model: Any, *, device: str = "auto", batch_size: int = 256) -> RealismFn:
    """A function images (B, R, R) → discriminator logits (B,), from a model file or a module.

    ``model`` is a path to a model file, a loaded model (``medgan.models.modelfile.LoadedModel``, whose
    ``state["discriminator"]`` holds the final discriminator), or a ``torch.nn.Module``.
    """
    import torch

    dev = resolve_device(device)
    module = _discriminator_module(model).to(dev).eval()

    def fn(images: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for s in range(0, len(images), batch_size):
                x = torch.from_numpy(np.ascontiguousarray(images[s : s + batch_size]))
                logits = module(x[:, None].to(dev, torch.float32))
                out.append(logits.reshape(len(x), -1)[:, 0].float().cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, np.float32)

    return fn


def _discriminator_module(model: Any) -> Any:
    import torch

    if isinstance(model, torch.nn.Module):
        return model
    from medgan.core.errors import ModelFileError

    if isinstance(model, (str,)) or hasattr(model, "__fspath__"):
        from medgan.models.modelfile import load_model

        model = load_model(model)
    state = getattr(model, "state", None)
    meta = getattr(model, "metadata", None)
    if not state or "discriminator" not in state or meta is None:
        raise ModelFileError(
            "This model file holds no discriminator, so realism cannot be scored from it.",
            advice="Score without a discriminator (distance-based realism) or re-save the model.",
        )
    from medgan.models import build_models

    try:
        _, disc = build_models(
            meta.recipe,
            int(meta.resolution),
            z_dim=int(meta.z_dim),
            channels=int(meta.channels),
            **dict(meta.model_kwargs),
        )
    except (ValueError, TypeError) as exc:
        raise ModelFileError(f"Cannot rebuild the model's discriminator: {exc}") from exc
    try:
        disc.load_state_dict(state["discriminator"], strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise ModelFileError(
            f"The discriminator in this model file does not fit the {meta.recipe} network "
            f"({first}).",
            advice="The file was written by an incompatible version or was altered.",
        ) from exc
    return disc


def batched_logits(
    fn: RealismFn, images: np.ndarray, cancel: threading.Event | None, progress: Any
) -> np.ndarray:
    """``fn`` over ``images`` in batches of 256, with cancel and progress; (N,) float32."""
    out = []
    step = 256
    total = max(1, math.ceil(len(images) / step))
    for k, s in enumerate(range(0, len(images), step)):
        if cancel is not None and cancel.is_set():
            raise Cancelled("Scoring cancelled.")
        out.append(np.asarray(fn(images[s : s + step]), np.float32).reshape(-1))
        if progress is not None:
            progress(k + 1, total)
    return np.concatenate(out) if out else np.zeros(0, np.float32)
