"""Masks from RT Structure Sets: planar contours filled onto the referenced image grid.

Read with pydicom and filled with scikit-image's ``polygon`` (a pixel is inside when its
centre is). Chosen over rt-utils, which needs OpenCV (a large binary wheel) for one fill call
and wants the whole image series as pydicom datasets in memory, whereas the scan already
knows every slice's geometry. Every contour of an ROI on one slice is XOR-ed in (even-odd
rule), so a contour inside another is a hole and several separate contours all count.
Each contour is matched to its slice by the referenced SOP Instance UID, else by frame of
reference and the contour's plane.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from medgan.dicom.labels.match import Hit, ImageLookup
from medgan.dicom.labels.records import LabelProblem, LabelSet, SeriesMasks
from medgan.dicom.records import SeriesRecord

log = logging.getLogger(__name__)

RTSTRUCT_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.481.3"


def _fill(points: np.ndarray, series: SeriesRecord, index: int) -> np.ndarray | None:
    """Pixels of the slice inside the closed polygon ``points`` (N, 3) in patient mm."""
    from skimage.draw import polygon

    ref = series.images[index]
    if ref.position is None or series.orientation is None or series.pixel_spacing is None:
        return None
    origin = np.asarray(ref.position, float)
    row_dir = np.asarray(series.orientation[:3], float)  # along a row: column index grows
    col_dir = np.asarray(series.orientation[3:], float)  # down a column: row index grows
    d = points - origin
    cols = d @ row_dir / series.pixel_spacing[1]
    rows = d @ col_dir / series.pixel_spacing[0]
    rr, cc = polygon(rows, cols, shape=(series.rows, series.cols))
    out = np.zeros((series.rows, series.cols), bool)
    out[rr, cc] = True
    return out


def _series_uids(ds: Any) -> list[str]:
    uids = []
    for fr in getattr(ds, "ReferencedFrameOfReferenceSequence", []):
        for study in getattr(fr, "RTReferencedStudySequence", []):
            for series in getattr(study, "RTReferencedSeriesSequence", []):
                uids.append(str(series.SeriesInstanceUID))
    return uids


def read_rtstruct(path: str | os.PathLike[str], lookup: ImageLookup) -> LabelSet:
    """Masks of every ROI with closed planar contours, per matched series."""
    import pydicom

    name = os.fspath(path)
    out = LabelSet(sources=[name])
    try:
        ds = pydicom.dcmread(name)
    except Exception as exc:  # noqa: BLE001
        out.problems.append(LabelProblem(name, f"not a readable DICOM file ({type(exc).__name__})"))
        return out
    if str(getattr(ds, "SOPClassUID", "")) != RTSTRUCT_SOP_CLASS:
        out.problems.append(LabelProblem(name, "not an RT Structure Set"))
        return out
    rois = {
        int(r.ROINumber): (
            str(getattr(r, "ROIName", "") or f"ROI {int(r.ROINumber)}"),
            str(getattr(r, "ReferencedFrameOfReferenceUID", "")),
        )
        for r in getattr(ds, "StructureSetROISequence", [])
    }
    segments = [rois[n][0] for n in sorted(rois)]
    value_of = {n: i + 1 for i, n in enumerate(sorted(rois))}
    referenced = _series_uids(ds)
    default_for = str(getattr(ds, "FrameOfReferenceUID", "")) or next(
        (
            str(fr.FrameOfReferenceUID)
            for fr in getattr(ds, "ReferencedFrameOfReferenceSequence", [])
        ),
        "",
    )
    filled: dict[tuple[str, int, int], np.ndarray] = {}  # (series, index, roi) → XOR of contours
    unmatched = skipped = 0
    for roi in getattr(ds, "ROIContourSequence", []):
        number = int(roi.ReferencedROINumber)
        for contour in getattr(roi, "ContourSequence", []):
            kind = str(getattr(contour, "ContourGeometricType", "CLOSED_PLANAR")).upper()
            data = np.asarray([float(v) for v in getattr(contour, "ContourData", [])]).reshape(
                -1, 3
            )
            if kind != "CLOSED_PLANAR" or len(data) < 3:
                skipped += 1
                continue
            hit = _match(
                contour,
                data,
                lookup,
                rois.get(number, ("", default_for))[1] or default_for,
                referenced,
            )
            if hit is None:
                unmatched += 1
                continue
            series = lookup.series[hit.series_uid]
            area = _fill(data, series, hit.index)
            if area is None:
                unmatched += 1
                continue
            key = (hit.series_uid, hit.index, number)
            filled[key] = filled[key] ^ area if key in filled else area
    per_series: dict[str, SeriesMasks] = {}
    for (uid, index, number), area in sorted(filled.items(), key=lambda kv: kv[0]):
        s = lookup.series[uid]
        masks = per_series.setdefault(uid, SeriesMasks(uid, name, "RTSTRUCT", segments))
        current = masks.masks.setdefault(index, np.zeros((s.rows, s.cols), np.uint8))
        value = value_of.get(number, 0)
        current[area & (current < value)] = value
    if unmatched:
        out.problems.append(
            LabelProblem(name, f"{unmatched} contour(s) match no scanned slice; left out")
        )
    if skipped:
        out.problems.append(
            LabelProblem(name, f"{skipped} contour(s) are not closed planar polygons; left out")
        )
    if not per_series:
        out.problems.append(
            LabelProblem(name, "the structure set matches no scanned series; left out")
        )
    for masks in per_series.values():
        out.add_masks(masks)
    return out


def _match(
    contour: Any, data: np.ndarray, lookup: ImageLookup, frame_of_ref: str, referenced: list[str]
) -> Hit | None:
    for item in getattr(contour, "ContourImageSequence", []):
        hit = lookup.by_sop(str(item.ReferencedSOPInstanceUID))
        if hit is not None:
            return hit
    if not frame_of_ref:
        return None
    # A planar contour: find the slice whose plane holds its first point.
    for uid in referenced or list(lookup.series):
        s = lookup.series.get(uid)
        if s is None or s.orientation is None:
            continue
        hit = _plane_hit(lookup, frame_of_ref, data, s)
        if hit is not None:
            return hit
    return None


def _plane_hit(
    lookup: ImageLookup, frame_of_ref: str, data: np.ndarray, s: SeriesRecord
) -> Hit | None:
    assert s.orientation is not None
    normal = np.cross(s.orientation[:3], s.orientation[3:])
    normal = normal / np.linalg.norm(normal)
    loc = float(data[0] @ normal)
    for i, ref in enumerate(s.images):
        if ref.position is None or s.frame_of_reference_uid != frame_of_ref:
            continue
        if abs(float(np.dot(ref.position, normal)) - loc) <= 0.25 * (s.slice_spacing or 1.0):
            return Hit(s.series_uid, i)
    return None
