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

LABELLED_LAYOUT = 3
"""The labelled generators' layout: 3 draws mask-first masks for a segment pattern picked from
the training set's (``presence``, :mod:`medgan.models.mask_first`); 2 (format version 5) has
the ``default`` recipe's noise inputs (``g_noise``) and paints for masks given as 0/1
(:class:`LabelledGenerator`); 1 is the layout of model files and settings written before
(format version 4 and older), without either."""
LABELLED_LAYOUTS = (1, 2, 3)


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
    g_noise: bool = True,
    labelled_layout: int = LABELLED_LAYOUT,
) -> tuple[nn.Module, nn.Module]:
    """Build the pair; ``n_classes`` 1 is unconditional, ``n_segments`` 0 draws no masks;
    ``d_image``: D judges the image alone too (pairs only; :class:`ProjectionDiscriminator`);
    ``mask_first``: pairs in two stages, a mask then the image painted for it
    (:mod:`medgan.models.mask_first`; pairs only, ignored without masks); ``g_noise``: noise
    inputs in the image generator; ``labelled_layout``: :data:`LABELLED_LAYOUT` (2: files
    written before segment patterns; 1: before noise inputs and 0/1 mask inputs too)."""
    if not 1 <= int(n_classes) <= MAX_CLASSES:
        raise ValueError(f"n_classes must be between 1 and {MAX_CLASSES}, got {n_classes}.")
    if not 0 <= int(n_segments) <= MAX_SEGMENTS:
        raise ValueError(f"n_segments must be between 0 and {MAX_SEGMENTS}, got {n_segments}.")
    if int(labelled_layout) not in LABELLED_LAYOUTS:
        raise ValueError(
            f"labelled_layout must be one of {LABELLED_LAYOUTS}, got {labelled_layout}."
        )
    current = int(labelled_layout) >= 2
    presence = int(labelled_layout) >= 3
    noise = bool(g_noise) and current
    if mask_first and int(n_segments) > 0:
        return (
            MaskFirstGenerator(
                resolution,
                z_dim,
                channels,
                width,
                int(n_classes),
                int(n_segments),
                g_noise=noise,
                unit_mask_inputs=current,
                presence=presence,
            ),
            MaskFirstDiscriminator(
                resolution,
                channels,
                width,
                int(n_classes),
                int(n_segments),
                d_block,
                d_image,
                presence=presence,
            ),
        )
    return (
        LabelledGenerator(
            resolution, z_dim, channels, width, int(n_classes), int(n_segments), g_noise=noise
        ),
        ProjectionDiscriminator(
            resolution, channels, width, int(n_classes), int(n_segments), d_block, d_image
        ),
    )
