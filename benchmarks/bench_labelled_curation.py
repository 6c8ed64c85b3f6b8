"""Labelled curation and export cost on the demo study at 64² (CPU).

Builds the demo study's labelled training set (12 patients, classes from labels.csv, masks from
the lesion SEGs) and a 'synthetic' labelled set of the same slices (mirrored, shifted, noise;
same classes and masks), then times, in one run:

  (a) the unlabelled scores (``score_samples``: the baseline every set pays),
  (b) the labelled extras (``score_labelled``: label-fidelity classifier with patient-grouped
      3-fold cross-validation plus the final fit, mask plausibility, mask-copy Dice),
  (c) a plain DICOM export and a DICOM + SEG export of the same kept slices, and an nnU-Net
      export.

It prints the classifier's cross-validated accuracy on the real slices and the mean fidelity
of the mirrored slices. Run::

    .venv/bin/python benchmarks/bench_labelled_curation.py [--n 500]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=500, help="synthetic slices (default 500)")
    args = parser.parse_args()

    from medgan.curate.labelled import LabelledReference, score_labelled
    from medgan.curate.score import score_samples
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.demo.study import ensure_demo_study
    from medgan.dicom.index import scan_folder
    from medgan.dicom.labels import load_labels
    from medgan.export import ExportConfig, SliceSet, export_set
    from tests.core._export_data import provenance

    root = Path(tempfile.mkdtemp(prefix="medgan-bench-labelled-"))
    folder = ensure_demo_study()
    scan = scan_folder(folder)
    ts = build_training_set(scan.series, TrainingSetConfig(resolution=64), labels=load_labels(scan),
                            cache_root=root / "cache")  # fmt: skip
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(ts.images), args.n)
    syn = np.roll(ts.images[idx][:, :, ::-1], (2, -3), axis=(1, 2))
    syn = np.clip(syn + rng.normal(0, 0.05, syn.shape), -1, 1).astype(np.float32)
    labels = np.maximum(ts.labels[idx], 0)
    masks = np.roll(ts.masks[idx][:, :, ::-1], (2, -3), axis=(1, 2))
    counts = {n: int((ts.labels == k).sum()) for k, n in enumerate(ts.class_names)}
    print(f"Training set: {len(ts.images)} slices, {len(set(ts.patient_keys))} patients, "
          f"classes {counts}; synthetic: {args.n}")  # fmt: skip

    t0 = time.perf_counter()
    base = score_samples(syn, ts.images, training_patient_keys=ts.patient_keys, device="cpu")
    t1 = time.perf_counter()
    ref = LabelledReference(ts.images, ts.labels, ts.masks, ts.patient_keys, ts.class_names,
                            ts.segment_names)  # fmt: skip
    scores = score_labelled(base, syn, ref, labels=labels, masks=masks)
    t2 = time.perf_counter()
    fid = scores.settings["label_fidelity"]
    print(f"(a) unlabelled scores: {t1 - t0:.2f} s")
    print(f"(b) labelled extras:   {t2 - t1:.2f} s ({(t2 - t1) / (t1 - t0):.2f}x the baseline); "
          f"classifier CV accuracy {fid['cv_accuracy']}, balanced {fid['cv_balanced_accuracy']}, "
          f"recall {fid['cv_recall_per_class']}; mean fidelity of the mirrored slices "
          f"{float(np.nanmean(scores['label_fidelity'])):.3f}; implausible masks "
          f"{int((~scores['mask_plausible']).sum())}, mask copies "
          f"{int(scores['mask_memorized'].sum())}")  # fmt: skip

    plain = SliceSet(syn, seeds=np.zeros(args.n, np.int64), indices=np.arange(args.n))
    pairs = SliceSet(syn, seeds=np.zeros(args.n, np.int64), indices=np.arange(args.n),
                     labels=labels, masks=masks)  # fmt: skip
    times = {}
    for name, sset, fmt in (("dicom", plain, "dicom"), ("dicom+SEG", pairs, "dicom"),
                            ("nnunet", pairs, "nnunet")):  # fmt: skip
        start = time.perf_counter()
        export_set(sset, ExportConfig(format=fmt, destination=str(root / name.replace("+", "-"))),
                   provenance(resolution=64), class_names=ts.class_names,
                   segment_names=ts.segment_names)  # fmt: skip
        times[name] = time.perf_counter() - start
    print(f"(c) export of {args.n}: " + ", ".join(f"{k} {v:.2f} s" for k, v in times.items())
          + f"; SEG cost {times['dicom+SEG'] / times['dicom']:.1f}x plain DICOM")  # fmt: skip
    print(f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, load "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip


if __name__ == "__main__":
    main()
