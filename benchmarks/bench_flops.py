"""Arithmetic per image and achieved GFLOP/s of each recipe, next to a plain convolution.

For every recipe and resolution: GFLOP of one G+D training step per image
(:func:`medgan.models.flops.step_gflop_per_image`, counted by torch's FlopCounterMode), the
achieved GFLOP/s of that step (fp32, batch ``--batch``, Adam updates included, best of
``--rounds``), and, in the same run on the same device, the GFLOP/s of a plain 3x3 convolution
(64 -> 64 channels at 64², forward + backward): what the device sustains on the easiest
convolution. A recipe far below the plain figure is limited by small layers or elementwise
work, not by arithmetic.

    .venv/bin/python benchmarks/bench_flops.py                         # CPU, 64²
    .venv/bin/python benchmarks/bench_flops.py --device cuda --res 64 128 256 --batch 128
    .venv/bin/python benchmarks/bench_flops.py --smoke                 # seconds, for tests
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medgan.core.device import describe_device, resolve_device  # noqa: E402
from medgan.models import RECIPES, build_models  # noqa: E402
from medgan.models.flops import step_gflop_per_image  # noqa: E402


def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def plain_conv_gflops(dev: torch.device, batch: int, steps: int) -> float:
    """GFLOP/s of a 3x3 64->64 convolution at 64², forward + backward (input and weights)."""
    conv = torch.nn.Conv2d(64, 64, 3, 1, 1, bias=False).to(dev)
    x = torch.randn(batch, 64, 64, 64, device=dev, requires_grad=True)
    flop = 3 * 2 * 64 * 64 * 9 * 64 * 64 * batch  # fwd + 2 backward convolutions
    conv(x).sum().backward()
    _sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        conv(x).sum().backward()
    _sync(dev)
    return flop * steps / (time.perf_counter() - t) / 1e9


def recipe_step_rate(recipe: str, res: int, dev: torch.device, batch: int, steps: int) -> float:
    """Images per second of the counted step (fp32) with two Adam updates."""
    G, D = build_models(recipe, res, width=RECIPES[recipe].default_width)
    G, D = G.to(dev).train(), D.to(dev).train()
    og = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.99))
    od = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.99))
    real = torch.rand(batch, 1, res, res, device=dev) * 2 - 1

    def step() -> None:
        fake = G(torch.randn(batch, 128, device=dev))
        od.zero_grad(set_to_none=True)
        torch.nn.functional.softplus(D(torch.cat([real, fake.detach()]))).mean().backward()
        od.step()
        og.zero_grad(set_to_none=True)
        D.requires_grad_(False)
        torch.nn.functional.softplus(-D(fake)).mean().backward()
        D.requires_grad_(True)
        og.step()

    step()
    _sync(dev)
    t = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(dev)
    return steps * batch / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--res", type=int, nargs="+", default=[64])
    # Labelled recipes need class inputs: image-only recipes by default.
    parser.add_argument("--recipes", nargs="+", default=[r for r in RECIPES if not RECIPES[r].labelled])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    if args.smoke:
        args.res, args.batch, args.steps, args.rounds = [32], 2, 1, 1
    dev = resolve_device(args.device)
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads)")
    print(f"device: {describe_device(dev)}; batch {args.batch}, {args.steps} timed steps, best of "
          f"{args.rounds}; load average {os.getloadavg()[0]:.1f}")
    conv = max(plain_conv_gflops(dev, max(1, args.batch // 4), args.steps) for _ in range(args.rounds))
    print(f"plain 3x3 conv 64->64 at 64² (fwd+bwd): {conv:8.1f} GFLOP/s")
    rows = []
    print(f"{'recipe':8} {'res':>4} {'GFLOP/img':>9} {'img/s':>8} {'GFLOP/s':>8} {'of plain':>8}")
    for recipe in args.recipes:
        for res in args.res:
            gflop = step_gflop_per_image(recipe, res)
            rate = max(recipe_step_rate(recipe, res, dev, args.batch, args.steps)
                       for _ in range(args.rounds))  # fmt: skip
            rows.append({"recipe": recipe, "res": res, "gflop_per_image": gflop,
                         "img_per_s": rate, "gflops": gflop * rate})  # fmt: skip
            print(f"{recipe:8} {res:4d} {gflop:9.3f} {rate:8.1f} {gflop * rate:8.1f} "
                  f"{gflop * rate / conv:7.0%}")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"plain_conv_gflops": conv, "rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
