"""Split a multi-frame object into 2D image references, with per-frame geometry and rescale.

Enhanced objects (Enhanced CT/MR/XA, ...) carry each frame's position, orientation, spacing
and rescale in the Shared and Per-Frame Functional Groups; classic multi-frame objects carry
at most one position plus a slice spacing.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
from pydicom.dataset import Dataset

from medgan.dicom.records import FileHeader, ImageRef


def _item(group: Dataset | None, keyword: str) -> Dataset | None:
    """First item of a functional-group macro sequence, or None."""
    if group is None:
        return None
    seq = group.get(keyword)
    if seq is None or len(seq) == 0:
        return None
    return seq[0]


def _floats(value: Any, n: int) -> tuple[float, ...] | None:
    try:
        out = tuple(float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return out if len(out) == n else None


def _macro(shared: Dataset | None, frame: Dataset | None, keyword: str) -> Dataset | None:
    """Per-frame macro when present, else the shared one."""
    return _item(frame, keyword) or _item(shared, keyword)


def frame_refs(
    ds: Dataset,
    common: dict[str, Any],
    position: tuple[float, ...] | None,
    orientation: tuple[float, ...] | None,
    head: FileHeader,
) -> list[ImageRef]:
    """One :class:`ImageRef` per frame of ``ds``; also fills spacing/window on ``head``."""
    n_frames = int(common["n_frames"])
    shared = _item(ds, "SharedFunctionalGroupsSequence")
    per_frame_seq = ds.get("PerFrameFunctionalGroupsSequence")
    per_frame: list[Dataset | None] = list(per_frame_seq) if per_frame_seq else []
    if len(per_frame) != n_frames:
        per_frame = [None] * n_frames
    refs: list[ImageRef] = []
    classic_positions = _classic_positions(ds, position, orientation, n_frames)
    for k in range(n_frames):
        frame = per_frame[k]
        fields = dict(common)
        pos = None
        plane = _macro(shared, frame, "PlanePositionSequence")
        if plane is not None:
            pos = _floats(plane.get("ImagePositionPatient"), 3)
        elif classic_positions is not None:
            pos = classic_positions[k]
        orient = orientation
        plane_o = _macro(shared, frame, "PlaneOrientationSequence")
        if plane_o is not None:
            orient = _floats(plane_o.get("ImageOrientationPatient"), 6) or orientation
        transform = _macro(shared, frame, "PixelValueTransformationSequence")
        if transform is not None:
            try:
                fields["rescale_slope"] = float(transform.get("RescaleSlope", 1.0)) or 1.0
                fields["rescale_intercept"] = float(transform.get("RescaleIntercept", 0.0))
            except (TypeError, ValueError):
                pass
        if k == 0:
            measures = _macro(shared, frame, "PixelMeasuresSequence")
            if measures is not None:
                spacing = _floats(measures.get("PixelSpacing"), 2)
                if spacing is not None:
                    head.pixel_spacing = spacing  # type: ignore[assignment]
                try:
                    head.slice_thickness = float(measures.get("SliceThickness"))
                except (TypeError, ValueError):
                    pass
            voi = _macro(shared, frame, "FrameVOILUTSequence")
            if voi is not None and head.window is None:
                try:
                    c, w = voi.get("WindowCenter"), voi.get("WindowWidth")
                    c = c[0] if isinstance(c, (list, tuple)) or hasattr(c, "__len__") else c
                    w = w[0] if isinstance(w, (list, tuple)) or hasattr(w, "__len__") else w
                    if float(w) > 0:
                        head.window = (float(c), float(w))
                except (TypeError, ValueError, IndexError):
                    pass
        refs.append(
            ImageRef(frame=k, position=pos, orientation=orient, **fields)  # type: ignore[arg-type]
        )
    return refs


def _classic_positions(
    ds: Dataset,
    position: tuple[float, ...] | None,
    orientation: tuple[float, ...] | None,
    n_frames: int,
) -> list[tuple[float, float, float]] | None:
    """Positions of classic multi-frame slices from one position + SpacingBetweenSlices."""
    if position is None or orientation is None:
        return None
    try:
        spacing = float(ds.get("SpacingBetweenSlices"))
    except (TypeError, ValueError):
        return None
    normal = np.cross(np.asarray(orientation[:3]), np.asarray(orientation[3:]))
    base = np.asarray(position, dtype=float)
    return [tuple(float(v) for v in base + k * spacing * normal) for k in range(n_frames)]  # type: ignore[misc]


def with_location(ref: ImageRef, location: float | None) -> ImageRef:
    """A copy of ``ref`` with its slice location set."""
    return dataclasses.replace(ref, slice_location=location)
