"""Masks from DICOM Segmentation objects (binary or fractional; one or many segments).

Each frame is matched to a scanned image through its referenced SOP Instance UID (and frame
number), or, when it names none or an unknown one, through the frame of reference and its
plane position (parsed only then). Fractional values count as inside from one half of the
maximum. Where segments overlap on a pixel, the higher segment number wins. Label-map SEGs
are refused with the reason.

The frames are read with pydicom (dataset and pixel decoding) and their functional groups
walked here: highdicom's reader (``segread``) first indexes every frame of every SEG into an
SQLite table, which took 3-4x as long as the whole naive pydicom read of a 2,000-frame folder
(docs/benchmarks.md) and is not needed to put frames on slices. highdicom stays the judge of a
file this walk cannot read: its error message is the one reported.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from medgan.core.logs import quiet_identifying_loggers
from medgan.dicom.labels.match import Hit, ImageLookup
from medgan.dicom.labels.records import LabelProblem, LabelSet, SeriesMasks

log = logging.getLogger(__name__)
quiet_identifying_loggers()  # highdicom logs source UIDs at INFO

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"
LABELMAP_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.7"  # Label Map Segmentation Storage


def _first(item: Any, name: str) -> Any:
    seq = getattr(item, name, None) if item is not None else None
    return seq[0] if seq else None


def _source(groups: Any, shared: Any) -> tuple[int, str, int | None]:
    """(segment number, source SOP UID, source frame (0-based)) of one frame."""
    ident = _first(groups, "SegmentIdentificationSequence") or _first(
        shared, "SegmentIdentificationSequence"
    )
    number = int(ident.ReferencedSegmentNumber)
    source_uid, source_frame = "", None
    source = _first(_first(groups, "DerivationImageSequence"), "SourceImageSequence")
    if source is not None:
        source_uid = str(getattr(source, "ReferencedSOPInstanceUID", ""))
        frames = getattr(source, "ReferencedFrameNumber", None)
        if frames is not None:
            values = list(frames) if hasattr(frames, "__iter__") else [frames]
            source_frame = int(values[0]) - 1 if values else None
    return number, source_uid, source_frame


def _plane(groups: Any, shared: Any) -> tuple[list[float] | None, list[float] | None]:
    """(ImagePositionPatient, ImageOrientationPatient) of one frame, or Nones."""
    plane = _first(groups, "PlanePositionSequence")
    position = [float(v) for v in plane.ImagePositionPatient] if plane is not None else None
    orient = _first(groups, "PlaneOrientationSequence") or _first(
        shared, "PlaneOrientationSequence"
    )
    orientation = [float(v) for v in orient.ImageOrientationPatient] if orient is not None else None
    return position, orientation


def _highdicom_reason(name: str, exc: Exception) -> str:
    """Why highdicom cannot read ``name`` (or the walk's own error when it can)."""
    import highdicom as hd

    try:
        hd.seg.segread(name)
    except Exception as hd_exc:  # noqa: BLE001
        return f"not a readable DICOM Segmentation ({_short(hd_exc)})"
    return f"unexpected segmentation structure ({_short(exc)})"


def read_seg(path: str | os.PathLike[str], lookup: ImageLookup) -> LabelSet:
    """Masks of a SEG file per matched series; frames that match nothing are problems."""
    name = os.fspath(path)
    try:
        return _read_seg(name, lookup)
    except Exception as exc:  # noqa: BLE001 - any reason a SEG cannot be read is reported
        reason = _highdicom_reason(name, exc)
        return LabelSet(sources=[name], problems=[LabelProblem(name, reason)])


def _read_seg(name: str, lookup: ImageLookup) -> LabelSet:
    import pydicom

    out = LabelSet(sources=[name])
    seg = pydicom.dcmread(name)
    if str(getattr(seg, "SOPClassUID", "")) not in (SEG_SOP_CLASS, LABELMAP_SOP_CLASS):
        raise ValueError("not a Segmentation Storage object")
    seg_type = str(getattr(seg, "SegmentationType", "")).upper()
    if seg_type not in ("BINARY", "FRACTIONAL"):
        reason = (
            f"segmentation type {seg_type or 'unknown'} is not supported "
            "(binary and fractional SEGs are)"
        )
        out.problems.append(LabelProblem(name, reason))
        return out
    names = {
        int(item.SegmentNumber): str(
            getattr(item, "SegmentLabel", "") or f"segment {int(item.SegmentNumber)}"
        )
        for item in seg.SegmentSequence
    }
    numbers = sorted(names)
    segments = [names[n] for n in numbers]
    value_of = {n: i + 1 for i, n in enumerate(numbers)}
    frame_of_ref = str(getattr(seg, "FrameOfReferenceUID", ""))
    referenced = [str(s.SeriesInstanceUID) for s in getattr(seg, "ReferencedSeriesSequence", [])]
    shared = _first(seg, "SharedFunctionalGroupsSequence")
    pixels = np.asarray(seg.pixel_array)
    if pixels.ndim == 2:
        pixels = pixels[None]
    threshold = 1
    if seg_type == "FRACTIONAL":
        threshold = max(1, (int(getattr(seg, "MaximumFractionalValue", 255)) + 1) // 2)
    per_series: dict[str, SeriesMasks] = {}
    unmatched = 0
    per_frame = seg.PerFrameFunctionalGroupsSequence
    for k in range(pixels.shape[0]):
        number, source_uid, source_frame = _source(per_frame[k], shared)
        hit: Hit | None = lookup.by_sop(source_uid, source_frame) if source_uid else None
        if hit is None and frame_of_ref:
            position, orientation = _plane(per_frame[k], shared)
            if position is not None and orientation is not None:
                only = referenced or None
                hit = lookup.by_plane(frame_of_ref, position, orientation, series_uids=only)
                if hit is None and referenced:
                    hit = lookup.by_plane(frame_of_ref, position, orientation)
        if hit is None:
            unmatched += 1
            continue
        series = lookup.series[hit.series_uid]
        frame = pixels[k]
        if frame.shape != (series.rows, series.cols):
            reason = (
                f"frame {k + 1} is {frame.shape[0]}×{frame.shape[1]} but its image is "
                f"{series.rows}×{series.cols}; left out"
            )
            out.problems.append(LabelProblem(name, reason))
            continue
        masks = per_series.setdefault(
            hit.series_uid, SeriesMasks(hit.series_uid, name, "SEG", segments)
        )
        current = masks.masks.get(hit.index)
        if current is None:
            current = masks.masks[hit.index] = np.zeros(frame.shape, np.uint8)
        value = value_of.get(number, 0)
        inside = frame >= threshold
        current[inside & (current < value)] = value
    if unmatched:
        reason = (
            f"{unmatched} of {pixels.shape[0]} frames match no scanned image "
            "(by SOP Instance UID or frame of reference and position)"
        )
        out.problems.append(LabelProblem(name, reason))
    if not per_series:
        out.problems.append(LabelProblem(name, "the segmentation matches no scanned series"))
    for masks in per_series.values():
        out.add_masks(masks)
    return out


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
