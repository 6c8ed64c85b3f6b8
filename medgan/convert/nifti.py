"""One DICOM series → one NIfTI volume in modality units, with its true world geometry.

DICOM places pixel (row i, column j) of a slice at ``P + j·Δc·R + i·Δr·C`` in patient
coordinates (LPS: +x left, +y posterior, +z superior), where ``P`` is ImagePositionPatient,
``R``/``C`` the row/column direction cosines of ImageOrientationPatient and ``(Δr, Δc)``
PixelSpacing. NIfTI's affine maps voxel indices to RAS (+x right, +y anterior), so the first
two rows flip sign. The slice axis is the measured step between sorted slice positions, which
also covers reversed stacks and gantry tilt (a sheared sform). Voxels are stored as int16 when
the series is integer-valued and fits, else float32, with no scaling: an independent converter
(dcm2niix) finds the same value at the same world point.

Example::

    series = scan_folder("study/").series_by_uid(uid)
    series_to_nifti(series, "ct.nii.gz")
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np

from medgan.core.errors import Cancelled, DicomError, ExportError
from medgan.core.fileio import atomic_path
from medgan.dicom.records import SeriesRecord

log = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
_ORIENT_TOL = 1e-3


def _orientation(series: SeriesRecord) -> np.ndarray | None:
    """The series' common ImageOrientationPatient as a (2, 3) array, or None if unknown."""
    found = {ref.orientation for ref in series.images if ref.orientation is not None}
    if not found and series.orientation is not None:
        found = {series.orientation}
    if not found:
        return None
    first = np.asarray(next(iter(found)), dtype=np.float64)
    for other in found:
        if np.abs(np.asarray(other, dtype=np.float64) - first).max() > _ORIENT_TOL:
            raise DicomError(
                "The images of this series have different orientations, so they do not form "
                "one volume.",
                advice="Convert each orientation as its own series.",
            )
    iop = first.reshape(2, 3)
    iop /= np.linalg.norm(iop, axis=1, keepdims=True)
    return iop


def series_affine(series: SeriesRecord) -> tuple[np.ndarray, bool]:
    """The NIfTI (RAS) affine of ``series`` in its sorted order, and whether it is real.

    "Real" means it comes from the files' positions and orientation; when those are missing
    the affine only carries the spacing (origin 0, axial) and is flagged False.
    """
    n = series.n_images
    if n == 0:
        raise DicomError("The series has no images to convert.")
    if series.pixel_spacing is not None:
        d_row, d_col = (float(v) for v in series.pixel_spacing)
    else:
        d_row = d_col = 1.0
    iop = _orientation(series)
    positions = [ref.position for ref in series.images]
    located = iop is not None and all(p is not None for p in positions)
    if iop is None:
        iop = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    row_dir, col_dir = iop[0], iop[1]
    normal = np.cross(row_dir, col_dir)
    fallback_step = float(series.slice_spacing or 1.0)
    if located:
        pos = np.asarray(positions, dtype=np.float64)
        origin = pos[0]
        if n > 1:
            steps = np.diff(pos, axis=0)
            step = (pos[-1] - pos[0]) / (n - 1)
            length = float(np.linalg.norm(step))
            if length < 1e-4:
                raise DicomError(
                    "All slices of this series share one position, so they do not form a volume.",
                    advice="Pick a series whose slices are stacked at different positions.",
                )
            worst = float(np.abs(steps - step).max())
            if worst > max(0.02 * length, 0.01):
                lengths = np.linalg.norm(steps, axis=1)
                raise DicomError(
                    "The slices are not evenly spaced (steps from "
                    f"{lengths.min():.3f} to {lengths.max():.3f} mm, or duplicates), and a "
                    "NIfTI volume needs a regular grid.",
                    advice="Check the series for missing or duplicate slices.",
                )
        else:
            step = normal * fallback_step
    else:
        origin = np.zeros(3)
        step = normal * fallback_step
    lps = np.eye(4)
    lps[:3, 0] = row_dir * d_col  # column index j runs along the row direction
    lps[:3, 1] = col_dir * d_row  # row index i runs along the column direction
    lps[:3, 2] = step
    lps[:3, 3] = origin
    return LPS_TO_RAS @ lps, located


