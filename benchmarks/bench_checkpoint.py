"""What a checkpoint costs against the training it protects, at the default settings.

Trains the default recipe (quality probes on, so checkpoints carry the best snapshot too) for
``--steps`` timed steps after a warm-up, then writes ``--saves`` checkpoints exactly as the
checkpoint hook does (state capture, digest, safetensors encoding, fsync, rename, pruning).
The interval at the defaults is whichever comes first: 500 steps or 5 minutes; the share of
time spent checkpointing is ``t_checkpoint / (t_interval + t_checkpoint)``.

    .venv/bin/python benchmarks/bench_checkpoint.py                 # CPU, 64², batch 32
    .venv/bin/python benchmarks/bench_checkpoint.py --res 128 --device cuda
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_train_throughput import training_images  # noqa: E402
from medgan.train.checkpoint import save_checkpoint  # noqa: E402
from medgan.train.config import TrainConfig  # noqa: E402
from medgan.train.hooks import Hook  # noqa: E402
from medgan.train.trainer import Trainer  # noqa: E402


class _StepClock(Hook):
    """Records the time after every step (a user hook: the loop itself is timed as it runs)."""

    def __init__(self) -> None:
        self.times: list[float] = []

    def after_step(self, trainer: object, state: object) -> None:
        self.times.append(time.perf_counter())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--res", type=int, default=64)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=40, help="timed steps")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--saves", type=int, default=5)
    args = p.parse_args()

    defaults = TrainConfig.for_recipe("default")
    with tempfile.TemporaryDirectory() as tmp:
        clock = _StepClock()
        cfg = TrainConfig.for_recipe(
            "default",
            resolution=args.res,
            batch_size=args.batch,
            device=args.device,
            steps=args.warmup + args.steps,
            checkpoint_dir=None,  # timed separately below
        )
        trainer = Trainer(cfg, training_images(256, args.res), hooks=[clock])
        trainer.run()
        timed = clock.times[args.warmup :]
        step_s = (timed[-1] - timed[0]) / (len(timed) - 1)
        if trainer.quality is not None and not trainer.quality.best_state:
            trainer.quality.probe(trainer.step, trainer.model_generator, trainer.D)
        costs = []
        for _ in range(args.saves):
            trainer.step += 1
            t0 = time.perf_counter()
            path = save_checkpoint(tmp, trainer.state_dict(), keep=defaults.keep_checkpoints)
            costs.append(time.perf_counter() - t0)
        size_mb = path.stat().st_size / 2**20
    ckpt_s = sorted(costs)[len(costs) // 2]
    minutes = defaults.checkpoint_minutes or float("inf")
    interval_s = min(defaults.checkpoint_every * step_s, minutes * 60.0)
    report = {
        "machine": f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}",
        "load_avg_before_end": os.getloadavg(),
        "resolution": args.res,
        "batch": args.batch,
        "step_s": round(step_s, 4),
        "checkpoint_s_median": round(ckpt_s, 4),
        "checkpoint_s_all": [round(c, 4) for c in costs],
        "checkpoint_mb": round(size_mb, 2),
        "interval": f"{defaults.checkpoint_every} steps or {minutes:g} min, whichever first",
        "interval_s": round(interval_s, 1),
        "share_of_time": round(ckpt_s / (interval_s + ckpt_s), 5),
        "checkpoint_in_steps": round(ckpt_s / step_s, 2),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
