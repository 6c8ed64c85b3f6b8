"""Is `medgan generate --seed 7` bit-for-bit reproducible? Repeat it under varying threads/load.

Runs the same ``medgan generate`` command ``--runs`` times, cycling the torch thread count
(OMP_NUM_THREADS unset / 1 / 2) and, every other run, a CPU-burning background process; hashes
the exported ``images.npy`` and reports which settings gave which bytes. Then, in process,
checks batch size and thread count directly.

    .venv/bin/python benchmarks/determinism.py --model head.safetensors --runs 30
"""

from __future__ import annotations

import argparse
import hashlib
import json
import multiprocessing as mp
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]


def _burn(stop_at: float) -> None:
    x = 0
    while time.time() < stop_at:
        x += 1


def _generate(model: str, out: Path, threads: str | None, n: int) -> str:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    if threads is not None:
        env["OMP_NUM_THREADS"] = threads
    cmd = [sys.executable, "-m", "medgan", "generate", "--model", model, "-n", str(n),
           "--seed", "7", "--out", str(out), "--format", "npy", "--allow-memorized"]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    return hashlib.sha256(np.load(out / "images.npy").tobytes()).hexdigest()[:16]


def _in_process(model: str, n: int) -> dict[str, str]:
    import torch

    from medgan.generate.sampling import generate, load_generator

    g = load_generator(model, device="cpu")
    out: dict[str, str] = {}
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for batch in (n, 7, 1):
            images = generate(g, n, seed=7, batch_size=batch, device="cpu").images
            out[f"threads={threads} batch={batch}"] = hashlib.sha256(images.tobytes()).hexdigest()[
                :16
            ]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--model", required=True)
    p.add_argument("--runs", type=int, default=30)
    p.add_argument("-n", type=int, default=32)
    args = p.parse_args()
    by_setting: dict[str, set[str]] = defaultdict(set)
    all_hashes: set[str] = set()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            threads = (None, "1", "2")[i % 3]
            loaded = i % 2 == 1
            burner = None
            if loaded:
                burner = mp.Process(target=_burn, args=(time.time() + 30,))
                burner.start()
            try:
                digest = _generate(args.model, Path(tmp) / f"run{i}", threads, args.n)
            finally:
                if burner is not None:
                    burner.terminate()
                    burner.join()
            key = f"OMP_NUM_THREADS={threads or 'unset'} load={'busy' if loaded else 'idle'}"
            by_setting[key].add(digest)
            all_hashes.add(digest)
            print(f"run {i:2d} {key:36s} {digest}", flush=True)
    report = {
        "runs": args.runs,
        "distinct_outputs": len(all_hashes),
        "by_setting": {k: sorted(v) for k, v in sorted(by_setting.items())},
        "in_process": _in_process(args.model, args.n),
        "cpu_count": os.cpu_count(),
        "load_avg_at_end": os.getloadavg(),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
