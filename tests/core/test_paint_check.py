"""Paint check: the segmenter learns real pairs, the painter pays for lesions it cannot find,
and the segmenter's state travels with checkpoints."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.core.errors import TrainingError
from medgan.models.labelled import masks_to_channels
from medgan.train.paint_check import PaintCheck, segmentation_loss
from tests.core._train_data import one_thread, small  # noqa: F401
from tests.core.test_paired_masks import _heads_with_small_lesions


def _pairs(n: int, seed: int = 0) -> torch.Tensor:
    images, masks = _heads_with_small_lesions(n, seed=seed)
    m = torch.from_numpy(masks)
    return torch.cat([torch.from_numpy(images)[:, None], masks_to_channels(m, 1)], dim=1)


def test_the_loss_is_small_for_the_right_segmentation_and_large_for_none() -> None:
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[:, 2:4, 2:4] = 1
    right = torch.nn.functional.one_hot(labels, 2).permute(0, 3, 1, 2).float() * 20 - 10
    nothing = torch.zeros(2, 2, 8, 8)
    nothing[:, 0] = 10.0  # background everywhere: what cross-entropy alone drifts to
    assert segmentation_loss(right, labels) < 0.05
    assert segmentation_loss(nothing, labels) > 1.0  # the Dice term sees the missed segment


def test_the_segmenter_learns_real_lesions_and_the_painter_gets_gradients_only() -> None:
    torch.manual_seed(0)
    check = PaintCheck(channels=1, n_segments=1, weight=2.0, lr=2e-3, betas=(0.5, 0.99),
                       device=torch.device("cpu"), width=8)  # fmt: skip
    real = _pairs(32)
    first = float(check.learn(real))
    for _ in range(60):
        last = float(check.learn(real))
    assert last < 0.6 * first
    # painted pairs: the real masks over plain heads (no lesion drawn) cost more than real ones
    plain = real.clone().requires_grad_(True)
    with torch.no_grad():
        plain[:, 0] = torch.where(real[:, 1] > 0, real[:, 0].min(), real[:, 0])
    check.opt.zero_grad(set_to_none=True)
    loss = check.painter_loss(plain)
    loss.backward()
    with torch.no_grad():
        assert float(loss) > float(check.painter_loss(real))
    assert plain.grad is not None and plain.grad[:, 0].abs().sum() > 0
    assert all(p.grad is None for p in check.net.parameters())
    assert all(p.requires_grad for p in check.net.parameters())  # unfrozen afterwards


def test_paired_trains_with_the_check_and_resumes_it_exactly(tmp_path: Path) -> None:
    from medgan.train.trainer import Trainer

    images, masks = _heads_with_small_lesions(24)
    kwargs = {"masks": masks, "mask_known": np.ones(24, bool), "segment_names": ("lesion",)}
    cfg = small("paired", steps=4, batch_size=8, quality_every=0, sample_every=1000,
                paint_check=1.0, checkpoint_dir=str(tmp_path / "run"))  # fmt: skip
    trainer = Trainer(cfg, images, **kwargs)
    assert trainer.step_fn.paint_check is not None
    assert trainer.run().status == "finished"
    ckpt = trainer.state_dict()
    assert "PaintCheck" in ckpt.modules and "PaintCheck" in ckpt.optimizers
    again = Trainer(cfg, images, **kwargs)
    again.load_state_dict(ckpt)
    for a, b in zip(trainer.step_fn.paint_check.net.parameters(),
                    again.step_fn.paint_check.net.parameters(), strict=True):  # fmt: skip
        assert torch.equal(a, b)
    off = Trainer(small("paired", steps=4, batch_size=8, quality_every=0, sample_every=1000),
                  images, **kwargs)  # fmt: skip
    assert off.step_fn.paint_check is None
    with pytest.raises(TrainingError, match="paint_check"):
        off.load_state_dict(ckpt)


def test_the_check_is_ignored_for_networks_that_are_not_mask_first() -> None:
    from medgan.train.trainer import Trainer

    images, _ = _heads_with_small_lesions(16)
    trainer = Trainer(small("default", steps=1, quality_every=0, paint_check=1.0), images)
    assert trainer.step_fn.paint_check is None
