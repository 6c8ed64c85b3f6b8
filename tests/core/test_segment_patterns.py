"""Mask-first masks drawn for a segment pattern (labelled layout 3): rare segments are drawn as
often as the training set holds them, and absent ones never."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.models import build_models
from medgan.models.labelled import channels_to_masks, masks_to_channels
from medgan.models.mask_first import (
    MaskFirstGenerator,
    mask_fields,
    pattern_frequencies,
    presence_of,
    presence_shortfall,
    segment_regions,
)
from tests.core._train_data import one_thread, small  # noqa: F401


def _heads_with_three_segments(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """32² grey heads; segment 1 (bright, r 3) on about 70 % of the slices, 2 (dark, r 2.5) on
    about 12 %, 3 (grey, r 4) on about 8 %, each placed at random (later ones not over earlier)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    head = (yy - 15.5) ** 2 + (xx - 15.5) ** 2 < 12.5**2
    images, masks = [], []
    for _ in range(n):
        image, mask = np.where(head, -0.2, -1.0), np.zeros((32, 32), np.uint8)
        for k, share, value, r in ((1, 0.7, 0.9, 3.0), (2, 0.12, -0.8, 2.5), (3, 0.08, 0.5, 4.0)):
            if rng.uniform() < share:
                cy, cx = rng.uniform(10, 21, 2)
                spot = ((yy - cy) ** 2 + (xx - cx) ** 2 < r * r) & (mask == 0)
                image, mask[spot] = np.where(spot, value, image), k
        images.append(image)
        masks.append(mask)
    return np.asarray(images, np.float32), np.asarray(masks, np.uint8)


def _generator(n_classes: int = 1) -> MaskFirstGenerator:
    G, _ = build_models("paired", 32, n_segments=3, width=8, mask_first=True, n_classes=n_classes)
    assert isinstance(G, MaskFirstGenerator) and G.conditions_presence
    return G.eval()


