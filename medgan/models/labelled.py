"""Networks for labelled synthesis: class-conditional G and projection D, optional mask channels.

Generator: the ``default`` recipe's FastGAN-like stages (bilinear upsample, 3×3 conv,
PixelNorm, GLU, skip-layer excitation), made class-conditional the BigGAN way (Brock et al.
2019): a shared class embedding is concatenated to ``z`` at the 4×4 seed, and every stage's
normalization is class-conditional — after PixelNorm, a per-class gain and bias (initialised to
identity) scale the features (conditional normalization, de Vries et al. 2017). With
``n_segments`` > 0 a second 3×3 head draws one tanh channel per segment next to the image
(joint image + label synthesis, Bowles et al. 2018): ``forward`` returns
``(B, channels + n_segments, R, R)``. The mask channels leave G already hard — exactly the
±1 one-hot encoding of the head's pre-activations (the strongest channel above 0, else
background) — with the gradient passed straight through to the pre-activations (Bengio et al.
2013). D then cannot tell a generated mask from a real one by its soft values (a real
background is exactly −1, a tanh never is), which otherwise drives every mask pre-activation
negative until the small lesions of a real study are lost; and, with no tanh in the gradient's
path, a channel pushed far negative still learns (through a tanh its gradient vanished, and
the demo's masks froze as a few corner pixels: docs/benchmarks.md, issue 11).

Discriminator: the ``default`` spectral-norm residual D on image and mask channels together,
plus the projection term of Miyato & Koyama 2018: ``logit = ψ(h) + ⟨embed(y), h⟩`` with ``h``
the pooled last features and a spectrally normalized class embedding.

Mask encoding: a real mask (integer labels, 0 = background) becomes one channel per segment,
+1 inside that segment and −1 elsewhere (:func:`masks_to_channels`); generated channels go back
to integer labels by :func:`channels_to_masks` (the strongest channel above 0, else background),
so masks are never blurred.
"""

from __future__ import annotations

import torch
from torch import nn

from medgan.models.blocks import (
    GLU,
    PixelNorm,
    SkipExcitation,
    ZNoise,
    check_resolution,
    sn_conv,
)
from medgan.models.default import channels_at, sn_trunk

DEFAULT_WIDTH = 16
EMBED_DIM = 32
MAX_CLASSES = 10
MAX_SEGMENTS = 8


