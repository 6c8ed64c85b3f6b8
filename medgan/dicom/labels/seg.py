"""Masks from DICOM Segmentation objects (binary or fractional; one or many segments).

The file is parsed with highdicom (which checks it is a valid SEG); each frame is matched to a
scanned image through its referenced SOP Instance UID (and frame number), or, when it names
none or an unknown one, through the frame of reference and its plane position. Fractional
values count as inside from one half of the maximum. Where segments overlap on a pixel, the
higher segment number wins.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np

from medgan.dicom.labels.match import Hit, ImageLookup
from medgan.dicom.labels.records import LabelProblem, LabelSet, SeriesMasks

log = logging.getLogger(__name__)

SEG_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.66.4"


def _first(item: Any, name: str) -> Any:
    seq = getattr(item, name, None) if item is not None else None
    return seq[0] if seq else None


def _frame_facts(seg: Any, k: int, shared: Any) -> tuple[int, str, int | None, Any, Any]:
    """(segment number, source SOP UID, source frame (0-based), position, orientation)."""
    groups = seg.PerFrameFunctionalGroupsSequence[k]
    ident = _first(groups, "SegmentIdentificationSequence") or _first(
        shared, "SegmentIdentificationSequence"
    )
    number = int(ident.ReferencedSegmentNumber)
    source_uid, source_frame = "", None
    derivation = _first(groups, "DerivationImageSequence")
    source = _first(derivation, "SourceImageSequence")
    if source is not None:
        source_uid = str(getattr(source, "ReferencedSOPInstanceUID", ""))
        frames = getattr(source, "ReferencedFrameNumber", None)
        if frames is not None:
            values = list(frames) if hasattr(frames, "__iter__") else [frames]
            source_frame = int(values[0]) - 1 if values else None
    plane = _first(groups, "PlanePositionSequence")
    position = [float(v) for v in plane.ImagePositionPatient] if plane is not None else None
    orient = _first(groups, "PlaneOrientationSequence") or _first(
        shared, "PlaneOrientationSequence"
    )
    orientation = [float(v) for v in orient.ImageOrientationPatient] if orient is not None else None
    return number, source_uid, source_frame, position, orientation


def read_seg(path: str | os.PathLike[str], lookup: ImageLookup) -> LabelSet:
    """Masks of a SEG file per matched series; frames that match nothing are problems."""
    import highdicom as hd

    name = os.fspath(path)
    out = LabelSet(sources=[name])
    try:
        seg = hd.seg.segread(name)
    except Exception as exc:  # noqa: BLE001 - any reason a SEG cannot be read is reported
        out.problems.append(
            LabelProblem(name, f"not a readable DICOM Segmentation ({_short(exc)})")
        )
        return out
    seg_type = str(getattr(seg, "SegmentationType", "")).upper()
    if seg_type not in ("BINARY", "FRACTIONAL"):
        out.problems.append(
            LabelProblem(
                name,
                f"segmentation type {seg_type or 'unknown'} is not supported "
                "(binary and fractional SEGs are)",
            )
        )
        return out
    names = {
        int(item.SegmentNumber): str(
            getattr(item, "SegmentLabel", "") or f"segment {int(item.SegmentNumber)}"
        )
        for item in seg.SegmentSequence
    }
    numbers = sorted(names)
    segments = [names[n] for n in numbers]
    position_of = {n: i + 1 for i, n in enumerate(numbers)}
    frame_of_ref = str(getattr(seg, "FrameOfReferenceUID", ""))
    referenced = [
        str(item.SeriesInstanceUID) for item in getattr(seg, "ReferencedSeriesSequence", [])
    ]
    shared = _first(seg, "SharedFunctionalGroupsSequence")
    try:
        pixels = np.asarray(seg.pixel_array)
    except Exception as exc:  # noqa: BLE001
        out.problems.append(
            LabelProblem(name, f"cannot decode the segmentation frames ({_short(exc)})")
        )
        return out
    if pixels.ndim == 2:
        pixels = pixels[None]
    threshold = 1
    if seg_type == "FRACTIONAL":
        threshold = max(1, (int(getattr(seg, "MaximumFractionalValue", 255)) + 1) // 2)
    per_series: dict[str, SeriesMasks] = {}
    unmatched = 0
    for k in range(pixels.shape[0]):
        number, source_uid, source_frame, position, orientation = _frame_facts(seg, k, shared)
        hit: Hit | None = lookup.by_sop(source_uid, source_frame) if source_uid else None
        if hit is None and frame_of_ref and position is not None and orientation is not None:
            hit = lookup.by_plane(
                frame_of_ref, position, orientation, series_uids=referenced or None
            )
            if hit is None and referenced:
                hit = lookup.by_plane(frame_of_ref, position, orientation)
        if hit is None:
            unmatched += 1
            continue
        series = lookup.series[hit.series_uid]
        frame = pixels[k]
        if frame.shape != (series.rows, series.cols):
            out.problems.append(
                LabelProblem(
                    name,
                    f"frame {k + 1} is {frame.shape[0]}×{frame.shape[1]} "
                    f"but its image is {series.rows}×{series.cols}; left out",
                )
            )
            continue
        masks = per_series.setdefault(
            hit.series_uid, SeriesMasks(hit.series_uid, name, "SEG", segments)
        )
        inside = frame >= threshold
        if not inside.any():
            masks.masks.setdefault(hit.index, np.zeros(frame.shape, np.uint8))
            continue
        current = masks.masks.get(hit.index)
        if current is None:
            current = masks.masks[hit.index] = np.zeros(frame.shape, np.uint8)
        value = position_of.get(number, 0)
        current[inside & (current < value)] = value
    if unmatched:
        out.problems.append(
            LabelProblem(
                name,
                f"{unmatched} of {pixels.shape[0]} frames match no scanned image "
                "(by SOP Instance UID or frame of reference and position)",
            )
        )
    if not per_series:
        out.problems.append(
            LabelProblem(name, "the segmentation matches no scanned series; left out")
        )
    for masks in per_series.values():
        out.add_masks(masks)
    return out


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
