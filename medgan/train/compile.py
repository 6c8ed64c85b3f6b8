"""Optional torch.compile of the networks, with a clean fall-back to eager mode.

Compilation can fail in ways that only show on the first backward pass (e.g. an inductor
stride assertion in ConvTranspose backward with channels_last on some torch versions). The
first compiled step therefore runs on a snapshot: if it raises, the snapshot is restored, the
networks go back to eager mode and the same step is run again, so the run is unaffected.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

import torch

from medgan.core.device import is_out_of_memory
from medgan.train.step import GanStep

log = logging.getLogger(__name__)


class StepRunner:
    """Calls the step function, compiled when possible."""

    def __init__(self, step_fn: GanStep, compiled: bool) -> None:
        self.step_fn = step_fn
        self.compiled = compiled
        self._verified = not compiled

    def _call(
        self, real: torch.Tensor, step: int, labels: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        if labels is None:  # image-only recipes: the step's own two-argument form
            return self.step_fn(real, step)
        return self.step_fn(real, step, labels)

    def run(
        self, real: torch.Tensor, step: int, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        if self._verified:
            return self._call(real, step, labels)
        snapshot = _snapshot(self.step_fn)
        try:
            out = self._call(real, step, labels)
            self._verified = True
            return out
        except Exception as exc:
            if is_out_of_memory(exc):
                raise
            log.warning(
                "torch.compile failed (%s: %s); continuing without compilation.",
                type(exc).__name__,
                str(exc).splitlines()[0] if str(exc) else "",
            )
            _restore(self.step_fn, snapshot)
            self.step_fn.G_fwd, self.step_fn.D_fwd = self.step_fn.G, self.step_fn.D
            self.compiled = False
            self._verified = True
            return self._call(real, step, labels)


def _snapshot(fn: GanStep) -> dict[str, Any]:
    snap: dict[str, Any] = {
        "G": copy.deepcopy(fn.G.state_dict()),
        "D": copy.deepcopy(fn.D.state_dict()),
        "opt_g": copy.deepcopy(fn.opt_g.state_dict()),
        "opt_d": copy.deepcopy(fn.opt_d.state_dict()),
        "gen": fn.gen.get_state(),
        "aug": fn.augment.state_dict(),
    }
    if fn.ema is not None:
        snap["EMA"] = copy.deepcopy(fn.ema.ema_model.state_dict())
    return snap


def _restore(fn: GanStep, snap: dict[str, Any]) -> None:
    fn.G.load_state_dict(snap["G"])
    fn.D.load_state_dict(snap["D"])
    fn.opt_g.load_state_dict(snap["opt_g"])
    fn.opt_d.load_state_dict(snap["opt_d"])
    fn.gen.set_state(snap["gen"])
    fn.augment.load_state_dict(snap["aug"], fn.device)
    if fn.ema is not None and "EMA" in snap:
        fn.ema.ema_model.load_state_dict(snap["EMA"])
    for p in list(fn.G.parameters()) + list(fn.D.parameters()):
        p.grad = None


def maybe_compile(step_fn: GanStep, enabled: bool) -> StepRunner:
    """Wrap G and D with ``torch.compile`` when asked and available; see module docstring."""
    if not enabled:
        return StepRunner(step_fn, compiled=False)
    if not hasattr(torch, "compile"):
        log.warning("torch.compile is not available in this PyTorch; running eagerly.")
        return StepRunner(step_fn, compiled=False)
    try:
        step_fn.G_fwd = torch.compile(step_fn.G)  # type: ignore[assignment]
        if step_fn.r1_gamma > 0:
            # AOTAutograd has no double backward, which the R1 penalty needs through D.
            log.info("R1 is on: compiling the generator only.")
        else:
            step_fn.D_fwd = torch.compile(step_fn.D)  # type: ignore[assignment]
    except Exception as exc:  # noqa: BLE001 - any failure means: run eagerly
        log.warning("torch.compile unavailable (%s); running eagerly.", exc)
        step_fn.G_fwd, step_fn.D_fwd = step_fn.G, step_fn.D
        return StepRunner(step_fn, compiled=False)
    return StepRunner(step_fn, compiled=True)
