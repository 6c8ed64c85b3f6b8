"""The built-in hooks of the training loop, one job each (see :mod:`medgan.train.hooks`).

Order matters and is fixed by :func:`default_hooks`: stop/pause and the budget decide before a
step whether there is one; after it the divergence guard checks the losses before the metrics,
sample grid, quality probe and checkpoint read the networks; at the end the checkpoint is
written before the last quality probe, as before the hooks existed.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING

import torch

from medgan.core.errors import TrainingError
from medgan.train.events import CheckpointSaved, Paused, QualityMeasured, Resumed
from medgan.train.events import StepMetrics as _StepMetrics
from medgan.train.hooks import END_CANCELLED, END_FINISHED, Hook, RunState, Trainer

if TYPE_CHECKING:
    from medgan.train.config import TrainConfig

log = logging.getLogger(__name__)


class Diverged(Exception):
    """The losses became NaN or infinite (the trainer turns this into a failed result)."""


class StopPause(Hook):
    """Ends the run as cancelled when stop is set; blocks (no busy loop) while paused."""

    every = 0  # works before steps only

    def before_step(self, trainer: Trainer, state: RunState) -> None:
        stop, pause = trainer.stop_event, trainer.pause_event
        if not stop.is_set() and pause is not None and pause.is_set():
            trainer.emit(Paused(step=state.step))
            began = time.perf_counter()
            while pause.is_set() and not stop.wait(0.05):
                pass
            state.t0 += time.perf_counter() - began  # paused time does not count
            if not stop.is_set():
                trainer.emit(Resumed(step=state.step))
        if stop.is_set():
            state.end = END_CANCELLED


class TimeBudget(Hook):
    """Ends the run as finished when the step budget or the time limit is spent."""

    every = 0

    def __init__(self, steps: int | None, limit_s: float | None) -> None:
        self.steps, self.limit_s = steps, limit_s

    def before_step(self, trainer: Trainer, state: RunState) -> None:
        if state.end is None and (
            (self.steps is not None and state.step >= self.steps)
            or (self.limit_s is not None and state.elapsed() >= self.limit_s)
        ):
            state.end = END_FINISHED


class DivergenceGuard(Hook):
    """Raises :class:`Diverged` once any loss is NaN/inf (checked without a sync per step on
    accelerators: the flag accumulates on the device and is read every ``every`` steps, and
    before any other hook reads the networks)."""

    guard = True

    def __init__(self, device: torch.device) -> None:
        self.every = 1 if device.type == "cpu" else 25
        self.finite = torch.ones((), dtype=torch.bool, device=device)

    def after_step(self, trainer: Trainer, state: RunState) -> None:
        if not bool(self.finite):
            raise Diverged

    def accumulate(self, outputs: dict[str, torch.Tensor]) -> None:
        self.finite &= torch.isfinite(outputs["g_loss"]) & torch.isfinite(outputs["d_loss"])

    def ended(self, trainer: Trainer, state: RunState) -> None:
        if state.end == END_FINISHED:
            self.after_step(trainer, state)


class Metrics(Hook):
    """:class:`StepMetrics` at most every ``interval_s`` seconds, and for the last step."""

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.interval_s = config.metrics_interval_s
        self.last_t = 0.0
        self.last_step = 0

    def started(self, trainer: Trainer, state: RunState) -> None:
        self.last_t, self.last_step = 0.0, state.step

    def due(self, state: RunState) -> bool:
        return state.elapsed() - self.last_t >= self.interval_s

    def after_step(self, trainer: Trainer, state: RunState) -> None:
        out, cfg = state.outputs, self.config
        now = state.elapsed()
        window_t = max(1e-9, now - self.last_t)
        img_s = (state.step - self.last_step) * cfg.batch_size / window_t
        rate = (state.step - state.start_step) / max(now, 1e-9)
        eta = (cfg.steps - state.step) / rate if cfg.steps is not None and rate > 0 else None
        if state.time_limit_s is not None:
            left = state.time_limit_s - now
            eta = min(eta, left) if eta is not None else left
        keys = list(out)
        values = dict(zip(keys, torch.stack([out[k].float() for k in keys]).tolist(), strict=True))
        step_fn = trainer.step_fn
        extra = {
            "r1": values["r1"],
            "lr_g": float(step_fn.opt_g.param_groups[0]["lr"]),
            "lr_d": float(step_fn.opt_d.param_groups[0]["lr"]),
        }
        if trainer.augmenter.last_r is not None:
            extra["ada_r"] = float(trainer.augmenter.last_r)  # E[sign(D(real))], ADA's gauge
        trainer.emit(
            _StepMetrics(
                step=state.step,
                total_steps=cfg.steps,
                g_loss=values["g_loss"],
                d_loss=values["d_loss"],
                d_real=values["d_real"],
                d_fake=values["d_fake"],
                aug_p=trainer.augmenter.p,
                img_per_s=img_s,
                elapsed_s=now,
                eta_s=max(0.0, eta) if eta is not None and math.isfinite(eta) else None,
                extra=extra,
            )
        )
        self.last_t, self.last_step = now, state.step

    def ended(self, trainer: Trainer, state: RunState) -> None:
        if state.end == END_FINISHED and state.outputs and self.last_step != state.step:
            self.after_step(trainer, state)


class SampleGrids(Hook):
    """A :class:`SampleGrid` from fixed noise every ``sample_every`` steps and at the end."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_step(self, trainer: Trainer, state: RunState) -> None:
        trainer.emit(trainer.sample_grid(state.step))

    def ended(self, trainer: Trainer, state: RunState) -> None:
        if state.end == END_FINISHED and state.step % self.every != 0:
            self.after_step(trainer, state)


