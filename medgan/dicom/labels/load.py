"""One call that gathers every label source for a scan: CSV files, SEG, RTSTRUCT and NIfTI
masks (given, or found while scanning the folder), the user's own labels, derived labels.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence

from medgan.core.errors import Cancelled, MedganError
from medgan.dicom.labels.csv_file import KEY_COLUMNS, read_csv_rows, read_label_csv
from medgan.dicom.labels.derived import labels_from_masks
from medgan.dicom.labels.match import ImageLookup
from medgan.dicom.labels.nifti import is_nifti, read_nifti_mask
from medgan.dicom.labels.records import LabelProblem, LabelSet
from medgan.dicom.labels.rtstruct import RTSTRUCT_SOP_CLASS, read_rtstruct
from medgan.dicom.labels.seg import LABELMAP_SOP_CLASS, SEG_SOP_CLASS, read_seg
from medgan.dicom.labels.user_file import UserLabels
from medgan.dicom.records import ScanResult

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


def _mask_kind(path: str) -> str:
    """``SEG``, ``RTSTRUCT``, ``NIfTI`` or ``""`` (not a mask file)."""
    if is_nifti(path):
        return "NIfTI"
    try:
        import pydicom

        ds = pydicom.dcmread(path, stop_before_pixels=True, specific_tags=["SOPClassUID"])
    except Exception:  # noqa: BLE001
        return ""
    sop = str(getattr(ds, "SOPClassUID", ""))
    kinds = {SEG_SOP_CLASS: "SEG", LABELMAP_SOP_CLASS: "SEG", RTSTRUCT_SOP_CLASS: "RTSTRUCT"}
    return kinds.get(sop, "")


def _is_label_csv(path: str) -> bool:
    try:
        header, _rows = read_csv_rows(path)
    except MedganError:
        return False
    return "label" in header and any(k in header for k in KEY_COLUMNS)


def read_mask_file(path: str, lookup: ImageLookup, kind: str | None = None) -> LabelSet:
    kind = kind or _mask_kind(path)
    if kind == "SEG":
        return read_seg(path, lookup)
    if kind == "RTSTRUCT":
        return read_rtstruct(path, lookup)
    if kind == "NIfTI":
        return read_nifti_mask(path, lookup)
    return LabelSet(
        sources=[path], problems=[LabelProblem(path, "not a DICOM SEG, RTSTRUCT or NIfTI file")]
    )


def load_labels(
    scan: ScanResult,
    *,
    csv_files: Sequence[str | os.PathLike[str]] = (),
    mask_files: Sequence[str | os.PathLike[str]] = (),
    user: UserLabels | None = None,
    auto: bool = True,
    derive: bool = True,
    min_area: int = 20,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> LabelSet:
    """Every label and mask for ``scan``; problems for whatever cannot be matched.

    Args:
        csv_files, mask_files: files given by the user (SEG, RTSTRUCT or NIfTI masks).
        user: the user's own labels (they win over CSV labels on the same slice).
        auto: also read the SEG/RTSTRUCT objects and ``.csv``/``.nii(.gz)`` files the scan
            found in the folder.
        derive: label masked slices by the segment they show (``min_area`` pixels).
    """
    lookup = ImageLookup(scan.series, scan.root)
    masks: list[tuple[str, str | None]] = [(os.fspath(p), None) for p in mask_files]
    csvs = [os.fspath(p) for p in csv_files]
    if auto:
        given = {os.path.abspath(p) for p, _ in masks} | {os.path.abspath(p) for p in csvs}
        for obj in scan.label_objects:
            if os.path.abspath(obj.path) not in given:
                masks.append((obj.path, obj.kind))
        for path in scan.label_files:
            if os.path.abspath(path) in given:
                continue
            if is_nifti(path):
                masks.append((path, "NIfTI"))
            elif _is_label_csv(path):
                csvs.append(path)
            else:  # some other table that happens to sit in the folder
                log.info("Ignoring a CSV file without 'label' and key columns in the folder")
    result = LabelSet()
    total = len(csvs) + len(masks)
    done = 0
    for path in csvs:
        _check(cancel)
        result.update(read_label_csv(path, lookup))
        done += 1
        if progress:
            progress(done, total)
    for path, kind in masks:
        _check(cancel)
        result.update(read_mask_file(path, lookup, kind))
        done += 1
        if progress:
            progress(done, total)
    if user is not None and user.entries:
        result.update(user.to_label_set(scan.series))
    if derive:
        labels_from_masks(result, min_area=min_area)
    log.info(
        "Labels: %d labelled slices, %d masked slices from %d file(s), %d problem(s)",
        sum(len(v) for v in result.labels.values()),
        sum(len(result.masked_indices(u)) for u in result.masks),
        len(result.sources),
        len(result.problems),
    )
    return result


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("Loading labels was cancelled.")
