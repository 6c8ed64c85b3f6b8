"""Masks from NIfTI label volumes (ITK-SNAP, nnU-Net, 3D Slicer...), matched by world geometry.

The volume's affine (RAS, mm) is turned into DICOM patient coordinates (LPS) and every pixel
centre of every slice of the series is looked up in it, nearest neighbour; the voxel order of
the file does not matter. A volume that does not overlap the series, or whose voxel planes are
not parallel to the slices (nearest-neighbour resampling across planes would stair-step), is
refused with the reason. Voxel value k > 0 is segment ``label k`` unless names are given.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np

from medgan.dicom.labels.match import ImageLookup
from medgan.dicom.labels.records import LabelProblem, LabelSet, SeriesMasks
from medgan.dicom.records import SeriesRecord

_RAS_TO_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
_PARALLEL = 0.999  # |cos| between the slice normal and a voxel axis


def is_nifti(path: str) -> bool:
    low = path.lower()
    return low.endswith(".nii") or low.endswith(".nii.gz")


def _slice_world(series: SeriesRecord, index: int) -> np.ndarray | None:
    """World (LPS) centres of the pixels of one slice, shape (rows, cols, 3)."""
    ref = series.images[index]
    if ref.position is None or series.orientation is None or series.pixel_spacing is None:
        return None
    row_dir = np.asarray(series.orientation[:3], float)
    col_dir = np.asarray(series.orientation[3:], float)
    i = np.arange(series.rows, dtype=float)[:, None, None] * series.pixel_spacing[0]
    j = np.arange(series.cols, dtype=float)[None, :, None] * series.pixel_spacing[1]
    return np.asarray(ref.position, float) + j * row_dir + i * col_dir


def resample_to_series(
    volume: np.ndarray, affine_lps: np.ndarray, series: SeriesRecord
) -> tuple[dict[int, np.ndarray], int]:
    """Nearest-neighbour labels of every slice: (image index → uint8 mask, pixels inside)."""
    inverse = np.linalg.inv(affine_lps)
    shape = np.asarray(volume.shape[:3])
    out: dict[int, np.ndarray] = {}
    inside_total = 0
    for index in range(series.n_images):
        world = _slice_world(series, index)
        if world is None:
            continue
        vox = world @ inverse[:3, :3].T + inverse[:3, 3]
        ijk = np.rint(vox).astype(np.int64)
        inside = np.all((ijk >= 0) & (ijk < shape), axis=-1)
        if not inside.any():
            continue
        inside_total += int(inside.sum())
        mask = np.zeros((series.rows, series.cols), np.uint8)
        sel = ijk[inside]
        mask[inside] = volume[sel[:, 0], sel[:, 1], sel[:, 2]]
        out[index] = mask
    return out, inside_total


def _orientation_problem(affine_lps: np.ndarray, series: SeriesRecord) -> str | None:
    if series.orientation is None or series.pixel_spacing is None:
        return "the series has no orientation or pixel spacing to match against"
    normal = np.cross(series.orientation[:3], series.orientation[3:])
    normal = normal / np.linalg.norm(normal)
    axes = affine_lps[:3, :3] / np.linalg.norm(affine_lps[:3, :3], axis=0)
    if np.abs(axes.T @ normal).max() < _PARALLEL:
        return (
            "its voxel planes are not parallel to the series' slices (orientation cannot "
            "be matched without interpolating labels); resample it onto the series first"
        )
    return None


def read_nifti_mask(
    path: str | os.PathLike[str],
    lookup: ImageLookup,
    *,
    series_uids: Sequence[str] | None = None,
    names: Mapping[int, str] | None = None,
) -> LabelSet:
    """Match the label volume to the series it overlaps most (or to ``series_uids``)."""
    import nibabel as nib

    name = os.fspath(path)
    out = LabelSet(sources=[name])
    try:
        img = nib.load(name)
        if not isinstance(img, nib.Nifti1Image):  # Nifti2Image is a subclass
            raise TypeError(f"{type(img).__name__} is not a NIfTI image")
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # noqa: BLE001
        out.problems.append(
            LabelProblem(name, f"not a readable NIfTI file ({type(exc).__name__}: {exc})"[:240])
        )
        return out
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        out.problems.append(
            LabelProblem(name, f"a label volume must be 3D (this one is {data.ndim}D)")
        )
        return out
    if not np.issubdtype(data.dtype, np.integer) and not np.allclose(data, np.rint(data)):
        out.problems.append(
            LabelProblem(name, "voxel values are not whole numbers, so it is not a label map")
        )
        return out
    values = np.rint(data).astype(np.int64)
    if values.min() < 0 or values.max() > 255:
        out.problems.append(LabelProblem(name, "label values must be 0..255"))
        return out
    header = img.header
    if int(header.get("sform_code", 0)) == 0 and int(header.get("qform_code", 0)) == 0:
        out.problems.append(
            LabelProblem(name, "the file has no world geometry (qform and sform codes are 0)")
        )
        return out
    affine = _RAS_TO_LPS @ np.asarray(img.affine, dtype=np.float64)
    if abs(np.linalg.det(affine[:3, :3])) < 1e-9:
        out.problems.append(LabelProblem(name, "the file's affine is singular"))
        return out
    volume = values.astype(np.uint8)
    present = [int(v) for v in np.unique(volume) if v]
    top = max(present, default=0)
    segments = [(names or {}).get(k, f"label {k}") for k in range(1, top + 1)]
    candidates = [lookup.series[u] for u in (series_uids or lookup.series) if u in lookup.series]
    best: tuple[int, SeriesRecord, dict[int, np.ndarray]] | None = None
    reasons = []
    for s in candidates:
        why = _orientation_problem(affine, s)
        if why:
            reasons.append(why)
            continue
        masks, inside = resample_to_series(volume, affine, s)
        if inside and (best is None or inside > best[0]):
            best = (inside, s, masks)
    if best is None:
        # Every candidate refused for its orientation: say so; else it overlaps none of them.
        if reasons and len(reasons) == len(candidates):
            reason = reasons[0]
        else:
            reason = "the label volume does not overlap any scanned series in world coordinates"
        out.problems.append(LabelProblem(name, f"refused: {reason}"))
        return out
    _inside, s, masks = best
    out.add_masks(SeriesMasks(s.series_uid, name, "NIfTI", segments, masks))
    return out
