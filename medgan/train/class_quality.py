"""Per-class quality probes for class-conditional generators.

A conditional generator can be good on the majority class and poor on the minority one, and a
pooled SWD would hide it. So each probe draws, for every class, samples of that class from
fixed noise and measures their SWD (×1e3) against that class's own training slices (a fixed,
seeded subset); the probe's value — the one the best-checkpoint choice ranks — is the mean
over classes, so every class counts equally whatever its size. The per-class values travel in
the :class:`~medgan.train.events.QualityMeasured` event and in the model file's selection.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from medgan.train.quality import PROBE_DIR_REPEATS, QualityProbe, Snapshot

MIN_PER_CLASS_SAMPLES = 32


class ClassQualityProbe(QualityProbe):
    """:class:`QualityProbe` whose value is the mean of per-class SWDs.

    Args:
        images / labels: the training slices and their classes (int64 into ``class_names``).
        n_samples: samples per probe in all (at least 32 per class).
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        class_names: tuple[str, ...],
        *,
        n_samples: int,
        z_dim: int,
        seed: int,
        device: torch.device,
    ) -> None:
        super().__init__(images, n_samples=8, z_dim=z_dim, seed=seed, device=device)
        self.class_names = tuple(class_names)
        per = max(MIN_PER_CLASS_SAMPLES, n_samples // max(1, len(self.class_names)))
        rng = np.random.default_rng([seed, 0x5D, 1])
        self.references: list[np.ndarray] = []
        for k in range(len(self.class_names)):
            idx = np.flatnonzero(labels == k)
            take = np.sort(rng.choice(idx, min(per, len(idx)), replace=False))
            self.references.append(np.ascontiguousarray(images[take]))
        noise = torch.Generator().manual_seed(seed + 0x5D)
        self.noise = torch.randn(per, z_dim, generator=noise).to(device)
        self.last_per_class: dict[str, float] = {}
        self.per_class_history: dict[int, dict[str, float]] = {}

    @torch.no_grad()
    def measure(self, generator: nn.Module) -> float:
        """Mean over classes of SWD (×1e3) between class-k samples and class-k slices."""
        from medgan.metrics.swd import sliced_wasserstein

        was_training = generator.training
        generator.eval()
        values: dict[str, float] = {}
        try:
            for k, name in enumerate(self.class_names):
                parts = []
                for z in self.noise.split(64):
                    y = torch.full((len(z),), k, dtype=torch.long, device=z.device)
                    parts.append(generator(z, y).float().clamp_(-1, 1)[:, 0])
                value = sliced_wasserstein(
                    torch.cat(parts).cpu().numpy(),
                    self.references[k],
                    seed=0,
                    device=self.device.type,
                    dir_repeats=PROBE_DIR_REPEATS,
                ).swd
                values[name] = float(value) if math.isfinite(value) else math.inf
        finally:
            generator.train(was_training)
        self.last_per_class = values
        return float(np.mean(list(values.values()))) if values else math.inf

    def probe(self, step: int, generator: nn.Module, discriminator: nn.Module) -> Snapshot:
        snap = super().probe(step, generator, discriminator)
        self.per_class_history[step] = dict(self.last_per_class)
        return snap

    def probe_final(self, step: int, generator: nn.Module) -> Snapshot:
        snap = super().probe_final(step, generator)
        if step in self.per_class_history:
            self.last_per_class = dict(self.per_class_history[step])
        return snap

    def per_class_of(self, step: int) -> dict[str, float]:
        """Per-class SWD of a probed step ({} when unknown, e.g. after a resume)."""
        return dict(self.per_class_history.get(step, {}))
