"""DICOM series → NIfTI: world geometry checked against known volumes and against dcm2niix."""

from __future__ import annotations

import shutil
import subprocess
import threading
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from medgan.convert.nifti import series_affine, series_to_nifti
from medgan.core.errors import Cancelled, DicomError, ExportError
from medgan.demo.phantom import render_head
from medgan.demo.study import demo_patient, write_demo_study
from medgan.dicom.index import scan_folder
from tests.dicom_factory import write_series

# A linear "phantom" in patient (LPS) millimetres: any misplaced voxel shows up as a big error.
GRADIENT = np.array([7.0, -11.0, 13.0])
ROWS, COLS, N = 20, 24, 9


def _rotation(ax: float, ay: float, az: float) -> np.ndarray:
    ax, ay, az = np.deg2rad([ax, ay, az])
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rz @ ry @ rx


GEOMETRIES = {
    "axial": ((1, 0, 0, 0, 1, 0), None),
    "oblique": (tuple(_rotation(25, -12, 30)[:, :2].T.ravel()), None),
    "sagittal_reversed": ((0, 1, 0, 0, 0, -1), -1),  # slices stacked against the normal
    "gantry_tilt": ((1, 0, 0, 0, 1, 0), "tilt"),
}


def _write_linear_phantom(
    folder: Path, name: str, *, enhanced: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Write the linear phantom on geometry ``name``; return (values, world LPS) per voxel.

    ``enhanced`` writes one Enhanced CT multi-frame file with per-frame positions.
    """
    iop, mode = GEOMETRIES[name]
    row, col = np.asarray(iop[:3], float), np.asarray(iop[3:], float)
    normal = np.cross(row, col)
    d_row, d_col, step = 1.5, 1.25, 3.0
    origin = np.array([-14.0, 9.5, 20.0])
    offsets = np.arange(N, dtype=float) * step
    if mode == -1:
        offsets = offsets[::-1]  # first file is the far end: sorting must reverse it
    positions = origin + offsets[:, None] * normal
    if mode == "tilt":  # each slice also slides along the column direction (sheared stack)
        positions = positions + np.arange(N)[:, None] * 0.8 * col
    i = np.arange(ROWS)[None, :, None, None]
    j = np.arange(COLS)[None, None, :, None]
    world = positions[:, None, None, :] + j * d_col * row + i * d_row * col  # (N, R, C, 3)
    values = np.rint(world @ GRADIENT)
    write_series(
        folder,
        n=N,
        rows=ROWS,
        cols=COLS,
        orientation=iop,
        positions=positions.tolist(),
        pixel_spacing=(d_row, d_col),
        slice_spacing=step,
        pixels=values + 1024.0,
        rescale=(1.0, -1024.0),
        seed=3,
        multiframe=enhanced,
        enhanced=enhanced,
    )
    return values, world


def _voxel_world_lps(img: nib.Nifti1Image) -> tuple[np.ndarray, np.ndarray]:
    """Every voxel's value and its world position in LPS millimetres."""
    data = np.asanyarray(img.dataobj).astype(np.float64)
    idx = np.indices(data.shape).reshape(3, -1).T
    ras = nib.affines.apply_affine(img.affine, idx)
    lps = ras * np.array([-1.0, -1.0, 1.0])
    return data.reshape(-1), lps


@pytest.mark.parametrize("name", list(GEOMETRIES))
def test_round_trip_puts_every_voxel_at_its_world_point(tmp_path: Path, name: str) -> None:
    values, world = _write_linear_phantom(tmp_path / name, name)
    series = scan_folder(tmp_path / name).series[0]
    out = series_to_nifti(series, tmp_path / f"{name}.nii.gz")
    img = nib.load(out)
    assert img.shape == (COLS, ROWS, N)
    assert img.get_data_dtype() == np.int16  # integer HU stored exactly
    got, lps = _voxel_world_lps(img)
    expected = np.rint(lps @ GRADIENT)
    assert np.abs(got - expected).max() <= 1.0  # rounding only; a one-voxel shift is >= 9
    assert sorted(got) == sorted(values.ravel())
    assert img.header.get_xyzt_units()[0] == "mm"
    assert int(img.header["sform_code"]) == 1
    sheared = name == "gantry_tilt"
    assert (int(img.header["qform_code"]) == 0) == sheared
    if not sheared:
        assert np.allclose(img.get_qform(), img.get_sform(), atol=1e-4)


def test_demo_geometry_round_trip_against_the_phantom(tmp_path: Path) -> None:
    folder = write_demo_study(
        tmp_path / "demo", seed=11, n_patients=1, slices_per_patient=5, size=32
    )
    series = scan_folder(folder).series[0]
    img = nib.load(series_to_nifti(series, tmp_path / "demo.nii"))
    patient = demo_patient(11, 0, slices=5, size=32)
    z = np.round(patient.first_z + patient.slice_spacing * np.arange(5), 4)
    hu = np.rint(
        render_head(patient.head, rows=32, cols=32, pixel_spacing=patient.pixel_spacing, slice_z=z)
    )
    got, lps = _voxel_world_lps(img)
    ps = patient.pixel_spacing
    j = np.rint(lps[:, 0] / ps + 15.5).astype(int)
    i = np.rint(lps[:, 1] / ps + 15.5).astype(int)
    k = np.rint((lps[:, 2] - patient.first_z) / patient.slice_spacing).astype(int)
    assert np.array_equal(got, hu[k, i, j])


def _compare_with_dcm2niix(folder: Path, ours: Path, tmp_path: Path) -> int:
    ref_dir = tmp_path / "dcm2niix"
    ref_dir.mkdir()
    run = subprocess.run(
        ["dcm2niix", "-z", "y", "-f", "ref", "-o", str(ref_dir), str(folder)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    refs = sorted(ref_dir.glob("ref*.nii.gz"))
    assert len(refs) == 1, run.stdout
    ref = nib.load(refs[0])
    ref_data = ref.get_fdata()
    got, lps = _voxel_world_lps(nib.load(ours))
    ras = lps * np.array([-1.0, -1.0, 1.0])
    at = np.rint(nib.affines.apply_affine(np.linalg.inv(ref.affine), ras)).astype(int)
    inside = np.all((at >= 0) & (at < np.array(ref_data.shape)), axis=1)
    assert inside.all(), "dcm2niix's volume does not cover the same world points"
    assert np.array_equal(got, ref_data[tuple(at.T)])
    return got.size


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix is not installed")
@pytest.mark.parametrize("name", ["axial", "oblique", "sagittal_reversed"])
def test_convert_matches_dcm2niix_at_the_same_world_points(tmp_path: Path, name: str) -> None:
    folder = tmp_path / "series"
    _write_linear_phantom(folder, name)
    series = scan_folder(folder).series[0]
    ours = series_to_nifti(series, tmp_path / "ours.nii.gz")
    assert _compare_with_dcm2niix(folder, ours, tmp_path) == ROWS * COLS * N


@pytest.mark.skipif(shutil.which("dcm2niix") is None, reason="dcm2niix is not installed")
def test_convert_matches_dcm2niix_with_rescale_to_float(tmp_path: Path) -> None:
    folder = tmp_path / "mr"
    write_series(
        folder,
        n=6,
        rows=18,
        cols=22,
        modality="MR",
        rescale=(0.5, 3.0),
        orientation=(0, 1, 0, 0, 0, -1),
        slice_spacing=4.0,
    )
    series = scan_folder(folder).series[0]
    ours = series_to_nifti(series, tmp_path / "mr.nii.gz")
    img = nib.load(ours)
    assert img.get_data_dtype() == np.float32  # slope 0.5 gives halves
    assert _compare_with_dcm2niix(folder, ours, tmp_path) == 6 * 18 * 22


def test_irregular_spacing_is_refused_with_a_reason(tmp_path: Path) -> None:
    positions = [(0.0, 0.0, z) for z in (0.0, 2.5, 5.0, 10.0, 12.5)]
    write_series(tmp_path / "gap", n=5, positions=positions)
    series = scan_folder(tmp_path / "gap").series[0]
    with pytest.raises(DicomError, match="not evenly spaced"):
        series_affine(series)
    with pytest.raises(DicomError, match="not evenly spaced"):
        series_to_nifti(series, tmp_path / "gap.nii.gz")
    assert not (tmp_path / "gap.nii.gz").exists()


def test_missing_positions_keep_spacing_but_flag_unknown_world(tmp_path: Path) -> None:
    write_series(tmp_path / "nopos", n=4, orientation=None, slice_spacing=2.0)
    series = scan_folder(tmp_path / "nopos").series[0]
    img = nib.load(series_to_nifti(series, tmp_path / "nopos.nii.gz"))
    assert int(img.header["sform_code"]) == 0 and int(img.header["qform_code"]) == 0
    assert img.header.get_zooms()[:2] == pytest.approx((0.5, 0.5))


def test_bad_names_cancel_and_overwrite_leave_nothing_half_written(tmp_path: Path) -> None:
    write_series(tmp_path / "s", n=4)
    series = scan_folder(tmp_path / "s").series[0]
    with pytest.raises(ExportError, match=r"\.nii\.gz"):
        series_to_nifti(series, tmp_path / "volume.nrrd")
    with pytest.raises(ExportError, match="does not exist"):
        series_to_nifti(series, tmp_path / "missing" / "v.nii.gz")
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(Cancelled):
        series_to_nifti(series, tmp_path / "v.nii.gz", cancel=cancel)
    target = tmp_path / "v.nii.gz"
    target.write_bytes(b"precious")
    with pytest.raises(ExportError, match="already exists"):
        series_to_nifti(series, target, overwrite=False)
    assert target.read_bytes() == b"precious"
    calls: list[tuple[int, int]] = []
    series_to_nifti(series, target, progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1] == (4, 4)
    assert nib.load(target).shape == (32, 32, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s", "v.nii.gz"]


def test_enhanced_multiframe_oblique_round_trip(tmp_path: Path) -> None:
    values, _world = _write_linear_phantom(tmp_path / "mf", "oblique", enhanced=True)
    assert len(list((tmp_path / "mf").iterdir())) == 1
    series = scan_folder(tmp_path / "mf").series[0]
    assert series.n_images == N
    img = nib.load(series_to_nifti(series, tmp_path / "mf.nii.gz"))
    got, lps = _voxel_world_lps(img)
    assert np.abs(got - np.rint(lps @ GRADIENT)).max() <= 1.0
    assert sorted(got) == sorted(values.ravel())