def masks_to_channels(masks: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Integer masks (B, R, R) → (B, n_segments, R, R) with +1 inside segment k, −1 outside."""
    ks = torch.arange(1, n_segments + 1, device=masks.device).view(1, -1, 1, 1)
    return (masks.long().unsqueeze(1) == ks).float() * 2.0 - 1.0


def hard_mask_channels(logits: torch.Tensor) -> torch.Tensor:
    """Mask pre-activations (B, K, R, R) → the ±1 channels of their integer masks, same dtype.

    The forward value is ``masks_to_channels(channels_to_masks(logits))``; the gradient is the
    identity to ``logits`` (straight-through), so G learns where to move the head, however far
    a channel's pre-activation is from 0.
    """
    best, idx = logits.detach().max(dim=1, keepdim=True)
    ks = torch.arange(logits.shape[1], device=logits.device).view(1, -1, 1, 1)
    hard = ((idx == ks) & (best > 0)).to(logits.dtype) * 2 - 1
    return hard + (logits - logits.detach())  # x − x is exactly 0: the values stay exactly ±1


def channels_to_masks(channels: torch.Tensor) -> torch.Tensor:
    """(B, K, R, R) mask channels in [-1, 1] → uint8 labels (B, R, R): argmax where > 0, else 0."""
    if channels.shape[1] == 0:
        return torch.zeros(channels.shape[0], *channels.shape[2:], dtype=torch.uint8)
    best, idx = channels.float().max(dim=1)
    return torch.where(best > 0, idx + 1, torch.zeros_like(idx)).to(torch.uint8)


class ClassAffine(nn.Module):
    """Per-class gain and bias on normalized features; identity at initialisation."""

    def __init__(self, embed_dim: int, ch: int) -> None:
        super().__init__()
        self.proj = nn.Linear(embed_dim, 2 * ch)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor, e: torch.Tensor | None) -> torch.Tensor:
        if e is None:
            return x
        gain, bias = self.proj(e).unsqueeze(-1).unsqueeze(-1).chunk(2, dim=1)
        return x * (1.0 + gain) + bias


def zero_conv(in_ch: int, out_ch: int) -> nn.Conv2d:
    """A 3×3 convolution whose weights and bias start at 0 (its branch starts silent)."""
    conv = nn.Conv2d(in_ch, out_ch, 3, 1, 1)
    nn.init.zeros_(conv.weight)
    if conv.bias is not None:
        nn.init.zeros_(conv.bias)
    return conv


class SpatialAffine(nn.Module):
    """Per-pixel gain and bias on normalized features from a mask (SPADE, Park et al. 2019).

    The mask's ±1 channels, averaged down to the features' size, go through one 3×3 conv to a
    gain and a bias per feature channel; zero at initialisation (identity), so a painter starts
    as the unconditional network and learns what each segment looks like, where it is.
    """

    def __init__(self, mask_ch: int, ch: int) -> None:
        super().__init__()
        self.proj = zero_conv(mask_ch, 2 * ch)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if mask.shape[-1] != x.shape[-1]:
            mask = nn.functional.adaptive_avg_pool2d(mask, (x.shape[-2], x.shape[-1]))
        gain, bias = self.proj(mask.to(x.dtype)).chunk(2, dim=1)
        return x * (1.0 + gain) + bias


class CondUpBlock(nn.Module):
    """Bilinear ×2, 3×3 conv, PixelNorm, class-conditional gain/bias, [mask gain/bias], GLU."""

    def __init__(self, in_ch: int, out_ch: int, embed_dim: int, mask_ch: int = 0) -> None:
        super().__init__()
        self.up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.conv = nn.Conv2d(in_ch, out_ch * 2, 3, 1, 1)
        self.norm = PixelNorm()
        self.affine = ClassAffine(embed_dim, out_ch * 2)
        self.spatial = SpatialAffine(mask_ch, out_ch * 2) if mask_ch > 0 else None
        self.glu = GLU()

    def forward(
        self, x: torch.Tensor, e: torch.Tensor | None, mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        x = self.affine(self.norm(self.conv(self.up(x))), e)
        if self.spatial is not None and mask is not None:
            x = self.spatial(x, mask)
        return self.glu(x)


class LabelledGenerator(nn.Module):
    """(z (B, z_dim), y (B,) class indices) → (B, channels + n_segments, R, R) in [-1, 1].

    ``y`` is required when ``n_classes`` > 1 and ignored otherwise. ``channels`` 0 draws masks
    only; ``mask_inputs`` > 0 paints an image for given masks (``forward(z, y, masks)``, the ±1
    channels of :func:`masks_to_channels`): every up-sampling stage then takes a per-pixel gain
    and bias from them (:class:`SpatialAffine`; :mod:`medgan.models.mask_first`).

    ``g_noise``: the ``default`` recipe's per-pixel noise inputs from ``z`` at 32² and up
    (:class:`~medgan.models.blocks.ZNoise`). ``unit_mask_inputs``: the given masks enter as 0/1
    (background 0) instead of ±1. With ±1 an empty mask is a plane of −1, and the zero padding
    of the mask convolutions turns it into a fixed pattern at the borders of every stage — the
    same in every sample, whatever ``z``; with 0/1 an empty mask adds nothing anywhere
    (SPADE's one-hot maps). Both off: the layout of files written before they existed.

    ``presence_inputs`` K > 0 (mask generators, :mod:`medgan.models.mask_first`): ``forward``
    also takes ``presence`` (B, K), 1 for each segment the mask is to hold; a linear map of it
    joins the class embedding (concatenated at the seed, conditional normalization after).
    """

    def __init__(
        self,
        resolution: int,
        z_dim: int = 128,
        channels: int = 1,
        width: int = DEFAULT_WIDTH,
        n_classes: int = 1,
        n_segments: int = 0,
        mask_inputs: int = 0,
        hard_masks: bool = True,
        g_noise: bool = False,
        unit_mask_inputs: bool = False,
        presence_inputs: int = 0,
    ) -> None:
        super().__init__()
        levels = check_resolution(resolution)
        self.z_dim, self.image_channels = z_dim, channels
        self.n_classes, self.n_segments = n_classes, n_segments
        self.mask_inputs = mask_inputs
        self.hard_masks = hard_masks  # False: the mask head's raw values (mask_first's fields)
        self.unit_mask_inputs = unit_mask_inputs  # painters: masks enter as 0/1, not ±1
        self.sizes = [2**i for i in range(2, levels + 1)]
        conditional = n_classes > 1
        self.embed = nn.Embedding(n_classes, EMBED_DIM) if conditional else None
        self.presence_inputs = presence_inputs
        self.presence = nn.Linear(presence_inputs, EMBED_DIM) if presence_inputs > 0 else None
        e_dim = EMBED_DIM if conditional or presence_inputs > 0 else 0
        c4 = channels_at(4, width)
        self.seed = nn.ConvTranspose2d(z_dim + e_dim, c4 * 2, 4, 1, 0)
        self.seed_norm = PixelNorm()
        self.seed_affine = ClassAffine(EMBED_DIM, c4 * 2)
        self.glu = GLU()
        self.blocks = nn.ModuleList(
            CondUpBlock(channels_at(s // 2, width), channels_at(s, width), EMBED_DIM, mask_inputs)
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
        c_out = channels_at(resolution, width)
        self.to_image = (
            nn.Sequential(nn.Conv2d(c_out, channels, 3, 1, 1), nn.Tanh()) if channels > 0 else None
        )
        # painters: the mask also adds to the image's pre-activation directly (zero at first)
        self.mask_to_image = zero_conv(mask_inputs, channels) if mask_inputs else None
        # The pre-activations only (hard_mask_channels); a Sequential keeps the weight names
        # of files written when a tanh followed, whose masks are the same (tanh keeps the sign).
        self.to_mask = (
            nn.Sequential(nn.Conv2d(c_out, n_segments, 3, 1, 1)) if n_segments > 0 else None
        )

    def forward(
        self,
        z: torch.Tensor,
        y: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
        presence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.mask_inputs and masks is None:
            raise ValueError("This generator paints images for masks: pass the mask channels.")
        if masks is not None and self.unit_mask_inputs:
            masks = (masks + 1.0) * 0.5
        z_noise = z  # the noise maps follow z alone, not the class embedding
        e: torch.Tensor | None = None
        if self.embed is not None:
            if y is None:
                raise ValueError("This generator is class-conditional: pass the classes y.")
            e = self.embed(y.long())
        if self.presence is not None:
            if presence is None:
                raise ValueError("This mask generator draws given segments: pass presence.")
            p = self.presence(presence.to(self.presence.weight.dtype))
            e = p if e is None else e + p
        if e is not None:
            z = torch.cat([z, e.to(z.dtype)], dim=1)
        x = self.glu(self.seed_affine(self.seed_norm(self.seed(z[:, :, None, None])), e))
        feats = {4: x}
        for size, block in zip(self.sizes[1:], self.blocks, strict=True):
            x = block(x, e, masks)
            if str(size) in self.excite:
                x = self.excite[str(size)](feats[size // 8], x)
            if str(size) in self.noise:
                x = self.noise[str(size)](x, z_noise)
            feats[size] = x
        parts = [] if self.to_image is None else [self._image(x, masks)]
        if self.to_mask is not None:
            pre = self.to_mask(x)
            parts.append(hard_mask_channels(pre) if self.hard_masks else pre)
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=1)

    def _image(self, x: torch.Tensor, masks: torch.Tensor | None) -> torch.Tensor:
        assert self.to_image is not None
        if self.mask_to_image is None or masks is None:
            return self.to_image(x)
        conv, tanh = self.to_image[0], self.to_image[1]
        return tanh(conv(x) + self.mask_to_image(masks.to(x.dtype)))


class ProjectionDiscriminator(nn.Module):
    """(x (B, channels + n_segments, R, R), y (B,) or None) → logits (B,), or (B, 2) with
    ``d_image``: column 0 judges the image alone, column 1 the image with its mask.

    Without ``y`` the projection term is left out (the unconditional part of the logit). An
    image-only input to a paired D gets empty mask channels (−1), so realism scorers that pass
    images alone still run; they read column 0.

    ``d_image`` (pairs only): a second trunk sees the image channels alone, and each column
    has its own loss (the losses average over the columns). With one trunk on image and mask
    together, D tells generated pairs from real ones by their masks and stops teaching the
    image: on the demo the paired generator's slices became thick bright rings, dark inside
    (docs/benchmarks.md, issue 11).
    """

    def __init__(
        self,
        resolution: int,
        channels: int = 1,
        width: int = DEFAULT_WIDTH,
        n_classes: int = 1,
        n_segments: int = 0,
        d_block: str = "half",
        d_image: bool = False,
        presence_inputs: int = 0,
    ) -> None:
        super().__init__()
        self.in_channels = channels + n_segments
        self.image_channels = channels
        self.n_classes = n_classes
        self.blocks = sn_trunk(self.in_channels, resolution, width, d_block)
        c4 = channels_at(4, width)
        self.act = nn.LeakyReLU(0.2)
        self.head = sn_conv(c4, 1, 4, 1, 0)
        self.embed = (
            nn.utils.parametrizations.spectral_norm(nn.Embedding(n_classes, c4))
            if n_classes > 1
            else None
        )
        self.presence = (
            nn.utils.parametrizations.spectral_norm(nn.Linear(presence_inputs, c4, bias=False))
            if presence_inputs > 0
            else None
        )
        split = bool(d_image) and n_segments > 0
        self.image_blocks = sn_trunk(channels, resolution, width, d_block) if split else None
        self.image_head = sn_conv(c4, 1, 4, 1, 0) if split else None

    def _logit(
        self,
        x: torch.Tensor,
        y: torch.Tensor | None,
        blocks: nn.ModuleList,
        head: nn.Module,
        presence: torch.Tensor | None = None,
    ) -> torch.Tensor:
        for block in blocks:
            x = block(x)
        h = self.act(x)
        logit = head(h).reshape(-1)
        pooled = h.sum(dim=(2, 3))
        if self.embed is not None and y is not None:
            logit = logit + (self.embed(y.long()).to(pooled.dtype) * pooled).sum(dim=1)
        if self.presence is not None and presence is not None:
            projected = self.presence(presence.to(pooled.dtype))
            logit = logit + (projected.to(pooled.dtype) * pooled).sum(dim=1)
        return logit

    def judge(
        self, x: torch.Tensor, y: torch.Tensor | None, presence: torch.Tensor | None
    ) -> torch.Tensor:
        """Logits (B,) of the pair trunk's input with its classes and intended segments (B, K),
        a projection term for each (mask discriminators, :mod:`medgan.models.mask_first`)."""
        return self._logit(x, y, self.blocks, self.head, presence)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.shape[1] < self.in_channels:
            pad = x.new_full((x.shape[0], self.in_channels - x.shape[1], *x.shape[2:]), -1.0)
            x = torch.cat([x, pad], dim=1)
        pair = self._logit(x, y, self.blocks, self.head)
        if self.image_blocks is None or self.image_head is None:
            return pair
        image = self._logit(x[:, : self.image_channels], y, self.image_blocks, self.image_head)
        return torch.stack([image, pair], dim=1)


def is_conditional(module: nn.Module) -> bool:
    """Whether a generator or discriminator takes class indices."""
    return int(getattr(module, "n_classes", 1)) > 1


def mask_channels(module: nn.Module) -> int:
    """How many mask channels a generator draws (0 for image-only recipes)."""
    return int(getattr(module, "n_segments", 0))
