"""Tiny training data and settings shared by the trainer tests."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan.train.config import TrainConfig
from medgan.train.trainer import Trainer


@pytest.fixture(autouse=True)
def one_thread():
    """Autouse in every module that imports it: tiny tests run fastest on one thread."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def discs() -> np.ndarray:
    """16 discs on black, 32², in [-1, 1]."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    out = []
    for _ in range(16):
        cy, cx, r = rng.uniform(10, 22), rng.uniform(10, 22), rng.uniform(4, 9)
        out.append(np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 0.8, -1.0))
    return np.asarray(out, dtype=np.float32)


def small(recipe: str = "default", **kw) -> TrainConfig:
    base = dict(
        resolution=32,
        steps=6,
        batch_size=4,
        width=8,
        n_samples=4,
        sample_every=3,
        checkpoint_every=3,
        metrics_interval_s=0.0,
        seed=1,
    )
    if recipe == "default":
        base.update(augment_p=0.2, ada_interval=2, ada_speed_images=40, r1_gamma=0.1, r1_every=2)
    base.update(kw)
    return TrainConfig.for_recipe(recipe, **base)


def assert_same_state(a: dict, b: dict) -> None:
    for part in ("generator", "discriminator"):
        assert a[part].keys() == b[part].keys()
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), f"{part}.{key} differs"


def train_paired_and_sample(
    images: np.ndarray, masks: np.ndarray, segment: str, steps: int, n: int = 64
) -> torch.Tensor:
    """Train ``paired`` (batch 16, no probes) on image + mask pairs; ``n`` EMA samples
    (B, 1 + 1, R, R) from fixed noise (seed 7)."""
    cfg = small("paired", steps=steps, batch_size=16, quality_every=0, sample_every=1000)
    known = np.ones(len(images), bool)
    trainer = Trainer(cfg, images, masks=masks, mask_known=known, segment_names=(segment,))
    assert trainer.run().status == "finished"
    g = trainer.model_generator.eval()
    z = torch.randn(n, cfg.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        return g(z)
