"""``medgan scan DIR [--json FILE] [--show-names]``: index a DICOM folder and report it.

Prints the patient → study → series tree (patients as hashed ids unless ``--show-names``),
the file counts and every problem; ``--json FILE`` writes the machine-readable contract
(``-`` for standard output), atomically.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from medgan.cli.progress import CountProgress
from medgan.core.errors import MedganError
from medgan.core.fileio import atomic_write_json
from medgan.dicom.index import scan_folder
from medgan.dicom.labels import load_labels
from medgan.dicom.report import scan_to_json, scan_to_text


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "scan",
        help="index a DICOM folder: series, counts, problems",
        description=(
            "Scan a folder (recursively) for DICOM files and print the patient/study/series "
            "tree, counts and each unusable file with its reason. Patients are shown as "
            "hashed ids unless --show-names is given."
        ),
    )
    parser.add_argument("folder", metavar="DIR", help="folder to scan (recursively)")
    parser.add_argument("--json", metavar="FILE", help="write the scan as JSON ('-' for stdout)")
    parser.add_argument(
        "--show-names",
        action="store_true",
        help="show patient names, IDs, study dates and descriptions (identifying!)",
    )
    parser.add_argument("--workers", type=int, default=None, help="header-reading threads")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--no-labels", action="store_true", help="do not read the SEG/RTSTRUCT/NIfTI/CSV labels found"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    progress = None
    if not args.quiet and args.json != "-":
        progress = CountProgress("Reading headers", sys.stderr, unit="files")
    try:
        result = scan_folder(args.folder, progress=progress, workers=args.workers)
    finally:
        if progress is not None:
            progress.close()
    labels = None if args.no_labels else load_labels(result)
    if args.json == "-":
        json.dump(scan_to_json(result, labels), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(scan_to_text(result, show_names=args.show_names, labels=labels))
        if args.json:
            folder = Path(args.json).resolve().parent
            if not folder.is_dir():
                raise MedganError(f"Cannot write {args.json}: the folder {folder} does not exist.")
            atomic_write_json(args.json, scan_to_json(result, labels))
            print(f"JSON written to {args.json}")
    if not result.series:
        print(
            "medgan: error: no usable image series: every DICOM file is listed above with "
            "the reason it cannot be used.",
            file=sys.stderr,
        )
        return 1
    return 0
