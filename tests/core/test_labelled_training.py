"""Labelled recipes: conditional and paired train on tiny labelled fixtures; conditioning works;
masks stay aligned with images through augmentation; bad labelled input is refused clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medgan.core.errors import DataError
from medgan.generate.sampling import generate
from medgan.models.labelled import channels_to_masks
from medgan.models.modelfile import read_metadata
from medgan.train.augment import Augmenter
from medgan.train.events import QualityMeasured, SampleGrid, TrainStarted
from medgan.train.labelled import BatchSampler, prepare_labelled
from medgan.train.trainer import Trainer
from medgan.workflows.training import TrainRequest, train_and_save
from tests.core._train_data import (  # noqa: F401 - autouse fixture
    one_thread,
    small,
    train_paired_and_sample,
)


def _discs(n: int, levels: list[float], seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` discs per level on black at 32²: images, class per image, disc masks (1 inside)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:32, :32]
    images, labels, masks = [], [], []
    for k, level in enumerate(levels):
        for _ in range(n):
            cy, cx, r = rng.uniform(11, 21), rng.uniform(11, 21), rng.uniform(5, 8)
            inside = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
            images.append(np.where(inside, level, -1.0))
            labels.append(k)
            masks.append(inside.astype(np.uint8))
    return (
        np.asarray(images, np.float32),
        np.asarray(labels, np.int64),
        np.asarray(masks, np.uint8),
    )


def _brightness_class(images: np.ndarray) -> np.ndarray:
    """An independent check: 1 where the brightest tenth of the pixels is bright."""
    top = np.sort(images.reshape(len(images), -1), axis=1)[:, -images[0].size // 10 :]
    return (top.mean(axis=1) > 0.35).astype(np.int64)


def test_conditional_trains_and_events_carry_the_class_table(tmp_path):
    images, labels, _ = _discs(6, [-0.2, 0.9])
    events = []
    cfg = small("conditional", steps=4, quality_every=2, quality_samples=16, n_samples=4)
    trainer = Trainer(
        cfg, images, labels=labels, class_names=("dark", "bright"), on_event=events.append
    )
    result = trainer.run()
    assert result.status == "finished", result.message
    started = next(e for e in events if isinstance(e, TrainStarted))
    assert started.class_names == ("dark", "bright") and started.class_counts == (6, 6)
    grid = next(e for e in events if isinstance(e, SampleGrid))
    assert grid.labels is not None and grid.labels.tolist() == [0, 0, 1, 1]  # a row per class
    assert grid.class_names == ("dark", "bright")
    probes = [e for e in events if isinstance(e, QualityMeasured)]
    assert probes and set(probes[0].per_class) == {"dark", "bright"}
    assert probes[0].swd == pytest.approx(np.mean(list(probes[0].per_class.values())), abs=1e-2)
    sel = trainer.selection()
    assert set(sel["per_class"]) == {"dark", "bright"}


def test_paired_trains_and_its_model_draws_integer_masks(tmp_path):
    images, _, masks = _discs(8, [0.8])
    cfg = small("paired", steps=3, quality_every=0, checkpoint_dir=str(tmp_path / "ck"))
    events = []
    outcome = train_and_save(
        TrainRequest(
            cfg,
            images,
            masks=masks,
            mask_known=np.ones(len(images), bool),
            segment_names=("disc",),
            out=tmp_path / "pairs.safetensors",
        ),
        on_event=events.append,
    )
    assert outcome.status == "finished", outcome.message
    grid = next(e for e in events if isinstance(e, SampleGrid))
    assert grid.masks is not None and grid.masks.dtype == np.uint8
    meta = read_metadata(outcome.model_path)
    assert meta.n_segments == 1 and meta.segments == ["disc"] and meta.masks_from == "paired"
    assert meta.segment_colours and len(meta.segment_colours[0]) == 3
    out = generate(outcome.model_path, 5, seed=0, device="cpu")
    assert out.masks is not None and set(np.unique(out.masks)) <= {0, 1}


def test_conditional_pairs_combined(tmp_path):
    images, labels, masks = _discs(5, [-0.2, 0.9])
    cfg = small("conditional", steps=2, quality_every=0, class_pairs=True)
    outcome = train_and_save(
        TrainRequest(
            cfg,
            images,
            labels=labels,
            class_names=("dark", "bright"),
            masks=masks,
            segment_names=("disc",),
            out=tmp_path / "both.safetensors",
        )
    )
    meta = read_metadata(outcome.model_path)
    assert meta.n_classes == 2 and meta.n_segments == 1
    assert meta.classes == ["dark", "bright"] and meta.class_counts == [5, 5]
    out = generate(outcome.model_path, 0, per_class={"bright": 3}, device="cpu")
    assert out.labels.tolist() == [1, 1, 1] and out.masks.shape == (3, 32, 32)


def test_conditioning_works_bright_versus_dark_discs():
    """After a short CPU run, ≥ 90 % of each class's samples look like that class."""
    images, labels, _ = _discs(32, [-0.3, 0.9], seed=1)
    assert (_brightness_class(images) == labels).all()  # the check itself is right on real data
    # Toy-sized optimizer settings (faster Adam, short EMA): 6 of 6 seeds reach >= 96 % at 160
    # steps (about 10 s on a 2-core VM); the recipe's defaults need longer on this toy.
    cfg = small(
        "conditional",
        steps=160,
        batch_size=16,
        lr_g=5e-4,
        lr_d=1e-3,
        betas=(0.0, 0.99),
        quality_every=0,
        sample_every=1000,
        ema_decay=0.9,
        ema_rampup=0.0,
    )
    trainer = Trainer(cfg, images, labels=labels, class_names=("dark", "bright"))
    assert trainer.run().status == "finished"
    g = trainer.model_generator.eval()
    z = torch.randn(64, cfg.z_dim, generator=torch.Generator().manual_seed(7))
    y = torch.arange(64) % 2
    with torch.no_grad():
        samples = g(z, y)[:, 0].numpy()
    accuracy = float((_brightness_class(samples) == y.numpy()).mean())
    assert accuracy >= 0.9, accuracy


