"""``medgan demo-data DIR [--seed S] [--patients N]``: write the synthetic demo study.

The study is a procedurally generated head CT (see :mod:`medgan.demo.study`): fake patients, no
real data, identical files for the same seed and settings.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo-data",
        help="write the synthetic head-CT demo study (DICOM) to a folder",
        description=(
            "Write a procedurally generated head-CT study: synthetic patients with skull, "
            "brain, ventricles and lesions, as CT DICOM files (int16, HU rescale) with valid "
            "UIDs and geometry. The same seed gives identical files. DIR must not exist or "
            "be empty."
        ),
    )
    parser.add_argument("folder", metavar="DIR", help="output folder (new or empty)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--patients", type=_positive, default=12, help="number of patients (default 12)"
    )
    parser.add_argument(
        "--slices", type=_positive, default=56, help="slices per patient (default 56)"
    )
    parser.add_argument(
        "--size",
        type=int,
        default=256,
        choices=(64, 128, 256, 512),
        help="image size in pixels (default 256)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from medgan.demo.study import write_demo_study

    progress = None
    if not args.quiet:
        from medgan.cli.progress import CountProgress

        progress = CountProgress("Writing demo study", sys.stderr, unit="slices")
    try:
        folder = write_demo_study(
            args.folder,
            seed=args.seed,
            n_patients=args.patients,
            slices_per_patient=args.slices,
            size=args.size,
            progress=progress,
        )
    finally:
        if progress is not None:
            progress.close()
    n_files = args.patients * args.slices
    print(
        f"Wrote the demo study to {folder}: {args.patients} patients, {n_files} CT slices of "
        f"{args.size}x{args.size} (seed {args.seed})."
    )
    return 0
