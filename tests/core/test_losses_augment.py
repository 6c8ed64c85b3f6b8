"""Losses from logits (stable, equal to the textbook formulas) and differentiable augmentation."""

from __future__ import annotations

import math

import pytest
import torch

from medgan.train import losses
from medgan.train.augment import Augmenter, cutout, flip, rotate, translation


def test_dcgan_losses_match_the_formulas():
    real, fake = torch.tensor([0.3, -1.2, 2.0]), torch.tensor([-0.5, 0.7, 1.5])
    dx, dgz = torch.sigmoid(real), torch.sigmoid(fake)
    want_d = (-0.5 * (torch.log(dx) + torch.log(1 - dgz))).mean()
    want_g = (-0.5 * torch.log(dgz)).mean()
    assert losses.d_loss("bce", real, fake).item() == pytest.approx(want_d.item(), rel=1e-6)
    assert losses.g_loss("bce", fake).item() == pytest.approx(want_g.item(), rel=1e-6)
    assert losses.g_loss("nonsat", fake).item() == pytest.approx(2 * want_g.item(), rel=1e-6)
    smoothed = losses.d_loss("bce", real, fake, label_smoothing=0.1)
    want_s = 0.5 * (
        -(0.9 * torch.log(dx) + 0.1 * torch.log(1 - dx)).mean() - torch.log(1 - dgz).mean()
    )
    assert smoothed.item() == pytest.approx(want_s.item(), rel=1e-6)


def test_losses_are_stable_for_extreme_logits():
    big = torch.tensor([200.0, -200.0], requires_grad=True)
    for kind in ("bce", "nonsat", "hinge"):
        d = losses.d_loss(kind, big, -big)
        g = losses.g_loss(kind, big)
        assert torch.isfinite(d) and torch.isfinite(g)
    loss = losses.g_loss("bce", big)
    loss.backward()
    assert torch.isfinite(big.grad).all()
    assert losses.g_loss("bce", torch.tensor([-200.0])).item() == pytest.approx(100.0)


def test_hinge():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.0])
    assert losses.d_loss("hinge", real, fake).item() == pytest.approx(0.25 + 0.5)
    assert losses.g_loss("hinge", fake).item() == pytest.approx(1.0)
    with pytest.raises(ValueError):
        losses.d_loss("wgan", real, fake)


def test_mode_seeking_penalty_is_the_inverse_distance_ratio_and_punishes_collapse():
    z = torch.tensor([[0.0, 0.0], [1.0, 3.0]])  # halves differ by 2 on average
    fake = torch.tensor([[[[0.0, 0.0]]], [[[0.5, 1.5]]]])  # halves differ by 1 on average
    assert losses.mode_seeking_penalty(fake, z).item() == pytest.approx(2.0, rel=1e-4)
    spread = torch.randn(8, 1, 4, 4, requires_grad=True)
    collapsed = torch.zeros(8, 1, 4, 4) + 0.01 * torch.randn(8, 1, 4, 4)
    noise = torch.randn(8, 16)
    assert losses.mode_seeking_penalty(collapsed, noise) > 10 * losses.mode_seeking_penalty(spread, noise)
    losses.mode_seeking_penalty(spread, noise).backward()
    assert spread.grad is not None and torch.isfinite(spread.grad).all()
    assert losses.mode_seeking_penalty(torch.ones(1, 1, 2, 2), torch.ones(1, 3)).item() == 0.0


def test_mode_seeking_weight_reaches_the_generator_loss():
    import numpy as np

    from medgan.train.config import TrainConfig
    from medgan.train.trainer import Trainer

    images = np.random.default_rng(0).uniform(-1, 1, (16, 32, 32)).astype(np.float32)
    finals = []
    for weight in (0.0, 5.0):
        cfg = TrainConfig.for_recipe("default", resolution=32, steps=2, batch_size=8, width=8,
                                     device="cpu", quality_every=0, sample_every=10**6,
                                     metrics_interval_s=0.0, mode_seeking=weight)  # fmt: skip
        trainer = Trainer(cfg, images)
        trainer.run()
        finals.append(torch.cat([p.detach().flatten() for p in trainer.G.parameters()]))
    assert not torch.equal(finals[0], finals[1])
    with pytest.raises(Exception, match="mode_seeking"):
        TrainConfig.for_recipe("default", mode_seeking=-1.0)
    # off in every recipe (docs/recipes.md, "Mode seeking"), and in settings saved before it existed
    assert all(TrainConfig.for_recipe(r).mode_seeking == 0.0 for r in ("default", "dcgan", "conditional", "paired"))
    old_settings = TrainConfig.for_recipe("default").to_dict()
    del old_settings["mode_seeking"]
    assert TrainConfig.from_dict(old_settings).mode_seeking == 0.0


def test_r1_penalty_equals_squared_gradient_norm():
    x = torch.randn(3, 1, 4, 4, requires_grad=True)
    w = torch.randn(1, 1, 4, 4)
    logits = 0.5 * (x.pow(2) * w).sum(dim=(1, 2, 3))  # gradient wrt each image is x * w
    pen = losses.r1_penalty(logits, x)
    want = (x * w).pow(2).flatten(1).sum(1).mean()
    assert pen.item() == pytest.approx(want.item(), rel=1e-5)
    pen.backward()  # differentiable (create_graph), as the D update needs
    assert torch.allclose(x.grad, 2 * x * w * w / 3, atol=1e-5)


