"""Nearest-neighbour search: chunked (medgan.metrics.nn_search) against a naive full N x M distance matrix.

Queries ``--queries`` synthetic slices at ``--res``² against training sets of ``--sizes``
slices, in pixel space; reports wall time and peak extra memory (RSS on the CPU, allocator
peak on CUDA) of each method in the same run, and their ratios. The naive baseline is
``torch.cdist(Q, R).min(1)``, which materialises the whole N x M matrix (and, for large inputs,
augmented copies of Q and R); it is skipped where its predicted memory would not fit, and the
prediction is printed instead.

Run:  .venv/bin/python benchmarks/bench_nn_search.py [--sizes 1000 5000 20000] [--device auto]
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import json
import os
import platform
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from medgan.core.device import resolve_device  # noqa: E402
from medgan.metrics.nn_search import nearest_neighbours, plan_chunks  # noqa: E402

MiB = 1024**2


def smooth_images(n: int, res: int, seed: int) -> np.ndarray:
    """Random smooth slices in [-1, 1] (upsampled low-frequency noise), generated in batches."""
    gen = torch.Generator().manual_seed(seed)
    out = np.empty((n, res, res), np.float32)
    for s in range(0, n, 1000):
        b = min(1000, n - s)
        low = torch.rand(b, 1, res // 8, res // 8, generator=gen) * 2 - 1
        out[s : s + b] = torch.nn.functional.interpolate(
            low, size=(res, res), mode="bilinear", align_corners=False
        )[:, 0].numpy()
    return out


class PeakMemory:
    """Peak extra memory while a block runs: RSS sampled every ms (CPU) or CUDA allocator peak."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.peak = 0
        self._stop = threading.Event()

    def __enter__(self) -> PeakMemory:
        gc.collect()
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._base = torch.cuda.memory_allocated()
        else:
            self._proc = psutil.Process(os.getpid())
            self._base = self._proc.memory_info().rss
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss - self._base)
            time.sleep(0.001)

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self._base
        else:
            self._stop.set()
            self._thread.join()
            self.peak = max(self.peak, self._proc.memory_info().rss - self._base)


def measure(fn: Callable[[], Any], device: torch.device) -> tuple[float, int, Any]:
    with PeakMemory(device) as mem:
        t0 = time.perf_counter()
        result = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
    return seconds, mem.peak, result


