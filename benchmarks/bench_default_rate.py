"""Images per second of the `default` recipe's real training loop (probes on, as in the app),
the figure behind the Train page's time estimates (``medgan.models.expectations``).

Trains on the demo study at 64² on the CPU for ``--seconds`` per variant (after a warm-up),
alternating the current recipe (batch 16) with it at batch 32 (the default before the batch study)
and 8, without noise inputs, with the default before the FLOP
study (both convolutions of each D block at full resolution, ``d_block="full"``, no noise
inputs) and with the settings before the structure study (that plus cutout, LeCam 0.3, ADA
speed 20k; docs/recipes.md) for ``--rounds``
rounds, and reports the best round of each with its GFLOP/s by the counted FLOPs. Run it on a
quiet machine:

    .venv/bin/python benchmarks/bench_default_rate.py --threads 2 --seconds 40
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

NO_NOISE = {"g_noise": False}
BATCH_32 = {"batch_size": 32, "quality_every": 50}  # the default before "Smaller batches"
BATCH_8 = {"batch_size": 8, "quality_every": 200}
FULL_D = {"d_block": "full", "g_noise": False, "ema_rampup": 0.5, **BATCH_32}  # before the FLOP study
BEFORE_STUDY = {
    **BATCH_32,
    "d_block": "full",
    "g_noise": False,
    "ema_rampup": 0.5,
    "augment": ("translation", "cutout", "brightness", "contrast"),
    "lecam_weight": 0.3,
    "ada_speed_images": 20_000,
}


def _rate(images, overrides: dict, seconds: float, warmup_steps: int = 5) -> float:  # type: ignore[no-untyped-def]
    """Training images per second over ``seconds`` after ``warmup_steps`` steps."""
    from medgan.train.config import TrainConfig
    from medgan.train.events import StepMetrics
    from medgan.train.trainer import Trainer

    cfg = TrainConfig.for_recipe(
        "default", resolution=64, steps=10**7, device="cpu", checkpoint_dir=None,
        metrics_interval_s=0.0, augment_p=0.5, **overrides,
    )  # fmt: skip
    stop = threading.Event()
    mark: dict[str, float] = {}

    def on_event(event: object) -> None:
        if not isinstance(event, StepMetrics):
            return
        now = time.perf_counter()
        if event.step == warmup_steps:
            mark.update(t0=now, s0=event.step)
        elif "t0" in mark and now - mark["t0"] >= seconds:
            mark.update(t1=now, s1=event.step)
            stop.set()

    Trainer(cfg, images, on_event=on_event, stop=stop).run()
    return (mark["s1"] - mark["s0"]) * cfg.batch_size / (mark["t1"] - mark["t0"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=40.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import bench_quality as bq

    from medgan.core.device import cpu_name
    from medgan.models.flops import step_gflop_per_image

    images = bq._training_set().images
    variants = {
        "now": {},
        "batch 32": BATCH_32,
        "batch 8": BATCH_8,
        "no noise inputs": NO_NOISE,
        "full-resolution D blocks, no noise": FULL_D,
        "before the study": BEFORE_STUDY,
    }
    gflop = {
        name: step_gflop_per_image("default", 64, d_block=str(v.get("d_block", "half")))
        for name, v in variants.items()
    }
    best = dict.fromkeys(variants, 0.0)
    for _ in range(args.rounds):
        for name, overrides in variants.items():
            best[name] = max(best[name], _rate(images, overrides, args.seconds))
    load = os.getloadavg()[0]
    print(f"{cpu_name()} ({platform.machine()}), torch {torch.__version__}, "
          f"{args.threads} threads, load average {load:.2f} at the end")  # fmt: skip
    for name, rate in best.items():
        print(f"default ({name}): {rate:.1f} img/s = {rate * gflop[name]:.0f} GFLOP/s "
              f"({gflop[name]:.3f} GFLOP per image)")  # fmt: skip
    for name in list(variants)[1:]:
        print(f"ratio now / {name}: {best['now'] / best[name]:.3f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"img_per_s": best, "gflop_per_image": gflop,
                                               "threads": args.threads, "load": load}))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
