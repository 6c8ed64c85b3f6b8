"""The training loop's extension points: a small run state and hooks called on a schedule.

In the style of ignite's event handlers and MONAI's ``train_handlers``: the loop in
:mod:`medgan.train.trainer` runs one GAN step at a time and calls each hook; every hook does
one job (metrics, sample grid, quality probe, checkpoint, divergence guard, time budget,
stop/pause). The built-in hooks live in :mod:`medgan.train.handlers`.

A library user adds a hook with ``Trainer(..., hooks=[...])`` or ``trainer.add_hook``::

    seen = []
    trainer.add_hook(lambda tr, state: seen.append(state.step), every=5)
    trainer.run()                   # seen == [5, 10, ...]

A hook receives the trainer (for its networks, :meth:`~medgan.train.trainer.Trainer.emit`,
:meth:`~medgan.train.trainer.Trainer.state_dict`) and the :class:`RunState`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import threading

    import numpy as np
    import torch

    from medgan.train.augment import Augmenter
    from medgan.train.checkpoint import Checkpoint
    from medgan.train.config import TrainConfig
    from medgan.train.events import SampleGrid, TrainEvent
    from medgan.train.quality import QualityProbe
    from medgan.train.step import GanStep

END_FINISHED = "finished"
END_CANCELLED = "cancelled"


class Trainer(Protocol):
    """What hooks may use of :class:`medgan.train.trainer.Trainer` (an interface, so that this
    module does not import the loop that imports it)."""

    config: TrainConfig
    step: int
    D: torch.nn.Module
    step_fn: GanStep
    augmenter: Augmenter
    quality: QualityProbe | None
    stop_event: threading.Event
    pause_event: threading.Event | None

    @property
    def model_generator(self) -> torch.nn.Module: ...

    def emit(self, event: TrainEvent) -> None: ...

    def samples(self) -> np.ndarray: ...

    def sample_grid(self, step: int) -> SampleGrid: ...

    def state_dict(self) -> Checkpoint: ...


@dataclass
class RunState:
    """What the loop knows about the run in progress; hooks read it and may set ``end``."""

    step: int
    start_step: int
    time_limit_s: float | None
    t0: float = field(default_factory=time.perf_counter)  # shifted forward by pauses
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)  # the last step's losses
    end: str | None = None  # set by a hook: END_FINISHED or END_CANCELLED
    last_checkpoint: str | None = None
    last_checkpoint_step: int | None = None  # kept as a number, never parsed from a file name

    def elapsed(self) -> float:
        """Training seconds so far (paused time excluded)."""
        return time.perf_counter() - self.t0


class Hook:
    """One job of the loop. Override what you need; ``every`` steps between ``after_step``.

    * ``started`` — once, before the first step;
    * ``before_step`` — before every step (may set ``state.end`` to end the run);
    * ``after_step`` — after a step, when :meth:`due` (default: every ``every`` steps);
    * ``ended`` — once when the run ends as finished or cancelled (not on failure).

    ``guard = True`` marks a hook that runs first whenever any other hook is due (the
    divergence guard: nothing reads the networks before their losses were checked).
    """

    every: int = 1
    guard: bool = False

    def started(self, trainer: Trainer, state: RunState) -> None:
        """Called once before the first step."""

    def before_step(self, trainer: Trainer, state: RunState) -> None:
        """Called before every step."""

    def due(self, state: RunState) -> bool:
        """Whether :meth:`after_step` runs after this step."""
        return self.every > 0 and state.step % self.every == 0

    def after_step(self, trainer: Trainer, state: RunState) -> None:
        """Called after a step when due."""

    def ended(self, trainer: Trainer, state: RunState) -> None:
        """Called once when the run ends (``state.end`` says how)."""


class CallableHook(Hook):
    """A plain ``fn(trainer, state)`` run every ``every`` steps."""

    def __init__(self, fn: Callable[[Trainer, RunState], Any], every: int = 1) -> None:
        if every < 1:
            raise ValueError(f"every must be at least 1, got {every}")
        self.fn = fn
        self.every = every

    def after_step(self, trainer: Trainer, state: RunState) -> None:
        self.fn(trainer, state)


HookLike = Hook | Callable[["Trainer", RunState], Any]


def as_hook(hook: HookLike, every: int | None = None) -> Hook:
    """A :class:`Hook` from a hook or a callable; ``every`` overrides the schedule."""
    if isinstance(hook, Hook):
        if every is not None:
            hook.every = every
        return hook
    if callable(hook):
        return CallableHook(hook, every or 1)
    raise TypeError(f"A hook must be a Hook or a callable, got {type(hook).__name__}.")


__all__ = ["CallableHook", "Hook", "RunState", "as_hook"]
