"""Network options: the discriminator's block layout (half-resolution second convolutions by
default) and the generator's noise inputs; model files, checkpoints and settings from before
the options keep the networks they were written with."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from medgan.core.errors import TrainingError
from medgan.curate.realism import discriminator_realism
from medgan.models import build_models
from medgan.models.blocks import SNDownBlock, ZNoise
from medgan.models.flops import step_gflop_per_image
from medgan.models.modelfile import ModelMetadata, load_model, save_model
from medgan.train.checkpoint import Checkpoint
from medgan.train.config import TrainConfig
from medgan.train.setup import build_networks, check_resume, load_init_model
from medgan.workflows.training import model_metadata


@pytest.mark.parametrize("conv_at", ["half", "full"])
def test_both_layouts_halve_the_size_and_keep_the_channels(conv_at: str) -> None:
    block = SNDownBlock(8, 16, conv_at)
    assert block(torch.randn(2, 8, 32, 32)).shape == (2, 16, 16, 16)


def test_half_layout_costs_well_under_the_full_one() -> None:
    half = step_gflop_per_image("default", 64, d_block="half")
    full = step_gflop_per_image("default", 64, d_block="full")
    assert half < 0.5 * full
    assert step_gflop_per_image("default", 64) == half  # the default


def test_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match="conv_at"):
        SNDownBlock(8, 16, "quarter")
    with pytest.raises(ValueError, match="d_block"):
        TrainConfig.for_recipe("default", d_block="quarter")


def test_settings_from_before_the_option_mean_the_full_layout() -> None:
    new = TrainConfig.for_recipe("default", steps=5)
    assert new.d_block == "half"
    old = {k: v for k, v in new.to_dict().items() if k != "d_block"}
    assert TrainConfig.from_dict(old).d_block == "full"
    assert TrainConfig.from_dict(new.to_dict()).d_block == "half"
    dcgan = TrainConfig.for_recipe("dcgan", steps=5)
    assert dcgan.network_options() == {} and dcgan.architecture()["d_block"] is None


def test_an_old_checkpoint_is_not_resumed_into_the_new_layout(tmp_path: Path) -> None:
    new = TrainConfig.for_recipe("default", resolution=32, steps=5)
    old_settings = {k: v for k, v in new.to_dict().items() if k != "d_block"}
    ckpt = Checkpoint(1, {}, {}, {}, meta={"config": old_settings}, path=tmp_path / "c")
    with pytest.raises(TrainingError, match="d_block 'full'"):
        check_resume(ckpt, new)
    check_resume(ckpt, new.replace(d_block="full"))  # the checkpoint's own settings resume
    dcgan = TrainConfig.for_recipe("dcgan", resolution=32, steps=5)
    old_dcgan = {k: v for k, v in dcgan.to_dict().items() if k != "d_block"}
    check_resume(
        Checkpoint(step=1, modules={}, optimizers={}, rng={}, meta={"config": old_dcgan}), dcgan
    )


def _old_model_file(tmp_path: Path) -> Path:
    """A version-1 model file (before the options): full-layout D, no noise inputs in G."""
    G, D = build_models("default", 32, d_block="full", g_noise=False)
    meta = ModelMetadata(
        recipe="default", resolution=32, model_kwargs={"width": 16}, format_version=1
    )
    return save_model(
        tmp_path / "old.safetensors",
        {"generator": G.state_dict(), "discriminator": D.state_dict()},
        meta,
    )


def test_old_model_files_keep_their_discriminator_for_scoring_and_fine_tuning(
    tmp_path: Path,
) -> None:
    loaded = load_model(_old_model_file(tmp_path))
    assert loaded.metadata.model_kwargs["d_block"] == "full"
    assert loaded.metadata.model_kwargs["g_noise"] is False
    realism = discriminator_realism(loaded, device="cpu")
    assert realism(np.zeros((3, 32, 32), np.float32)).shape == (3,)

    settings = loaded.metadata.network_settings()
    assert settings["d_block"] == "full" and settings["width"] == 16
    assert settings["g_noise"] is False
    config = TrainConfig.for_recipe("default", resolution=32, steps=5, **settings)
    G, D = build_networks(config, torch.device("cpu"))
    load_init_model(G, D, loaded.as_init(), config)  # raises if the layouts differ
    with pytest.raises(Exception, match="does not fit"):
        fresh = TrainConfig.for_recipe("default", resolution=32, steps=5)
        load_init_model(*build_networks(fresh, torch.device("cpu")), loaded.as_init(), fresh)


def test_new_model_files_record_the_layout() -> None:
    for recipe, layout, noise, image_d, labelled in (
        ("default", "half", True, None, None),
        ("paired", "half", True, True, 3),
        ("conditional", "half", True, True, 3),
        ("dcgan", None, None, None, None),
    ):
        config = TrainConfig.for_recipe(recipe, resolution=32, steps=5)
        meta = model_metadata(config, {}, {})
        again = ModelMetadata.from_dict(meta.to_dict())
        for kw in (meta.model_kwargs, again.model_kwargs):
            assert kw.get("d_block") == layout and kw.get("g_noise") == noise
            assert kw.get("d_image") == image_d and kw.get("labelled_layout") == labelled


def test_a_paired_discriminator_judges_the_image_alone_in_its_first_column() -> None:
    _, D = build_models("paired", 32, n_segments=2)
    D.eval()  # spectral norm's power iteration would move between the two calls
    image = torch.randn(3, 1, 32, 32)
    masks = -torch.ones(3, 2, 32, 32)
    other = masks.clone()
    other[:, 0, 8:16, 8:16] = 1.0
    with torch.no_grad():
        a, b = D(torch.cat([image, masks], 1)), D(torch.cat([image, other], 1))
    assert a.shape == (3, 2)
    assert torch.equal(a[:, 0], b[:, 0])  # the image column does not see the mask
    assert not torch.allclose(a[:, 1], b[:, 1])  # the pair column does
    realism = discriminator_realism(D, device="cpu")
    assert realism(np.zeros((3, 32, 32), np.float32)).shape == (3,)  # column 0 per image
    _, images_only = build_models("conditional", 32, n_classes=2)  # no masks: one logit
    assert images_only(image, torch.tensor([0, 1, 0])).shape == (3,)


def test_paired_files_and_settings_from_before_the_image_column_keep_one_trunk(
    tmp_path: Path,
) -> None:
    new = TrainConfig.for_recipe("paired", resolution=32, steps=5)
    assert new.d_image is True
    old = {k: v for k, v in new.to_dict().items() if k not in ("d_image", "d_block")}
    assert TrainConfig.from_dict(old).d_image is False
    G, D = build_models(
        "paired", 32, n_segments=1, d_block="full", d_image=False, labelled_layout=1
    )
    assert not any(k.startswith("image_") for k in D.state_dict())
    meta = ModelMetadata(recipe="paired", resolution=32, model_kwargs={
        "width": 16, "n_segments": 1, "d_block": "full"}, format_version=2, segments=["lesion"],
        segment_colours=[[235, 64, 52]])  # fmt: skip
    path = save_model(tmp_path / "p.safetensors",
                      {"generator": G.state_dict(), "discriminator": D.state_dict()}, meta)  # fmt: skip
    loaded = load_model(path)
    assert loaded.metadata.model_kwargs["d_image"] is False
    settings = loaded.metadata.network_settings()
    config = TrainConfig.for_recipe("paired", resolution=32, steps=5, **settings)
    G2, D2 = build_networks(config, torch.device("cpu"), model_kwargs={"n_segments": 1})
    load_init_model(G2, D2, loaded.as_init(), config)  # raises if the layouts differ


def test_noise_inputs_start_silent_and_keep_a_sample_a_function_of_its_z() -> None:
    torch.manual_seed(0)
    plain, _ = build_models("default", 32, g_noise=False)
    torch.manual_seed(0)
    noisy, _ = build_models("default", 32, g_noise=True)
    assert set(noisy.state_dict()) - set(plain.state_dict()) == {"noise.32.weight"}
    z = torch.randn(5, 128)
    with torch.no_grad():
        assert torch.equal(plain(z), noisy(z))  # weights start at 0, nothing else changes
        for module in noisy.modules():
            if isinstance(module, ZNoise):
                module.weight.fill_(0.5)
        batch = noisy(z)
        assert not torch.equal(batch, plain(z))
        alone = torch.cat([noisy(z[i : i + 1]) for i in range(5)])
    assert torch.allclose(batch, alone, atol=1e-5)  # no hidden random stream


def test_noise_maps_are_fixed_and_look_like_white_noise() -> None:
    a, b = ZNoise(128, 32, 4, seed=32), ZNoise(128, 32, 4, seed=32)
    assert torch.equal(a.proj, b.proj)  # rebuilt identically, so it need not be stored
    maps = (torch.randn(64, 128) @ a.proj.T).view(64, 32, 32)
    assert abs(float(maps.std()) - 1.0) < 0.05
    pairs = torch.stack([maps[:, :, :-1].reshape(-1), maps[:, :, 1:].reshape(-1)])
    assert abs(float(torch.corrcoef(pairs)[0, 1])) < 0.05  # neighbours ≈ uncorrelated


def test_every_network_option_names_the_format_version_that_first_recorded_it() -> None:
    from medgan.models import LEGACY_NETWORK_OPTIONS
    from medgan.models.modelfile import FORMAT_VERSION, OPTION_SINCE

    options = {key for table in LEGACY_NETWORK_OPTIONS.values() for key in table}
    assert options == set(OPTION_SINCE)
    assert all(2 <= v <= FORMAT_VERSION for v in OPTION_SINCE.values())


def test_ada_reads_every_logit_column_of_a_paired_discriminator() -> None:
    from medgan.train.augment import Augmenter

    aug = Augmenter(("flip",), target=0.6, interval=1)
    aug.observe(torch.tensor([[1.0, 1.0], [1.0, -1.0]]))  # (B, 2): 3 of 4 logits positive
    aug.adjust(1)
    assert aug.last_r == pytest.approx(0.5)  # the mean sign over all columns, within [-1, 1]
