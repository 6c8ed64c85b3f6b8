"""Sample quality during training, and the best generator seen so far.

On a few hundred slices a GAN often makes its best samples early and then wanders: the
discriminator starts to memorize the small training set and pulls the generator around
(docs/benchmarks.md shows it). So the trainer measures, every ``quality_every`` steps, the
sliced Wasserstein distance (:mod:`medgan.metrics.swd`, ×1e3, lower is better) between samples
of the generator the model file would hold (the EMA one) from fixed noise and a fixed, seeded
subset of the training slices, and keeps a CPU copy of the networks at the lowest value. With
``keep_best`` the model file then holds that snapshot — the usual practice of selecting a GAN
checkpoint by a sample metric (e.g. StyleGAN2-ADA's FID snapshots), here without downloaded
weights.

Probing never draws from the training random streams, so a run trains the same weights with or
without it. Only probes at multiples of ``quality_every`` enter the saved state; the probe of a
run's last step is kept apart, so a stopped and resumed run selects exactly as a straight one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

METRIC = "swd_x1e3_vs_training_slices"
"""How the quality figure is defined (recorded in model files)."""

PROBE_DIR_REPEATS = 1
"""128 random directions per pyramid level instead of the metric's 4 × 128: a probe only ranks
snapshots of one run, and this is ~3× cheaper (64²: 128 vs 128 images differ by ~1 % from the
full metric)."""


@dataclass(frozen=True)
class Snapshot:
    """One measured generator state: its step and SWD."""

    step: int
    swd: float
    per_level: tuple[tuple[int, float], ...] = ()  # (level resolution, SWD), finest first


def _cpu_copy(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in module.state_dict().items()}


class QualityProbe:
    """Measures SWD of a generator's samples against training slices and keeps the best.

    Args:
        images: the training slices (N, R, R) in [-1, 1]; a seeded subset is the reference.
        n_samples: samples generated per probe, and the most reference slices used.
        z_dim: the generator's noise size.
        seed: the run's seed (noise and reference subset derive from it, apart from training).
        device: where the generator lives; the SWD runs there too.
    """

    def __init__(
        self,
        images: np.ndarray,
        *,
        n_samples: int,
        z_dim: int,
        seed: int,
        device: torch.device,
    ) -> None:
        rng = np.random.default_rng([seed, 0x5D])
        n_ref = min(n_samples, len(images))
        self.reference = np.ascontiguousarray(
            images[np.sort(rng.choice(len(images), n_ref, replace=False))]
        )
        noise = torch.Generator().manual_seed(seed + 0x5D)
        self.noise = torch.randn(n_samples, z_dim, generator=noise).to(device)
        self.device = device
        self.history: list[Snapshot] = []
        self.best: Snapshot | None = None
        self.best_state: dict[str, dict[str, torch.Tensor]] = {}
        self.final: Snapshot | None = None
        self.last_levels: tuple[tuple[int, float], ...] = ()

    # ------------------------------------------------------------------ measuring
    @torch.no_grad()
    def measure(self, generator: nn.Module) -> float:
        """SWD (×1e3) of the generator's samples from the fixed noise to the reference slices.

        Its per-level values are left in ``last_levels`` for the snapshot."""
        value, self.last_levels = self.measure_levels(generator)
        return value

    @torch.no_grad()
    def measure_levels(self, generator: nn.Module) -> tuple[float, tuple[tuple[int, float], ...]]:
        """SWD and its per-level values (the finest level shows missing texture first)."""
        from medgan.metrics.swd import sliced_wasserstein

        was_training = generator.training
        generator.eval()
        try:
            samples = torch.cat(
                [generator(z).float().clamp_(-1, 1)[:, 0] for z in self.noise.split(64)]
            )
        finally:
            generator.train(was_training)
        result = sliced_wasserstein(
            samples.cpu().numpy(),
            self.reference,
            seed=0,
            device=self.device.type,
            dir_repeats=PROBE_DIR_REPEATS,
        )
        levels = tuple((int(k), float(v)) for k, v in result.per_level.items())
        value = float(result.swd)
        return (value if math.isfinite(value) else math.inf), levels

    def probe(self, step: int, generator: nn.Module, discriminator: nn.Module) -> Snapshot:
        """A regular probe: recorded, and the networks copied when it is the best so far."""
        self.last_levels = ()
        swd = self.measure(generator)
        snap = Snapshot(step, swd, self.last_levels)
        self.history.append(snap)
        if self.best is None or snap.swd < self.best.swd:
            self.best = snap
            self.best_state = {"G": _cpu_copy(generator), "D": _cpu_copy(discriminator)}
        return snap

    def probe_final(self, step: int, generator: nn.Module) -> Snapshot:
        """The probe of the last step: compared with the best, never saved in checkpoints."""
        if self.history and self.history[-1].step == step:
            self.final = self.history[-1]
        else:
            self.last_levels = ()
            swd = self.measure(generator)
            self.final = Snapshot(step, swd, self.last_levels)
        return self.final

    def keeps_snapshot(self) -> bool:
        """Whether a stored snapshot beats the final state (so a model file should hold it)."""
        if self.best is None or not self.best_state:
            return False
        return self.final is None or self.best.swd < self.final.swd

    def selected(self) -> Snapshot | None:
        """The state a model file holds under ``keep_best``: the better of best and final."""
        if self.keeps_snapshot():
            return self.best
        return self.final or self.best

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """JSON part for checkpoints (the snapshot weights go in as modules)."""
        return {
            "history": [[s.step, s.swd] for s in self.history],
            "best": None if self.best is None else [self.best.step, self.best.swd],
        }

    def modules(self) -> dict[str, dict[str, torch.Tensor]]:
        """The best snapshot's weights for checkpoints: ``BEST_G`` and ``BEST_D``."""
        return {f"BEST_{k}": v for k, v in self.best_state.items()}

    def load_state_dict(
        self, state: dict[str, Any], modules: dict[str, dict[str, torch.Tensor]]
    ) -> None:
        self.history = [Snapshot(int(s), float(v)) for s, v in state.get("history", [])]
        best = state.get("best")
        self.best = None if best is None else Snapshot(int(best[0]), float(best[1]))
        self.best_state = {k: modules[f"BEST_{k}"] for k in ("G", "D") if f"BEST_{k}" in modules}
        if self.best is not None and len(self.best_state) != 2:
            self.best = None  # weights missing: the snapshot cannot be restored
        self.final = None
