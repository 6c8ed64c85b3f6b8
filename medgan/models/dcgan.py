"""The classic DCGAN (Radford, Metz & Chintala 2015), kept faithful for reference and teaching.

Generator: z → 4×4 by a transposed convolution, then stride-2 transposed convolutions with
BatchNorm and ReLU that double the size up to the resolution, Tanh output.
Discriminator: stride-2 convolutions with LeakyReLU(0.2), BatchNorm on all but the first,
a final 4×4 convolution to one logit (the sigmoid lives in the loss, for numerical stability).
Weights start from N(0, 0.02) as in the paper.
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.models.blocks import check_resolution, dcgan_init


def _stage_channels(n_stages: int, width: int, cap: int = 8) -> list[int]:
    """Channels per stage from coarse to fine: width·8, width·4, …, width (capped at width·cap)."""
    return [width * min(cap, 2 ** (n_stages - 1 - i)) for i in range(n_stages)]


class DCGANGenerator(nn.Module):
    """z (B, z_dim) → image (B, channels, R, R) in [-1, 1]."""

    def __init__(
        self, resolution: int, z_dim: int = 128, channels: int = 1, width: int = 64
    ) -> None:
        super().__init__()
        n_stages = check_resolution(resolution) - 2  # 4×4 … R/2 × R/2
        chans = _stage_channels(n_stages, width)
        self.z_dim = z_dim
        blocks: list[nn.Module] = [
            nn.Sequential(
                nn.ConvTranspose2d(z_dim, chans[0], 4, 1, 0, bias=False),
                nn.BatchNorm2d(chans[0]),
                nn.ReLU(True),
            )
        ]
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            blocks.append(
                nn.Sequential(
                    nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.ReLU(True),
                )
            )
        blocks.append(
            nn.Sequential(nn.ConvTranspose2d(chans[-1], channels, 4, 2, 1, bias=False), nn.Tanh())
        )
        self.blocks = nn.ModuleList(blocks)
        dcgan_init(self)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = z.reshape(z.shape[0], -1, 1, 1)
        for block in self.blocks:
            x = block(x)
        return x


class DCGANDiscriminator(nn.Module):
    """image (B, channels, R, R) → logits (B,)."""

    def __init__(self, resolution: int, channels: int = 1, width: int = 64) -> None:
        super().__init__()
        n_stages = check_resolution(resolution) - 2  # R → R/2 … → 4×4
        chans = list(reversed(_stage_channels(n_stages, width)))
        blocks: list[nn.Module] = [
            nn.Sequential(
                nn.Conv2d(channels, chans[0], 4, 2, 1, bias=False), nn.LeakyReLU(0.2, inplace=True)
            )
        ]
        for cin, cout in zip(chans[:-1], chans[1:], strict=True):
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(cin, cout, 4, 2, 1, bias=False),
                    nn.BatchNorm2d(cout),
                    nn.LeakyReLU(0.2, inplace=True),
                )
            )
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Conv2d(chans[-1], 1, 4, 1, 0, bias=False)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x).reshape(-1)


def build(
    resolution: int, *, z_dim: int = 128, channels: int = 1, width: int = 64
) -> tuple[nn.Module, nn.Module]:
    """Build the DCGAN pair; ``width`` is the paper's ngf/ndf (64)."""
    return (
        DCGANGenerator(resolution, z_dim=z_dim, channels=channels, width=width),
        DCGANDiscriminator(resolution, channels=channels, width=width),
    )
