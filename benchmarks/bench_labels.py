"""Mask matching benchmark: a 2,000-slice folder with one DICOM SEG per series.

Generates (once, cached under ``.bench/labels``) 20 CT series of 100 slices (128×128 int16)
and, per series, a binary SEG with two segments over every slice (highdicom; 30 % of the
frames hold a lesion). Then, in the same run, on a warm page cache:

  (a) the project: ``scan_folder`` (header pass, which finds the SEGs) + ``load_labels``
      (highdicom parse, frame → slice matching by SOP Instance UID, derived labels),
  (b) naive pydicom: ``dcmread`` every CT header into a SOP UID → (series, position) map,
      then ``dcmread`` + ``pixel_array`` every SEG and put each frame on its slice through the
      map, reading the frame's segment number and source image (the least a correct reader
      needs; no checks, no geometry fallback, no derived labels).

Both must give the same masks (pixel counts per series, slice and segment are compared). Run::

    .venv/bin/python benchmarks/bench_labels.py
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_data(root: Path, n_series: int, n_slices: int, size: int) -> None:
    from pydicom.uid import generate_uid

    from tests.dicom_factory import write_seg, write_series

    rng = np.random.default_rng(0)
    for s in range(n_series):
        pixels = rng.integers(900, 1200, size=(n_slices, size, size)).astype(np.int16)
        paths = write_series(
            root / f"S{s:02d}" / "CT", n=n_slices, rows=size, cols=size, pixels=pixels,
            patient_id=f"BENCH{s:02d}", seed=s,
            extra_tags={"FrameOfReferenceUID": generate_uid()},
        )  # fmt: skip
        masks = np.zeros((n_slices, size, size), np.uint8)
        for k in range(n_slices):
            if rng.random() < 0.3:
                r, c = rng.integers(10, size - 40, size=2)
                masks[k, r : r + 24, c : c + 20] = 1 + int(rng.random() < 0.4)
        write_seg(root / f"S{s:02d}" / "SEG" / "seg.dcm", paths, masks,
                  segment_labels=("lesion", "oedema"))  # fmt: skip
    (root / "complete").write_text("ok\n")


def project(root: Path) -> tuple[float, float, dict[tuple[str, float, int], int]]:
    from medgan.dicom.index import scan_folder
    from medgan.dicom.labels import load_labels

    t0 = time.perf_counter()
    scan = scan_folder(root)
    t1 = time.perf_counter()
    labels = load_labels(scan)
    t2 = time.perf_counter()
    assert not labels.problems, labels.problems[:3]
    out = {}
    for s in scan.series:
        for m in labels.masks[s.series_uid]:
            for i, mask in m.masks.items():
                z = round(float(s.images[i].position[2]), 3)  # type: ignore[index]
                for value in (1, 2):
                    if (mask == value).any():
                        out[(s.series_uid, z, value)] = int((mask == value).sum())
    return t1 - t0, t2 - t1, out


def naive(root: Path) -> tuple[float, dict[tuple[str, float, int], int]]:
    import pydicom

    t0 = time.perf_counter()
    where: dict[str, tuple[str, float]] = {}
    segs = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if name == "complete":
                continue
            ds = pydicom.dcmread(path, stop_before_pixels=True)
            if ds.Modality == "SEG":
                segs.append(path)
            else:
                where[str(ds.SOPInstanceUID)] = (str(ds.SeriesInstanceUID),
                                                 round(float(ds.ImagePositionPatient[2]), 3))  # fmt: skip
    out: dict[tuple[str, float, int], int] = defaultdict(int)
    for path in segs:
        seg = pydicom.dcmread(path)
        frames = seg.pixel_array
        for k, fg in enumerate(seg.PerFrameFunctionalGroupsSequence):
            uid = str(fg.DerivationImageSequence[0].SourceImageSequence[0].ReferencedSOPInstanceUID)
            number = int(fg.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
            n = int((frames[k] > 0).sum())
            if n:
                out[(*where[uid], number)] += n
    return time.perf_counter() - t0, dict(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--series", type=int, default=20)
    ap.add_argument("--slices", type=int, default=100)
    ap.add_argument("--size", type=int, default=128)
    args = ap.parse_args()
    root = REPO / ".bench" / f"labels-{args.series}x{args.slices}x{args.size}"
    if not (root / "complete").exists():
        print(f"Generating {args.series * args.slices} slices + {args.series} SEGs in {root} ...")
        make_data(root, args.series, args.slices, args.size)
    for dirpath, _d, files in os.walk(root):  # warm the page cache for both methods
        for name in files:
            Path(dirpath, name).read_bytes()
    load = os.getloadavg()[0]
    t_naive, ref = naive(root)
    t_scan, t_match, got = project(root)
    assert got.keys() == ref.keys() and all(got[k] == ref[k] for k in ref), "masks differ"
    print(
        f"machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    )
    print(f"load average at start: {load:.2f}, at end: {os.getloadavg()[0]:.2f}")
    n = args.series * args.slices
    print(f"{n} slices, {args.series} SEGs: masks identical ({sum(ref.values())} mask pixels)")
    print(f"naive pydicom (headers + SEGs):        {t_naive:7.2f} s")
    print(f"project scan_folder + load_labels:     {t_scan + t_match:7.2f} s "
          f"(scan {t_scan:.2f} s, match {t_match:.2f} s)")  # fmt: skip
    print(f"speed-up (whole job): {t_naive / (t_scan + t_match):.2f}x")


if __name__ == "__main__":
    main()
