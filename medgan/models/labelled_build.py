"""Build a labelled recipe's networks: class-conditional, with masks drawn jointly or mask first.

The one place that picks between :mod:`medgan.models.labelled` (joint image + mask channels)
and :mod:`medgan.models.mask_first` (a mask, then the image painted for it); ``conditional``
and ``paired`` both build through :func:`build_labelled`.
"""

from __future__ import annotations

from torch import nn

from medgan.models.labelled import (
    DEFAULT_WIDTH,
    MAX_CLASSES,
    MAX_SEGMENTS,
    LabelledGenerator,
    ProjectionDiscriminator,
)
from medgan.models.mask_first import MaskFirstDiscriminator, MaskFirstGenerator


def build_labelled(
    resolution: int,
    *,
    z_dim: int = 128,
    channels: int = 1,
    width: int = DEFAULT_WIDTH,
    n_classes: int = 1,
    n_segments: int = 0,
    d_block: str = "half",
    d_image: bool = True,
    mask_first: bool = False,
) -> tuple[nn.Module, nn.Module]:
    """Build the pair; ``n_classes`` 1 is unconditional, ``n_segments`` 0 draws no masks;
    ``d_image``: D judges the image alone too (pairs only; :class:`ProjectionDiscriminator`);
    ``mask_first``: pairs in two stages, a mask then the image painted for it
    (:mod:`medgan.models.mask_first`; pairs only, ignored without masks)."""
    if not 1 <= int(n_classes) <= MAX_CLASSES:
        raise ValueError(f"n_classes must be between 1 and {MAX_CLASSES}, got {n_classes}.")
    if not 0 <= int(n_segments) <= MAX_SEGMENTS:
        raise ValueError(f"n_segments must be between 0 and {MAX_SEGMENTS}, got {n_segments}.")
    if mask_first and int(n_segments) > 0:
        return (
            MaskFirstGenerator(resolution, z_dim, channels, width, int(n_classes), int(n_segments)),
            MaskFirstDiscriminator(
                resolution, channels, width, int(n_classes), int(n_segments), d_block, d_image
            ),
        )
    return (
        LabelledGenerator(resolution, z_dim, channels, width, int(n_classes), int(n_segments)),
        ProjectionDiscriminator(
            resolution, channels, width, int(n_classes), int(n_segments), d_block, d_image
        ),
    )