class QualityProbes(Hook):
    """Every ``quality_every`` steps, and once at the end: SWD of the model generator."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_step(self, trainer: Trainer, state: RunState) -> None:
        self._probe(trainer, state, final=False)

    def ended(self, trainer: Trainer, state: RunState) -> None:
        self._probe(trainer, state, final=True)

    @staticmethod
    def _probe(trainer: Trainer, state: RunState, *, final: bool) -> None:
        quality = trainer.quality
        if quality is None or state.step == 0:
            return
        g = trainer.model_generator
        snap = (
            quality.probe_final(state.step, g) if final else quality.probe(state.step, g, trainer.D)
        )
        # At the end: the state a model file holds (so a tie names the last step, as saved).
        best = (quality.selected() if final else quality.best) or snap
        per_class = getattr(quality, "last_per_class", None) or {}
        trainer.emit(
            QualityMeasured(
                step=snap.step,
                swd=snap.swd,
                best_step=best.step,
                best_swd=best.swd,
                final=final,
                per_level=snap.per_level,
                per_class={k: round(float(v), 3) for k, v in per_class.items()},
            )
        )


class Checkpoints(Hook):
    """A checkpoint every ``every`` steps or ``minutes`` of training, whichever comes first,
    and when the run ends (finished or stopped) unless the last one has the same step.

    A failed write (disk full, read-only folder) is logged as a warning with advice and the
    run goes on: the previous checkpoint is left whole (writes are atomic), and the next
    interval tries again. ``failures`` counts them.
    """

    def __init__(self, directory: str, every: int, minutes: float | None, keep: int) -> None:
        self.directory, self.every, self.keep = directory, every, keep
        self.interval_s = minutes * 60.0 if minutes else None
        self.last_attempt_s = 0.0
        self.last_attempt_step: int | None = None
        self.failures = 0
        self.last_error: TrainingError | None = None

    def started(self, trainer: Trainer, state: RunState) -> None:
        self.last_attempt_s = state.elapsed()
        self.last_attempt_step = state.last_checkpoint_step

    def due(self, state: RunState) -> bool:
        if state.step % self.every == 0:
            return True
        return self.interval_s is not None and state.elapsed() - self.last_attempt_s >= (
            self.interval_s
        )

    def after_step(self, trainer: Trainer, state: RunState) -> None:
        self.save(trainer, state)

    def ended(self, trainer: Trainer, state: RunState) -> None:
        if self.last_attempt_step != state.step or (
            state.last_checkpoint is None and not self.failures
        ):
            self.save(trainer, state)

    def save(self, trainer: Trainer, state: RunState) -> str | None:
        """Write one checkpoint now; the path, or None when the write failed."""
        from medgan.train.checkpoint import save_checkpoint

        self.last_attempt_s, self.last_attempt_step = state.elapsed(), state.step
        try:
            path = save_checkpoint(self.directory, trainer.state_dict(), keep=self.keep)
        except TrainingError as exc:
            self.failures += 1
            self.last_error = exc
            kept = state.last_checkpoint or "none yet"
            log.warning(
                "Checkpoint at step %d not saved: %s %s Training goes on; the last complete "
                "checkpoint is %s.",
                state.step,
                exc.message,
                exc.advice or "",
                kept,
            )
            return None
        state.last_checkpoint, state.last_checkpoint_step = str(path), state.step
        trainer.emit(CheckpointSaved(step=state.step, path=str(path)))
        return str(path)


def default_hooks(cfg: TrainConfig, guard: DivergenceGuard) -> list[Hook]:
    """The built-in hooks for ``cfg``, in the order they run."""
    hooks: list[Hook] = [
        StopPause(),
        TimeBudget(cfg.steps, cfg.minutes * 60.0 if cfg.minutes is not None else None),
        guard,
        Metrics(cfg),
        SampleGrids(cfg.sample_every),
    ]
    if cfg.quality_every > 0:
        hooks.append(QualityProbes(cfg.quality_every))
    if cfg.checkpoint_dir is not None:
        hooks.append(
            Checkpoints(
                cfg.checkpoint_dir,
                cfg.checkpoint_every,
                cfg.checkpoint_minutes,
                cfg.keep_checkpoints,
            )
        )
    return hooks


__all__ = [
    "Checkpoints",
    "Diverged",
    "DivergenceGuard",
    "Metrics",
    "QualityProbes",
    "SampleGrids",
    "StopPause",
    "TimeBudget",
    "default_hooks",
]
