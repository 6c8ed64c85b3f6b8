"""The ``paired`` recipe: the generator draws an image and its mask, the discriminator judges both.

Networks in :mod:`medgan.models.labelled` (one mask channel per segment); with
``n_classes`` > 1 the pairs are class-conditional too. Training defaults are the ``default``
recipe's small-data set (docs/recipes.md).
"""

from __future__ import annotations

from torch import nn

from medgan.models.labelled import DEFAULT_WIDTH, MAX_SEGMENTS
from medgan.models.labelled_build import LABELLED_LAYOUT, build_labelled


def build(
    resolution: int,
    *,
    z_dim: int = 128,
    channels: int = 1,
    width: int = DEFAULT_WIDTH,
    n_classes: int = 1,
    n_segments: int = 1,
    d_block: str = "half",
    d_image: bool = True,
    mask_first: bool = False,
    g_noise: bool = True,
    labelled_layout: int = LABELLED_LAYOUT,
) -> tuple[nn.Module, nn.Module]:
    """Build the image + mask pair (``n_segments`` between 1 and 8)."""
    if not 1 <= int(n_segments) <= MAX_SEGMENTS:
        raise ValueError(f"The paired recipe needs 1 to {MAX_SEGMENTS} segments, got {n_segments}.")
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
