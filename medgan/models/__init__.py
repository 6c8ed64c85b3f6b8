"""GAN recipes: generator/discriminator pairs by name.

Importing this package does not import torch; :func:`build_models` does.

Example::

    from medgan.models import RECIPES, build_models
    G, D = build_models("default", 64)      # G(z: (B, 128)) → (B, 1, 64, 64); D(x) → (B,) logits
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

SUPPORTED_RESOLUTIONS: tuple[int, ...] = (32, 64, 128, 256)


@dataclass(frozen=True)
class Recipe:
    """What a recipe is, for menus and docs; ``module`` holds its ``build`` function."""

    name: str
    title: str
    description: str
    module: str
    default_width: int


RECIPES: dict[str, Recipe] = {
    "default": Recipe(
        name="default",
        title="Small-data (recommended)",
        description=(
            "FastGAN-like generator with skip-layer excitation, spectral-norm residual "
            "discriminator, non-saturating loss with LeCam, adaptive DiffAugment, long EMA "
            "generator, TTUR. "
            "Built for 100–5,000 grayscale slices."
        ),
        module="medgan.models.default",
        default_width=16,
    ),
    "dcgan": Recipe(
        name="dcgan",
        title="Classic DCGAN (reference)",
        description=(
            "Radford et al. 2015: transposed convolutions + BatchNorm + ReLU, Tanh; "
            "LeakyReLU discriminator; BCE losses; Adam 2e-4, beta1 0.5. Unstable on small data."
        ),
        module="medgan.models.dcgan",
        default_width=64,
    ),
}


def build_models(
    recipe: str,
    resolution: int,
    *,
    z_dim: int = 128,
    channels: int = 1,
    width: int | None = None,
    **kw: Any,
) -> tuple[nn.Module, nn.Module]:
    """Build ``(generator, discriminator)`` for a recipe at a square resolution.

    Args:
        recipe: a key of :data:`RECIPES`.
        resolution: one of :data:`SUPPORTED_RESOLUTIONS`.
        z_dim: noise size; the generator takes ``z`` of shape (B, z_dim).
        channels: image channels (1 for grayscale slices).
        width: base channel count; ``None`` uses the recipe's default.
    """
    if recipe not in RECIPES:
        raise ValueError(f"Unknown recipe {recipe!r}; choose one of {', '.join(RECIPES)}.")
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ValueError(
            f"Unsupported resolution {resolution}; choose one of "
            f"{', '.join(str(r) for r in SUPPORTED_RESOLUTIONS)}."
        )
    info = RECIPES[recipe]
    module = importlib.import_module(info.module)
    return module.build(
        resolution, z_dim=z_dim, channels=channels, width=width or info.default_width, **kw
    )


__all__ = ["RECIPES", "SUPPORTED_RESOLUTIONS", "Recipe", "build_models"]
