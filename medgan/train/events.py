"""Typed events the trainer emits to plain callables (GUI, CLI progress bar, tests).

Only plain values and numpy arrays travel in events, never tensors, so a listener on another
thread can use them safely.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Union

import numpy as np


@dataclass(frozen=True)
class TrainStarted:
    total_steps: int | None  # None when the budget is a time limit
    time_limit_s: float | None
    start_step: int  # > 0 when resuming or continuing
    device: str  # e.g. "cuda:0 (NVIDIA H100, 80 GB)" or "cpu"
    n_images: int
    resolution: int
    recipe: str
    # Labelled recipes: the class table (names in index order, training slices per class)
    # and the mask segments; empty for image-only recipes.
    class_names: tuple[str, ...] = ()
    class_counts: tuple[int, ...] = ()
    segment_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class StepMetrics:
    """Emitted at most ~10 times per second (and on the last step)."""

    step: int
    total_steps: int | None
    g_loss: float
    d_loss: float
    d_real: float  # mean D(x) as a probability (sigmoid of the logit)
    d_fake: float  # mean D(G(z)) as a probability
    aug_p: float  # current augmentation probability (0 when off)
    img_per_s: float
    elapsed_s: float
    eta_s: float | None
    extra: dict[str, float] = field(default_factory=dict)  # e.g. r1, lr


@dataclass(frozen=True)
class SampleGrid:
    """Samples from a fixed noise batch, generator in eval/EMA mode."""

    step: int
    images: np.ndarray  # (N, H, W) float32 in [-1, 1]
    labels: np.ndarray | None = None  # int64 (N,): the class of each (one row per class)
    masks: np.ndarray | None = None  # uint8 (N, H, W): k > 0 = segment_names[k - 1]
    class_names: tuple[str, ...] = ()
    segment_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class QualityMeasured:
    """SWD (×1e3, lower is better) of the model generator's samples against training slices.

    Every ``quality_every`` steps and once at the end (``final``); ``best_*`` is the lowest so
    far, the state a model file holds when ``keep_best`` is on.
    """

    step: int
    swd: float
    best_step: int
    best_swd: float
    final: bool = False
    per_level: tuple[tuple[int, float], ...] = ()  # (level resolution, SWD), finest first
    # Class-conditional models: SWD per class name (``swd`` is their mean); {} otherwise.
    per_class: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class CheckpointSaved:
    step: int
    path: str


@dataclass(frozen=True)
class Paused:
    step: int


@dataclass(frozen=True)
class Resumed:
    step: int


@dataclass(frozen=True)
class TrainFinished:
    step: int
    elapsed_s: float
    checkpoint_path: str | None


@dataclass(frozen=True)
class TrainCancelled:
    step: int
    elapsed_s: float
    checkpoint_path: str | None  # saved on stop, so nothing is lost


@dataclass(frozen=True)
class TrainFailed:
    step: int
    message: str
    advice: str | None
    checkpoint_path: str | None  # the last good checkpoint


TrainEvent = Union[  # noqa: UP007 - a runtime alias; X | Y needs Python 3.10 objects at import
    TrainStarted,
    StepMetrics,
    SampleGrid,
    QualityMeasured,
    CheckpointSaved,
    Paused,
    Resumed,
    TrainFinished,
    TrainCancelled,
    TrainFailed,
]

EventListener = Callable[[TrainEvent], Any]