def test_masks_stay_aligned_with_images_through_augmentation():
    """Translation and cutout move image and mask together; brightness/contrast touch the image
    only, so the mask channel stays exactly ±1 and matches the shifted disc."""
    images, _, masks = _discs(4, [0.8])
    x = torch.cat(
        [torch.from_numpy(images)[:, None], torch.from_numpy(masks)[:, None].float() * 2 - 1], 1
    )
    aug = Augmenter(("brightness", "contrast", "translation", "cutout"), p=1.0, image_channels=1)
    out = aug(x, torch.Generator().manual_seed(3))
    mask = out[:, 1]
    assert set(torch.unique(mask).tolist()) <= {-1.0, 1.0}  # no intensity change, no blur
    moved = 0
    for img, m, before in zip(out[:, 0], mask, x[:, 1], strict=True):
        # the disc keeps one (changed) level; it is exactly where the mask says, wherever the
        # translation moved it and whatever the cutout removed
        level = img[m > 0]
        assert len(level) and level.max() - level.min() < 1e-5
        is_disc = (img - level[0]).abs() < 1e-4
        assert torch.equal(is_disc, m > 0)
        moved += int(not torch.equal(m, before))
    assert moved  # the transforms did act on the masks
    # a known transform: translation by one pixel moves image and mask channels alike
    shift = Augmenter(("translation",), p=1.0, image_channels=1)
    gen = torch.Generator().manual_seed(5)
    y = shift(x, gen)
    for img, m in zip(y[:, 0], y[:, 1], strict=True):
        assert torch.equal(img > -1.0, m > 0)


