"""Paint check: a segmenter trained on real pairs tells the painter where its lesions are missing.

On the demo the mask-first painter drew its lesions faintly: a segmenter trained on real pairs
found a fifth of them or less (Dice 0.14–0.25 on painted images, 0.80 on real pairs;
docs/benchmarks.md, "paired mask first, layout 3"). The pair discriminator gives one logit per
image, a weak signal for a lesion of 1 % of its pixels. OASIS (Schönfeld et al. 2021) answers
with a discriminator that segments every pixel; this keeps the discriminator as it is and adds
a small segmenter *S* beside it:

* in the D step S learns to segment the **real** pairs (the same augmented batch D sees), with
  cross-entropy plus soft Dice over the segments (the nnU-Net loss; lesions are ~1 % of the
  pixels, so cross-entropy alone would learn "background everywhere");
* in the G step the painter's images (augmented as D sees them) pay ``weight`` × S's loss
  against the masks they were painted for, S frozen: a lesion S cannot find where the mask
  says it is costs the painter.

S never sees a painted image in training, so it cannot learn the painter's faint lesions; the
painter has to draw lesions S recognises from real ones (as an auxiliary classifier trained on
real data only, which avoids AC-GAN's degenerate easy-to-classify samples). S, its optimizer
and nothing else go into checkpoints; model files keep the generator only.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from medgan.models.labelled import channels_to_masks

SEGMENTER_WIDTH = 16


def _conv_pair(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1),
        nn.LeakyReLU(0.2),
        nn.Conv2d(cout, cout, 3, padding=1),
        nn.LeakyReLU(0.2),
    )


class PaintSegmenter(nn.Module):
    """A three-level U-Net (≈ 0.1 GMAC per 64² image at width 16): image → K + 1 logits."""

    def __init__(self, channels: int, n_segments: int, width: int = SEGMENTER_WIDTH) -> None:
        super().__init__()
        w = int(width)
        self.enc1 = _conv_pair(channels, w)
        self.enc2 = _conv_pair(w, 2 * w)
        self.enc3 = _conv_pair(2 * w, 4 * w)
        self.dec2 = _conv_pair(6 * w, 2 * w)
        self.dec1 = _conv_pair(3 * w, w)
        self.head = nn.Conv2d(w, n_segments + 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(F.avg_pool2d(e1, 2))
        e3 = self.enc3(F.avg_pool2d(e2, 2))
        d2 = self.dec2(torch.cat([F.interpolate(e3, scale_factor=2.0), e2], dim=1))
        d1 = self.dec1(torch.cat([F.interpolate(d2, scale_factor=2.0), e1], dim=1))
        return self.head(d1)


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy plus soft Dice over the segments (classes 1…K) present in the batch or
    predicted; ``labels`` (B, R, R) integer."""
    logits = logits.float()
    ce = F.cross_entropy(logits, labels.long())
    prob = logits.softmax(dim=1)[:, 1:]
    k = prob.shape[1]
    target = F.one_hot(labels.long(), k + 1).permute(0, 3, 1, 2)[:, 1:].to(prob.dtype)
    inter = (prob * target).sum(dim=(0, 2, 3))
    total = prob.sum(dim=(0, 2, 3)) + target.sum(dim=(0, 2, 3))
    present = target.sum(dim=(0, 2, 3)) > 0
    if not bool(present.any()):
        return ce
    dice = (2.0 * inter + 1.0) / (total + 1.0)
    return ce + (1.0 - dice[present]).mean()


class PaintCheck:
    """The segmenter, its optimizer and the two losses (see the module's notes)."""

    def __init__(
        self,
        *,
        channels: int,
        n_segments: int,
        weight: float,
        lr: float,
        betas: tuple[float, float],
        device: torch.device,
        width: int = SEGMENTER_WIDTH,
    ) -> None:
        if n_segments < 1:
            raise ValueError("the paint check needs masks (n_segments ≥ 1)")
        self.channels, self.weight = int(channels), float(weight)
        self.net = PaintSegmenter(channels, n_segments, width).to(device)
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr, betas=betas)

    def _split(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        c = self.channels
        return pairs[:, :c], channels_to_masks(pairs[:, c:].detach()).to(pairs.device)

    def learn(self, real_pairs: torch.Tensor) -> torch.Tensor:
        """One optimizer step of S on real (augmented) pairs (B, C + K, R, R); its loss."""
        images, labels = self._split(real_pairs.detach())
        loss = segmentation_loss(self.net(images.float()), labels)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss.detach()

    def painter_loss(self, fake_pairs: torch.Tensor) -> torch.Tensor:
        """``weight`` × S's loss on painted pairs, gradients to the images only (S frozen)."""
        images, labels = self._split(fake_pairs)
        for p in self.net.parameters():
            p.requires_grad_(False)
        try:
            loss = segmentation_loss(self.net(images.float()), labels)
        finally:
            for p in self.net.parameters():
                p.requires_grad_(True)
        return self.weight * loss

    def state(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """(network state, optimizer state), for a checkpoint."""
        return self.net.state_dict(), self.opt.state_dict()

    def load(self, net_state: dict[str, Any], opt_state: dict[str, Any]) -> None:
        self.net.load_state_dict(net_state)
        self.opt.load_state_dict(opt_state)
