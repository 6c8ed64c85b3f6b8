"""The training loop: a GAN step, then the hooks that are due; failures become results.

Every job around the step (stop/pause, budget, divergence guard, metrics, sample grids,
quality probes, checkpoints) is a hook (:mod:`medgan.train.hooks`, built-ins in
:mod:`medgan.train.handlers`); a library user adds their own with ``hooks=[...]`` or
:meth:`Trainer.add_hook`. The loop knows nothing about who listens: the GUI, the CLI progress
bar and the tests all pass a plain callable. Events carry floats and numpy arrays only.

Example::

    trainer = Trainer(TrainConfig.for_recipe("default", steps=500, checkpoint_dir="run"),
                      images, on_event=print, stop=threading.Event())
    result = trainer.run()          # TrainResult(status="finished", ...)
    state = trainer.model_state()   # {"generator": EMA G weights, "discriminator": D weights}
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medgan.core.device import amp_dtype, describe_device, is_out_of_memory, resolve_device
from medgan.core.errors import MedganError, TrainingError
from medgan.train import losses, setup
from medgan.train.augment import Augmenter
from medgan.train.checkpoint import Checkpoint, data_fingerprint, load_checkpoint
from medgan.train.class_quality import ClassQualityProbe
from medgan.train.config import TrainConfig, TrainConfigError
from medgan.train.events import (
    EventListener,
    SampleGrid,
    TrainCancelled,
    TrainEvent,
    TrainFailed,
    TrainFinished,
    TrainStarted,
)
from medgan.train.handlers import Checkpoints, Diverged, DivergenceGuard, default_hooks
from medgan.train.hooks import END_CANCELLED, Hook, HookLike, RunState, as_hook
from medgan.train.labelled import BatchSampler, grid_labels, prepare_labelled
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
    checkpoint_failures: int = 0  # writes that failed (disk full, read-only); the run went on


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
        hooks: Sequence[HookLike] = (),
        labels: np.ndarray | None = None,
        class_names: Sequence[str] = (),
        masks: np.ndarray | None = None,
        mask_known: np.ndarray | None = None,
        segment_names: Sequence[str] = (),
        slice_levels: np.ndarray | None = None,
    ) -> None:
        self.config = config
        # Labelled recipes: checked (clear refusals before any network) and the slices they
        # can learn from kept (medgan.train.labelled); image-only recipes ignore labels.
        self.labelled = prepare_labelled(
            config.recipe,
            setup.check_images(images, config),
            labels=labels,
            class_names=tuple(class_names),
            masks=masks,
            mask_known=mask_known,
            segment_names=tuple(segment_names),
            class_pairs=config.class_pairs,
        )
        self.images = self.labelled.images
        self._listener = on_event
        self._listener_errors = 0
        self.stop_event = stop or threading.Event()
        self.pause_event = pause
        self.device = resolve_device(config.device)
        self.device_text = describe_device(self.device)
        self.fingerprint = data_fingerprint(self.images)
        self.gen = torch.Generator(device=self.device)
        self.gen.manual_seed(config.seed)

        G, D = setup.build_networks(config, self.device, self.labelled.model_kwargs())
        lr_scale = 1.0
        if init_model is not None and resume_from is None:
            setup.load_init_model(G, D, init_model, config)
            lr_scale = config.finetune_lr_scale
        elif init_model is not None:
            log.info("Resuming: the starting model is ignored, the checkpoint has the weights.")
        setup.learn_segment_patterns(G, self.labelled)
        level_bins = setup.learn_slice_levels(G, config, slice_levels, len(self.images))
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
            image_channels=config.channels if self.labelled.n_segments else None,
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
            mode_seeking=config.mode_seeking,
            ema=EMA(G, ema_model, config.ema_decay, config.ema_rampup)
            if ema_model is not None
            else None,
            frozen_d=frozen,
            paint_check=setup.make_paint_check(G, config, self.device),
        )
        self.quality: QualityProbe | None = None
        if config.quality_every > 0 and self.labelled.labels is not None:
            self.quality = ClassQualityProbe(
                self.images,
                self.labelled.labels,
                self.labelled.class_names,
                n_samples=config.quality_samples,
                z_dim=config.z_dim,
                seed=config.seed,
                device=self.device,
            )
        elif config.quality_every > 0:
            self.quality = QualityProbe(
                self.images,
                n_samples=config.quality_samples,
                z_dim=config.z_dim,
                seed=config.seed,
                device=self.device,
            )
        self.step = 0
        self.last_checkpoint: str | None = None
        self.last_checkpoint_step: int | None = None
        if resume_from is not None:
            self.load_state_dict(load_checkpoint(resume_from))
        self.start_step = self.step
        self.guard = DivergenceGuard(self.device)
        self.hooks: list[Hook] = default_hooks(config, self.guard)
        for hook in hooks:
            self.add_hook(hook)
        self.run_state: RunState | None = None
        self._data = self._place_data()
        lab = self.labelled.labels
        self._labels = None if lab is None else torch.from_numpy(lab)
        if level_bins is not None:  # the real slices' levels, for D
            self._labels = torch.from_numpy(level_bins)
        self.sampler = (
            None
            if lab is None
            else BatchSampler(lab, len(self.images), balanced=config.balanced_classes)
        )
        noise_gen = torch.Generator().manual_seed(config.seed + 1)
        self.fixed_noise = torch.randn(config.n_samples, config.z_dim, generator=noise_gen).to(
            self.device
        )
        self.fixed_labels: torch.Tensor | None = None
        if lab is not None:
            grid = grid_labels(config.n_samples, self.labelled.n_classes)
            self.fixed_labels = torch.from_numpy(grid).to(self.device)

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
        if isinstance(self.quality, ClassQualityProbe):
            info["metric"] = "swd_x1e3_per_class_mean"
            step = chosen.step if chosen is not None else self.step
            per = self.quality.per_class_of(step) or dict(self.quality.last_per_class)
            info["per_class"] = {k: round(float(v), 3) for k, v in per.items()}
        return info

    def labelled_metadata(self) -> dict[str, Any]:
        """Class and segment tables for the model file ({} for image-only recipes)."""
        data = self.labelled
        if data.labels is None and data.masks is None:
            return {}
        return {
            **data.table(),
            "model_kwargs": data.model_kwargs(),
            "masks_from": self.config.recipe if data.masks is not None else "",
        }

    # ------------------------------------------------------------------ checkpoint state
    def state_dict(self) -> Checkpoint:
        """Everything needed to continue the run exactly: networks, optimizers, RNGs, etc."""
        modules = {"G": self.G.state_dict(), "D": self.D.state_dict()}
        if self.G_ema is not None:
            modules["EMA"] = self.G_ema.state_dict()
        if self.quality is not None:
            modules.update(self.quality.modules())
        lecam = self.step_fn.lecam
        optimizers = {"G": self.step_fn.opt_g.state_dict(), "D": self.step_fn.opt_d.state_dict()}
        if self.step_fn.paint_check is not None:
            modules["PaintCheck"], optimizers["PaintCheck"] = self.step_fn.paint_check.state()
        return Checkpoint(
            step=self.step,
            modules=modules,
            optimizers=optimizers,
            rng=setup.capture_rng(self.gen),
            meta={
                "config": self.config.to_dict(),
                "augment": self.augmenter.state_dict(),
                "quality": self.quality.state_dict() if self.quality is not None else None,
                "lecam": lecam.state_dict() if lecam is not None else None,
                "data_fingerprint": self.fingerprint,
                "labelled": {**self.labelled.table(), **self.labelled.model_kwargs()},
                "n_images": int(self.images.shape[0]),
                "device": self.device_text,
                "grad_scaler": None,  # bf16 needs no loss scaling
                "saved_at": time.time(),
            },
        )

    def load_state_dict(self, ckpt: Checkpoint) -> None:
        """Continue from ``ckpt`` (after checking it belongs to this run's networks)."""
        setup.check_resume(ckpt, self.config)
        saved = ckpt.meta.get("labelled") or {}
        have = self.labelled.model_kwargs()
        saved_kw = {k: saved[k] for k in ("n_classes", "n_segments") if k in saved}
        if saved_kw != have or saved.get("classes", []) != self.labelled.table()["classes"]:
            raise TrainConfigError(
                "The checkpoint was trained on other classes or masks than this training set "
                f"({saved.get('classes') or 'no classes'}, {saved.get('segments') or 'no masks'}).",
                advice="Resume with the same labels and masks, or start a new run.",
            )
        if ckpt.meta.get("data_fingerprint") != self.fingerprint:
            log.warning("Resuming on training images that differ from the checkpoint's.")
        self.G.load_state_dict(ckpt.modules["G"])
        self.D.load_state_dict(ckpt.modules["D"])
        if self.G_ema is not None:
            self.G_ema.load_state_dict(ckpt.modules.get("EMA") or ckpt.modules["G"])
        self.step_fn.opt_g.load_state_dict(ckpt.optimizers["G"])
        self.step_fn.opt_d.load_state_dict(ckpt.optimizers["D"])
        if self.step_fn.paint_check is not None:
            self.step_fn.paint_check.load(ckpt.modules["PaintCheck"], ckpt.optimizers["PaintCheck"])
        self.augmenter.load_state_dict(ckpt.meta.get("augment") or {"p": 0.0}, self.device)
        if self.step_fn.lecam is not None and ckpt.meta.get("lecam"):
            self.step_fn.lecam.load_state_dict(ckpt.meta["lecam"], self.device)
        if self.quality is not None and ckpt.meta.get("quality"):
            self.quality.load_state_dict(ckpt.meta["quality"], ckpt.modules)
        setup.restore_rng({**ckpt.rng, "fallback_seed": self.config.seed + ckpt.step}, self.gen)
        self.step = ckpt.step
        self.last_checkpoint = str(ckpt.path) if ckpt.path is not None else None
        self.last_checkpoint_step = ckpt.step
        log.info("Resumed from %s at step %d.", ckpt.path, ckpt.step)

    _checkpoint = state_dict  # the name older code and tests use

    def _place_data(self) -> torch.Tensor:
        data = self.labelled.real_tensor()  # (N, 1 + segments, R, R)
        if self.device.type == "cpu":
            return data
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            if data.numel() * 4 > 0.25 * free:
                log.info("Training set kept in host memory (too large for the GPU).")
                return data.pin_memory()
        return data.to(self.device)

    # ------------------------------------------------------------------ events and hooks
    def emit(self, event: TrainEvent) -> None:
        """Send ``event`` to the listener; a failing listener is logged, never fatal."""
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

    _emit = emit

    def add_hook(self, hook: HookLike, *, every: int | None = None) -> Hook:
        """Run ``hook`` (a :class:`~medgan.train.hooks.Hook` or ``fn(trainer, state)``) after
        every ``every`` steps, after the built-in hooks; returns the hook added."""
        added = as_hook(hook, every)
        self.hooks.append(added)
        return added

    def samples(self) -> np.ndarray:
        """The model generator's images from the fixed noise, (N, R, R) float32 in [-1, 1]."""
        return self._preview()[0]

    def _preview(self) -> tuple[np.ndarray, np.ndarray | None]:
        g = self.model_generator
        was_training = g.training
        g.eval()
        with torch.no_grad():  # full precision: previews are few and cheap
            if self.fixed_labels is None:
                out = g(self.fixed_noise).float()
            else:
                out = g(self.fixed_noise, self.fixed_labels).float()
        g.train(was_training)
        images = out[:, 0].clamp(-1, 1).cpu().numpy().astype(np.float32)
        masks = None
        if self.labelled.n_segments:
            from medgan.models.labelled import channels_to_masks

            masks = channels_to_masks(out[:, self.config.channels :]).cpu().numpy()
        return images, masks

    def sample_grid(self, step: int) -> SampleGrid:
        """The preview event: fixed noise, one row per class, masks when the model draws them."""
        images, masks = self._preview()
        labels = None if self.fixed_labels is None else self.fixed_labels.cpu().numpy()
        return SampleGrid(
            step=step,
            images=images,
            labels=labels,
            masks=masks,
            class_names=self.labelled.class_names,
            segment_names=self.labelled.segment_names,
        )

    _samples = samples

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
        """Step, then call the hooks that are due; every job lives in a hook."""
        cfg = self.config
        self.start_step = self.step
        limit_s = cfg.minutes * 60.0 if cfg.minutes is not None else None
        st = RunState(step=self.step, start_step=self.step, time_limit_s=limit_s)
        st.last_checkpoint, st.last_checkpoint_step = (
            self.last_checkpoint,
            self.last_checkpoint_step,
        )
        self.run_state = st
        self.emit(
            TrainStarted(
                total_steps=cfg.steps,
                time_limit_s=limit_s,
                start_step=self.start_step,
                device=self.device_text,
                n_images=int(self.images.shape[0]),
                resolution=cfg.resolution,
                recipe=cfg.recipe,
                class_names=self.labelled.class_names,
                class_counts=tuple(self.labelled.class_counts()),
                segment_names=self.labelled.segment_names,
            )
        )
        from medgan.train.compile import maybe_compile

        compiled = maybe_compile(self.step_fn, cfg.compile)
        guards = [h for h in self.hooks if h.guard]
        try:
            self.step_fn.set_train()
            st.t0 = time.perf_counter()
            for hook in self.hooks:
                hook.started(self, st)
            while st.end is None:
                for hook in self.hooks:
                    hook.before_step(self, st)
                if st.end is not None:
                    break
                real, y = self._next_batch()
                st.outputs = compiled.run(real, self.step + 1, y)
                self.step = st.step = self.step + 1
                self.guard.accumulate(st.outputs)
                due = [h for h in self.hooks if h.due(st)]
                if due:
                    for hook in guards + [h for h in due if not h.guard]:
                        hook.after_step(self, st)
                self._sync_checkpoint(st)
            for hook in self.hooks:
                hook.ended(self, st)
            self._sync_checkpoint(st)
            return self._result(st)
        except Diverged:
            return self._failed(
                st,
                f"Training diverged by step {self.step}: the losses became NaN or infinite.",
                "Lower the learning rates (lr_g, lr_d), e.g. halve them, or switch on the R1 "
                "penalty (r1_gamma); then resume from the last good checkpoint.",
            )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a TrainFailed event
            if is_out_of_memory(exc):
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                return self._failed(
                    st,
                    f"Out of memory on {self.device_text} at step {self.step}.",
                    f"Lower the batch size (now {cfg.batch_size}, try {max(1, cfg.batch_size // 2)})"
                    f" or the resolution (now {cfg.resolution}), or choose a smaller recipe width.",
                )
            if isinstance(exc, MedganError):
                return self._failed(st, exc.message, exc.advice)
            log.exception("Training failed at step %d", self.step)
            return self._failed(
                st,
                f"Training failed at step {self.step}: {exc}",
                "See the log for details; resume from the last checkpoint.",
            )

    def _next_batch(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A batch of real images (and their classes) drawn with the run's generator (so
        resuming repeats it); class-balanced when the config asks for it."""
        if self.sampler is not None:
            idx = self.sampler.draw(self.config.batch_size, self.gen)
        else:
            idx = torch.randint(
                0,
                self._data.shape[0],
                (self.config.batch_size,),
                generator=self.gen,
                device=self.gen.device,
            )
        real = self._data[idx.to(self._data.device)].to(self.device, non_blocking=True)
        if self._labels is None:
            return real, None
        return real, self._labels[idx.cpu()].to(self.device, non_blocking=True)

    def _sync_checkpoint(self, st: RunState) -> None:
        self.last_checkpoint, self.last_checkpoint_step = (
            st.last_checkpoint,
            st.last_checkpoint_step,
        )

    def checkpoint_failures(self) -> int:
        """How many checkpoint writes failed in this run (see :class:`handlers.Checkpoints`)."""
        return sum(h.failures for h in self.hooks if isinstance(h, Checkpoints))

    def _result(self, st: RunState) -> TrainResult:
        elapsed = st.elapsed()
        path = st.last_checkpoint if self.config.checkpoint_dir is not None else None
        failures = self.checkpoint_failures()
        if st.end == END_CANCELLED:
            self.emit(TrainCancelled(step=self.step, elapsed_s=elapsed, checkpoint_path=path))
            message = f"Stopped at step {self.step}."
        else:
            self.emit(TrainFinished(step=self.step, elapsed_s=elapsed, checkpoint_path=path))
            message = f"Finished {self.step} steps in {elapsed:.0f} s."
        if failures:
            message += f" {failures} checkpoint write(s) failed; the last complete one is {path}."
        return TrainResult(
            "cancelled" if st.end == END_CANCELLED else "finished",
            self.step,
            path,
            message,
            elapsed_s=elapsed,
            checkpoint_failures=failures,
        )

    def _failed(self, st: RunState, message: str, advice: str | None) -> TrainResult:
        log.error("%s %s", message, advice or "")
        self._sync_checkpoint(st)
        self.emit(
            TrainFailed(
                step=self.step, message=message, advice=advice, checkpoint_path=self.last_checkpoint
            )
        )
        return TrainResult(
            "failed", self.step, self.last_checkpoint, message, advice, elapsed_s=st.elapsed()
        )


__all__ = ["Trainer", "TrainResult", "TrainingError", "read_checkpoint_config"]
