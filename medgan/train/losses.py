"""GAN losses computed stably from discriminator logits, and the R1 penalty.

With D(x) = sigmoid(logit): −log D(x) = softplus(−logit) and −log(1 − D(x)) = softplus(logit),
so no probability is ever rounded to 0 or 1 before the log.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    """Mean binary cross-entropy against a constant target, from logits."""
    if target == 1.0:
        return F.softplus(-logits).mean()
    if target == 0.0:
        return F.softplus(logits).mean()
    return (target * F.softplus(-logits) + (1.0 - target) * F.softplus(logits)).mean()


def d_loss(
    kind: str, real_logits: torch.Tensor, fake_logits: torch.Tensor, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Discriminator loss.

    ``bce`` (DCGAN): −½ (log D(x) + log(1 − D(G(z)))), real target 1 − label_smoothing.
    ``nonsat``: the same without the ½ (Goodfellow et al. 2014).
    ``hinge`` (Lim & Ye 2017): E[max(0, 1 − D(x))] + E[max(0, 1 + D(G(z)))].
    """
    real_logits = real_logits.float()
    fake_logits = fake_logits.float()
    if kind == "bce":
        return 0.5 * (_bce(real_logits, 1.0 - label_smoothing) + _bce(fake_logits, 0.0))
    if kind == "nonsat":
        return _bce(real_logits, 1.0 - label_smoothing) + _bce(fake_logits, 0.0)
    if kind == "hinge":
        return F.relu(1.0 - real_logits).mean() + F.relu(1.0 + fake_logits).mean()
    raise ValueError(f"Unknown loss {kind!r}.")


def g_loss(kind: str, fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator loss: ``bce`` −½ log D(G(z)); ``nonsat`` −log D(G(z)); ``hinge`` −E[D(G(z))]."""
    fake_logits = fake_logits.float()
    if kind == "bce":
        return 0.5 * _bce(fake_logits, 1.0)
    if kind == "nonsat":
        return _bce(fake_logits, 1.0)
    if kind == "hinge":
        return -fake_logits.mean()
    raise ValueError(f"Unknown loss {kind!r}.")


def mode_seeking_penalty(fake: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mode seeking (Mao et al. 2019, MSGAN): 1 / (‖G(z₁) − G(z₂)‖₁ / ‖z₁ − z₂‖₁).

    The batch's first half is paired with its second half. Small when two different inputs
    give different slices, large when G maps them to the same one, so G is pushed to spread
    its samples over the kinds of slices in the data instead of repeating the commonest.
    """
    half = fake.shape[0] // 2
    if half == 0:
        return fake.new_zeros((), dtype=torch.float32)
    image_gap = (fake[:half] - fake[half : 2 * half]).float().abs().mean()
    noise_gap = (z[:half] - z[half : 2 * half]).float().abs().mean()
    return 1.0 / (image_gap / noise_gap + eps)


def r1_penalty(real_logits: torch.Tensor, real_images: torch.Tensor) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): E[‖∇ₓ D(x)‖²] on real images; scale by γ/2 outside.

    ``real_images`` must have ``requires_grad`` set before the discriminator saw them.
    """
    (grad,) = torch.autograd.grad(real_logits.float().sum(), real_images, create_graph=True)
    return grad.float().pow(2).reshape(grad.shape[0], -1).sum(1).mean()


class LeCam:
    """LeCam regularization (Tseng et al. 2021, "Regularizing GANs under limited data").

    Keeps moving averages of the discriminator's mean logit on real (α_R) and fake (α_F)
    images and penalises E[relu(D(x) − α_F)²] + E[relu(α_R − D(G(z)))²], which bounds how far
    apart D can push real and fake predictions — the runaway that makes a discriminator
    memorize a small training set and drag the generator away from it. The averages stay on the
    device (no synchronisation per step); :meth:`state_dict` makes them JSON for checkpoints.
    """

    def __init__(self, decay: float = 0.99) -> None:
        self.decay = decay
        self.real: torch.Tensor | None = None
        self.fake: torch.Tensor | None = None

    def penalty(self, real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
        """The regularizer for this step's logits; updates the averages first (as the paper)."""
        real_logits, fake_logits = real_logits.float(), fake_logits.float()
        r, f = real_logits.detach().mean(), fake_logits.detach().mean()
        if self.real is None or self.fake is None:
            self.real, self.fake = r, f
        else:
            self.real = torch.lerp(r, self.real, self.decay)
            self.fake = torch.lerp(f, self.fake, self.decay)
        return (
            F.relu(real_logits - self.fake).pow(2).mean()
            + F.relu(self.real - fake_logits).pow(2).mean()
        )

    def state_dict(self) -> dict[str, Any]:
        if self.real is None or self.fake is None:
            return {"real": None, "fake": None}
        return {"real": float(self.real.item()), "fake": float(self.fake.item())}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        real, fake = state.get("real"), state.get("fake")
        if real is None or fake is None:
            self.real = self.fake = None
        else:
            self.real = torch.tensor(float(real), device=device)
            self.fake = torch.tensor(float(fake), device=device)
