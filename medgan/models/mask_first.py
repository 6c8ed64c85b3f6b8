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

With ``presence`` (labelled layout 3) the mask generator is told which segments each mask holds.
Unconditioned, it drew the common segments and dropped the rare ones (on the demo no
haemorrhage or tumour in 128 masks, against 12 % and 7.5 % of the real slices: a GAN's mode
dropping). Now a *pattern* (which of the K segments are present) is drawn for each sample from
the training masks' own pattern frequencies (per class); the mask generator draws its fields
for that pattern (absent segments are exactly background), and the mask discriminator's
projection term (Miyato & Koyama 2018) judges fields together with the pattern they are meant
to show — a real slice's with its own — so a requested segment that is missing is easy to
tell. The pattern follows from ``z`` (its last coordinate, through the normal CDF, picks it
from the cumulative frequencies), so a mask stays fixed by ``(seed, index, class)``. The
frequencies are a buffer of the generator (:meth:`MaskFirstGenerator.set_presence`), saved
with its weights: shares of patterns in the training set, nothing about any one slice.

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
from medgan.models.levels import pick_by_last_coordinate

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


def presence_of(channels: torch.Tensor) -> torch.Tensor:
    """±1 mask channels (B, K, R, R) → (B, K): 1 where the segment has a pixel, else 0."""
    return (channels > 0).flatten(2).any(dim=2).to(channels.dtype)


PRESENCE_DEPTH = 1
"""How deep (pixels) a requested segment must reach at least, for :func:`presence_shortfall`:
one pixel inside (a field's edge value), so the segment is there. Not more: the demo's subdural
crescents are one pixel thick on 96 % of their slices at 64², and a deeper minimum would
thicken them."""


