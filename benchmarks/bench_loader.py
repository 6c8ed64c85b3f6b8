"""DICOM loading benchmark: index + decode a mixed folder, project loader vs a naive loop.

Generates (once, cached under ``.bench/``) a folder of 512×512 int16 CT slices, uncompressed
and compressed mixed (RLE, JPEG-LS lossless, JPEG 2000 lossless), then in the same run times

  (a) the project's loader: ``scan_folder`` + ``load_series`` for every series,
  (b) a naive single-threaded loop: ``dcmread`` + ``pixel_array`` per file, grouped and
      sorted by position,
  (c) dcm2niix on the same folder, as an outside reference point,

each in its own child process so peak memory is per method. Both loaders must produce the same
volumes (checked by checksums). Run::

    .venv/bin/python benchmarks/bench_loader.py            # 2,000 files
    .venv/bin/python benchmarks/bench_loader.py --files 200 --no-dcm2niix   # quick look
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

RAW, RLE, JLS, J2K = "raw", "rle", "jpegls", "j2k"
# Share of files per encoding: decoding cost differs a lot (JPEG 2000 is the slowest).
MIX = ((RAW, 0.5), (RLE, 0.2), (JLS, 0.2), (J2K, 0.1))
SERIES_SIZE = 250  # slices per series at most
UNIQUE = 16  # distinct images rendered and encoded; files reuse them (decode cost is equal)


def _syntax(kind: str) -> str:
    from pydicom.uid import ExplicitVRLittleEndian, JPEG2000Lossless, JPEGLSLossless, RLELossless

    return {
        RAW: ExplicitVRLittleEndian,
        RLE: RLELossless,
        JLS: JPEGLSLossless,
        J2K: JPEG2000Lossless,
    }[kind]


def plan(n_files: int) -> list[tuple[str, int]]:
    """(encoding, number of slices) per series, adding up to ``n_files``."""
    series: list[tuple[str, int]] = []
    left = n_files
    for i, (kind, share) in enumerate(MIX):
        count = left if i == len(MIX) - 1 else int(round(n_files * share))
        left -= count
        while count > 0:
            take = min(SERIES_SIZE, count)
            series.append((kind, take))
            count -= take
    return series


def make_dataset(root: Path, n_files: int, size: int) -> Path:
    """Write the benchmark folder atomically (temp folder + rename); reuse it when present."""
    import dataclasses

    from pydicom import dcmwrite

    from medgan.demo.phantom import render_head
    from medgan.demo.study import ct_slice_dataset, demo_patient

    folder = root / f"loader-{n_files}x{size}-v1"
    if (folder / "COMPLETE").exists():
        return folder
    t0 = time.perf_counter()
    tmp = root / f".{folder.name}.partial-{uuid.uuid4().hex[:8]}"
    tmp.mkdir(parents=True)
    base = demo_patient(1000, 0, slices=UNIQUE, size=size)
    spacing = 0.5
    hu = render_head(
        base.head,
        rows=size,
        cols=size,
        pixel_spacing=spacing,
        slice_z=np.linspace(-30.0, 60.0, UNIQUE),
    )
    stored = np.clip(np.rint(hu) + 1024, -32768, 32767).astype(np.int16)
    encoded: dict[str, list[bytes]] = {}
    for kind in {k for k, _ in MIX} - {RAW}:
        encoded[kind] = []
        for u in range(UNIQUE):
            ds = ct_slice_dataset(1000, base, u, u + 1, 0.0, size, stored[u])
            ds.compress(_syntax(kind), stored[u])
            encoded[kind].append(bytes(ds.PixelData))
    for s, (kind, count) in enumerate(plan(n_files)):
        patient = dataclasses.replace(base, index=s, pixel_spacing=spacing, slice_spacing=1.0)
        out = tmp / f"SER{s + 1:02d}_{kind}"
        out.mkdir()
        for k in range(count):
            u = k % UNIQUE
            ds = ct_slice_dataset(1000, patient, k, k + 1, -60.0 + k * 1.0, size, stored[u])
            if kind != RAW:
                ds.PixelData = encoded[kind][u]
                ds["PixelData"].VR = "OB"
                ds.file_meta.TransferSyntaxUID = _syntax(kind)
            dcmwrite(out / f"IM{k + 1:05d}", ds, enforce_file_format=True)  # no extension
    (tmp / "COMPLETE").write_text(f"{n_files}\n")
    os.replace(tmp, folder)
    print(f"generated {n_files} files in {time.perf_counter() - t0:.1f} s -> {folder}")
    return folder


def _files(root: Path) -> list[str]:
    out = []
    for dirpath, _dirs, names in os.walk(root):
        out.extend(os.path.join(dirpath, n) for n in names if n != "COMPLETE")
    return sorted(out)


def run_project(root: Path, workers: int | None) -> dict:
    from medgan.dicom.decode import load_series
    from medgan.dicom.index import scan_folder

    t0 = time.perf_counter()
    result = scan_folder(root, workers=workers)
    t1 = time.perf_counter()
    volumes = {s.series_uid: load_series(s, workers=workers) for s in result.series}
    t2 = time.perf_counter()
    return {
        "index_s": t1 - t0,
        "decode_s": t2 - t1,
        "total_s": t2 - t0,
        "checksums": _checksums(volumes),
        "images": sum(len(v) for v in volumes.values()),
    }


def run_naive(root: Path) -> dict:
    """What a script would do: read every file fully, decode, group, sort by position."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    t0 = time.perf_counter()
    per_series: dict[str, list[tuple[float, np.ndarray]]] = defaultdict(list)
    for path in _files(root):
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:
            continue
        pixels = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(
            ds.RescaleIntercept
        )
        per_series[ds.SeriesInstanceUID].append((float(ds.ImagePositionPatient[2]), pixels))
    volumes = {
        uid: np.stack([p for _, p in sorted(items, key=lambda t: t[0])])
        for uid, items in per_series.items()
    }
    total = time.perf_counter() - t0
    return {
        "total_s": total,
        "checksums": _checksums(volumes),
        "images": sum(len(v) for v in volumes.values()),
    }