def naive(q: np.ndarray, r: np.ndarray, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    qt = torch.from_numpy(q.reshape(len(q), -1)).to(device)
    rt = torch.from_numpy(r.reshape(len(r), -1)).to(device)
    d = torch.cdist(qt, rt)  # the whole N x M matrix
    dist, idx = d.min(dim=1)
    return (dist / np.sqrt(qt.shape[1])).cpu().numpy(), idx.cpu().numpy()


def naive_bytes(n: int, m: int, dim: int) -> int:
    """Full matrix plus cdist's augmented copies of both inputs (its matmul path)."""
    return 4 * (n * m + (n + m) * (dim + 2))


def worker(method: str, n: int, m: int, res: int, device: torch.device, budget: int | None) -> dict:
    """One measurement in this (fresh) process, so allocator state cannot blur the peak."""
    queries = smooth_images(n, res, seed=1)
    train = smooth_images(m, res, seed=2 + m)
    queries[:10] = train[:10]  # planted exact copies make the answer checkable
    nearest_neighbours(queries[:8], train[:64], device=device)  # warm-up (threads, kernels)

    def fn() -> np.ndarray:
        if method == "chunked":
            return nearest_neighbours(queries, train, device=device, memory_budget=budget).indices
        if method == "robust":
            return nearest_neighbours(queries, train, space="robust", device=device).indices
        return naive(queries, train, device)[1]

    seconds, peak, idx = measure(fn, device)
    assert list(idx[:10]) == list(range(10)), f"{method}: planted copies not found"
    return {"seconds": seconds, "peak": peak, "indices": hashlib.sha256(
        np.asarray(idx, np.int64).tobytes()).hexdigest()}  # fmt: skip


def run_worker(method: str, args: argparse.Namespace, m: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", method, "--m", str(m), "--queries",
           str(args.queries), "--res", str(args.res), "--device", args.device]  # fmt: skip
    if args.budget_mib:
        cmd += ["--budget-mib", str(args.budget_mib)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def one_size(args: argparse.Namespace, m: int, device: torch.device, naive_limit: int) -> str:
    """Time both methods against a training set of ``m`` slices; one table row."""
    n, dim = args.queries, args.res * args.res
    budget = args.budget_mib * MiB if args.budget_mib else None
    default = 1024**3 if device.type == "cuda" else 64 * MiB
    plan = plan_chunks(n, m, dim, memory_budget=budget or default, copies=device.type != "cpu")
    c = run_worker("chunked", args, m)
    r = run_worker("robust", args, m)
    need = naive_bytes(n, m, dim)
    if need > naive_limit:
        naive_txt = f"{'skipped':>8} {need / MiB:>7.0f}* | {'-':>7} {'-':>8}"
    else:
        b = run_worker("naive", args, m)
        assert b["indices"] == c["indices"], "chunked and naive found different neighbours"
        naive_txt = (f"{b['seconds']:>8.2f} {b['peak'] / MiB:>8.0f} | "
                     f"{b['seconds'] / c['seconds']:>7.2f} "
                     f"{b['peak'] / max(c['peak'], 1):>8.1f}")  # fmt: skip
    blocks = f"{plan.query_chunk}x{plan.reference_chunk}"
    return (f"{m:>6} | {c['seconds']:>9.2f} {c['peak'] / MiB:>8.0f} {blocks:>11} | "
            f"{naive_txt} | {r['seconds']:.2f}")  # fmt: skip


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    ap.add_argument("--res", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--budget-mib", type=int, default=None, help="chunked search memory budget")
    ap.add_argument("--naive-limit-mib", type=int, default=None,
                    help="skip the naive run above this predicted memory (default: half the "
                    "available memory)")  # fmt: skip
    ap.add_argument("--worker", choices=("chunked", "robust", "naive"), help=argparse.SUPPRESS)
    ap.add_argument("--m", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    device = resolve_device(args.device)
    if args.worker:
        budget = args.budget_mib * MiB if args.budget_mib else None
        print(json.dumps(worker(args.worker, args.queries, args.m, args.res, device, budget)))
        return 0

    dim = args.res * args.res
    avail = (
        torch.cuda.mem_get_info()[0] if device.type == "cuda" else psutil.virtual_memory().available
    )
    naive_limit = args.naive_limit_mib * MiB if args.naive_limit_mib else avail // 2
    gpu = f", {torch.cuda.get_device_name(0)}" if device.type == "cuda" else ""
    print(f"machine: {platform.platform()}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), "
          f"device {device}{gpu}")  # fmt: skip
    print(f"queries: {args.queries} slices at {args.res}x{args.res} (pixel space, L2); "
          "each measurement in a fresh process")  # fmt: skip
    print(f"{'train':>6} | {'chunked s':>9} {'peak MiB':>8} {'blocks':>11} | "
          f"{'naive s':>8} {'peak MiB':>8} | {'speed x':>7} {'memory x':>8} | robust s")  # fmt: skip
    for m in args.sizes:
        print(one_size(args, m, device, naive_limit), flush=True)
    print("speed x = naive time / chunked time; memory x = naive peak / chunked peak "
          "(extra memory beyond the inputs). * = predicted, not run.")  # fmt: skip
    budget_txt = f"{args.budget_mib} MiB" if args.budget_mib else "64 MiB on CPU, 1 GiB on GPU"
    for n, m in ((10_000, 20_000), (10_000, 100_000)):
        print(f"predicted naive memory for {n} x {m} at {args.res}²: "
              f"{naive_bytes(n, m, dim) / 1024**3:.1f} GiB; chunked stays within its budget "
              f"({budget_txt})")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
