"""The training loop: steps, events, cooperative stop/pause, checkpoints, failure handling.

The loop knows nothing about who listens: the GUI, the CLI progress bar and the tests all pass
a plain callable. Events carry floats and numpy arrays only.

Example::

    trainer = Trainer(TrainConfig.for_recipe("default", steps=500, checkpoint_dir="run"),
                      images, on_event=print, stop=threading.Event())
    result = trainer.run()          # TrainResult(status="finished", ...)
    state = trainer.model_state()   # {"generator": EMA G weights, "discriminator": D weights}
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan.core.device import amp_dtype, describe_device, is_out_of_memory, resolve_device
from medgan.core.errors import MedganError, TrainingError
from medgan.train import losses, setup, state
from medgan.train.augment import Augmenter
from medgan.train.checkpoint import (
    Checkpoint,
    data_fingerprint,
    load_checkpoint,
    save_checkpoint,
)
from medgan.train.config import TrainConfig
from medgan.train.events import (
    CheckpointSaved,
    EventListener,
    Paused,
    QualityMeasured,
    Resumed,
    SampleGrid,
    StepMetrics,
    TrainCancelled,
    TrainEvent,
    TrainFailed,
    TrainFinished,
    TrainStarted,
)
from medgan.train.quality import METRIC, QualityProbe
from medgan.train.step import EMA, GanStep

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    status: str  # "finished" | "cancelled" | "failed"
    step: int
    checkpoint_path: str | None
    message: str = ""
    advice: str | None = None
    elapsed_s: float = 0.0


class _Diverged(Exception):
    pass


def read_checkpoint_config(path: str | Path) -> TrainConfig:
    """The settings a checkpoint (file or run folder) was trained with, to resume the same run."""
    return TrainConfig.from_dict(load_checkpoint(path).meta["config"])


class Trainer:
    """Trains one recipe on ``images`` (float32 (N, R, R) in [-1, 1]); see module docstring."""

    def __init__(
        self,
        config: TrainConfig,
        images: np.ndarray,
        *,
        on_event: EventListener | None = None,
        stop: threading.Event | None = None,
        pause: threading.Event | None = None,
        init_model: dict[str, Any] | None = None,
        resume_from: str | Path | None = None,
    ) -> None:
        self.config = config
        self.images = setup.check_images(images, config)
        self._listener = on_event
        self._listener_errors = 0
        self.stop_event = stop or threading.Event()
        self.pause_event = pause
        self.device = resolve_device(config.device)
        self.device_text = describe_device(self.device)
        self.fingerprint = data_fingerprint(self.images)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(config.seed)

        G, D = setup.build_networks(config, self.device)
        lr_scale = 1.0
        if init_model is not None and resume_from is None:
            setup.load_init_model(G, D, init_model, config)
            lr_scale = config.finetune_lr_scale
        elif init_model is not None:
            log.info("Resuming: the starting model is ignored, the checkpoint has the weights.")
        frozen = setup.freeze_blocks(D, config.freeze_d_blocks)
        ema_model = setup.make_ema(G, config)
        opt_g, opt_d = setup.make_optimizers(G, D, config, lr_scale)
        self.G, self.D, self.G_ema = G, D, ema_model
        self.augmenter = Augmenter(
            config.augment,
            p=config.augment_p,
            target=config.ada_target,
            interval=config.ada_interval,
            speed_images=config.ada_speed_images,
            p_max=config.ada_p_max,
            batch_size=config.batch_size,
        )
        self.step_fn = GanStep(
            G=G,
            D=D,
            opt_g=opt_g,
            opt_d=opt_d,
            augmenter=self.augmenter,
            loss=config.loss,
            z_dim=config.z_dim,
            device=self.device,
            generator=self.gen,
            amp_dtype=amp_dtype(self.device, config.amp),
            channels_last=config.channels_last,
            r1_gamma=config.r1_gamma,
            r1_every=config.r1_every,
            label_smoothing=config.label_smoothing,
            lecam=losses.LeCam(config.lecam_decay) if config.lecam_weight > 0 else None,
            lecam_weight=config.lecam_weight,
            ema=EMA(G, ema_model, config.ema_decay, config.ema_rampup)
            if ema_model is not None
            else None,
            frozen_d=frozen,
        )
        self.quality = (
            QualityProbe(
                self.images,
                n_samples=config.quality_samples,
                z_dim=config.z_dim,
                seed=config.seed,
                device=self.device,
            )
            if config.quality_every > 0
            else None
        )
        self.step = 0
        self.last_checkpoint: str | None = None
        if resume_from is not None:
            state.restore(self, load_checkpoint(resume_from))
        self.start_step = self.step
        self._data = self._place_data()
        noise_gen = torch.Generator().manual_seed(config.seed + 1)
        self.fixed_noise = torch.randn(config.n_samples, config.z_dim, generator=noise_gen).to(
            self.device
        )

    # ------------------------------------------------------------------ state
    @property
    def model_generator(self) -> torch.nn.Module:
        """The generator a model file holds: the EMA one, or G without EMA."""
        return self.G_ema if self.G_ema is not None else self.G

    def model_state(self) -> dict[str, dict[str, torch.Tensor]]:
        """CPU copies of the generator and discriminator a model file should hold.

        That is the EMA generator (G without EMA) and D — or, with ``keep_best``, the snapshot
        with the best measured quality when it beats the final state (see :meth:`selection`).
        """
        if self.config.keep_best and self.quality is not None and self.quality.keeps_snapshot():
            return {
                "generator": {k: v.clone() for k, v in self.quality.best_state["G"].items()},
                "discriminator": {k: v.clone() for k, v in self.quality.best_state["D"].items()},
            }
        g = self.model_generator
        return {
            "generator": {
                k: v.detach().cpu().contiguous().clone() for k, v in g.state_dict().items()
            },
            "discriminator": {
                k: v.detach().cpu().contiguous().clone() for k, v in self.D.state_dict().items()
            },
        }

    def selection(self) -> dict[str, Any]:
        """Which state :meth:`model_state` returns and how it measured (for model metadata)."""
        info: dict[str, Any] = {"trained_steps": self.step, "selected_step": self.step}
        if self.quality is None:
            return info
        chosen = self.quality.selected() if self.config.keep_best else self.quality.final
        final = self.quality.final
        info.update(
            metric=METRIC,
            keep_best=self.config.keep_best,
            probe_every=self.config.quality_every,
            history=[[s.step, round(s.swd, 3)] for s in self.quality.history],
        )
        if final is not None:
            info["final_swd"] = round(final.swd, 3)
        if chosen is not None:
            info["selected_step"] = chosen.step
            info["selected_swd"] = round(chosen.swd, 3)
        return info

    def _checkpoint(self) -> Checkpoint:
        return state.capture(self)

    def _place_data(self) -> torch.Tensor:
        data = torch.from_numpy(self.images).unsqueeze(1)
        if self.device.type == "cpu":
            return data
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            if data.numel() * 4 > 0.25 * free:
                log.info("Training set kept in host memory (too large for the GPU).")
                return data.pin_memory()
        return data.to(self.device)

    # ------------------------------------------------------------------ events
    def _emit(self, event: TrainEvent) -> None:
        if self._listener is None:
            return
        try:
            self._listener(event)
        except Exception:  # a broken listener must not end the run, but must be visible
            self._listener_errors += 1
            if self._listener_errors <= 5:
                log.exception(
                    "Training event listener failed on %s (training goes on).", type(event).__name__
                )

    def _samples(self) -> np.ndarray:
        g = self.G_ema if self.G_ema is not None else self.G
        was_training = g.training
        g.eval()
        with torch.no_grad():  # full precision: previews are few and cheap
            out = g(self.fixed_noise).float().clamp_(-1, 1)
        g.train(was_training)
        return out[:, 0].cpu().numpy().astype(np.float32)

    def _save(self) -> str | None:
        if self.config.checkpoint_dir is None:
            return None
        path = save_checkpoint(
            self.config.checkpoint_dir, self._checkpoint(), keep=self.config.keep_checkpoints
        )
        self.last_checkpoint = str(path)
        self._emit(CheckpointSaved(step=self.step, path=str(path)))
        return str(path)

    # ------------------------------------------------------------------ loop
    def run(self) -> TrainResult:
        """Train until the step/time budget is spent, stop is set, or a failure occurs."""
        prev_det = torch.are_deterministic_algorithms_enabled()
        prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
        det_utils = getattr(torch.utils, "deterministic", None)
        prev_fill = getattr(det_utils, "fill_uninitialized_memory", None)
        if self.config.deterministic and self.device.type == "cpu":
            torch.use_deterministic_algorithms(True, warn_only=True)
            if prev_fill is not None:
                # NaN-filling every new tensor costs ~1 ms per allocation on CPU; the loop never
                # reads uninitialized memory, so results are identical without it.
                det_utils.fill_uninitialized_memory = False  # type: ignore[union-attr]
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True
        try:
            return self._run()
        finally:
            torch.use_deterministic_algorithms(prev_det, warn_only=prev_warn)
            if prev_fill is not None:
                det_utils.fill_uninitialized_memory = prev_fill  # type: ignore[union-attr]

    def _run(self) -> TrainResult:
        cfg = self.config
        self.start_step = self.step
        limit_s = cfg.minutes * 60.0 if cfg.minutes is not None else None
        self._emit(
            TrainStarted(
                total_steps=cfg.steps,
                time_limit_s=limit_s,
                start_step=self.start_step,
                device=self.device_text,
                n_images=int(self.images.shape[0]),
                resolution=cfg.resolution,
                recipe=cfg.recipe,
            )
        )
        from medgan.train.compile import maybe_compile

        compiled = maybe_compile(self.step_fn, cfg.compile)
        sync_every = 1 if self.device.type == "cpu" else 25
        finite = torch.ones((), dtype=torch.bool, device=self.device)
        last = {"t": 0.0, "step": self.step}
        out: dict[str, torch.Tensor] = {}
        t0 = time.perf_counter()
        try:
            self.step_fn.set_train()
            while True:
                if self.stop_event.is_set():
                    return self._cancelled(t0)
                if self.pause_event is not None and self.pause_event.is_set():
                    t0 = self._wait_while_paused(t0)
                    if self.stop_event.is_set():
                        return self._cancelled(t0)
                elapsed = time.perf_counter() - t0
                if (cfg.steps is not None and self.step >= cfg.steps) or (
                    limit_s is not None and elapsed >= limit_s
                ):
                    break
                idx = torch.randint(
                    0,
                    self._data.shape[0],
                    (cfg.batch_size,),
                    generator=self.gen,
                    device=self.gen.device,
                )
                real = self._data[idx.to(self._data.device)].to(self.device, non_blocking=True)
                out = compiled.run(real, self.step + 1)
                self.step += 1
                finite &= torch.isfinite(out["g_loss"]) & torch.isfinite(out["d_loss"])
                due_metrics = time.perf_counter() - t0 - last["t"] >= cfg.metrics_interval_s
                due_ckpt = cfg.checkpoint_dir is not None and self.step % cfg.checkpoint_every == 0
                due_sample = self.step % cfg.sample_every == 0
                if self.step % sync_every == 0 or due_metrics or due_ckpt or due_sample:
                    if not bool(finite):
                        raise _Diverged
                if due_metrics:
                    self._metrics(out, t0, last, limit_s)
                if due_sample:
                    self._emit(SampleGrid(step=self.step, images=self._samples()))
                if self.quality is not None and self.step % cfg.quality_every == 0:
                    self._probe(final=False)
                if due_ckpt:
                    self._save()
            if not bool(finite):
                raise _Diverged
            if out and last["step"] != self.step:
                self._metrics(out, t0, last, limit_s)
            if self.step % cfg.sample_every != 0:
                self._emit(SampleGrid(step=self.step, images=self._samples()))
            path = self.last_checkpoint
            if cfg.checkpoint_dir is not None and (
                self.step % cfg.checkpoint_every != 0 or path is None
            ):
                path = self._save()
            self._probe(final=True)
            elapsed = time.perf_counter() - t0
            self._emit(TrainFinished(step=self.step, elapsed_s=elapsed, checkpoint_path=path))
            return TrainResult(
                "finished",
                self.step,
                path,
                f"Finished {self.step} steps in {elapsed:.0f} s.",
                elapsed_s=elapsed,
            )
        except _Diverged:
            return self._failed(
                t0,
                f"Training diverged by step {self.step}: the losses became NaN or infinite.",
                "Lower the learning rates (lr_g, lr_d), e.g. halve them, or switch on the R1 "
                "penalty (r1_gamma); then resume from the last good checkpoint.",
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a TrainFailed event
            if is_out_of_memory(exc):
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                return self._failed(
                    t0,
                    f"Out of memory on {self.device_text} at step {self.step}.",
                    f"Lower the batch size (now {cfg.batch_size}, try {max(1, cfg.batch_size // 2)})"
                    f" or the resolution (now {cfg.resolution}), or choose a smaller recipe width.",
                )
            if isinstance(exc, MedganError):
                return self._failed(t0, exc.message, exc.advice)
            log.exception("Training failed at step %d", self.step)
            return self._failed(
                t0,
                f"Training failed at step {self.step}: {exc}",
                "See the log for details; resume from the last checkpoint.",
            )

    def _wait_while_paused(self, t0: float) -> float:
        """Block (no busy loop) until pause clears or stop is set; return the shifted t0."""
        assert self.pause_event is not None
        self._emit(Paused(step=self.step))
        began = time.perf_counter()
        while self.pause_event.is_set() and not self.stop_event.wait(0.05):
            pass
        if not self.stop_event.is_set():
            self._emit(Resumed(step=self.step))
        return t0 + (time.perf_counter() - began)  # paused time does not count

    def _metrics(
        self, out: dict[str, torch.Tensor], t0: float, last: dict[str, float], limit_s: float | None
    ) -> None:
        now = time.perf_counter() - t0
        steps_done = self.step - self.start_step
        window_steps = self.step - last["step"]
        window_t = max(1e-9, now - last["t"])
        img_s = window_steps * self.config.batch_size / window_t
        eta = None
        rate = steps_done / max(now, 1e-9)
        if self.config.steps is not None and rate > 0:
            eta = (self.config.steps - self.step) / rate
        if limit_s is not None:
            eta = min(eta, limit_s - now) if eta is not None else limit_s - now
        keys = list(out)
        values = dict(zip(keys, torch.stack([out[k].float() for k in keys]).tolist(), strict=True))
        extra = {
            "r1": values["r1"],
            "lr_g": float(self.step_fn.opt_g.param_groups[0]["lr"]),
            "lr_d": float(self.step_fn.opt_d.param_groups[0]["lr"]),
        }
        if self.augmenter.last_r is not None:
            extra["ada_r"] = float(self.augmenter.last_r)  # E[sign(D(real))], ADA's overfit gauge
        self._emit(
            StepMetrics(
                step=self.step,
                total_steps=self.config.steps,
                g_loss=values["g_loss"],
                d_loss=values["d_loss"],
                d_real=values["d_real"],
                d_fake=values["d_fake"],
                aug_p=self.augmenter.p,
                img_per_s=img_s,
                elapsed_s=now,
                eta_s=max(0.0, eta) if eta is not None and math.isfinite(eta) else None,
                extra=extra,
            )
        )
        last["t"], last["step"] = now, self.step

    def _cancelled(self, t0: float) -> TrainResult:
        path = self.last_checkpoint
        if self.config.checkpoint_dir is not None and (
            path is None or self.step != self._ckpt_step()
        ):
            path = self._save()
        self._probe(final=True)
        elapsed = time.perf_counter() - t0
        self._emit(TrainCancelled(step=self.step, elapsed_s=elapsed, checkpoint_path=path))
        return TrainResult(
            "cancelled", self.step, path, f"Stopped at step {self.step}.", elapsed_s=elapsed
        )

    def _probe(self, *, final: bool) -> None:
        """Measure sample quality (regular probe, or the transient one of the last step)."""
        if self.quality is None or self.step == 0:
            return
        g = self.model_generator
        if final:
            snap = self.quality.probe_final(self.step, g)
        else:
            snap = self.quality.probe(self.step, g, self.D)
        # At the end: the state a model file holds (so a tie names the last step, as saved).
        best = (self.quality.selected() if final else self.quality.best) or snap
        self._emit(
            QualityMeasured(
                step=snap.step,
                swd=snap.swd,
                best_step=best.step,
                best_swd=best.swd,
                final=final,
            )
        )

    def _ckpt_step(self) -> int | None:
        if self.last_checkpoint is None:
            return None
        try:
            return int(Path(self.last_checkpoint).stem.split("-")[1])
        except (IndexError, ValueError):
            return None

    def _failed(self, t0: float, message: str, advice: str | None) -> TrainResult:
        log.error("%s %s", message, advice or "")
        self._emit(
            TrainFailed(
                step=self.step, message=message, advice=advice, checkpoint_path=self.last_checkpoint
            )
        )
        return TrainResult(
            "failed",
            self.step,
            self.last_checkpoint,
            message,
            advice,
            elapsed_s=time.perf_counter() - t0,
        )


__all__ = ["Trainer", "TrainResult", "TrainingError", "read_checkpoint_config"]