def _nifti_suffix(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".nii.gz"):
        return ".nii.gz"
    if name.endswith(".nii"):
        return ".nii"
    raise ExportError(
        f"Cannot write NIfTI to {path.name}: the name must end in .nii.gz or .nii.",
        advice="Use a file name such as volume.nii.gz.",
    )


def _storage(volume: np.ndarray) -> np.ndarray:
    """int16 when every value is an integer within range (exact), else float32."""
    if volume.size and np.isfinite(volume).all():
        lo, hi = float(volume.min()), float(volume.max())
        if lo >= -32768 and hi <= 32767 and np.array_equal(volume, np.rint(volume)):
            return volume.astype(np.int16)
    return volume.astype(np.float32, copy=False)


def series_to_nifti(
    series: SeriesRecord,
    out_path: str | os.PathLike[str],
    *,
    progress: Callable[[int, int], None] | None = None,
    cancel: threading.Event | None = None,
    overwrite: bool = True,
) -> Path:
    """Write ``series`` as a NIfTI-1 volume (``.nii.gz`` or ``.nii``) and return its path.

    Pixels come from :func:`medgan.dicom.decode.load_series` (modality units). The file is
    written to a temporary name and renamed, so ``out_path`` is never half-written; with
    ``overwrite=False`` an existing file is an :class:`ExportError`. ``progress(done, total)``
    counts decoded images; ``cancel`` stops with :class:`Cancelled`, leaving nothing behind.
    """
    import nibabel as nib

    from medgan.dicom.decode import load_series

    out = Path(out_path).expanduser().absolute()
    _nifti_suffix(out)  # validates the name (.nii or .nii.gz)
    if out.exists() and not overwrite:
        raise ExportError(f"{out} already exists.", advice="Choose another name or overwrite.")
    if not out.parent.is_dir():
        raise ExportError(
            f"Cannot write {out.name}: the folder {out.parent} does not exist.",
            advice="Create the folder first or choose another output path.",
        )
    affine, located = series_affine(series)
    if not located:
        log.warning(
            "Series has no usable ImagePositionPatient/ImageOrientationPatient; the NIfTI "
            "keeps the voxel spacing but its world position is unknown"
        )
    volume = load_series(series, progress=progress, cancel=cancel)
    if cancel is not None and cancel.is_set():
        raise Cancelled("Conversion cancelled; nothing was written.")
    data = _storage(np.ascontiguousarray(volume.transpose(2, 1, 0)))  # (cols, rows, slices)
    del volume
    img = nib.Nifti1Image(data, affine)
    header = img.header
    header.set_data_dtype(data.dtype)
    header.set_slope_inter(1.0, 0.0)
    header.set_xyzt_units("mm", "sec")
    header["descrip"] = f"MedGAN Studio {series.modality or 'DICOM'} series"[:79].encode()
    code = "scanner" if located else "unknown"
    img.set_sform(affine, code=code)
    if _is_rigid(affine):
        img.set_qform(affine, code=code)
    else:  # sheared (gantry tilt): only the sform can hold it
        img.set_qform(None, code="unknown")
    try:
        with atomic_path(out) as tmp:
            nib.save(img, tmp)
    except OSError as exc:
        raise ExportError(
            f"Could not write {out}: {exc}.", advice="Check free disk space and permissions."
        ) from exc
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    log.info("Wrote NIfTI volume %s (%s, shape %s)", out.name, data.dtype, data.shape)
    return out


def _is_rigid(affine: np.ndarray) -> bool:
    """True when the affine's axes are orthogonal (a qform can represent it)."""
    m = affine[:3, :3]
    unit = m / np.linalg.norm(m, axis=0, keepdims=True)
    return bool(np.abs(unit.T @ unit - np.eye(3)).max() < 1e-4)
