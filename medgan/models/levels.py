"""Slice-level conditioning for the ``default`` recipe: the generator learns what each level of
a series looks like (skull base, ventricles, vertex), so it cannot draw only the commonest one.

A slice's level is where it lies between the first and the last slice of its series
(:mod:`medgan.dataset.positions`), in ``levels`` equal bins. The networks are the labelled
ones with the levels as classes (class-conditional normalization in G, a projection term in
D; :mod:`medgan.models.labelled`). The generator picks each sample's level itself from
``z[:, -1]`` and the levels' shares in the training set (the buffer ``level_freq``: set-level
shares, nothing about any one slice), in training as in generation — so it is called as an
unconditional generator, ``G(z)``, and a sample stays fixed by (seed, index) at any batch
size. ``level_of(z)`` tells the level it drew, for the discriminator.
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.models import MAX_LEVELS
from medgan.models.labelled import LabelledGenerator, ProjectionDiscriminator


def pick_by_last_coordinate(z: torch.Tensor, shares: torch.Tensor) -> torch.Tensor:
    """Indices (B,) into the last axis of ``shares`` ((K,) or (B, K), rows summing to 1): the
    inverse CDF at Φ(z[:, -1]), which is uniform for standard normal ``z``."""
    u = 0.5 * (1.0 + torch.erf(z[:, -1].float() / 2**0.5))
    rows = shares.float()
    if rows.dim() == 1:
        rows = rows.expand(z.shape[0], -1)
    cdf = rows.cumsum(dim=1)
    return (cdf < u.unsqueeze(1)).sum(dim=1).clamp(max=cdf.shape[1] - 1)


class LevelGenerator(nn.Module):
    """``z`` (B, z_dim) → (B, channels, R, R): a level drawn from ``z``, then its slice."""

    n_classes = 1  # called as an unconditional generator: ``forward(z)``
    level_freq: torch.Tensor  # (levels,) buffer: each level's share of the training slices

    def __init__(
        self,
        resolution: int,
        z_dim: int,
        channels: int,
        width: int,
        levels: int,
        g_noise: bool = True,
    ) -> None:
        super().__init__()
        if not 2 <= int(levels) <= MAX_LEVELS:
            raise ValueError(f"levels must be between 2 and {MAX_LEVELS}, got {levels}.")
        self.levels = int(levels)
        self.net = LabelledGenerator(
            resolution, z_dim, channels, width, n_classes=self.levels, g_noise=g_noise
        )
        self.z_dim, self.image_channels = z_dim, channels
        self.register_buffer("level_freq", torch.full((self.levels,), 1.0 / self.levels))

    def set_level_shares(self, levels: torch.Tensor) -> None:
        """Learn the levels' shares from the training slices' level bins (N,)."""
        counts = torch.bincount(levels.long().cpu(), minlength=self.levels)[: self.levels]
        if int(counts.sum()) == 0:
            raise ValueError("No slice levels to learn from.")
        freq = counts.double() / counts.sum()
        self.level_freq.copy_(freq.to(self.level_freq))

    def level_of(self, z: torch.Tensor) -> torch.Tensor:
        """The level (B,) each noise vector draws."""
        return pick_by_last_coordinate(z, self.level_freq)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Slices for ``z`` at their drawn levels, or at the levels ``y`` (B,) when given."""
        return self.net(z, self.level_of(z) if y is None else y)


def build(
    resolution: int,
    *,
    z_dim: int = 128,
    channels: int = 1,
    width: int = 16,
    d_block: str = "half",
    g_noise: bool = True,
    levels: int = 4,
) -> tuple[nn.Module, nn.Module]:
    """The ``default`` recipe's pair conditioned on ``levels`` slice-level bins."""
    return (
        LevelGenerator(resolution, z_dim, channels, width, levels, g_noise=g_noise),
        ProjectionDiscriminator(resolution, channels, width, int(levels), 0, d_block),
    )


def is_level_conditioned(module: nn.Module) -> bool:
    """Whether a generator draws slice levels (:class:`LevelGenerator`)."""
    return isinstance(module, LevelGenerator)
