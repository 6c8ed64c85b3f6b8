"""Anatomical slice order and spacing checks for the images of one series.

Slices are sorted by ImagePositionPatient projected on the slice normal (the cross product
of the ImageOrientationPatient row and column vectors). When positions or a common
orientation are missing, InstanceNumber is used, then the file name (natural order).
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field

import numpy as np

from medgan.dicom.records import ImageRef

_DUPLICATE_MM = 0.01  # positions closer than this along the normal are the same slice
_ORIENT_TOL = 1e-3


@dataclass
class SortResult:
    images: list[ImageRef]
    sorted_by: str
    orientation: tuple[float, float, float, float, float, float] | None = None
    slice_spacing: float | None = None
    warnings: list[str] = field(default_factory=list)


def natural_key(path: str) -> list[object]:
    """'IM2' before 'IM10'; compares the path parts case-insensitively."""
    parts = re.split(r"(\d+)", path.replace(os.sep, "/").lower())
    return [int(p) if p.isdigit() else p for p in parts]


def _name_key(ref: ImageRef) -> tuple[list[object], int]:
    return natural_key(ref.path), ref.frame or 0


def _common_orientation(images: list[ImageRef]) -> tuple[float, ...] | None:
    first = images[0].orientation
    if first is None:
        return None
    ref = np.asarray(first)
    for img in images[1:]:
        if img.orientation is None or np.abs(np.asarray(img.orientation) - ref).max() > _ORIENT_TOL:
            return None
    return first


def sort_images(images: list[ImageRef]) -> SortResult:
    """Sort ``images`` anatomically and describe spacing problems in plain words."""
    if not images:
        return SortResult([], "file name")
    warnings: list[str] = []
    orientation = _common_orientation(images)
    have_positions = all(img.position is not None for img in images)
    if orientation is not None and have_positions:
        row, col = np.asarray(orientation[:3]), np.asarray(orientation[3:])
        normal = np.cross(row, col)
        norm = float(np.linalg.norm(normal))
        if norm > 1e-6:
            normal /= norm
            located = [
                dataclasses.replace(img, slice_location=float(np.dot(img.position, normal)))  # type: ignore[arg-type]
                for img in images
            ]
            located.sort(key=lambda r: (r.slice_location, r.instance_number or 0, _name_key(r)))
            spacing, spacing_warnings = _spacing(located)
            return SortResult(
                located,
                "position",
                orientation=tuple(float(v) for v in orientation),  # type: ignore[arg-type]
                slice_spacing=spacing,
                warnings=spacing_warnings,
            )
    if orientation is None and have_positions and len(images) > 1:
        planes = _by_plane(images)
        if planes is not None:
            return planes
    if len(images) > 1:
        if orientation is None and any(img.orientation is not None for img in images):
            warnings.append("images have different orientations, so they are not one stack")
        elif not have_positions:
            missing = sum(img.position is None for img in images)
            warnings.append(f"{missing} of {len(images)} images have no ImagePositionPatient")
    if all(img.instance_number is not None for img in images):
        ordered = sorted(images, key=lambda r: (r.instance_number, _name_key(r)))
        numbers = [(r.instance_number, r.frame) for r in ordered]
        if len(set(numbers)) < len(numbers):
            warnings.append("duplicate InstanceNumbers: slice order may be wrong")
        by = "instance number"
    else:
        ordered = sorted(images, key=_name_key)
        by = "file name"
        if len(images) > 1:
            warnings.append("no positions or instance numbers: slices ordered by file name")
    if len(images) > 1 and by != "position":
        warnings.append(f"slices sorted by {by}")
    orient = images[0].orientation if orientation is not None else None
    return SortResult(ordered, by, orientation=orient, warnings=warnings)


def _spacing(located: list[ImageRef]) -> tuple[float | None, list[str]]:
    """Median gap between sorted slices; warnings for duplicates, gaps, irregular steps."""
    if len(located) < 2:
        return None, []
    locs = np.array([r.slice_location for r in located], dtype=np.float64)
    diffs = np.diff(locs)
    warnings: list[str] = []
    dup = diffs < _DUPLICATE_MM
    if dup.any():
        warnings.append(
            f"{int(dup.sum())} duplicate slice position(s): several images at the same location"
        )
    steps = diffs[~dup]
    if steps.size == 0:
        return None, warnings
    median = float(np.median(steps))
    gaps = steps > 1.5 * median
    if gaps.any():
        missing = int(np.round(steps[gaps] / median - 1).sum())
        warnings.append(
            f"{int(gaps.sum())} gap(s) in slice positions: about {missing} slice(s) missing "
            f"(largest gap {float(steps.max()):.2f} mm, usual {median:.2f} mm)"
        )
    elif steps.max() - steps.min() > max(0.1 * median, 0.01):
        warnings.append(
            f"irregular slice spacing: {float(steps.min()):.2f} to {float(steps.max()):.2f} mm"
        )
    return median, warnings


def _by_plane(images: list[ImageRef]) -> SortResult | None:
    """Several orientations in one series (e.g. a localizer among axial slices): sort each
    plane by position, the largest plane first; spacing comes from the largest plane."""
    if any(img.orientation is None for img in images):
        return None
    planes: list[list[ImageRef]] = []
    for img in images:
        for plane in planes:
            if (
                np.abs(np.asarray(plane[0].orientation) - np.asarray(img.orientation)).max()
                <= _ORIENT_TOL
            ):
                plane.append(img)
                break
        else:
            planes.append([img])
    planes.sort(key=lambda p: (-len(p), _name_key(p[0])))
    ordered: list[ImageRef] = []
    main: SortResult | None = None
    for plane in planes:
        result = sort_images(plane)
        if result.sorted_by != "position":
            return None
        main = main or result
        ordered.extend(result.images)
    assert main is not None
    warnings = [
        f"images in {len(planes)} orientations (localizer images?): the largest stack "
        f"({len(planes[0])} images) comes first, each plane sorted by position"
    ] + main.warnings
    return SortResult(
        ordered,
        "position (per orientation)",
        orientation=main.orientation,
        slice_spacing=main.slice_spacing,
        warnings=warnings,
    )
