"""Folder scan: accounting for every file, grouping, sorting, geometry warnings, bad input."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pydicom
import pydicom.uid
import pytest
from pydicom.data import get_testdata_file
from pydicom.uid import JPEG2000Lossless, RLELossless

from medgan.core.errors import Cancelled, DicomError
from medgan.dicom import index as index_module
from medgan.dicom.index import scan_folder
from tests.dicom_factory import (
    NON_IMAGE_SOP_CLASSES,
    slice_positions,
    write_broken_header,
    write_dicomdir,
    write_garbage,
    write_no_pixels_image,
    write_non_image,
    write_series,
    write_text_file,
    write_truncated,
    write_zero_byte,
)


def _accounted(result) -> int:
    image_files = sum(len(s.files) for s in result.series)
    return (
        image_files
        + len(result.problems)
        + len(result.skipped_non_image)
        + result.skipped_non_dicom
        + len(result.dicomdir)
    )


def test_messy_folder_accounts_for_every_file(messy_folder):
    root, expected = messy_folder
    result = scan_folder(root)
    assert result.n_files == expected["n_files"]
    assert _accounted(result) == result.n_files
    assert {s.series_uid for s in result.series} == expected["series"]
    assert len(result.problems) == expected["problems"]
    assert "truncated" in result.problems[0].reason
    assert len(result.skipped_non_image) == expected["non_image"]
    assert result.skipped_non_dicom == expected["non_dicom"]
    assert all(p.reason for p in result.problems + result.skipped_non_image)
    # Patient → study → series grouping: two patients, the second with two studies.
    patients = result.patients()
    assert sorted(len(p.studies) for p in patients) == [1, 2]


def test_shuffled_names_sorted_by_position(ct_series):
    result = scan_folder(ct_series[0].parent)
    (series,) = result.series
    assert [ref.path for ref in series.images] == [str(p) for p in ct_series]
    locations = [ref.slice_location for ref in series.images]
    assert locations == sorted(locations)
    assert series.sorted_by == "position"
    assert series.spacing == pytest.approx((0.5, 0.5, 2.5))
    assert series.warnings == []
    assert series.window == (40.0, 400.0)


def test_position_beats_instance_number_and_file_name(tmp_path):
    n = 6
    positions = slice_positions(n)[::-1]  # highest position written first
    paths = write_series(tmp_path, n=n, positions=positions, shuffle_names=False)
    series = scan_folder(tmp_path).series[0]
    # Anatomical order (increasing location) is the reverse of the written order.
    assert [r.path for r in series.images] == [str(p) for p in paths[::-1]]


def test_oblique_orientation(tmp_path):
    angle = np.deg2rad(23)
    orientation = (1.0, 0.0, 0.0, 0.0, float(np.cos(angle)), float(np.sin(angle)))
    positions = slice_positions(7, orientation=orientation, spacing=1.25)
    paths = write_series(tmp_path, n=7, orientation=orientation, positions=positions)
    series = scan_folder(tmp_path).series[0]
    assert [r.path for r in series.images] == [str(p) for p in paths]
    assert series.slice_spacing == pytest.approx(1.25)
    assert series.orientation == pytest.approx(orientation)
    assert not series.warnings


def test_missing_positions_fall_back_to_instance_number(tmp_path):
    numbers = [3, 1, 4, 2, 6, 5]
    paths = write_series(tmp_path, n=6, positions=[None] * 6, instance_numbers=numbers)
    series = scan_folder(tmp_path).series[0]
    expected = [str(p) for _, p in sorted(zip(numbers, paths, strict=True))]
    assert [r.path for r in series.images] == expected
    assert series.sorted_by == "instance number"
    assert series.spacing is None
    assert any("ImagePositionPatient" in w for w in series.warnings)


def test_no_geometry_falls_back_to_natural_file_name(tmp_path):
    for i in (10, 2, 1):  # natural order: 1, 2, 10
        write_series(
            tmp_path,
            n=1,
            orientation=None,
            instance_numbers=[None],
            shuffle_names=False,
            name_prefix=f"slice{i}_",
            series_uid="1.2.3.4.5.6",
            study_uid="1.2.3.4",
        )
    series = scan_folder(tmp_path).series[0]
    assert [Path(r.path).name.split("_")[0] for r in series.images] == [
        "slice1",
        "slice2",
        "slice10",
    ]
    assert series.sorted_by == "file name"
    assert any("file name" in w for w in series.warnings)


def test_duplicate_positions_and_gaps_are_warned(tmp_path):
    pos = slice_positions(8)
    dup = [pos[0], pos[1], pos[1], pos[2], pos[3]]
    write_series(tmp_path / "dup", n=5, positions=dup)
    gap = [pos[0], pos[1], pos[2], pos[5], pos[6]]
    write_series(tmp_path / "gap", n=5, positions=gap)
    irregular = [(0, 0, 0.0), (0, 0, 1.0), (0, 0, 2.3), (0, 0, 3.1), (0, 0, 4.4)]
    write_series(tmp_path / "irr", n=5, positions=irregular)
    result = scan_folder(tmp_path)
    by_dir = {Path(s.files[0]).parent.name: s for s in result.series}
    assert any("duplicate" in w for w in by_dir["dup"].warnings)
    assert by_dir["dup"].n_images == 5
    assert any("gap" in w and "2 slice" in w for w in by_dir["gap"].warnings)
    assert by_dir["gap"].slice_spacing == pytest.approx(2.5)
    assert any("irregular" in w for w in by_dir["irr"].warnings)


def test_mixed_sizes_leave_minority_out_with_reason(tmp_path):
    uid, study = "1.2.826.0.1.3680043.8.498.777", "1.2.826.0.1.3680043.8.498.778"
    big = write_series(
        tmp_path, n=5, rows=32, cols=32, series_uid=uid, study_uid=study, name_prefix="a"
    )
    small = write_series(
        tmp_path, n=2, rows=24, cols=20, series_uid=uid, study_uid=study, name_prefix="b"
    )
    result = scan_folder(tmp_path)
    (series,) = result.series
    assert (series.rows, series.cols, series.n_images) == (32, 32, 5)
    assert series.files == [str(p) for p in big]
    assert {p.path for p in result.problems} == {str(p) for p in small}
    assert all("24×20" in p.reason and "32×32" in p.reason for p in result.problems)
    assert any("mixed image sizes" in w for w in series.warnings)
    assert _accounted(result) == result.n_files == 7


def test_enhanced_multiframe_split_with_per_frame_positions(tmp_path):
    n = 5
    positions = slice_positions(n)[::-1]  # frames stored top-down
    (path,) = write_series(tmp_path, n=n, multiframe=True, enhanced=True, positions=positions)
    series = scan_folder(tmp_path).series[0]
    assert series.n_images == n and series.files == [str(path)]
    assert [r.frame for r in series.images] == [4, 3, 2, 1, 0]
    assert [r.position for r in series.images] == sorted(positions, key=lambda p: p[2])
    assert series.pixel_spacing == (0.5, 0.5)
    assert series.slice_spacing == pytest.approx(2.5)
    assert series.images[0].rescale_intercept == -1024.0


def test_classic_multiframe_keeps_frame_order(tmp_path):
    write_series(tmp_path, n=4, multiframe=True, enhanced=False)
    series = scan_folder(tmp_path).series[0]
    assert [r.frame for r in series.images] == [0, 1, 2, 3]
    assert series.sorted_by == "instance number"


@pytest.mark.parametrize("kind", sorted(NON_IMAGE_SOP_CLASSES))
def test_non_image_objects_are_skipped_not_errors(tmp_path, kind):
    write_series(tmp_path / "img", n=2)
    write_non_image(tmp_path / "obj" / kind, kind)
    result = scan_folder(tmp_path)
    assert result.problems == []
    assert [Path(p.path).name for p in result.skipped_non_image] == [kind]
    assert "no image" in result.skipped_non_image[0].reason


def test_dicomdir_is_not_an_error(tmp_path):
    paths = write_dicomdir(tmp_path / "cd", n=4)
    result = scan_folder(tmp_path / "cd")
    assert result.dicomdir == [str(tmp_path / "cd" / "DICOMDIR")]
    assert result.problems == []
    assert result.series[0].files == [str(p) for p in paths]
    assert _accounted(result) == result.n_files == 5


def test_broken_files_each_get_one_reason(tmp_path):
    good = write_series(tmp_path / "ok", n=3)
    rle = write_series(tmp_path / "rle", n=2, transfer_syntax=RLELossless)
    j2k = write_series(tmp_path / "j2k", n=2, transfer_syntax=JPEG2000Lossless)
    bad = tmp_path / "bad"
    write_truncated(bad / "cut_native.dcm", good[0], keep=0.7)
    write_truncated(bad / "cut_rle.dcm", rle[0], keep=0.8)
    write_truncated(bad / "cut_j2k.dcm", j2k[0], keep=0.9)
    write_truncated(bad / "cut_header.dcm", good[1], keep=0.1)
    write_broken_header(bad / "broken_header.dcm")
    write_no_pixels_image(bad / "no_pixels.dcm")
    write_zero_byte(bad / "zero")
    write_garbage(bad / "garbage.bin")
    write_text_file(bad / "notes.txt")
    result = scan_folder(tmp_path)
    reasons = {Path(p.path).name: p.reason for p in result.problems}
    assert set(reasons) == {
        "cut_native.dcm", "cut_rle.dcm", "cut_j2k.dcm", "cut_header.dcm",
        "broken_header.dcm", "no_pixels.dcm",
    }  # fmt: skip
    assert "truncated" in reasons["cut_native.dcm"]
    assert "truncated" in reasons["cut_rle.dcm"] and "truncated" in reasons["cut_j2k.dcm"]
    assert "pixel data" in reasons["no_pixels.dcm"]
    assert result.skipped_non_dicom == 3
    assert len(result.problems) == len({p.path for p in result.problems})  # one entry per file
    assert _accounted(result) == result.n_files == 16


def test_duplicate_copies_of_an_instance_are_reported(tmp_path):
    paths = write_series(tmp_path / "a", n=3)
    (tmp_path / "b").mkdir()
    shutil.copy(paths[1], tmp_path / "b" / "copy.dcm")
    result = scan_folder(tmp_path)
    assert result.series[0].n_images == 3
    (problem,) = result.problems
    assert problem.path == str(tmp_path / "b" / "copy.dcm") and "duplicate" in problem.reason


def test_pydicom_sample_files_are_all_accounted_for(tmp_path):
    names = [
        "CT_small.dcm", "MR_small.dcm", "MR_small_RLE.dcm", "MR_small_bigendian.dcm",
        "MR_small_implicit.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm",
        "JPGExtended.dcm", "SC_rgb_rle_2frame.dcm", "examples_palette.dcm", "rtplan.dcm",
        "test-SR.dcm", "waveform_ecg.dcm", "MR_truncated.dcm", "no_meta.dcm", "image_dfl.dcm",
    ]  # fmt: skip
    for name in names:
        shutil.copy(get_testdata_file(name), tmp_path / name)
    result = scan_folder(tmp_path)
    assert _accounted(result) == result.n_files == len(names)
    skipped = {Path(p.path).name for p in result.skipped_non_image}
    assert {"rtplan.dcm", "test-SR.dcm", "waveform_ecg.dcm"} <= skipped
    reasons = {Path(p.path).name: p.reason for p in result.problems}
    assert "MR_truncated.dcm" in reasons
    # The MR_small variants are one instance in six encodings: one is used, five are copies.
    mr = [n for n in names if n.startswith("MR_small")]
    assert sum("duplicate copy" in reasons.get(n, "") for n in mr) == len(mr) - 1
    in_series = {Path(f).name for s in result.series for f in s.files}
    assert {"CT_small.dcm", "image_dfl.dcm", "examples_palette.dcm"} <= in_series
    # 12-bit JPEG Extended: decodable only with the optional GPL plugin.
    assert "JPGExtended.dcm" in in_series or "12-bit" in reasons["JPGExtended.dcm"]


def test_progress_reports_monotonic_counts(tmp_path):
    write_series(tmp_path, n=40)
    calls: list[tuple[int, int]] = []
    scan_folder(tmp_path, progress=lambda d, t: calls.append((d, t)), workers=2)
    assert calls[0] == (0, 40) and calls[-1] == (40, 40)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_cancel_stops_within_one_second(tmp_path, monkeypatch):
    write_series(tmp_path, n=60, rows=16, cols=16)
    real = index_module.read_header

    def slow(path):  # ~0.05 s per file: the full scan would take seconds
        time.sleep(0.05)
        return real(path)

    monkeypatch.setattr(index_module, "read_header", slow)
    cancel = threading.Event()
    timer = threading.Timer(0.2, cancel.set)
    timer.start()
    started = time.monotonic()
    with pytest.raises(Cancelled):
        scan_folder(tmp_path, cancel=cancel, workers=2)
    assert time.monotonic() - started < 0.2 + 1.0
    timer.cancel()


def test_empty_and_missing_folders_raise_clear_errors(tmp_path):
    with pytest.raises(DicomError, match="holds no files"):
        scan_folder(tmp_path)
    write_text_file(tmp_path / "readme.txt")
    write_garbage(tmp_path / "x.bin")
    with pytest.raises(DicomError, match="No DICOM files"):
        scan_folder(tmp_path)
    with pytest.raises(DicomError, match="does not exist"):
        scan_folder(tmp_path / "nope")
    with pytest.raises(DicomError, match="not a folder"):
        scan_folder(tmp_path / "readme.txt")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs a non-root POSIX user")
def test_unreadable_folder_raises_and_unreadable_subfolder_is_listed(tmp_path):
    write_series(tmp_path / "ok", n=2)
    locked = tmp_path / "locked"
    write_series(locked, n=2)
    locked.chmod(0)
    try:
        result = scan_folder(tmp_path)
        assert result.unreadable_folders == [str(locked)]
        with pytest.raises(DicomError, match="cannot be read"):
            scan_folder(locked)
    finally:
        locked.chmod(0o755)


def test_relative_root_gives_relative_paths(tmp_path, monkeypatch):
    write_series(tmp_path / "rel", n=2)
    monkeypatch.chdir(tmp_path)
    result = scan_folder("rel")
    assert all(not os.path.isabs(f) and f.startswith("rel") for f in result.series[0].files)


def test_permission_errors_become_clear_messages(tmp_path, monkeypatch):
    """Same as above, but simulated, so it also runs as root (CI containers)."""
    write_series(tmp_path / "ok", n=2)
    write_series(tmp_path / "locked", n=2)
    real_scandir = os.scandir
    locked = str(tmp_path / "locked")

    def fake_scandir(path="."):
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied")
        return real_scandir(path)

    monkeypatch.setattr(index_module.os, "scandir", fake_scandir)
    result = scan_folder(tmp_path)
    assert result.unreadable_folders == [locked]
    assert result.series[0].n_images == 2
    with pytest.raises(DicomError, match="cannot be read.*Permission denied"):
        scan_folder(locked)


def test_radiograph_with_imager_pixel_spacing(tmp_path):
    write_series(tmp_path, n=1, modality="DX", orientation=None, pixel_spacing=None,
                 extra_tags={"ImagerPixelSpacing": [0.2, 0.25]})  # fmt: skip
    series = scan_folder(tmp_path).series[0]
    assert series.pixel_spacing == (0.2, 0.25)


@pytest.mark.parametrize(
    ("sop_class", "is_image"),
    [
        ("1.2.840.10008.5.1.4.1.1.481.1", True),  # RT Image: a radiograph
        ("1.2.840.10008.5.1.4.1.1.481.2", False),  # RT Dose: a dose grid with pixel data
        ("1.2.840.10008.5.1.4.1.1.481.10", False),  # a newer RT object, not an image
        ("1.2.840.10008.5.1.4.1.1.66.4", False),  # Segmentation with pixel data
        ("1.2.840.10008.5.1.4.1.1.128", True),  # PET
    ],
)
def test_sop_class_decides_image_or_not(tmp_path, sop_class, is_image):
    write_series(tmp_path, n=2, extra_tags={"SOPClassUID": sop_class})
    result = scan_folder(tmp_path)
    assert bool(result.series) is is_image
    assert len(result.skipped_non_image) == (0 if is_image else 2)
    assert result.problems == []


def test_names_decoded_with_their_character_set(tmp_path):
    write_series(tmp_path / "a", n=1, patient_name="Müller^Jörg",
                 extra_tags={"SpecificCharacterSet": "ISO_IR 192"})  # fmt: skip
    write_series(tmp_path / "b", n=1, patient_name="Yamada^Tarou=山田^太郎",
                 extra_tags={"SpecificCharacterSet": ["ISO 2022 IR 6", "ISO 2022 IR 87"]})  # fmt: skip
    names = {s.patient_name for s in scan_folder(tmp_path).series}
    assert names == {"Müller^Jörg", "Yamada^Tarou=山田^太郎"}


def test_localizer_in_an_axial_series_is_sorted_as_its_own_plane(tmp_path):
    uid, study = "1.2.826.0.1.3680043.8.498.901", "1.2.826.0.1.3680043.8.498.902"
    axial = write_series(tmp_path, n=5, series_uid=uid, study_uid=study, name_prefix="ax",
                         instance_numbers=[2, 3, 4, 5, 6])  # fmt: skip
    coronal = (1.0, 0.0, 0.0, 0.0, 0.0, -1.0)
    scout = write_series(tmp_path, n=1, series_uid=uid, study_uid=study, name_prefix="loc",
                         orientation=coronal, positions=[(0.0, 5.0, 0.0)],
                         instance_numbers=[1])  # fmt: skip
    series = scan_folder(tmp_path).series[0]
    assert [r.path for r in series.images] == [str(p) for p in axial + scout]
    assert series.sorted_by == "position (per orientation)"
    assert series.slice_spacing == pytest.approx(2.5)
    assert series.orientation == pytest.approx((1, 0, 0, 0, 1, 0))
    assert any("orientations" in w for w in series.warnings)


def test_same_uid_with_different_pixels_is_kept_and_reported(tmp_path):
    paths = write_series(tmp_path / "a", n=3)
    ds = pydicom.dcmread(paths[1])
    arr = ds.pixel_array.copy()
    arr[0, 0] += 7  # one pixel differs: not a copy
    ds.PixelData = arr.tobytes()
    (tmp_path / "b").mkdir()
    ds.save_as(tmp_path / "b" / "edited.dcm")
    result = scan_folder(tmp_path)
    assert result.problems == []
    assert sum(s.n_images for s in result.series) == 4
    (notice,) = result.notices
    assert "UID clash" in notice.reason and "both kept" in notice.reason
    assert any("UID clash" in w for s in result.series for w in s.warnings)
    assert _accounted(result) == result.n_files


def test_images_without_series_uid_are_grouped_and_flagged(tmp_path):
    frame = pydicom.uid.generate_uid()
    study = pydicom.uid.generate_uid()
    tags = {"SeriesInstanceUID": None, "FrameOfReferenceUID": frame}
    write_series(tmp_path / "x", n=4, study_uid=study, extra_tags=tags)
    write_series(tmp_path / "y", n=2, rows=48, cols=48, study_uid=study, extra_tags=tags, seed=1)
    result = scan_folder(tmp_path)
    assert result.problems == []
    assert sorted(s.n_images for s in result.series) == [2, 4]  # split by image size
    for s in result.series:
        assert pydicom.uid.UID(s.series_uid).is_valid
        assert "no SeriesInstanceUID" in s.warnings[0]
    assert len(result.notices) == 6
    again = scan_folder(tmp_path)
    assert [s.series_uid for s in again.series] == [s.series_uid for s in result.series]


def test_files_named_like_dicom_that_are_not_get_their_own_problem(tmp_path):
    write_series(tmp_path / "ok", n=2)
    write_zero_byte(tmp_path / "bad" / "empty.dcm")
    write_garbage(tmp_path / "bad" / "noise.IMA")
    write_text_file(tmp_path / "bad" / "notes.dicom")
    write_garbage(tmp_path / "bad" / "noise.bin")
    result = scan_folder(tmp_path)
    reasons = {Path(p.path).name: p.reason for p in result.problems}
    assert set(reasons) == {"empty.dcm", "noise.IMA", "notes.dicom"}
    assert "zero bytes" in reasons["empty.dcm"]
    assert "not DICOM" in reasons["noise.IMA"] and "not DICOM" in reasons["notes.dicom"]
    assert result.skipped_non_dicom == 1
    assert _accounted(result) == result.n_files