def test_pattern_shares_are_learnt_per_class_and_drawn_from_z_alone() -> None:
    masks = torch.zeros(10, 32, 32, dtype=torch.uint8)
    masks[:6, 4:12, 4:12] = 1  # pattern {1}: bit 0
    masks[:2, 20:28, 20:28] = 3  # pattern {1, 3}: bits 0 and 2
    labels = torch.tensor([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
    freq = pattern_frequencies(masks, labels, 3, 3)
    assert freq.shape == (3, 8)
    assert torch.allclose(freq[0], torch.tensor([0, 4 / 6, 0, 0, 0, 2 / 6, 0, 0]))
    assert torch.allclose(freq[1], torch.tensor([1.0, 0, 0, 0, 0, 0, 0, 0]))  # no segment
    assert torch.allclose(freq[2], torch.tensor([0.4, 0.4, 0, 0, 0, 0.2, 0, 0]))  # all slices

    G = _generator(n_classes=2)
    with pytest.raises(ValueError, match="32"):
        G.set_presence(masks[:, :8, :8], labels)
    G.set_presence(masks, labels)
    z = torch.randn(4000, 128, generator=torch.Generator().manual_seed(0))
    lesion = G.presence_for(z, torch.zeros(4000, dtype=torch.long))
    healthy = G.presence_for(z, torch.ones(4000, dtype=torch.long))
    assert lesion is not None and healthy is not None
    assert abs(float(lesion[:, 0].mean()) - 1.0) < 1e-6 and float(lesion[:, 1].sum()) == 0
    assert abs(float(lesion[:, 2].mean()) - 1 / 3) < 0.03
    assert float(healthy.sum()) == 0
    alone = torch.cat([G.presence_for(z[i : i + 1], torch.zeros(1, dtype=torch.long))
                       for i in range(50)])  # fmt: skip
    assert torch.equal(alone, lesion[:50])  # a sample's pattern depends on its z and class


def test_segments_left_out_of_the_pattern_are_exactly_background() -> None:
    G = _generator()
    _, masks = _heads_with_three_segments(64)
    G.set_presence(torch.from_numpy(masks))
    z = torch.randn(256, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        fields = G.draw_fields(z)
        drawn = channels_to_masks(G(z)[:, 1:])
    wanted = G.presence_for(z)
    assert wanted is not None
    absent = wanted == 0
    assert absent.any() and bool((fields.flatten(2).amax(2)[absent] == -1.0).all())
    for k in range(3):  # nothing is drawn of a segment the pattern leaves out
        assert not bool((drawn[absent[:, k]] == k + 1).any())
    assert "presence_freq" in G.state_dict()  # saved with the weights, for generation


def test_the_mask_discriminator_judges_fields_with_their_pattern_and_the_hinge_asks_for_depth(
) -> None:  # fmt: skip
    _, D = build_models("paired", 32, n_segments=3, width=8, mask_first=True)
    D.eval()
    masks = torch.zeros(2, 32, 32, dtype=torch.long)
    masks[:, 10:16, 10:16] = 1
    fields = mask_fields(masks_to_channels(masks, 3))
    own = presence_of(masks_to_channels(masks, 3))
    assert torch.equal(own, torch.tensor([[1.0, 0, 0], [1.0, 0, 0]]))
    with torch.no_grad():
        a, b = D.judge_fields(fields, None, own), D.judge_fields(fields, None, 1 - own)
    assert a.shape == (2,) and not torch.allclose(a, b)  # the pattern enters the logit
    assert float(presence_shortfall(fields, own)) == 0.0  # 3 pixels deep: enough
    missing = presence_shortfall(fields, torch.ones(2, 3))  # two segments asked for, not drawn
    assert float(missing) > 0.5


def test_the_hinge_looks_for_a_segment_only_where_real_ones_lie() -> None:
    """A corner speck does not satisfy it (on the demo, the generator had learnt to answer every
    request with one), and its gradient reaches only pixels near the real segments."""
    masks = torch.zeros(4, 32, 32, dtype=torch.long)
    masks[0, 12:16, 12:16] = 1
    masks[1, 14:18, 14:18] = 1
    region = segment_regions(masks, 2)
    assert region.shape == (2, 32, 32)
    assert region[0, 12:18, 12:18].all() and region[0].sum() < 200  # grown by reach // 2 = 2
    assert bool(region[1].all())  # a segment never seen: looked for everywhere
    speck = torch.full((1, 2, 32, 32), -1.0)
    speck[0, 0, 0, 0] = 1.0  # deep enough, but in the corner
    want = torch.tensor([[1.0, 0.0]])
    assert float(presence_shortfall(speck, want)) == 0.0
    fields = speck.clone().requires_grad_(True)
    loss = presence_shortfall(fields, want, region)
    assert float(loss.detach()) > 1.0
    loss.backward()
    assert fields.grad is not None
    touched = fields.grad[0, 0] != 0
    assert touched.any() and not bool(touched[region[0] == 0].any())


def test_rare_segments_are_drawn_about_as_often_as_in_the_training_set() -> None:
    """Without patterns (layout 2) the mask generator of these heads drew segment 1 only
    (on 78 % of the slices) and never 2 or 3 after 400 steps; with them, all three appear at
    about their real shares within 100 steps."""
    from medgan.train.trainer import Trainer

    images, masks = _heads_with_three_segments(96)
    cfg = small("paired", steps=100, batch_size=16, quality_every=0, sample_every=1000)
    assert cfg.labelled_layout == 3
    trainer = Trainer(cfg, images, masks=masks, mask_known=np.ones(96, bool),
                      segment_names=("a", "b", "c"))  # fmt: skip
    freq = pattern_frequencies(torch.from_numpy(masks), None, 1, 3)
    assert torch.allclose(trainer.G.presence_freq, freq)  # type: ignore[arg-type]
    assert trainer.run().status == "finished"
    g = trainer.model_generator.eval()
    assert torch.allclose(g.presence_freq, freq)  # type: ignore[arg-type]
    z = torch.randn(400, cfg.z_dim, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        drawn = channels_to_masks(g(z)[:, 1:]).numpy()
    for k in (1, 2, 3):
        real = float((masks == k).any(axis=(1, 2)).mean())
        made = float((drawn == k).any(axis=(1, 2)).mean())
        assert made == pytest.approx(real, abs=0.06), (k, made, real)
        assert made > 0


def test_model_files_keep_the_pattern_shares(tmp_path: Path) -> None:
    from medgan.generate.sampling import generate, load_generator
    from medgan.models.modelfile import ModelMetadata, save_model

    G, D = build_models("paired", 32, n_segments=3, width=8, mask_first=True)
    _, masks = _heads_with_three_segments(64)
    G.set_presence(torch.from_numpy(masks))  # type: ignore[operator]
    meta = ModelMetadata(recipe="paired", resolution=32, model_kwargs={
        "width": 8, "n_segments": 3, "d_block": "half", "d_image": True, "mask_first": True,
        "labelled_layout": 3}, segments=["a", "b", "c"],
        segment_colours=[[235, 64, 52], [52, 152, 219], [46, 204, 113]])  # fmt: skip
    path = save_model(tmp_path / "patterns.safetensors",
                      {"generator": G.state_dict(), "discriminator": D.state_dict()}, meta)  # fmt: skip
    loaded = load_generator(path, device="cpu").module
    assert torch.equal(loaded.presence_freq, G.presence_freq)  # type: ignore[arg-type]
    one = generate(path, 24, seed=3, batch_size=5, device="cpu")
    two = generate(path, 24, seed=3, batch_size=24, device="cpu")
    assert one.masks is not None and two.masks is not None
    assert np.array_equal(one.masks, two.masks)  # whatever the batch size
