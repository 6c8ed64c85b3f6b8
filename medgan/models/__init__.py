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

D_BLOCKS: tuple[str, ...] = ("half", "full")
"""Where a discriminator block's second convolution works: ``half`` (after the pooling, at half
resolution, as in StyleGAN2's discriminator: about a quarter of the arithmetic; the default) or
``full`` (both convolutions before the pooling: the layout of files written before the option
existed, :data:`LEGACY_D_BLOCK`). See docs/recipes.md."""
LEGACY_D_BLOCK = "full"
MAX_LEVELS = 10
"""Most slice-level bins the ``default`` recipe conditions on (``levels``, :mod:`medgan.models.levels`)."""
LEGACY_NETWORK_OPTIONS: dict[str, dict[str, Any]] = {
    "default": {"d_block": LEGACY_D_BLOCK, "g_noise": False, "levels": 0},
    "conditional": {
        "d_block": LEGACY_D_BLOCK,
        "d_image": False,
        "mask_first": False,
        "g_noise": False,
        "labelled_layout": 1,
    },
    "paired": {
        "d_block": LEGACY_D_BLOCK,
        "d_image": False,
        "mask_first": False,
        "g_noise": False,
        "labelled_layout": 1,
    },
}
"""Per recipe, its network options (the keys: a recipe has exactly these) and the values of model
files and settings written before the options existed (the layouts they hold), filled in when
such a file is read."""


@dataclass(frozen=True)
class Recipe:
    """What a recipe is, for menus and docs; ``module`` holds its ``build`` function."""

    name: str
    title: str
    description: str
    module: str
    default_width: int
    needs_labels: bool = False  # class-conditional: trains on slice labels (2–10 classes)
    needs_masks: bool = False  # draws masks: trains on image + mask pairs
    labelled: bool = False  # takes class labels and/or masks (n_classes, n_segments)


RECIPES: dict[str, Recipe] = {
    "default": Recipe(
        name="default",
        title="Small-data (recommended)",
        description=(
            "FastGAN-like generator with skip-layer excitation and noise inputs, "
            "spectral-norm residual discriminator, non-saturating loss with LeCam, adaptive "
            "DiffAugment, EMA generator, TTUR. "
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
    "conditional": Recipe(
        name="conditional",
        title="Class-conditional (labelled slices)",
        description=(
            "One generator for every class: class embedding and class-conditional "
            "normalization in G (BigGAN-style), projection discriminator (Miyato & Koyama "
            "2018), class-balanced sampling of real slices; the small-data tricks of the "
            "default recipe. 2–10 classes; with masks it draws class-conditional pairs."
        ),
        module="medgan.models.conditional",
        default_width=16,
        needs_labels=True,
        labelled=True,
    ),
    "paired": Recipe(
        name="paired",
        title="Image + mask pairs (segmentation)",
        description=(
            "The generator draws a slice and its mask (one channel per segment), the "
            "discriminator judges both (Bowles et al. 2018); geometric augmentation moves "
            "image and mask together; masks come out as integer labels. With labels the "
            "pairs are class-conditional too."
        ),
        module="medgan.models.paired",
        default_width=16,
        needs_masks=True,
        labelled=True,
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
    name = info.module
    if recipe == "default" and kw.get("levels"):  # conditioned on the slice's level
        name = "medgan.models.levels"
    else:
        kw.pop("levels", None)
    module = importlib.import_module(name)
    return module.build(
        resolution, z_dim=z_dim, channels=channels, width=width or info.default_width, **kw
    )


def auto_width(recipe: str, resolution: int, device_type: str) -> int:
    """The base width to train with when none is given: the recipe's CPU-sized default on a
    CPU, wider networks on a GPU (table in docs/recipes.md, "Capacity")."""
    info = RECIPES[recipe]
    if recipe == "dcgan" or device_type not in GPU_WIDTHS:
        return info.default_width
    return GPU_WIDTHS[device_type].get(resolution, info.default_width)


GPU_WIDTHS: dict[str, dict[int, int]] = {
    # base width per resolution on an accelerator (channels: 8w at 4–8², w at 64²)
    "cuda": {32: 32, 64: 64, 128: 64, 256: 48},
    "mps": {32: 32, 64: 32, 128: 32, 256: 24},
}


__all__ = [
    "GPU_WIDTHS",
    "RECIPES",
    "SUPPORTED_RESOLUTIONS",
    "Recipe",
    "auto_width",
    "build_models",
]