def presence_shortfall(
    fields: torch.Tensor, presence: torch.Tensor, region: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean hinge ``relu(depth − peak)`` over the requested segments (``presence`` 1) of fields
    (B, K, R, R): 0 once each is :data:`PRESENCE_DEPTH` pixels deep (an edge pixel is 1 deep).
    ``region`` (K, R, R) 0/1: where each segment's peak is looked for (see
    :func:`segment_regions`); everywhere when None.

    The mask discriminator alone taught it too slowly: on 32² test heads a rare segment (11 %
    of the slices, about 20 pixels) was requested but still never drawn after 400 steps, its
    field's peak below 0. The hinge pulls up the peak of a requested segment only, so where and
    how it is drawn is still the discriminator's to judge. Looked for everywhere, the peak was
    often a corner pixel (the zero padding sets corners apart), and on the demo at 64² the
    generator learnt to answer every request with a speck in the image's corner.
    """
    reach = max(1, int(round(FIELD_REACH * fields.shape[-1])))
    if region is not None:
        fields = torch.where(region.to(torch.bool).unsqueeze(0), fields, -1.0)
    peak = fields.float().flatten(2).amax(dim=2)
    hinge = torch.relu(PRESENCE_DEPTH / reach - peak) * presence.float()
    return hinge.sum() / presence.float().sum().clamp(min=1.0)


def segment_regions(masks: torch.Tensor, n_segments: int) -> torch.Tensor:
    """(K, R, R) 0/1: where each segment lies in any of the integer masks (N, R, R), grown by
    half the field's reach (4 pixels at 64²); everywhere for a segment that never appears."""
    reach = max(1, int(round(FIELD_REACH * masks.shape[-1])))
    grow = max(1, reach // 2)
    ks = torch.arange(1, n_segments + 1, device=masks.device).view(-1, 1, 1, 1)
    seen = (masks.long().unsqueeze(0) == ks).any(dim=1).float()  # (K, R, R)
    region = torch.nn.functional.max_pool2d(seen.unsqueeze(1), 2 * grow + 1, 1, grow).squeeze(1)
    empty = region.flatten(1).amax(dim=1) == 0
    region[empty] = 1.0
    return region


def pattern_bits(n_segments: int) -> torch.Tensor:
    """(2**K, K) 0/1: in pattern ``i``, segment ``k`` is present iff bit ``k`` of ``i`` is set."""
    i = torch.arange(2**n_segments).unsqueeze(1)
    return ((i >> torch.arange(n_segments)) & 1).float()


def pattern_frequencies(
    masks: torch.Tensor, labels: torch.Tensor | None, n_classes: int, n_segments: int
) -> torch.Tensor:
    """(n_classes, 2**K): each segment pattern's share among a class's integer masks (N, R, R).

    A class without slices gets the shares of all slices.
    """
    ks = torch.arange(1, n_segments + 1, device=masks.device).view(1, -1, 1, 1)
    present = (masks.long().unsqueeze(1) == ks).flatten(2).any(dim=2).long()  # (N, K)
    index = (present << torch.arange(n_segments, device=masks.device)).sum(dim=1).cpu()
    cls = torch.zeros_like(index) if labels is None else labels.long().cpu()
    counts = torch.zeros(n_classes, 2**n_segments, dtype=torch.float64)
    counts.index_put_((cls, index), torch.ones(len(index), dtype=torch.float64), accumulate=True)
    overall = counts.sum(dim=0, keepdim=True)
    counts = torch.where(counts.sum(dim=1, keepdim=True) > 0, counts, overall)
    return (counts / counts.sum(dim=1, keepdim=True).clamp(min=1.0)).float()


def mask_width(width: int) -> int:
    """Base width of the mask networks: half the image networks', at least 8."""
    return max(8, int(width) // 2)


class MaskFirstGenerator(nn.Module):
    """``(z, y)`` → mask (mask generator), then image (painter): ``(B, C + K, R, R)``.

    ``g_noise`` and ``unit_mask_inputs`` are the painter's (:class:`LabelledGenerator`); the
    mask generator draws smooth fields and has no noise inputs. ``presence``: the mask
    generator draws the segment pattern :meth:`presence_for` picks (see the module's notes).
    """

    presence_freq: torch.Tensor  # (n_classes, 2**K) buffers, with ``presence``
    presence_bits: torch.Tensor  # (2**K, K)
    presence_region: torch.Tensor  # (K, R, R), for training only: not saved

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
        presence: bool = False,
    ) -> None:
        super().__init__()
        self.z_dim, self.image_channels = z_dim, channels
        self.n_classes, self.n_segments = n_classes, n_segments
        self.conditions_presence = bool(presence)
        self.masker = LabelledGenerator(
            resolution,
            z_dim,
            0,
            mask_width(width),
            n_classes,
            n_segments,
            hard_masks=False,
            presence_inputs=n_segments if presence else 0,
        )
        if presence:  # every pattern equally likely until set_presence sees the training masks
            uniform = torch.full((max(1, n_classes), 2**n_segments), 1.0 / 2**n_segments)
            self.register_buffer("presence_freq", uniform)
            self.register_buffer("presence_bits", pattern_bits(n_segments), persistent=False)
            region = torch.ones(n_segments, resolution, resolution)
            self.register_buffer("presence_region", region, persistent=False)
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

    @torch.no_grad()
    def set_presence(self, masks: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Learn the segment patterns' shares (per class) from the training set's integer
        masks (N, R, R) and classes (N,), and where each segment lies (for
        :func:`presence_shortfall` in training; not saved); a no-op without ``presence``."""
        if self.conditions_presence:
            if tuple(masks.shape[-2:]) != tuple(self.presence_region.shape[-2:]):
                side = self.presence_region.shape[-1]
                raise ValueError(
                    f"masks of {tuple(masks.shape[-2:])} px; this generator draws {side}²"
                )
            freq = pattern_frequencies(masks, labels, self.presence_freq.shape[0], self.n_segments)
            self.presence_freq.copy_(freq.to(self.presence_freq.device))
            region = segment_regions(masks, self.n_segments)
            self.presence_region.copy_(region.to(self.presence_region.device))

    def presence_for(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor | None:
        """(B, K) 0/1: the segments each sample's mask is to hold, picked by ``z[:, -1]``
        from its class's pattern frequencies; None without ``presence``."""
        if not self.conditions_presence:
            return None
        rows = self.presence_freq[0 if y is None else y.long()]
        index = pick_by_last_coordinate(z, rows)
        return self.presence_bits[index].to(z.dtype)

    def draw_fields(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The mask generator alone: one field per segment (B, K, R, R), > 0 inside it (with
        ``presence``: exactly −1 for the segments :meth:`presence_for` leaves out)."""
        presence = self.presence_for(z, y)
        fields = self.masker(z, y, presence=presence)
        if presence is None:
            return fields
        keep = presence[:, :, None, None].to(fields.dtype)
        return fields * keep - (1.0 - keep)

    def forward(
        self, z: torch.Tensor, y: torch.Tensor | None = None, masks: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Images for ``masks`` (±1 channels), or for the mask generator's masks when None."""
        if masks is None:
            masks = fields_to_channels(self.draw_fields(z, y))
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
        presence: bool = False,
    ) -> None:
        super().__init__(resolution, channels, width, n_classes, n_segments, d_block, d_image)
        self.mask_judge = ProjectionDiscriminator(
            resolution,
            n_segments,
            mask_width(width),
            n_classes,
            0,
            d_block,
            presence_inputs=n_segments if presence else 0,
        )

    def judge_fields(
        self,
        fields: torch.Tensor,
        y: torch.Tensor | None = None,
        presence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits (B,) of mask fields (B, K, R, R) alone, with the segments (B, K) each was
        meant to hold where the mask generator takes them (``presence``)."""
        return self.mask_judge.judge(fields, y, presence)


def is_mask_first(module: nn.Module) -> bool:
    """Whether a generator (or discriminator) is the two-stage, mask-first kind."""
    return isinstance(module, (MaskFirstGenerator, MaskFirstDiscriminator))
