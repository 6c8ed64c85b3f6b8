"""Differentiable augmentation (DiffAugment, Zhao et al. 2020) with an adaptive probability (ADA).

The same random transforms are applied to real and generated images before the discriminator,
in both the D and the G step, so gradients flow through them to the generator and D never sees
un-augmented data it could memorize. Each transform hits each image with probability ``p``;
with a target set, ``p`` adapts as in ADA (Karras et al. 2020): every few steps
r = E[sign(D(real))] is compared with the target and ``p`` moves up when D is over-confident.

Image + mask batches (recipe ``paired``) carry the mask as extra channels: the geometric
transforms (translation, cutout) move every channel identically, and their fill (−1) means
"not in the segment" for a mask channel; the intensity transforms (brightness, contrast) touch
the first ``image_channels`` only, so a mask stays exactly ±1 and aligned with its image.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

FILL = -1.0  # value that enters through translation and cutout: black (air) in [-1, 1] images


def _coin(p: float, b: int, gen: torch.Generator, device: torch.device) -> torch.Tensor:
    return (torch.rand(b, generator=gen, device=device) < p).float()


def brightness(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Add U(−0.5, 0.5) per image."""
    b = x.shape[0]
    delta = torch.rand(b, generator=gen, device=x.device) - 0.5
    return x + (delta * _coin(p, b, gen, x.device)).view(b, 1, 1, 1).to(x.dtype)


