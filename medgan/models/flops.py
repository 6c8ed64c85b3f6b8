"""Arithmetic cost of one training step per image, counted by torch (not estimated by hand).

One step of every recipe = a discriminator update on real and fake images plus a generator
update through the discriminator: G forward, D forward on 2 images, D backward (weights and
inputs), D forward and backward into G on the fake, G backward. ``FlopCounterMode`` counts
the convolutions and matrix products of exactly that (elementwise work is left out, as usual).

Example::

    step_gflop_per_image("default", 64)   # ≈ 0.75 GFLOP at width 16 (1.3 with d_block='full')
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from medgan.models import RECIPES, build_models


@lru_cache(maxsize=64)
def step_gflop_per_image(
    recipe: str,
    resolution: int,
    width: int | None = None,
    z_dim: int = 128,
    d_block: str | None = None,
) -> float:
    """GFLOP of one G+D training step per image (multiply-add = 2 FLOP).

    ``d_block``: the discriminator layout (:data:`medgan.models.D_BLOCKS`); None = the default.
    """
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    batch = 4
    width = width or RECIPES[recipe].default_width
    options: dict[str, Any] = {"d_block": d_block} if d_block is not None else {}
    G, D = build_models(recipe, resolution, z_dim=z_dim, width=width, **options)
    G.train(), D.train()
    z = torch.randn(batch, z_dim)
    real = torch.rand(batch, 1, resolution, resolution) * 2 - 1
    counter = FlopCounterMode(display=False)
    with counter:
        fake = G(z)
        d_out = D(torch.cat([real, fake.detach()]))
        d_out.mean().backward()
        D.requires_grad_(False)
        D(fake).mean().backward()
        D.requires_grad_(True)
    return float(counter.get_total_flops()) / batch / 1e9
