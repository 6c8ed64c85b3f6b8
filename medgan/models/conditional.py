"""The ``conditional`` recipe: a class-conditional generator and a projection discriminator.

Networks in :mod:`medgan.models.labelled`; 2–10 classes, optionally with masks
(``n_segments`` > 0: class-conditional image + mask pairs). Training defaults are the
``default`` recipe's small-data set (docs/recipes.md).
"""

from __future__ import annotations

from torch import nn

from medgan.models.labelled import DEFAULT_WIDTH, MAX_CLASSES
from medgan.models.labelled_build import LABELLED_LAYOUT, build_labelled


def build(
    resolution: int,
    *,
    z_dim: int = 128,
    channels: int = 1,
    width: int = DEFAULT_WIDTH,
    n_classes: int = 2,
    n_segments: int = 0,
    d_block: str = "half",
    d_image: bool = True,
    mask_first: bool = False,
    g_noise: bool = True,
    labelled_layout: int = LABELLED_LAYOUT,
) -> tuple[nn.Module, nn.Module]:
    """Build the class-conditional pair (``n_classes`` between 2 and 10)."""
    if not 2 <= int(n_classes) <= MAX_CLASSES:
        raise ValueError(
            f"The conditional recipe needs 2 to {MAX_CLASSES} classes, got {n_classes}."
        )
    return build_labelled(
        resolution,
        z_dim=z_dim,
        channels=channels,
        width=width,
        n_classes=n_classes,
        n_segments=n_segments,
        d_block=d_block,
        d_image=d_image,
        mask_first=mask_first,
        g_noise=g_noise,
        labelled_layout=labelled_layout,
    )
