"""Full training state of a :class:`~medgan.train.trainer.Trainer` to and from a checkpoint."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from medgan.train import setup
from medgan.train.checkpoint import Checkpoint

if TYPE_CHECKING:
    from medgan.train.trainer import Trainer

log = logging.getLogger(__name__)


def capture(tr: Trainer) -> Checkpoint:
    """Everything needed to continue the run exactly: networks, optimizers, RNGs, augmentation."""
    modules = {"G": tr.G.state_dict(), "D": tr.D.state_dict()}
    if tr.G_ema is not None:
        modules["EMA"] = tr.G_ema.state_dict()
    if tr.quality is not None:
        modules.update(tr.quality.modules())
    return Checkpoint(
        step=tr.step,
        modules=modules,
        optimizers={"G": tr.step_fn.opt_g.state_dict(), "D": tr.step_fn.opt_d.state_dict()},
        rng=setup.capture_rng(tr.gen),
        meta={
            "config": tr.config.to_dict(),
            "augment": tr.augmenter.state_dict(),
            "quality": tr.quality.state_dict() if tr.quality is not None else None,
            "lecam": tr.step_fn.lecam.state_dict() if tr.step_fn.lecam is not None else None,
            "data_fingerprint": tr.fingerprint,
            "n_images": int(tr.images.shape[0]),
            "device": tr.device_text,
            "grad_scaler": None,  # bf16 needs no loss scaling
            "saved_at": time.time(),
        },
    )


def restore(tr: Trainer, ckpt: Checkpoint) -> None:
    """Load ``ckpt`` into a freshly built trainer (after checking it belongs to this run)."""
    setup.check_resume(ckpt, tr.config)
    if ckpt.meta.get("data_fingerprint") != tr.fingerprint:
        log.warning("Resuming on training images that differ from the checkpoint's.")
    tr.G.load_state_dict(ckpt.modules["G"])
    tr.D.load_state_dict(ckpt.modules["D"])
    if tr.G_ema is not None:
        tr.G_ema.load_state_dict(ckpt.modules.get("EMA") or ckpt.modules["G"])
    tr.step_fn.opt_g.load_state_dict(ckpt.optimizers["G"])
    tr.step_fn.opt_d.load_state_dict(ckpt.optimizers["D"])
    tr.augmenter.load_state_dict(ckpt.meta.get("augment") or {"p": 0.0}, tr.device)
    if tr.step_fn.lecam is not None and ckpt.meta.get("lecam"):
        tr.step_fn.lecam.load_state_dict(ckpt.meta["lecam"], tr.device)
    if tr.quality is not None and ckpt.meta.get("quality"):
        tr.quality.load_state_dict(ckpt.meta["quality"], ckpt.modules)
    setup.restore_rng({**ckpt.rng, "fallback_seed": tr.config.seed + ckpt.step}, tr.gen)
    tr.step = ckpt.step
    tr.last_checkpoint = str(ckpt.path)
    log.info("Resumed from %s at step %d.", ckpt.path, ckpt.step)
