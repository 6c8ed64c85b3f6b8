"""``medgan convert DIR --series UID --out FILE.nii.gz``: one DICOM series → NIfTI.

The volume is in modality units (HU for CT) with the series' world geometry, so tools such
as dcm2niix, ITK-SNAP or nibabel place every voxel at the same point in the patient.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from medgan.cli.progress import CountProgress
from medgan.convert.nifti import series_to_nifti
from medgan.core.errors import DicomError, ExportError
from medgan.dicom.index import scan_folder

_LIST_AT_MOST = 12


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert one DICOM series to a NIfTI volume",
        description=(
            "Scan DIR, pick the series with the given SeriesInstanceUID and write it as a "
            "NIfTI volume (.nii.gz or .nii) in modality units with its world affine. "
            "Run 'medgan scan DIR' to list the series UIDs."
        ),
    )
    parser.add_argument("folder", metavar="DIR", help="folder holding the series")
    parser.add_argument(
        "--series",
        required=True,
        metavar="UID",
        help="SeriesInstanceUID (a unique prefix is enough)",
    )
    parser.add_argument("--out", required=True, metavar="FILE", help="output .nii.gz or .nii")
    parser.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.set_defaults(func=run)


def _describe(series: Any) -> str:
    # Descriptions can carry identifying text, so only technical facts are listed.
    usable = "" if series.trainable else f" (not usable: {series.reason})"
    return (
        f"  {series.series_uid}  {series.modality or '?'} {series.cols}x{series.rows}, "
        f"{series.n_images} images{usable}"
    )


def pick_series(result: Any, uid: str) -> Any:
    """The series whose UID is ``uid`` (or starts with it, if only one does)."""
    uid = uid.strip()
    exact = [s for s in result.series if s.series_uid == uid]
    matches = exact or [s for s in result.series if s.series_uid.startswith(uid)]
    if len(matches) == 1:
        return matches[0]
    if not result.series:
        raise DicomError(
            f"No image series was found in {result.root}.",
            advice="Check the folder; 'medgan scan' lists what it contains.",
        )
    shown = "\n".join(_describe(s) for s in result.series[:_LIST_AT_MOST])
    more = len(result.series) - _LIST_AT_MOST
    if more > 0:
        shown += f"\n  ... and {more} more (see 'medgan scan')"
    if matches:
        raise DicomError(
            f"The UID prefix {uid!r} matches {len(matches)} series; give more of it.\n{shown}"
        )
    raise DicomError(f"No series with UID {uid!r} in {result.root}. Series found:\n{shown}")


def run(args: argparse.Namespace) -> int:
    out = Path(args.out)
    if out.exists() and not args.force:
        raise ExportError(f"{out} already exists.", advice="Use --force to overwrite it.")
    progress = None
    if not args.quiet:
        progress = CountProgress("Reading headers", sys.stderr, unit="files")
    try:
        result = scan_folder(args.folder, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    series = pick_series(result, args.series)
    if not series.trainable:
        raise DicomError(
            f"Series {series.series_uid} cannot be converted: {series.reason or 'unusable'}.",
            advice="Pick another series; 'medgan scan' shows which ones are usable.",
        )
    for warning in series.warnings:
        print(f"medgan: warning: {warning}", file=sys.stderr)
    progress = None
    if not args.quiet:
        progress = CountProgress("Decoding", sys.stderr, unit="images")
    try:
        written = series_to_nifti(series, out, progress=progress)
    finally:
        if progress is not None:
            progress.close()
    rows, cols = series.rows, series.cols
    print(f"Wrote {written}: {cols}x{rows}x{series.n_images} voxels ({series.modality or '?'}).")
    return 0
