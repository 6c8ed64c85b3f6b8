"""``medgan labels DIR [--labels FILE.csv] [--masks FILE] [--csv OUT] [--json FILE]``.

Scans the folder, reads every label source (CSV files, DICOM SEG, RTSTRUCT and NIfTI masks:
given, or found in the folder) and lists, per series, the labelled slices per class and the
masked slices per segment, then every row or mask that could not be matched with the reason.
``--csv OUT`` writes the matched slice labels as ``sop_instance_uid,frame,label`` (outside the
DICOM folder is best: it may be read-only).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from medgan.cli.progress import CountProgress
from medgan.core.fileio import atomic_write_json
from medgan.dicom.index import scan_folder
from medgan.dicom.labels import load_labels, write_label_csv
from medgan.dicom.report import scan_to_json, scan_to_text


def add_label_arguments(parser: argparse.ArgumentParser) -> None:
    """``--labels``, ``--masks``, ``--no-auto-labels``, ``--min-area`` (also used by train)."""
    parser.add_argument(
        "--labels", metavar="FILE.csv", action="append", default=[],
        help="slice labels: CSV with 'label' and sop_instance_uid / series_instance_uid / path "
        "(repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--masks", metavar="SEG_OR_NIFTI", action="append", default=[],
        help="masks: DICOM SEG, RTSTRUCT or NIfTI label volume (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--no-auto-labels", action="store_true",
        help="do not read the SEG/RTSTRUCT/CSV/NIfTI files found in the folder",
    )  # fmt: skip
    parser.add_argument(
        "--min-area", type=int, default=20, metavar="PX",
        help="pixels of a segment for a masked slice to be labelled with it (default 20)",
    )  # fmt: skip


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "labels",
        help="list the labels and masks matched to a folder's series, and what was not matched",
        description=__doc__,
    )
    parser.add_argument("folder", metavar="DIR", help="DICOM folder to scan (recursively)")
    add_label_arguments(parser)
    parser.add_argument("--csv", metavar="OUT", help="write the matched slice labels as CSV")
    parser.add_argument("--json", metavar="FILE", help="write the scan with labels as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    progress = None if args.quiet else CountProgress("Reading headers", sys.stderr, unit="files")
    try:
        result = scan_folder(args.folder, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    labels = load_labels(
        result,
        csv_files=args.labels,
        mask_files=args.masks,
        auto=not args.no_auto_labels,
        min_area=args.min_area,
    )
    print(scan_to_text(result, labels=labels))
    total = sum(len(v) for v in labels.labels.values())
    masked = sum(len(labels.masked_indices(u)) for u in labels.masks)
    print(
        f"\n{total} labelled slice(s), {masked} masked slice(s) from {len(labels.sources)} "
        f"file(s); {len(labels.problems)} label problem(s)"
    )
    if labels.class_table().names:
        print("classes: " + ", ".join(f"{k} {v}" for k, v in sorted(labels.label_counts().items())))
    if args.csv:
        write_label_csv(args.csv, labels, result.series)
        print(f"Labels written to {args.csv}")
    if args.json:
        if args.json == "-":
            json.dump(scan_to_json(result, labels), sys.stdout, indent=2)
        else:
            atomic_write_json(args.json, scan_to_json(result, labels))
    return 0
