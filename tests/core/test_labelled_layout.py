"""The labelled generators' layout 2: noise inputs as the ``default`` recipe's, and masks painted
from 0/1 inputs so that an empty mask adds nothing anywhere; files and settings from before it
keep layout 1."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from medgan.core.errors import TrainingError
from medgan.models import build_models
from medgan.models.blocks import ZNoise
from medgan.models.labelled import LabelledGenerator, SpatialAffine
from medgan.models.modelfile import ModelMetadata, load_model, save_model
from medgan.train.checkpoint import Checkpoint
from medgan.train.config import TrainConfig
from medgan.train.setup import build_networks, check_resume, load_init_model


def _mask_weights(G: LabelledGenerator) -> list[torch.Tensor]:
    """The weights through which a given mask reaches the painter's features and image."""
    convs = [m.proj for m in G.modules() if isinstance(m, SpatialAffine)]
    assert G.mask_to_image is not None
    return [conv.weight for conv in [*convs, G.mask_to_image]]


def _painted(unit: bool, masks: torch.Tensor, z: torch.Tensor, trained: bool) -> torch.Tensor:
    torch.manual_seed(0)
    G = LabelledGenerator(32, 128, 1, 8, mask_inputs=2, unit_mask_inputs=unit)
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for w in _mask_weights(G):
            w.copy_(0.3 * torch.randn(w.shape, generator=gen) if trained else torch.zeros_like(w))
        return G(z, None, masks)


@pytest.mark.parametrize("unit", [True, False])
def test_an_empty_mask_adds_nothing_anywhere_only_with_unit_inputs(unit: bool) -> None:
    z = torch.randn(3, 128)
    empty = -torch.ones(3, 2, 32, 32)  # the ±1 channels of a mask without segments
    with_mask_weights = _painted(unit, empty, z, trained=True)
    without = _painted(unit, empty, z, trained=False)
    if unit:  # 0/1 inputs: the mask convolutions see zeros, padding included
        assert torch.allclose(with_mask_weights, without, atol=1e-6)
    else:  # ±1: a plane of −1 against zero padding leaves a fixed pattern at the borders
        diff = (with_mask_weights - without).abs()
        assert float(diff.max()) > 1e-3
        edge = torch.cat([diff[..., 0, :], diff[..., -1, :]], dim=-1).mean()
        assert float(edge) > float(diff[..., 8:24, 8:24].mean())
    lesion = empty.clone()
    lesion[:, 0, 10:16, 10:16] = 1.0
    assert not torch.allclose(_painted(unit, lesion, z, trained=True), with_mask_weights)


def test_labelled_generators_have_noise_inputs_and_layout_1_has_none() -> None:
    G, _ = build_models("paired", 32, n_segments=2, width=8, mask_first=True)
    painter_noise = [m for m in G.painter.modules() if isinstance(m, ZNoise)]
    assert len(painter_noise) == 1 and G.painter.unit_mask_inputs
    assert not any(isinstance(m, ZNoise) for m in G.masker.modules())  # fields stay smooth
    Gc, _ = build_models("conditional", 32, n_classes=2, width=8)
    assert any(isinstance(m, ZNoise) for m in Gc.modules())
    assert not any(isinstance(m, ZNoise) for m in build_models(
        "conditional", 32, n_classes=2, width=8, g_noise=False)[0].modules())  # fmt: skip
    old, _ = build_models("paired", 32, n_segments=2, width=8, mask_first=True, labelled_layout=1)
    assert not old.painter.unit_mask_inputs
    v2, _ = build_models("paired", 32, n_segments=2, width=8, mask_first=True, labelled_layout=2)
    assert set(v2.state_dict()) - set(old.state_dict()) == {"painter.noise.32.weight"}
    assert set(G.state_dict()) - set(v2.state_dict()) == {
        "presence_freq", "masker.presence.weight", "masker.presence.bias"}  # fmt: skip
    z, y = torch.randn(4, 128), torch.tensor([0, 1, 1, 0])
    with torch.no_grad():
        for module in Gc.modules():
            if isinstance(module, ZNoise):
                module.weight.fill_(0.5)
        batch = Gc(z, y)
        alone = torch.cat([Gc(z[i : i + 1], y[i : i + 1]) for i in range(4)])
    assert torch.allclose(batch, alone, atol=1e-5)  # a sample stays a function of (z, class)
    with pytest.raises(ValueError, match="labelled_layout"):
        build_models("paired", 32, n_segments=1, labelled_layout=4)
    with pytest.raises(ValueError, match="labelled_layout"):
        TrainConfig.for_recipe("paired", labelled_layout=0)


def test_files_and_settings_from_before_layout_2_keep_their_generator(tmp_path: Path) -> None:
    G, D = build_models("paired", 32, n_segments=1, width=8, mask_first=True, labelled_layout=1)
    meta = ModelMetadata(recipe="paired", resolution=32, model_kwargs={
        "width": 8, "n_segments": 1, "d_block": "half", "d_image": True, "mask_first": True},
        format_version=4, segments=["lesion"], segment_colours=[[235, 64, 52]])  # fmt: skip
    path = save_model(tmp_path / "v4.safetensors",
                      {"generator": G.state_dict(), "discriminator": D.state_dict()}, meta)  # fmt: skip
    loaded = load_model(path)
    assert loaded.metadata.model_kwargs["labelled_layout"] == 1
    settings = loaded.metadata.network_settings()
    assert settings["labelled_layout"] == 1
    config = TrainConfig.for_recipe("paired", resolution=32, steps=5, **settings)
    G2, D2 = build_networks(config, torch.device("cpu"), model_kwargs={"n_segments": 1})
    load_init_model(G2, D2, loaded.as_init(), config)  # raises if the layouts differ

    new = TrainConfig.for_recipe("paired", resolution=32, steps=5)
    assert new.labelled_layout == 3 and new.network_options()["g_noise"] is True
    saved = new.to_dict()
    saved.pop("labelled_layout")  # settings written before the option (g_noise stays stored)
    assert TrainConfig.from_dict(saved).labelled_layout == 1
    ckpt = Checkpoint(1, {}, {}, {}, meta={"config": saved}, path=tmp_path / "c")
    with pytest.raises(TrainingError, match="labelled_layout"):
        check_resume(ckpt, new)
    check_resume(ckpt, new.replace(labelled_layout=1))