def test_class_balanced_sampling_draws_the_minority_half_the_time():
    labels = np.array([0] * 95 + [1] * 5)
    gen = torch.Generator().manual_seed(0)
    drawn = BatchSampler(labels, 100, balanced=True).draw(4000, gen).numpy()
    share = float((labels[drawn] == 1).mean())
    assert 0.45 < share < 0.55
    plain = BatchSampler(labels, 100, balanced=False).draw(4000, gen).numpy()
    assert float((labels[plain] == 1).mean()) < 0.1


def test_bad_labelled_input_is_refused_with_advice():
    images, labels, masks = _discs(6, [-0.2, 0.9])
    names = ("dark", "bright")
    with pytest.raises(DataError, match="one class only") as err:
        prepare_labelled("conditional", images, labels=np.zeros(12, np.int64), class_names=names)
    assert "default" in err.value.advice
    few = labels.copy()
    few[:-2] = 0
    with pytest.raises(DataError, match="Too few training slices in class bright") as err:
        prepare_labelled("conditional", images, labels=few, class_names=names)
    assert "merge" in err.value.advice
    many = tuple(f"c{i}" for i in range(11))
    with pytest.raises(DataError, match="11 classes") as err:
        prepare_labelled(
            "conditional", np.repeat(images, 5, 0)[:55], labels=np.arange(55) % 11, class_names=many
        )
    assert "Merge" in err.value.advice
    with pytest.raises(DataError, match="no masks"):
        prepare_labelled("paired", images)
    with pytest.raises(DataError, match="has none"):
        prepare_labelled("conditional", images)
    known = np.ones(12, bool)
    known[:3] = False
    data = prepare_labelled(
        "paired", images, masks=masks, mask_known=known, segment_names=("disc",)
    )
    assert len(data.images) == 9 and "3 of 12 slices have no mask" in data.notices[0]
    with pytest.raises(DataError, match="No training slice has a known mask"):
        prepare_labelled(
            "paired", images, masks=masks, mask_known=np.zeros(12, bool), segment_names=("d",)
        )
    # the trainer refuses before training starts
    with pytest.raises(DataError):
        Trainer(small("conditional"), images)


def test_a_labelled_run_resumes_and_refuses_other_classes(tmp_path):
    images, labels, _ = _discs(6, [-0.2, 0.9])
    names = ("dark", "bright")
    run = tmp_path / "run"
    cfg = small("conditional", steps=4, quality_every=0, checkpoint_dir=str(run))
    straight = Trainer(cfg.replace(checkpoint_dir=None), images, labels=labels, class_names=names)
    straight.run()
    first = Trainer(cfg.replace(steps=2), images, labels=labels, class_names=names)
    first.run()
    resumed = Trainer(cfg, images, labels=labels, class_names=names, resume_from=run)
    assert resumed.run().status == "finished"
    for a, b in zip(straight.G.state_dict().values(), resumed.G.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # class-balanced batches continue exactly
    with pytest.raises(Exception, match="other classes"):
        Trainer(cfg, images, labels=labels, class_names=("pale", "bright"), resume_from=run)


def test_paired_masks_cover_the_generated_disc():
    """A short CPU run on discs whose mask is the disc: the generated masks are not empty and
    match the generated disc (Dice > 0.5 for most samples; about 16 s on an idle 2-core VM).
    Small masks (lesions of about 1 % of the pixels): tests/core/test_paired_masks.py."""
    images, _, masks = _discs(32, [0.8], seed=1)
    out = train_paired_and_sample(images, masks, "disc", steps=200)
    drawn = channels_to_masks(out[:, 1:]).numpy() > 0
    disc = out[:, 0].numpy() > 0  # the generated disc (0.8 on a −1 background)
    assert drawn.any(axis=(1, 2)).mean() >= 0.9  # masks are not empty
    inter = (drawn & disc).sum(axis=(1, 2))
    dice = 2 * inter / np.maximum(1, drawn.sum(axis=(1, 2)) + disc.sum(axis=(1, 2)))
    assert (dice > 0.5).mean() >= 0.8, np.round(dice, 2)