def _checksums(volumes: dict[str, np.ndarray]) -> dict[str, list[float]]:
    return {
        uid: [float(v.sum(dtype=np.float64)), float((v[0] - v[-1]).sum(dtype=np.float64))]
        for uid, v in volumes.items()
    }


def _child(method: str, root: Path, workers: int | None) -> None:
    result = run_project(root, workers) if method == "project" else run_naive(root)
    print("RESULT " + json.dumps(result))


def _sample_tree(proc: psutil.Process, cpu: dict[int, float]) -> int:
    """PSS of ``proc`` and its descendants (shared pages counted once); records CPU seconds."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            times = p.cpu_times()
            cpu[p.pid] = times.user + times.system
            total += p.memory_full_info().pss
        except (psutil.NoSuchProcess, psutil.AccessDenied, AttributeError):
            continue
    return total


def measure(cmd: list[str]) -> dict:
    """Run ``cmd``; return wall s, peak memory MiB, CPU s, output and exit code.

    Peak memory is the proportional set size of the whole process tree (so worker processes
    a loader starts are counted), sampled every 20 ms; the kernel's ru_maxrss is not used
    because for a forked child it includes the parent's pages from before ``exec``. CPU time
    covers the tree too (sampled per process, or the kernel's figure if larger).
    """
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    chunks: list[str] = []
    reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()), daemon=True)
    reader.start()
    peak = 0
    cpu: dict[int, float] = {}
    handle = psutil.Process(proc.pid)
    while True:
        try:
            peak = max(peak, _sample_tree(handle, cpu))
        except psutil.Error:
            pass
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        time.sleep(0.02)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    kernel_cpu = usage.ru_utime + usage.ru_stime
    return {
        "wall_s": wall,
        "mem_mib": peak / 2**20,
        "cpu_s": max(kernel_cpu, sum(cpu.values())),
        "output": "".join(chunks),
        "code": proc.returncode,
    }


def _warm(files: list[str]) -> int:
    total = 0
    for f in files:
        with open(f, "rb") as fh:
            total += len(fh.read())
    return total


def machine() -> str:
    """The machine in words; torch is asked in a child so this process stays small."""
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')",
        ],
        capture_output=True,
        text=True,
    )
    device = probe.stdout.strip() or "n/a"
    return (
        f"{platform.platform()}, {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, Python {platform.python_version()}, torch device {device} "
        "(not used here)"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--cache", type=Path, default=REPO / ".bench")
    ap.add_argument("--workers", type=int, default=None, help="project loader threads")
    ap.add_argument("--no-dcm2niix", action="store_true")
    ap.add_argument("--child", choices=("project", "naive"), help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(args.child, args.data, args.workers)
        return 0

    root = make_dataset(args.cache, args.files, args.size)
    files = _files(root)
    disk = _warm(files)
    volume_mib = len(files) * args.size * args.size * 4 / 2**20
    print(f"machine: {machine()}")
    print(
        f"data: {len(files)} files of {args.size}x{args.size} int16, {disk / 2**20:.0f} MiB on "
        f"disk; mix "
        + ", ".join(f"{k} {s:.0%}" for k, s in MIX)
        + f"; decoded float32 volume {volume_mib:.0f} MiB"
    )
    rows = {}
    for method in ("naive", "project"):
        _warm(files)
        cmd = [sys.executable, __file__, "--child", method, "--data", str(root)]
        if args.workers:
            cmd += ["--workers", str(args.workers)]
        run = measure(cmd)
        line = [ln for ln in run["output"].splitlines() if ln.startswith("RESULT ")]
        if run["code"] != 0 or not line:
            print(run["output"])
            raise SystemExit(f"{method} failed (exit {run['code']})")
        rows[method] = dict(json.loads(line[0][7:]), **run)
    if rows["naive"]["checksums"] != rows["project"]["checksums"]:
        raise SystemExit("the two loaders decoded different volumes!")
    if not args.no_dcm2niix and shutil.which("dcm2niix"):
        _warm(files)
        out_dir = args.cache / f".dcm2niix-{uuid.uuid4().hex[:8]}"
        out_dir.mkdir()
        try:
            run = measure(["dcm2niix", "-z", "n", "-f", "%s_%j", "-o", str(out_dir), str(root)])
            n_out = len(list(out_dir.glob("*.nii")))
            skipped = run["output"].count("Unsupported transfer syntax")
            rows["dcm2niix"] = dict(
                run,
                total_s=run["wall_s"],
                note=f"exit {run['code']}, {n_out} volumes; {skipped} files it cannot decode",
            )
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)

    print(
        f"\n{'method':<10} {'time s':>8} {'files/s':>8} {'MB/s':>7} {'CPU s':>7} "
        f"{'peak mem MiB':>13} {'mem/volume':>11}"
    )
    for name, r in rows.items():
        t = r["total_s"]
        print(
            f"{name:<10} {t:8.2f} {len(files) / t:8.1f} {disk / 1e6 / t:7.1f} {r['cpu_s']:7.1f} "
            f"{r['mem_mib']:13.0f} {r['mem_mib'] / volume_mib:11.2f}"
            + (f"   {r['note']}" if "note" in r else "")
        )
    p = rows["project"]
    print(f"\nproject: index {p['index_s']:.2f} s + decode {p['decode_s']:.2f} s")
    print(
        f"speed-up project vs naive: {rows['naive']['total_s'] / p['total_s']:.2f}x "
        "(target >= 2x on 2 cores)"
    )
    print(
        f"peak memory project / decoded float32 volume: {p['mem_mib'] / volume_mib:.2f} "
        "(target <= 1.5)"
    )
    print(
        f"CPU seconds naive / project: {rows['naive']['cpu_s'] / p['cpu_s']:.2f}x; machine load "
        f"average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    if "dcm2niix" in rows:
        print(f"dcm2niix vs project time: {rows['dcm2niix']['total_s'] / p['total_s']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
