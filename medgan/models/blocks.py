"""Layers shared by the recipes: spectral-norm convolutions, skip-layer excitation, init."""

from __future__ import annotations

import math

import torch
from torch import nn

from medgan.models import D_BLOCKS

SUPPORTED_RESOLUTIONS: tuple[int, ...] = (32, 64, 128, 256)
"""Square image sizes the recipes build for (32 is for quick tests and previews)."""


def check_resolution(resolution: int) -> int:
    """Return log2(resolution) after checking that the recipes support it."""
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(
            f"Unsupported resolution {resolution}; choose one of "
            f"{', '.join(str(r) for r in SUPPORTED_RESOLUTIONS)}."
        )
    return int(math.log2(resolution))


def sn_conv(
    in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = True
) -> nn.Module:
    """A Conv2d with spectral normalization (Miyato et al. 2018), one power iteration per step."""
    conv = nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=bias)
    return nn.utils.parametrizations.spectral_norm(conv)


def dcgan_init(module: nn.Module) -> None:
    """Weight init from the DCGAN paper: N(0, 0.02) for convs, N(1, 0.02) for norm scales."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, (nn.BatchNorm2d,)):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class PixelNorm(nn.Module):
    """Scale each pixel's feature vector to unit RMS (Karras et al. 2018, ProGAN).

    Unlike BatchNorm it needs no batch statistics, so a generator behaves the same in training
    and in eval mode, and its EMA copy needs no running statistics of its own.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)


def make_norm(kind: str, channels: int) -> nn.Module:
    """Generator feature normalization: "batch" (BatchNorm2d) or "pixel" (PixelNorm)."""
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "pixel":
        return PixelNorm()
    raise ValueError(f"Unknown normalization {kind!r}; choose 'batch' or 'pixel'.")


class GLU(nn.Module):
    """Gated linear unit over channels: a * sigmoid(b) (used by FastGAN's generator)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * torch.sigmoid(b)


class SkipExcitation(nn.Module):
    """Skip-layer excitation (Liu et al. 2021): low-res features gate high-res channels."""

    def __init__(self, low_ch: int, high_ch: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(
            nn.AdaptiveAvgPool2d(4),
            nn.Conv2d(low_ch, high_ch, 4, 1, 0, bias=False),
            nn.LeakyReLU(0.1),
            nn.Conv2d(high_ch, high_ch, 1, 1, 0, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return high * self.gate(low)


class ZNoise(nn.Module):
    """Per-pixel noise for a generator stage, a fixed function of ``z``.

    StyleGAN's noise inputs (Karras et al. 2019) give a generator a cheap source of stochastic
    detail — here CT grain — that it otherwise has to build out of its features. The noise map
    is a fixed random projection of ``z`` (rows ≈ orthogonal, so the pixels are ≈ independent
    N(0, 1)), not a second random stream: a sample stays a function of its ``z`` alone, so
    generation stays deterministic per seed and index whatever the batch. The projection is
    rebuilt from ``seed`` (not stored); the learned per-channel weights start at 0.
    """

    def __init__(self, z_dim: int, size: int, channels: int, seed: int) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        proj = torch.randn(size * size, z_dim, generator=gen) / math.sqrt(z_dim)
        self.register_buffer("proj", proj, persistent=False)
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.size = size

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        proj: torch.Tensor = self.proj  # type: ignore[assignment]
        noise = (z.to(proj.dtype) @ proj.T).view(z.shape[0], 1, self.size, self.size)
        return x + self.weight * noise.to(x.dtype)


class UpBlock(nn.Module):
    """Upsample ×2, 3×3 conv, BatchNorm, GLU (FastGAN-style generator stage).

    ``mode`` "nearest" is FastGAN's choice; "bilinear" interpolates, so the coarse layout is
    not copied into 2×2 blocks that later layers must learn to smooth away.
    """

    def __init__(self, in_ch: int, out_ch: int, mode: str = "nearest", norm: str = "batch") -> None:
        super().__init__()
        upsample = (
            nn.Upsample(scale_factor=2, mode="nearest")
            if mode == "nearest"
            else nn.Upsample(scale_factor=2, mode=mode, align_corners=False)
        )
        self.body = nn.Sequential(
            upsample,
            nn.Conv2d(in_ch, out_ch * 2, 3, 1, 1, bias=norm != "batch"),
            make_norm(norm, out_ch * 2),
            GLU(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SNDownBlock(nn.Module):
    """Residual spectral-norm downsampling block: two 3×3 convs + 1×1 shortcut, avg-pool ×½.

    ``conv_at`` "half": conv in→in, pool, conv in→out (the second conv at half resolution);
    "full": conv in→out, conv out→out, pool. Same receptive field, same output shape.
    """

    def __init__(self, in_ch: int, out_ch: int, conv_at: str = "half") -> None:
        super().__init__()
        if conv_at not in D_BLOCKS:
            raise ValueError(f"conv_at must be one of {', '.join(D_BLOCKS)}, got {conv_at!r}.")
        if conv_at == "half":
            self.main = nn.Sequential(
                sn_conv(in_ch, in_ch, 3, 1, 1),
                nn.LeakyReLU(0.2),
                nn.AvgPool2d(2),
                sn_conv(in_ch, out_ch, 3, 1, 1),
                nn.LeakyReLU(0.2),
            )
        else:
            self.main = nn.Sequential(
                sn_conv(in_ch, out_ch, 3, 1, 1),
                nn.LeakyReLU(0.2),
                sn_conv(out_ch, out_ch, 3, 1, 1),
                nn.LeakyReLU(0.2),
                nn.AvgPool2d(2),
            )
        self.skip = nn.Sequential(nn.AvgPool2d(2), sn_conv(in_ch, out_ch, 1, 1, 0, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.skip(x)) * (1.0 / math.sqrt(2.0))
