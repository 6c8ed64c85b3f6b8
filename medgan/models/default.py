"""The small-data recipe: a FastGAN-like generator and a spectral-norm residual discriminator.

Generator (after Liu et al. 2021, "FastGAN"): a 4×4 seed from z, then bilinear upsample + 3×3
conv + normalization + GLU stages, with skip-layer excitation (SLE) letting the 1/8-scale
features gate the channels of every stage from 32² up. Two departures from FastGAN, chosen
because they reach recognizable slices several times sooner on a CPU (docs/recipes.md):
pixel-wise feature normalization (ProGAN) instead of BatchNorm, and bilinear instead of
nearest upsampling. Discriminator: residual blocks whose convolutions all carry spectral
normalization (Miyato et al. 2018), LeakyReLU, average-pool downsampling with each block's
second convolution at half resolution (a quarter of the arithmetic of two full-resolution
convolutions; docs/recipes.md), and a 4×4 head to one logit. Channel widths stay small (``width`` 16 by default) so 64² trains in minutes on a laptop
CPU; raise ``width`` on a GPU.
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.models.blocks import (
    GLU,
    SkipExcitation,
    SNDownBlock,
    UpBlock,
    ZNoise,
    check_resolution,
    make_norm,
    sn_conv,
)

DEFAULT_WIDTH = 16
UPSAMPLE = "bilinear"  # FastGAN: "nearest"
NORM = "pixel"  # FastGAN: "batch"


def channels_at(size: int, width: int) -> int:
    """Feature channels at a spatial size: 8w at 4–8², halving each level up to a floor of 8."""
    factors = {4: 8.0, 8: 8.0, 16: 4.0, 32: 2.0, 64: 1.0, 128: 0.5, 256: 0.25}
    return max(8, int(width * factors[size]))


class FastGenerator(nn.Module):
    """z (B, z_dim) → image (B, channels, R, R) in [-1, 1].

    ``upsample`` ("bilinear" or "nearest") and ``norm`` ("pixel" or "batch") default to
    :data:`UPSAMPLE` and :data:`NORM`; the FastGAN originals stay available for comparison.
    """

    def __init__(
        self,
        resolution: int,
        z_dim: int = 128,
        channels: int = 1,
        width: int = DEFAULT_WIDTH,
        upsample: str | None = None,
        norm: str | None = None,
        g_noise: bool = False,
    ) -> None:
        super().__init__()
        levels = check_resolution(resolution)
        upsample, norm = upsample or UPSAMPLE, norm or NORM
        self.z_dim = z_dim
        self.sizes = [2**i for i in range(2, levels + 1)]  # 4, 8, …, R
        c4 = channels_at(4, width)
        self.seed = nn.Sequential(
            nn.ConvTranspose2d(z_dim, c4 * 2, 4, 1, 0, bias=norm != "batch"),
            make_norm(norm, c4 * 2),
            GLU(),
        )
        self.blocks = nn.ModuleList(
            UpBlock(channels_at(s // 2, width), channels_at(s, width), upsample, norm)
            for s in self.sizes[1:]
        )
        self.excite = nn.ModuleDict(
            {
                str(s): SkipExcitation(channels_at(s // 8, width), channels_at(s, width))
                for s in self.sizes
                if s >= 32
            }
        )
        self.noise = nn.ModuleDict(
            {
                str(s): ZNoise(z_dim, s, channels_at(s, width), seed=s)
                for s in self.sizes
                if s >= 32 and g_noise
            }
        )
        self.to_image = nn.Sequential(
            nn.Conv2d(channels_at(resolution, width), channels, 3, 1, 1), nn.Tanh()
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z.reshape(z.shape[0], -1)
        x = self.seed(z[:, :, None, None])
        feats = {4: x}
        for size, block in zip(self.sizes[1:], self.blocks, strict=True):
            x = block(x)
            if str(size) in self.excite:
                x = self.excite[str(size)](feats[size // 8], x)
            if str(size) in self.noise:
                x = self.noise[str(size)](x, z)
            feats[size] = x
        return self.to_image(x)


def sn_trunk(in_channels: int, resolution: int, width: int, d_block: str) -> nn.ModuleList:
    """The discriminator's blocks: a spectral-norm stem, then residual blocks from R² to 4²."""
    sizes = [2**i for i in range(check_resolution(resolution), 1, -1)]  # R, R/2, …, 4
    stem = nn.Sequential(
        sn_conv(in_channels, channels_at(resolution, width), 3, 1, 1), nn.LeakyReLU(0.2)
    )
    downs = [
        SNDownBlock(channels_at(s, width), channels_at(s // 2, width), d_block) for s in sizes[:-1]
    ]
    return nn.ModuleList([stem, *downs])


class SNDiscriminator(nn.Module):
    """image (B, channels, R, R) → logits (B,); every convolution spectrally normalized."""

    def __init__(
        self, resolution: int, channels: int = 1, width: int = DEFAULT_WIDTH, d_block: str = "half"
    ) -> None:
        super().__init__()
        self.blocks = sn_trunk(channels, resolution, width, d_block)
        c4 = channels_at(4, width)
        self.head = nn.Sequential(nn.LeakyReLU(0.2), sn_conv(c4, 1, 4, 1, 0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return self.head(x).reshape(-1)


def build(
    resolution: int,
    *,
    z_dim: int = 128,
    channels: int = 1,
    width: int = DEFAULT_WIDTH,
    d_block: str = "half",
    g_noise: bool = True,
) -> tuple[nn.Module, nn.Module]:
    """Build the small-data pair (``d_block``: :data:`medgan.models.D_BLOCKS`; ``g_noise``:
    per-pixel noise from ``z`` at 32² and up, :class:`~medgan.models.blocks.ZNoise`); with
    ``levels`` the recipe builds through :func:`medgan.models.levels.build` instead."""
    return (
        FastGenerator(resolution, z_dim=z_dim, channels=channels, width=width, g_noise=g_noise),
        SNDiscriminator(resolution, channels=channels, width=width, d_block=d_block),
    )
