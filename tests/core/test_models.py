"""Recipes: shapes, output ranges, the DCGAN's faithful layers, spectral norm in the default D."""

from __future__ import annotations

import sys

import pytest
import torch
from torch import nn

from medgan.models import RECIPES, SUPPORTED_RESOLUTIONS, build_models


@pytest.mark.parametrize("recipe", sorted(r for r in RECIPES if not RECIPES[r].labelled))
@pytest.mark.parametrize("resolution", [32, 64, 128, 256])
def test_shapes_and_ranges(recipe, resolution):
    torch.manual_seed(0)
    G, D = build_models(recipe, resolution, z_dim=16, width=8)
    z = torch.randn(2, 16)
    with torch.no_grad():
        x = G(z)
        logits = D(x)
    assert x.shape == (2, 1, resolution, resolution)
    assert x.min() >= -1 and x.max() <= 1
    assert logits.shape == (2,) and torch.isfinite(logits).all()
    assert len(D.blocks) >= 3  # blocks exist for freezing


def test_dcgan_is_faithful():
    G, D = build_models("dcgan", 64)
    g_layers = [type(m) for m in G.modules() if not isinstance(m, (nn.Sequential, nn.ModuleList))]
    assert g_layers.count(nn.ConvTranspose2d) == 5 and g_layers[-1] is nn.Tanh
    assert nn.ReLU in g_layers and nn.BatchNorm2d in g_layers
    d_layers = [m for m in D.modules() if isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.LeakyReLU))]
    assert all(m.negative_slope == 0.2 for m in d_layers if isinstance(m, nn.LeakyReLU))
    assert not isinstance(d_layers[1], nn.BatchNorm2d)  # no BatchNorm on D's input layer
    assert not any(isinstance(m, nn.Sigmoid) for m in D.modules())  # logits out
    first = G.blocks[0][0]
    assert first.in_channels == 128 and first.out_channels == 512  # ngf*8 at 4x4
    assert 0.015 < first.weight.std().item() < 0.025  # N(0, 0.02) init


def test_default_discriminator_is_spectrally_normalized():
    _, D = build_models("default", 64)
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(nn.utils.parametrize.is_parametrized(c, "weight") for c in convs)


def test_unknown_recipe_and_resolution_are_refused():
    with pytest.raises(ValueError, match="Unknown recipe"):
        build_models("stylegan9", 64)
    with pytest.raises(ValueError, match="Unsupported resolution"):
        build_models("dcgan", 48)
    assert SUPPORTED_RESOLUTIONS == (32, 64, 128, 256)


def test_listing_recipes_does_not_import_torch():
    import subprocess

    code = "import sys, medgan.models, medgan.train.config; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_default_generator_is_batch_independent():
    """PixelNorm, not BatchNorm: a sample does not depend on its batch or on train/eval mode."""
    from medgan.models.blocks import PixelNorm

    torch.manual_seed(0)
    G, _ = build_models("default", 64)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    assert any(isinstance(m, PixelNorm) for m in G.modules())
    ups = [m for m in G.modules() if isinstance(m, nn.Upsample)]
    assert ups and all(m.mode == "bilinear" for m in ups)
    z = torch.randn(4, 128)
    with torch.no_grad():
        alone = G.train()(z[:1])
        batched = G.eval()(z)[:1]
    assert torch.allclose(alone, batched, atol=1e-5)


def test_default_generator_keeps_the_fastgan_variant():
    from medgan.models.default import FastGenerator

    G = FastGenerator(32, z_dim=16, width=8, upsample="nearest", norm="batch")
    assert any(isinstance(m, nn.BatchNorm2d) for m in G.modules())
    with torch.no_grad():
        assert G.eval()(torch.randn(2, 16)).shape == (2, 1, 32, 32)
    with pytest.raises(ValueError, match="normalization"):
        FastGenerator(32, norm="group")
