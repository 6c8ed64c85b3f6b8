"""Slice levels: the default recipe conditioned on where a slice lies in its series."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.dataset.positions import position_bins, series_levels
from medgan.models import build_models
from medgan.models.levels import LevelGenerator, pick_by_last_coordinate
from medgan.train.config import TrainConfig, TrainConfigError
from medgan.train.trainer import Trainer
from tests.core._train_data import one_thread, small  # noqa: F401
from tests.core.test_data import three_patients  # noqa: F401


def test_levels_run_from_the_first_to_the_last_slice_and_fall_in_equal_bins() -> None:
    assert series_levels([0, 2, 4], 5).tolist() == [0.0, 0.5, 1.0]
    assert series_levels([0], 1).tolist() == [0.5]
    assert series_levels([3, 4], 5, n_out=3).tolist() == pytest.approx([0.75, 0.875, 1.0])
    bins = position_bins(np.array([0.0, 0.24, 0.25, 0.5, 0.99, 1.0]), 4)
    assert bins.tolist() == [0, 0, 1, 2, 3, 3]


def test_the_training_set_records_each_slices_level_and_keeps_it_in_the_cache(
    three_patients: list,  # noqa: F811
    tmp_path: Path,
) -> None:
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set

    config = TrainingSetConfig(resolution=64, window_center=40.0, window_width=400.0)
    ts = build_training_set(three_patients, config, cache_root=tmp_path / "c")
    # six slices per series; patient 1 loses slices 0 and 5, patient 3 slice 2 (empty)
    expected = [1, 2, 3, 4] + [0, 1, 2, 3, 4, 5] + [0, 1, 3, 4, 5]
    assert ts.levels is not None
    assert ts.levels.tolist() == pytest.approx([i / 5 for i in expected])
    again = build_training_set(three_patients, config, cache_root=tmp_path / "c")
    assert again.from_cache and again.levels is not None
    assert again.levels.tolist() == ts.levels.tolist()


def test_the_generator_draws_levels_at_the_training_shares_from_z_alone() -> None:
    G, D = build_models("default", 32, width=8, levels=4)
    assert isinstance(G, LevelGenerator) and int(getattr(D, "n_classes", 1)) == 4
    G.eval()
    G.set_level_shares(torch.tensor([0] * 7 + [2] * 3))  # 70 % level 0, 30 % level 2
    z = torch.randn(4000, 128, generator=torch.Generator().manual_seed(0))
    drawn = torch.bincount(G.level_of(z), minlength=4).float() / len(z)
    assert drawn.tolist() == pytest.approx([0.7, 0.0, 0.3, 0.0], abs=0.03)
    with torch.no_grad():
        whole = G(z[:8])
        parts = torch.cat([G(z[:3]), G(z[3:8])])
        given = G(z[:8], G.level_of(z[:8]))
    assert whole.shape == (8, 1, 32, 32)
    assert torch.allclose(whole, parts, atol=1e-6)  # fixed by z, whatever the batch
    assert torch.equal(whole, given)
    assert pick_by_last_coordinate(torch.zeros(2, 3), torch.tensor([0.4, 0.6])).tolist() == [1, 1]


def test_levels_is_a_network_setting_and_1_is_refused() -> None:
    with pytest.raises(TrainConfigError, match="levels"):
        TrainConfig.for_recipe("default", steps=1, levels=1)
    with pytest.raises(TrainConfigError, match="levels"):
        TrainConfig.for_recipe("default", steps=1, levels=11)
    config = TrainConfig.for_recipe("default", steps=1, levels=4)
    assert config.network_options()["levels"] == 4 and config.architecture()["levels"] == 4
    old = {k: v for k, v in config.to_dict().items() if k not in ("levels", "d_block", "g_noise")}
    assert TrainConfig.from_dict(old).levels == 0  # settings written before: no levels


def test_a_level_conditioned_run_learns_the_levels_and_its_model_file_samples(
    tmp_path: Path,
) -> None:
    from medgan.generate.sampling import generate
    from medgan.workflows.training import TrainRequest, train_and_save

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:32, :32]
    images, levels = [], []
    for i in range(24):
        r = rng.uniform(6, 10)
        value = 0.8 if i % 3 else -0.3  # every third slice (the low levels) is darker
        images.append(np.where((yy - 16) ** 2 + (xx - 16) ** 2 < r * r, value, -1.0))
        levels.append(0.1 if i % 3 == 0 else 0.9)
    config = small(levels=2, steps=4, checkpoint_dir=None, quality_every=0)
    out = tmp_path / "levels.safetensors"
    outcome = train_and_save(
        TrainRequest(
            config,
            np.asarray(images, np.float32),
            out=out,
            slice_levels=np.asarray(levels, np.float32),
        )
    )
    assert outcome.status == "finished" and out.exists()
    generated = generate(out, 6, seed=3, device="cpu")
    assert generated.images.shape == (6, 32, 32) and generated.labels is None
    from medgan.models.modelfile import load_model

    loaded = load_model(out)
    assert loaded.metadata.model_kwargs["levels"] == 2
    freq = loaded.state["generator"]["level_freq"]
    assert freq.tolist() == pytest.approx([1 / 3, 2 / 3])


def test_without_levels_given_every_slice_is_the_middle_one() -> None:
    images = np.full((8, 32, 32), -1.0, np.float32)
    images[:, 8:24, 8:24] = 0.5
    trainer = Trainer(small(levels=3, steps=2, checkpoint_dir=None), images)
    assert isinstance(trainer.G, LevelGenerator)
    assert trainer.G.level_freq.tolist() == [0.0, 1.0, 0.0]
    trainer.run()
    with pytest.raises(Exception, match="slice levels"):
        Trainer(small(levels=3, steps=2), images, slice_levels=np.zeros(3, np.float32))
