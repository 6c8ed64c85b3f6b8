"""Training throughput of the engine against a naive DCGAN loop, same architecture, same run.

The naive reference is written the way the well-known PyTorch DCGAN example does it: fp32,
a DataLoader over CPU tensors, a Sigmoid at the end of D with BCELoss, separate real and fake
discriminator passes, D weight gradients computed (and discarded) in the G step, and the
per-iteration ``.item()`` statistics. The engine is ``medgan.train.Trainer`` with the ``dcgan``
recipe (same networks, same losses, same batch). Variants run alternately for ``--rounds``
rounds; the best round of each is reported, which damps noise from other work on the machine.

    .venv/bin/python benchmarks/bench_train_throughput.py                      # CPU, 64², batch 64
    .venv/bin/python benchmarks/bench_train_throughput.py --device cuda --res 128 --batch 128 \
        --steps 50 --warmup 10
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medgan.core.device import describe_device, resolve_device  # noqa: E402
from medgan.models import build_models  # noqa: E402
from medgan.train.config import TrainConfig  # noqa: E402
from medgan.train.trainer import Trainer  # noqa: E402


def training_images(n: int, res: int, seed: int = 0) -> np.ndarray:
    """Smooth random blobs in [-1, 1]; content does not change the arithmetic."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:res, :res] / res
    out = np.empty((n, res, res), np.float32)
    for i in range(n):
        cy, cx, r = rng.uniform(0.3, 0.7, 3) * (1, 1, 0.5)
        out[i] = np.where((yy - cy) ** 2 + (xx - cx) ** 2 < r * r, 0.6, -1.0)
    return out


def naive_loop(images: np.ndarray, args: argparse.Namespace, device: torch.device) -> float:
    """The reference loop; returns images per second over the timed iterations."""
    torch.manual_seed(0)
    net_g, net_d0 = build_models("dcgan", args.res, z_dim=128, width=args.width)
    net_g = net_g.to(device)
    net_d = nn.Sequential(net_d0, nn.Sigmoid()).to(device)
    criterion = nn.BCELoss()
    opt_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))
    data = torch.utils.data.TensorDataset(torch.from_numpy(images).unsqueeze(1))
    loader = torch.utils.data.DataLoader(
        data, batch_size=args.batch, shuffle=True, drop_last=True, num_workers=0
    )
    total = args.warmup + args.steps
    done, start = 0, 0.0
    while done < total:
        for (batch,) in loader:
            if done == args.warmup:
                if device.type == "cuda":
                    torch.cuda.synchronize()
                start = time.perf_counter()
            real = batch.to(device)
            b = real.size(0)
            net_d.zero_grad()
            label = torch.full((b,), 1.0, dtype=torch.float, device=device)
            output = net_d(real).view(-1)
            err_d_real = criterion(output, label)
            err_d_real.backward()
            d_x = output.mean().item()
            noise = torch.randn(b, 128, device=device)
            fake = net_g(noise)
            label.fill_(0.0)
            output = net_d(fake.detach()).view(-1)
            err_d_fake = criterion(output, label)
            err_d_fake.backward()
            d_g_z1 = output.mean().item()
            opt_d.step()
            net_g.zero_grad()
            label.fill_(1.0)
            output = net_d(fake).view(-1)
            err_g = criterion(output, label)
            err_g.backward()
            d_g_z2 = output.mean().item()
            opt_g.step()
            _ = (err_d_real.item() + err_d_fake.item(), err_g.item(), d_x, d_g_z1, d_g_z2)
            done += 1
            if done >= total:
                break
    if device.type == "cuda":
        torch.cuda.synchronize()
    return args.steps * args.batch / (time.perf_counter() - start)


def engine(images: np.ndarray, args: argparse.Namespace, **overrides: object) -> float:
    """The Trainer with the dcgan recipe; warm-up steps are run first and not timed."""
    cfg = TrainConfig.for_recipe(
        "dcgan",
        resolution=args.res,
        batch_size=args.batch,
        steps=args.warmup,
        width=args.width,
        device=args.device,
        sample_every=10**9,
        n_samples=4,
        checkpoint_dir=None,
        quality_every=0,  # like the sample grids: monitoring, not training (the naive loop has none)
        **overrides,
    )
    trainer = Trainer(cfg, images)
    trainer.run()
    trainer.config = cfg.replace(steps=args.warmup + args.steps)  # continue the same run
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    result = trainer.run()
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    assert result.status == "finished", result.message
    return args.steps * args.batch / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--res", type=int, default=None, help="default: 64 on CPU, 128 on GPU")
    parser.add_argument("--batch", type=int, default=None, help="default: 64 on CPU, 128 on GPU")
    parser.add_argument("--width", type=int, default=64, help="DCGAN ngf/ndf (paper: 64)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps per measurement")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (32², batch 4, 1 step): checks the script on any device")
    args = parser.parse_args()
    gpu = args.device.startswith(("cuda", "mps"))
    args.res = args.res or (128 if gpu else 64)
    args.batch = args.batch or (128 if gpu else 64)
    if args.smoke:
        args.res, args.batch, args.width, args.steps, args.warmup, args.rounds = 32, 4, 8, 1, 1, 1
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    images = training_images(max(8 * args.batch, 512), args.res)

    print(
        f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}"
    )
    print(
        f"device: {describe_device(device)}; res {args.res}, batch {args.batch}, "
        f"width {args.width}, {args.steps} timed steps after {args.warmup} warm-up, "
        f"{args.rounds} rounds; load average {os.getloadavg()[0]:.1f}"
    )
    variants: dict[str, object] = {
        "naive (PyTorch DCGAN example)": lambda: naive_loop(images, args, device),
        "engine (default: bf16 where native, channels_last)": lambda: engine(images, args),
        "engine fp32": lambda: engine(images, args, amp="off"),
    }
    if args.compile:
        variants["engine + torch.compile"] = lambda: engine(images, args, compile=True)
    best: dict[str, float] = {}
    for rnd in range(args.rounds):
        for name, fn in variants.items():
            rate = fn()  # type: ignore[operator]
            best[name] = max(best.get(name, 0.0), rate)
            print(f"  round {rnd + 1}: {name:52s} {rate:9.1f} img/s", flush=True)
    base = best["naive (PyTorch DCGAN example)"]
    print("best of rounds:")
    for name, rate in best.items():
        print(f"  {name:52s} {rate:9.1f} img/s   ratio {rate / base:5.2f}x")
    print(f"load average at end {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
