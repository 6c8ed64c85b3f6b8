"""One GAN optimisation step (D update, then G update) and the EMA generator.

Kept apart from the loop so the benchmark and the trainer run exactly the same arithmetic.
Speed choices that keep the maths of each recipe intact:

* the generator runs once per step; D sees ``fake.detach()`` and the G step back-propagates
  through the same forward (as the reference DCGAN does);
* D's weights get no gradients in the G step (they would be thrown away);
* a discriminator without BatchNorm sees real and fake in one concatenated batch (with
  BatchNorm, real and fake stay in separate batches as in the DCGAN paper);
* bf16 autocast where the device runs it natively; channels_last memory format.

Mask-first pairs (:mod:`medgan.models.mask_first`): the painter paints the real batch's masks,
and the mask generator learns against its own discriminator in the same step; with a paint
check (:mod:`medgan.train.paint_check`) a segmenter learns the real pairs in the D step and
the painter pays for lesions it cannot find in the G step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from medgan.models.levels import is_level_conditioned
from medgan.models.mask_first import is_mask_first, mask_fields, presence_of, presence_shortfall
from medgan.train import losses
from medgan.train.augment import Augmenter
from medgan.train.paint_check import PaintCheck


def has_batchnorm(module: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules())


EMA_RAMPUP = 0.05
"""Warm-up of the EMA: its half-life is at most this share of the steps done so far."""


def ema_beta(step: int, decay: float, rampup: float = EMA_RAMPUP) -> float:
    """EMA decay at a 1-based ``step``: ``decay`` once warm, shorter memory before.

    As in StyleGAN2-ADA (Karras et al. 2020, ``ema_rampup=0.05``) the half-life is capped at
    ``rampup`` × the training done so far: β_t = min(decay, 0.5^(1 / (rampup · t))). The
    averaged generator follows G closely while G changes fast (β ≈ 0 at step 1, 0.87 at
    step 100, 0.97 at step 500) and reaches the full ``decay`` (0.999: a half-life of 693 steps)
    after about 13,900 steps. ``rampup=0`` gives a constant ``decay``.
    """
    if rampup <= 0:
        return decay
    return min(decay, 0.5 ** (1.0 / (rampup * max(step, 1))))


class EMA:
    """Exponential moving average of generator weights (Yazıcı et al. 2019), with warm-up.

    The decay depends only on the step number, so a resumed run (which restores the EMA
    weights and the step from its checkpoint) continues exactly.
    """

    def __init__(
        self, model: nn.Module, ema_model: nn.Module, decay: float, rampup: float = EMA_RAMPUP
    ) -> None:
        self.model, self.ema_model, self.decay, self.rampup = model, ema_model, decay, rampup
        self.ema_model.eval().requires_grad_(False)
        self._src = [p for p in model.parameters()]
        self._dst: list[torch.Tensor] = [p for p in ema_model.parameters()]

    @torch.no_grad()
    def update(self, step: int) -> None:
        beta = ema_beta(step, self.decay, self.rampup)
        torch._foreach_lerp_(self._dst, [p.detach() for p in self._src], 1.0 - beta)
        for dst, src in zip(self.ema_model.buffers(), self.model.buffers(), strict=True):
            dst.copy_(src)


class GanStep:
    """Holds networks, optimizers and settings; ``__call__`` runs one training step."""

    def __init__(
        self,
        *,
        G: nn.Module,
        D: nn.Module,
        opt_g: torch.optim.Optimizer,
        opt_d: torch.optim.Optimizer,
        augmenter: Augmenter,
        loss: str,
        z_dim: int,
        device: torch.device,
        generator: torch.Generator,
        amp_dtype: torch.dtype | None = None,
        channels_last: bool = False,
        r1_gamma: float = 0.0,
        r1_every: int = 4,
        label_smoothing: float = 0.0,
        ema: EMA | None = None,
        lecam: losses.LeCam | None = None,
        lecam_weight: float = 0.0,
        mode_seeking: float = 0.0,
        frozen_d: list[nn.Module] | None = None,
        paint_check: PaintCheck | None = None,
    ) -> None:
        self.G, self.D = G, D
        self.G_fwd: nn.Module = G  # replaced by a compiled wrapper when compiling
        self.D_fwd: nn.Module = D
        self.opt_g, self.opt_d = opt_g, opt_d
        self.augment = augmenter
        self.loss, self.z_dim = loss, z_dim
        self.device, self.gen = device, generator
        self.amp_dtype = amp_dtype
        self.channels_last = channels_last
        self.r1_gamma, self.r1_every = r1_gamma, r1_every
        self.label_smoothing = label_smoothing
        self.ema = ema
        self.lecam, self.lecam_weight = lecam, lecam_weight
        self.mode_seeking = mode_seeking
        self.frozen_d = frozen_d or []
        self.concat_d = not has_batchnorm(D)
        self.mask_first = is_mask_first(G)
        self.levels = is_level_conditioned(G)
        self.paint_check = paint_check if self.mask_first else None
        self._d_trainable = [p for p in D.parameters() if p.requires_grad]

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def set_train(self) -> None:
        self.G.train()
        self.D.train()
        for block in self.frozen_d:  # frozen blocks keep their BatchNorm statistics too
            block.eval()

    @contextlib.contextmanager
    def _d_frozen(self) -> Iterator[None]:
        for p in self._d_trainable:
            p.requires_grad_(False)
        try:
            yield
        finally:
            for p in self._d_trainable:
                p.requires_grad_(True)

    def _format(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x

    def _g(self, z: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.G_fwd(z) if y is None else self.G_fwd(z, y)

    def _d(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return self.D_fwd(x) if y is None else self.D_fwd(x, y)

    def _augment_fields(self, fields: torch.Tensor) -> torch.Tensor:
        """Mask fields through the pairs' geometric augmentation (a −1 image rides along)."""
        blank = torch.full_like(fields[:, :1], -1.0)
        return self.augment(torch.cat([blank, fields], dim=1), self.gen)[:, 1:]

    def __call__(
        self, real: torch.Tensor, step: int, labels: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """Run D then G update on a real batch (B, C, R, R) on the device; step is 1-based.

        ``labels`` (B,): the real slices' classes for a class-conditional pair; the fakes of
        the step take the same classes.
        """
        b = real.shape[0]
        real = self._format(real)
        z = torch.randn(b, self.z_dim, device=self.device, generator=self.gen)
        y = labels
        # a level-conditioned G draws its fakes' levels from z, as in generation; D judges
        # each slice with its level (real: the slice's own)
        y_fake = self.G.level_of(z) if self.levels else y  # type: ignore[operator]
        c = int(getattr(self.G, "image_channels", 1))
        fake_fields: torch.Tensor | None = None
        fake_presence: torch.Tensor | None = None
        with self._autocast():
            if self.mask_first:  # the painter paints the real masks; masks on their own below
                fake = self.G_fwd(z, y, real[:, c:])
                zm = torch.randn(b, self.z_dim, device=self.device, generator=self.gen)
                fake_fields = self.G.draw_fields(zm, y)  # type: ignore[operator]
                fake_presence = self.G.presence_for(zm, y)  # type: ignore[operator]
            else:
                fake = self._g(z, None if self.levels else y)

        # ---- discriminator step
        real_aug = self.augment(real, self.gen)
        fake_aug = self.augment(fake.detach(), self.gen)
        do_r1 = self.r1_gamma > 0 and step % self.r1_every == 0
        if do_r1:
            real_aug = real_aug.detach().requires_grad_(True)
        with self._autocast():
            if self.concat_d:
                yy = None if y is None or y_fake is None else torch.cat([y, y_fake])
                logits = self._d(torch.cat([real_aug, fake_aug.to(real_aug.dtype)]), yy)
                real_logits, fake_logits = logits[:b], logits[b:]
            else:
                real_logits = self._d(real_aug, y)
                fake_logits = self._d(fake_aug, y_fake)
        d_loss = losses.d_loss(self.loss, real_logits, fake_logits, self.label_smoothing)
        r1 = torch.zeros((), device=self.device)
        d_total = d_loss
        if do_r1:
            r1 = losses.r1_penalty(real_logits, real_aug)
            d_total = d_total + (0.5 * self.r1_gamma * self.r1_every) * r1
        if self.lecam is not None and self.lecam_weight > 0:
            d_total = d_total + self.lecam_weight * self.lecam.penalty(real_logits, fake_logits)
        if fake_fields is not None:  # the mask generator's fields against the real masks'
            yy = None if y is None else torch.cat([y, y])
            fields = [
                mask_fields(real_aug[:, c:].detach()),
                self._augment_fields(fake_fields.detach()),
            ]
            pp = None  # the patterns meant: a real slice's own (before augmentation), the drawn
            if fake_presence is not None:
                pp = torch.cat([presence_of(real[:, c:]).to(fake_presence.dtype), fake_presence])
            with self._autocast():
                mask_logits = self.D.judge_fields(torch.cat(fields), yy, pp)  # type: ignore[operator]
            d_total = d_total + losses.d_loss(self.loss, mask_logits[:b], mask_logits[b:])
        self.opt_d.zero_grad(set_to_none=True)
        d_total.backward()
        self.opt_d.step()
        self.augment.observe(real_logits)
        if self.paint_check is not None:  # the segmenter learns the real pairs D just saw
            with self._autocast():
                self.paint_check.learn(real_aug)

        # ---- generator step (same fake, fresh augmentation, D weights get no gradients)
        paint_loss: torch.Tensor | None = None
        with self._d_frozen(), self._autocast():
            fake_seen = self.augment(fake, self.gen)
            g_logits = self._d(fake_seen, y_fake)
            if self.paint_check is not None:  # lesions must be where their masks say
                paint_loss = self.paint_check.painter_loss(fake_seen)
            if fake_fields is not None:
                m_logits = self.D.judge_fields(  # type: ignore[operator]
                    self._augment_fields(fake_fields), y, fake_presence
                )
        g_loss = losses.g_loss(self.loss, g_logits)
        if paint_loss is not None:
            g_loss = g_loss + paint_loss
        if fake_fields is not None:
            g_loss = g_loss + losses.g_loss(self.loss, m_logits)
            if fake_presence is not None:  # requested segments must be drawn
                region = getattr(self.G, "presence_region", None)
                g_loss = g_loss + presence_shortfall(fake_fields, fake_presence, region)
        if self.mode_seeking > 0:
            g_loss = g_loss + self.mode_seeking * losses.mode_seeking_penalty(fake, z)
        self.opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        self.opt_g.step()
        if self.ema is not None:
            self.ema.update(step)
        self.augment.adjust(step)
        with torch.no_grad():
            return {
                "g_loss": g_loss.detach(),
                "d_loss": d_loss.detach(),
                "d_real": torch.sigmoid(real_logits.detach().float()).mean(),
                "d_fake": torch.sigmoid(fake_logits.detach().float()).mean(),
                "r1": r1.detach(),
            }