def contrast(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Scale the deviation from the image mean by U(0.5, 1.5) per image."""
    b = x.shape[0]
    factor = torch.rand(b, generator=gen, device=x.device) + 0.5
    factor = 1.0 + (factor - 1.0) * _coin(p, b, gen, x.device)
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor.view(b, 1, 1, 1).to(x.dtype) + mean


def translation(
    x: torch.Tensor, p: float, gen: torch.Generator, ratio: float = 0.125
) -> torch.Tensor:
    """Shift by up to ``ratio`` of the size in x and y, filling with black."""
    b, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    coin = _coin(p, b, gen, x.device).long()
    ty = torch.randint(-sh, sh + 1, (b,), generator=gen, device=x.device) * coin
    tx = torch.randint(-sw, sw + 1, (b,), generator=gen, device=x.device) * coin
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    yy = (gy + ty.view(b, 1, 1) + 1).clamp(0, h + 1)
    xx = (gx + tx.view(b, 1, 1) + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1], value=FILL).permute(0, 2, 3, 1)  # (B, H+2, W+2, C)
    idx = torch.arange(b, device=x.device).view(b, 1, 1)
    return padded[idx, yy, xx].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, p: float, gen: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Black out a random square of ``ratio`` of the size (it may be clipped at the border)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), generator=gen, device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), generator=gen, device=x.device)
    coin = _coin(p, b, gen, x.device).view(b, 1, 1)
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    y0, x0 = cy - ch // 2, cx - cw // 2
    inside = (gy >= y0) & (gy < y0 + ch) & (gx >= x0) & (gx < x0 + cw)
    hole = (inside.float() * coin).unsqueeze(1).to(x.dtype)  # (B, 1, H, W)
    return x * (1 - hole) + FILL * hole


def flip(x: torch.Tensor, p: float, gen: torch.Generator) -> torch.Tensor:
    """Mirror left–right (axial slices of a head are close to symmetric; masks move along)."""
    coin = _coin(p, x.shape[0], gen, x.device).view(-1, 1, 1, 1).to(x.dtype)
    return x * (1 - coin) + x.flip(-1) * coin


def rotate(
    x: torch.Tensor,
    p: float,
    gen: torch.Generator,
    image_channels: int | None = None,
    max_degrees: float = 15.0,
    max_scale: float = 0.1,
) -> torch.Tensor:
    """Rotate by up to ``max_degrees`` and scale by up to ±``max_scale`` about the centre.

    Image channels are resampled bilinearly; mask channels (after ``image_channels``) by
    nearest neighbour, so they stay exactly ±1 and aligned. Outside the slice is black (−1).
    """
    b = x.shape[0]
    coin = _coin(p, b, gen, x.device)
    u = torch.rand(b, 2, generator=gen, device=x.device) * 2 - 1
    angle = u[:, 0] * coin * (max_degrees * torch.pi / 180.0)
    scale = 1.0 + u[:, 1] * coin * max_scale
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)

    def warp(t: torch.Tensor, mode: str) -> torch.Tensor:
        # shift by −FILL so the zero padding of grid_sample is black (FILL) after shifting back
        return F.grid_sample(t - FILL, grid, mode=mode, align_corners=False) + FILL

    ic = image_channels
    if ic is None or x.shape[1] <= ic:
        return warp(x, "bilinear")
    return torch.cat([warp(x[:, :ic], "bilinear"), warp(x[:, ic:], "nearest")], dim=1)


TRANSFORMS = {
    "flip": flip,
    "rotate": rotate,
    "brightness": brightness,
    "contrast": contrast,
    "translation": translation,
    "cutout": cutout,
}
ORDER = ("flip", "rotate", "brightness", "contrast", "translation", "cutout")
GEOMETRIC_WITH_MASK = ("rotate",)  # transforms told which channels are masks
INTENSITY = ("brightness", "contrast")


class Augmenter:
    """Applies the policy with probability ``p`` and adapts ``p`` towards a target."""

    def __init__(
        self,
        policy: tuple[str, ...],
        *,
        p: float = 0.0,
        target: float | None = None,
        interval: int = 4,
        speed_images: int = 20_000,
        p_max: float = 0.8,
        batch_size: int = 32,
        image_channels: int | None = None,
    ) -> None:
        unknown = set(policy) - set(TRANSFORMS)
        if unknown:
            raise ValueError(f"Unknown augmentation(s): {', '.join(sorted(unknown))}.")
        self.policy = tuple(name for name in ORDER if name in policy)
        self.p = float(p) if self.policy else 0.0
        self.target = target if self.policy else None
        self.interval = interval
        self.p_step = batch_size * interval / speed_images
        self.p_max = p_max
        self._sign_sum: torch.Tensor | None = None
        self._count = 0
        self.last_r: float | None = None
        self.image_channels = image_channels  # None: every channel is image

    @property
    def active(self) -> bool:
        """Whether images are transformed at all (a fixed p of 0 means never)."""
        return bool(self.policy) and (self.p > 0.0 or self.target is not None)

    def __call__(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if not self.policy or self.p <= 0.0:
            return x
        ic = self.image_channels
        split = ic is not None and x.shape[1] > ic
        for name in self.policy:
            if split and name in INTENSITY:
                x = torch.cat([TRANSFORMS[name](x[:, :ic], self.p, gen), x[:, ic:]], dim=1)
            elif name in GEOMETRIC_WITH_MASK:
                x = rotate(x, self.p, gen, image_channels=ic)
            else:
                x = TRANSFORMS[name](x, self.p, gen)
        return x

    def observe(self, real_logits: torch.Tensor) -> None:
        """Accumulate sign(D(real)) on the device (no synchronisation); every column counts."""
        if self.target is None:
            return
        s = torch.sign(real_logits.detach().float()).sum()
        self._sign_sum = s if self._sign_sum is None else self._sign_sum + s
        self._count += real_logits.numel()  # (B,) or (B, parts): a paired D's columns

    def adjust(self, step: int) -> None:
        """Every ``interval`` steps, move ``p`` by one notch towards the target overfitting level."""
        if self.target is None or step % self.interval != 0 or self._sign_sum is None:
            return
        r = float(self._sign_sum.item()) / max(1, self._count)
        self.last_r = r
        direction = 1.0 if r > self.target else -1.0
        self.p = min(self.p_max, max(0.0, self.p + direction * self.p_step))
        self._sign_sum, self._count = None, 0

    def state_dict(self) -> dict[str, Any]:
        """JSON-compatible state (the pending accumulator is included for exact resume)."""
        pending = None if self._sign_sum is None else float(self._sign_sum.item())
        return {"p": self.p, "sign_sum": pending, "count": self._count, "last_r": self.last_r}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.p = float(state["p"])
        pending = state.get("sign_sum")
        self._sign_sum = None if pending is None else torch.tensor(float(pending), device=device)
        self._count = int(state.get("count", 0))
        self.last_r = state.get("last_r")