def test_augment_is_differentiable_and_seeded():
    aug = Augmenter(("translation", "cutout", "brightness", "contrast"), p=1.0)
    x = torch.rand(4, 1, 16, 16, requires_grad=True)
    y1 = aug(x, torch.Generator().manual_seed(3))
    y2 = aug(x, torch.Generator().manual_seed(3))
    assert torch.equal(y1, y2) and not torch.equal(y1, x)
    y1.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_probability_zero_is_identity():
    aug = Augmenter(("translation", "cutout"), p=0.0)
    x = torch.rand(4, 1, 8, 8)
    assert aug(x, torch.Generator()) is x
    assert not aug.active
    assert translation(x, 0.0, torch.Generator().manual_seed(0)).equal(x)
    assert cutout(x, 0.0, torch.Generator().manual_seed(0)).equal(x)


def test_translation_and_cutout_geometry():
    x = torch.ones(64, 1, 16, 16)
    shifted = translation(x, 1.0, torch.Generator().manual_seed(0))
    blacks = (shifted == -1).flatten(1).sum(1)
    assert blacks.max() > 0 and blacks.max() <= 16 * 16 - 14 * 14  # at most 2 px each way
    holes = cutout(x, 1.0, torch.Generator().manual_seed(0))
    area = (holes == -1).flatten(1).sum(1)
    assert area.max() == 64 and area.min() > 0  # an 8×8 square, clipped at borders


def test_adaptive_probability_moves_towards_target():
    aug = Augmenter(("translation",), p=0.0, target=0.6, interval=2, speed_images=80, batch_size=4)
    step_size = 4 * 2 / 80
    confident = torch.full((4,), 5.0)  # D is sure the reals are real: overfitting → p up
    for step in range(1, 9):
        aug.observe(confident)
        aug.adjust(step)
    assert aug.p == pytest.approx(4 * step_size)
    assert aug.last_r == pytest.approx(1.0)
    unsure = torch.tensor([1.0, -1.0, 1.0, -1.0])
    for step in range(9, 11):
        aug.observe(unsure)
        aug.adjust(step)
    assert aug.p == pytest.approx(3 * step_size)
    state = aug.state_dict()
    other = Augmenter(("translation",), target=0.6)
    other.load_state_dict(state, torch.device("cpu"))
    assert other.p == aug.p and math.isclose(other.p, 0.3)


def test_lecam_penalty_anchors_and_state_round_trip():
    lecam = losses.LeCam(decay=0.5)
    real, fake = torch.tensor([2.0, 0.0]), torch.tensor([-1.0, 1.0])
    # First call: anchors are this batch's means (real 1, fake 0).
    # relu(real - 0)^2 = [4, 0] -> 2; relu(1 - fake)^2 = [4, 0] -> 2.
    assert lecam.penalty(real, fake).item() == pytest.approx(4.0)
    assert lecam.state_dict() == {"real": 1.0, "fake": 0.0}
    # Second call: anchors move half-way to the new means (real 3, fake -2): 2 and -1.
    lecam.penalty(torch.tensor([3.0, 3.0]), torch.tensor([-2.0, -2.0]))
    assert lecam.state_dict() == {"real": 2.0, "fake": -1.0}
    again = losses.LeCam(decay=0.5)
    again.load_state_dict(lecam.state_dict(), torch.device("cpu"))
    x, y = torch.tensor([0.5, 1.5]), torch.tensor([0.0, -3.0])
    assert again.penalty(x, y).item() == lecam.penalty(x, y).item()
    assert losses.LeCam().state_dict() == {"real": None, "fake": None}


def test_flip_mirrors_left_right_and_is_identity_at_zero():
    x = torch.rand(8, 2, 6, 6)
    assert flip(x, 0.0, torch.Generator().manual_seed(0)).equal(x)
    y = flip(x, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(y, x.flip(-1))


def test_rotate_moves_image_and_mask_together():
    """Rotation and scaling of an off-centre square: the mask (nearest) stays exactly ±1 and
    covers the same place as the bilinearly resampled image (Dice, centroid)."""
    x = torch.full((16, 2, 32, 32), -1.0)
    x[:, :, 4:12, 18:26] = 1.0  # top right square in image and mask
    turned = rotate(x, 1.0, torch.Generator().manual_seed(0), image_channels=1, max_degrees=90)
    image, mask = turned[:, 0] > 0, turned[:, 1] > 0
    assert set(torch.unique(turned[:, 1]).tolist()) <= {-1.0, 1.0}
    dice = 2 * (image & mask).flatten(1).sum(1) / (image.flatten(1).sum(1) + mask.flatten(1).sum(1))
    assert dice.min() > 0.85
    grid = torch.stack(torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij"))

    def centroid(m: torch.Tensor) -> torch.Tensor:
        w = m.float().unsqueeze(1)
        return (grid * w).flatten(2).sum(2) / w.flatten(2).sum(2)

    assert (centroid(image) - centroid(mask)).abs().max() < 0.75
    assert (centroid(mask) - centroid(x[:, 1] > 0)).abs().max() > 2  # it did move
    assert rotate(x, 0.0, torch.Generator(), image_channels=1).equal(x)


def test_rotate_is_differentiable_and_keeps_black_outside():
    x = torch.full((4, 1, 16, 16), -1.0, requires_grad=True)
    y = rotate(x, 1.0, torch.Generator().manual_seed(1))
    assert torch.allclose(y, torch.full_like(y, -1.0))  # black stays black, also at the border
    (y * torch.rand_like(y)).sum().backward()
    assert x.grad is not None
