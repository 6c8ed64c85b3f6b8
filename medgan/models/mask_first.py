"""Mask first, then the image painted for it: image + mask pairs in two stages.

One generator drawing image and mask channels side by side (joint synthesis, Bowles et al.
2018) did not learn the demo study's small lesions: its masks collapsed to empty or to a few
corner pixels, and the images did not show lesions where the masks were (docs/benchmarks.md,
"Labelled synthesis"). Label-map-conditioned synthesis splits the job (Shin et al. 2018, who
drew brain MR from label maps; Park et al. 2019, SPADE):

* a **mask generator** — a small :class:`LabelledGenerator` with mask channels only — draws,
  from ``z``, one *field* per segment: a smooth map whose positive part is the segment
  (:func:`mask_fields`: +d/``FIELD_REACH`` at d pixels inside it, −d/``FIELD_REACH`` at d pixels
  outside, −1 beyond the reach). A discriminator of its own judges fields alone, where an empty
  or misplaced mask is easy to tell from a real one, so masks cannot vanish for the image's
  sake. Fields, not hard masks: a hard mask generator's lesions hovered at the threshold (the
  strongest pre-activation stayed within ±0.03 of 0 for 250 steps, lesions blinked on and off);
  a field is a smooth image, where every pixel near a lesion tells G how to grow or move it;
* an **image generator** (the *painter*) draws the slice for a given mask: every up-sampling
  stage's normalized features take a per-pixel gain and bias from the mask at that stage's size
  (:class:`medgan.models.labelled.SpatialAffine`), and the mask also adds to the image's last
  pre-activation through a 3×3 convolution (zero at first). Without that direct path the
  painter of 32² test heads had not learnt to draw a lesion where its mask was after 250 steps
  (lesion −0.06 against −0.16 around it; real 0.9 against −0.2); with it, 97 % of the painted
  lesions are brighter than their surroundings by 0.3 or more.

In training the painter paints the **real batch's masks** (``forward(z, y, masks)``), so the
pair discriminator sees the same masks on both sides and can only judge whether the image fits
its mask; the mask generator learns against its own discriminator in the same step
(:class:`medgan.train.step.GanStep`). In generation ``forward(z, y)`` paints the mask
generator's masks: the output is ``(B, channels + n_segments, R, R)``, as joint synthesis.
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.models.labelled import (
    LabelledGenerator,
    ProjectionDiscriminator,
    channels_to_masks,
    masks_to_channels,
)

FIELD_REACH = 1.0 / 8
"""How far (share of the image side) a mask field rises from −1 to the segment's edge."""


def mask_fields(masks: torch.Tensor) -> torch.Tensor:
    """±1 mask channels (B, K, R, R) → fields in [−1, 1] whose positive part is the mask.

    Inside a segment the field is (chessboard) distance to its edge / reach, outside minus the
    distance to it, clipped to ±1 — computed by repeated 3×3 max-pooling, so it runs in the
    training step on whatever device. A channel without its segment is −1 everywhere.
    """
    reach = max(1, int(round(FIELD_REACH * masks.shape[-1])))
    inside = (masks > 0).to(masks.dtype)
    grow, shrink = inside, inside
    near_out = torch.zeros_like(inside)  # outside, at distance d ≤ reach: reach − d + 1
    deep_in = torch.zeros_like(inside)  # inside, at depth e (edge: 1): min(e − 1, reach)
    for _ in range(reach):
        grow = torch.nn.functional.max_pool2d(grow, 3, 1, 1)
        shrink = -torch.nn.functional.max_pool2d(-shrink, 3, 1, 1)
        near_out = near_out + grow
        deep_in = deep_in + shrink
    d_out = (reach + 1 - near_out).clamp(max=reach)  # distance to the segment, outside it
    depth = (deep_in + 1).clamp(max=reach)  # an edge pixel is 1 deep
    return torch.where(inside > 0, depth, -d_out) / reach


def fields_to_channels(fields: torch.Tensor) -> torch.Tensor:
    """Fields (B, K, R, R) → the ±1 channels of their integer masks (strongest > 0, else none)."""
    return masks_to_channels(channels_to_masks(fields.detach()), fields.shape[1]).to(fields.dtype)


def mask_width(width: int) -> int:
    """Base width of the mask networks: half the image networks', at least 8."""
    return max(8, int(width) // 2)


class MaskFirstGenerator(nn.Module):
    """``(z, y)`` → mask (mask generator), then image (painter): ``(B, C + K, R, R)``.

    ``g_noise`` and ``unit_mask_inputs`` are the painter's (:class:`LabelledGenerator`); the
    mask generator draws smooth fields and has no noise inputs.
    """

    def __init__(
        self,
        resolution: int,
        z_dim: int = 128,
        channels: int = 1,
        width: int = 16,
        n_classes: int = 1,
        n_segments: int = 1,
        g_noise: bool = False,
        unit_mask_inputs: bool = False,
    ) -> None:
        super().__init__()
        self.z_dim, self.image_channels = z_dim, channels
        self.n_classes, self.n_segments = n_classes, n_segments
        self.masker = LabelledGenerator(
            resolution, z_dim, 0, mask_width(width), n_classes, n_segments, hard_masks=False
        )
        head = self.masker.to_mask
        conv = head[0] if head is not None else None
        if isinstance(conv, nn.Conv2d) and conv.bias is not None:
            nn.init.constant_(conv.bias, -1.0)  # fields start at the background: no segment near
        self.painter = LabelledGenerator(
            resolution,
            z_dim,
            channels,
            width,
            n_classes,
            0,
            mask_inputs=n_segments,
            g_noise=g_noise,
            unit_mask_inputs=unit_mask_inputs,
        )

    def draw_fields(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The mask generator alone: one field per segment (B, K, R, R), > 0 inside it."""
        return self.masker(z, y)

    def forward(
        self, z: torch.Tensor, y: torch.Tensor | None = None, masks: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Images for ``masks`` (±1 channels), or for the mask generator's masks when None."""
        if masks is None:
            masks = fields_to_channels(self.masker(z, y))
        image = self.painter(z, y, masks.to(z.dtype))
        return torch.cat([image, masks.to(image.dtype)], dim=1)


class MaskFirstDiscriminator(ProjectionDiscriminator):
    """The pair discriminator (image alone, image with mask) plus a mask discriminator.

    ``forward`` is :class:`ProjectionDiscriminator`'s (columns: image, pair);
    :meth:`judge_fields` scores mask fields alone, for the mask generator's loss.
    """

    def __init__(
        self,
        resolution: int,
        channels: int = 1,
        width: int = 16,
        n_classes: int = 1,
        n_segments: int = 1,
        d_block: str = "half",
        d_image: bool = True,
    ) -> None:
        super().__init__(resolution, channels, width, n_classes, n_segments, d_block, d_image)
        self.mask_judge = ProjectionDiscriminator(
            resolution, n_segments, mask_width(width), n_classes, 0, d_block
        )

    def judge_fields(self, fields: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Logits (B,) of mask fields (B, K, R, R) alone."""
        return self.mask_judge(fields, y)


def is_mask_first(module: nn.Module) -> bool:
    """Whether a generator (or discriminator) is the two-stage, mask-first kind."""
    return isinstance(module, (MaskFirstGenerator, MaskFirstDiscriminator))
