"""Mask-first pairs: mask fields, the two-stage generator, its discriminator, training, files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from medgan.models import build_models
from medgan.models.labelled import channels_to_masks, masks_to_channels
from medgan.models.mask_first import (
    MaskFirstDiscriminator,
    MaskFirstGenerator,
    fields_to_channels,
    mask_fields,
)
from medgan.models.modelfile import ModelMetadata, load_model, save_model
from medgan.train.config import TrainConfig
from tests.core._train_data import one_thread, small  # noqa: F401
from tests.core.test_paired_masks import _heads_with_small_lesions


def test_a_mask_field_is_positive_exactly_on_its_segment_and_ramps_to_minus_one() -> None:
    masks = torch.zeros(1, 32, 32, dtype=torch.long)
    masks[0, 10:18, 8:20] = 1
    channels = masks_to_channels(masks, 2)
    fields = mask_fields(channels)  # reach: 32 / 8 = 4 pixels
    assert torch.equal(fields_to_channels(fields), channels)
    f = fields[0, 0]
    assert float(f[10, 8]) == 0.25 and float(f[9, 8]) == -0.25  # edge pixels on either side
    assert float(f.max()) == 1.0 and float(f[0, 0]) == -1.0
    assert torch.equal(fields[0, 1], torch.full((32, 32), -1.0))  # a segment not on the slice


def test_the_generator_paints_given_masks_and_draws_its_own_otherwise() -> None:
    G, D = build_models("paired", 32, n_segments=2, width=8, mask_first=True)
    assert isinstance(G, MaskFirstGenerator) and isinstance(D, MaskFirstDiscriminator)
    z = torch.randn(4, 128)
    masks = torch.zeros(4, 32, 32, dtype=torch.long)
    masks[:, 4:12, 4:12] = 2
    given = masks_to_channels(masks, 2)
    with torch.no_grad():
        painted, drawn = G(z, None, given), G(z)
        alone = torch.cat([G(z[i : i + 1]) for i in range(4)])
    assert painted.shape == drawn.shape == (4, 3, 32, 32)
    assert torch.equal(painted[:, 1:], given)  # the masks are the ones given
    assert set(drawn[:, 1:].unique().tolist()) <= {-1.0, 1.0}  # drawn masks are hard
    assert torch.allclose(drawn, alone, atol=1e-5)  # a sample depends on its z only
    logits = D(torch.cat([painted[:, :1], given], 1))
    assert logits.shape == (4, 2) and D.judge_fields(mask_fields(given)).shape == (4,)


def test_paired_trains_mask_first_by_default_and_old_files_keep_joint_masks(
    tmp_path: Path,
) -> None:
    assert TrainConfig.for_recipe("paired", resolution=32).mask_first is True
    old = TrainConfig.for_recipe("paired", resolution=32).to_dict()
    old.pop("mask_first")
    assert TrainConfig.from_dict(old).mask_first is False  # settings from before the option
    G, D = build_models("paired", 32, n_segments=1, width=8)  # joint layout
    meta = ModelMetadata(recipe="paired", resolution=32, model_kwargs={
        "width": 8, "n_segments": 1, "d_block": "half", "d_image": True}, format_version=3,
        segments=["lesion"], segment_colours=[[235, 64, 52]])  # fmt: skip
    path = save_model(tmp_path / "joint.safetensors",
                      {"generator": G.state_dict(), "discriminator": D.state_dict()}, meta)  # fmt: skip
    assert load_model(path).metadata.model_kwargs["mask_first"] is False


def test_mask_first_draws_small_lesions_and_paints_them_where_the_mask_is() -> None:
    """32² heads with one bright lesion of about 1 % of the pixels: after 250 steps the mask
    generator draws a lesion on most slices, and the painter draws it bright where a given
    mask (of slices it never saw) puts it."""
    from medgan.train.trainer import Trainer

    images, masks = _heads_with_small_lesions(64)
    cfg = small("paired", steps=250, batch_size=16, quality_every=0, sample_every=1000)
    trainer = Trainer(cfg, images, masks=masks, mask_known=np.ones(64, bool),
                      segment_names=("lesion",))  # fmt: skip
    assert trainer.run().status == "finished"
    g = trainer.model_generator.eval()
    z = torch.randn(64, cfg.z_dim, generator=torch.Generator().manual_seed(7))
    _, new_masks = _heads_with_small_lesions(64, seed=5)
    with torch.no_grad():
        painted = g(z, None, masks_to_channels(torch.from_numpy(new_masks), 1))[:, 0].numpy()
        drawn = channels_to_masks(g(z)[:, 1:]).numpy() > 0
    assert drawn.any(axis=(1, 2)).mean() >= 0.5 and drawn.mean() < 0.05  # real: 100 %, ≈ 1 %
    yy, xx = np.mgrid[:32, :32]
    head = (yy - 15.5) ** 2 + (xx - 15.5) ** 2 < 10**2
    lesion = new_masks > 0
    inside = np.array([painted[i][lesion[i]].mean() for i in range(64)])
    around = np.array([painted[i][head & ~lesion[i]].mean() for i in range(64)])
    assert np.mean(inside > around + 0.2) >= 0.8  # real: lesion 0.9, head −0.2
