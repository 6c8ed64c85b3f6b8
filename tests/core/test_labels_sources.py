"""Label sources matched to scanned slices: DICOM SEG (binary, fractional, multi-segment,
subset, by geometry), RTSTRUCT (holes, several contours), NIfTI (oblique, other voxel order,
refusals), CSV with bad rows, and the user's label file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from medgan.dicom.index import scan_folder
from medgan.dicom.labels import (
    ImageLookup,
    LabelSet,
    UserLabels,
    load_labels,
    load_user_labels,
    read_label_csv,
    read_nifti_mask,
    read_rtstruct,
    read_seg,
    save_user_labels,
    user_label_path,
    write_label_csv,
)
from tests.dicom_factory import (
    series_affine_lps,
    slice_positions,
    write_nifti_mask,
    write_rtstruct,
    write_seg,
    write_series,
)


def _ct(directory: Path, **kwargs: object) -> list[Path]:
    """A series with one frame of reference (the factory gives each file its own)."""
    kwargs.setdefault("extra_tags", {"FrameOfReferenceUID": generate_uid()})
    return write_series(directory, **kwargs)  # type: ignore[arg-type]


def _lookup(root: Path) -> tuple[ImageLookup, object]:
    scan = scan_folder(root)
    return ImageLookup(scan.series, scan.root), scan


def _squares(n: int, rows: int = 32, cols: int = 32) -> np.ndarray:
    masks = np.zeros((n, rows, cols), np.uint8)
    masks[1, 4:11, 4:11] = 1
    masks[3, 20:26, 18:30] = 2
    masks[4, 4:11, 4:11] = 1
    masks[4, 20:26, 18:30] = 2
    return masks


def test_multi_segment_binary_seg_is_listed_under_its_series_and_matched(tmp_path: Path) -> None:
    paths = _ct(tmp_path / "ct", n=6)
    masks = _squares(6)
    write_seg(tmp_path / "seg" / "s.dcm", paths, masks, segment_labels=("bleed", "tumour"))
    scan = scan_folder(tmp_path)
    (series,) = scan.series
    (obj,) = scan.label_objects_for(series.series_uid)
    assert obj.kind == "SEG" and obj.segments == ("bleed", "tumour")
    labels = load_labels(scan, min_area=5)
    assert labels.problems == []
    assert labels.segment_names() == ["bleed", "tumour"]
    for k in range(6):
        np.testing.assert_array_equal(labels.mask_for(series.series_uid, k), masks[k])
    got = labels.labels[series.series_uid]
    assert got == {0: "none", 1: "bleed", 2: "none", 3: "tumour", 4: "tumour", 5: "none"}
    assert labels.mask_counts(series.series_uid) == {"bleed": 2, "tumour": 2}


def test_fractional_seg_counts_from_half_the_maximum(tmp_path: Path) -> None:
    paths = _ct(tmp_path / "ct", n=4)
    frac = np.zeros((4, 32, 32, 1), np.float32)
    frac[2, 5:15, 5:15, 0] = 0.8
    frac[2, 20:30, 20:30, 0] = 0.3  # below one half: outside
    write_seg(tmp_path / "s.dcm", paths, frac, fractional=True)
    lookup, _ = _lookup(tmp_path)
    result = read_seg(tmp_path / "s.dcm", lookup)
    (masks,) = next(iter(result.masks.values()))
    assert masks.masks[2].sum() == 100 and masks.masks[2][5:15, 5:15].all()
    assert not masks.masks[0].any()


def test_seg_over_a_subset_of_slices_and_matched_by_geometry(tmp_path: Path) -> None:
    paths = _ct(tmp_path / "ct", n=8)
    sub = np.zeros((3, 32, 32), np.uint8)
    sub[1, 8:16, 8:16] = 1
    write_seg(tmp_path / "a.dcm", paths[2:5], sub)
    write_seg(tmp_path / "b.dcm", paths[5:8], sub, strip_references=True)
    lookup, scan = _lookup(tmp_path)
    uid = scan.series[0].series_uid  # type: ignore[attr-defined]
    by_sop = read_seg(tmp_path / "a.dcm", lookup)
    assert sorted(by_sop.masked_indices(uid)) == [2, 3, 4] and by_sop.masks[uid][0].masks[3].any()
    by_plane = read_seg(tmp_path / "b.dcm", lookup)
    assert by_plane.problems == []
    assert sorted(by_plane.masked_indices(uid)) == [5, 6, 7]
    assert by_plane.masks[uid][0].masks[6][8:16, 8:16].all()


def test_unmatched_and_unsupported_segs_are_problems_not_errors(tmp_path: Path) -> None:
    import highdicom as hd

    paths = _ct(tmp_path / "ct", n=4)
    other = _ct(tmp_path / "elsewhere", n=4, seed=3)
    write_seg(tmp_path / "orphan" / "o.dcm", other, np.ones((4, 32, 32), np.uint8))
    lookup = ImageLookup(scan_folder(tmp_path / "ct").series)
    result = read_seg(tmp_path / "orphan" / "o.dcm", lookup)
    assert result.masks == {} and any("matches no scanned" in p.reason for p in result.problems)
    assert all(p.source.endswith("o.dcm") for p in result.problems)
    datasets = [pydicom.dcmread(p) for p in paths]
    labelmap = hd.seg.Segmentation(
        source_images=datasets, pixel_array=np.ones((4, 32, 32), np.uint8),
        segmentation_type="LABELMAP",
        segment_descriptions=[hd.seg.SegmentDescription(
            1, "x", hd.sr.CodedConcept("49755003", "SCT", "Morphologically Abnormal Structure"),
            hd.sr.CodedConcept("52988006", "SCT", "Lesion"), "MANUAL")],
        series_instance_uid=hd.UID(), series_number=5, sop_instance_uid=hd.UID(),
        instance_number=1, manufacturer="x", manufacturer_model_name="x",
        software_versions="0", device_serial_number="0",
    )  # fmt: skip
    labelmap.save_as(tmp_path / "lm.dcm")
    refused = read_seg(tmp_path / "lm.dcm", lookup)
    assert refused.masks == {} and "LABELMAP is not supported" in refused.problems[0].reason
    (tmp_path / "junk.dcm").write_bytes(b"\0" * 200)
    assert "not a readable" in read_seg(tmp_path / "junk.dcm", lookup).problems[0].reason


def test_rtstruct_holes_and_several_contours_per_slice(tmp_path: Path) -> None:
    paths = _ct(tmp_path / "ct", n=5)
    outer = np.array([[4, 4], [4, 26], [26, 26], [26, 4]])
    hole = np.array([[11, 11], [11, 19], [19, 19], [19, 11]])
    spot = np.array([[28, 1], [28, 6], [31, 6], [31, 1]])
    rois = {
        "ring": {2: [outer, hole, spot]},
        "dot": {4: [np.array([[2, 2], [2, 8], [8, 8], [8, 2]])]},
    }
    write_rtstruct(tmp_path / "rt" / "rs.dcm", paths, rois)
    write_rtstruct(tmp_path / "rt2" / "rs.dcm", paths, rois, reference_images=False)
    scan = scan_folder(tmp_path / "ct")
    lookup = ImageLookup(scan.series)
    uid = scan.series[0].series_uid
    for path in (tmp_path / "rt" / "rs.dcm", tmp_path / "rt2" / "rs.dcm"):
        result = read_rtstruct(path, lookup)
        assert result.problems == []
        (m,) = result.masks[uid]
        assert m.segments == ["ring", "dot"] and sorted(m.masks) == [2, 4]
        ring = m.masks[2]
        assert ring[6, 6] == 1 and ring[24, 15] == 1  # inside the outer contour
        assert ring[15, 15] == 0 and ring[13:18, 13:18].sum() == 0  # the hole
        assert ring[29, 3] == 1  # a separate contour on the same slice
        assert ring[0, 0] == 0 and ring[28, 15] == 0
        assert m.masks[4][5, 5] == 2 and m.masks[4][20, 20] == 0
    full = scan_folder(tmp_path)
    assert {o.kind for o in full.label_objects_for(full.series[0].series_uid)} == {"RTSTRUCT"}


def _oblique(tmp_path: Path, n: int = 5) -> tuple[list[Path], tuple[float, ...]]:
    a, b = np.deg2rad(30.0), np.deg2rad(20.0)
    iop = (np.cos(a), np.sin(a), 0.0, -np.sin(a) * np.cos(b), np.cos(a) * np.cos(b), np.sin(b))
    iop = tuple(round(v, 6) for v in iop)
    positions = slice_positions(n, orientation=iop, spacing=3.0, origin=(10.0, -20.0, 5.0))
    paths = _ct(
        tmp_path / "ct", n=n, rows=20, cols=24, orientation=iop, positions=positions,
        pixel_spacing=(0.8, 0.7),
    )  # fmt: skip
    return paths, iop


def test_nifti_on_an_oblique_series_matches_voxel_by_voxel_at_world_points(tmp_path: Path) -> None:
    paths, _ = _oblique(tmp_path)
    affine = series_affine_lps(paths)
    rng = np.random.default_rng(0)
    vol = rng.integers(0, 3, size=(24, 20, 5)).astype(np.uint8)  # (col i, row j, slice k)
    write_nifti_mask(tmp_path / "m.nii.gz", vol, affine)
    scan = scan_folder(tmp_path / "ct")
    s = scan.series[0]
    result = read_nifti_mask(tmp_path / "m.nii.gz", ImageLookup(scan.series))
    assert result.problems == []
    (m,) = result.masks[s.series_uid]
    assert m.segments == ["label 1", "label 2"]
    inv = np.linalg.inv(affine)
    for k, ref in enumerate(s.images):
        origin = np.asarray(ref.position)
        row_dir, col_dir = np.asarray(s.orientation[:3]), np.asarray(s.orientation[3:])
        for r, c in [(0, 0), (19, 23), (7, 11), (13, 2)]:
            world = origin + c * 0.7 * row_dir + r * 0.8 * col_dir  # a known world point
            i, j, kk = np.rint(inv[:3, :3] @ world + inv[:3, 3]).astype(int)
            assert m.masks[k][r, c] == vol[i, j, kk]
        np.testing.assert_array_equal(m.masks[k], vol[:, :, k].T)


def test_nifti_in_another_voxel_order_gives_the_same_masks(tmp_path: Path) -> None:
    paths, _ = _oblique(tmp_path)
    affine = series_affine_lps(paths)
    vol = np.random.default_rng(1).integers(0, 2, size=(24, 20, 5)).astype(np.uint8)
    # Stored as (slice reversed, col, row): new[a, b, c] = vol[b, c, 4 - a].
    other = np.transpose(vol, (2, 0, 1))[::-1].copy()
    m = np.array([[0, 1, 0, 0], [0, 0, 1, 0], [-1, 0, 0, 4], [0, 0, 0, 1]], float)
    write_nifti_mask(tmp_path / "a.nii.gz", vol, affine)
    write_nifti_mask(tmp_path / "b.nii", other, affine @ m)
    lookup = ImageLookup(scan_folder(tmp_path / "ct").series)
    a = read_nifti_mask(tmp_path / "a.nii.gz", lookup)
    b = read_nifti_mask(tmp_path / "b.nii", lookup)
    (uid,) = a.masks
    for k in range(5):
        np.testing.assert_array_equal(a.masks[uid][0].masks[k], b.masks[uid][0].masks[k])


def test_nifti_that_does_not_overlap_or_is_not_parallel_is_refused(tmp_path: Path) -> None:
    paths, _ = _oblique(tmp_path)
    affine = series_affine_lps(paths)
    vol = np.ones((24, 20, 5), np.uint8)
    far = affine.copy()
    far[:3, 3] += 1000.0
    write_nifti_mask(tmp_path / "far.nii.gz", vol, far)
    rot = np.eye(4)
    t = np.deg2rad(45.0)
    rot[:3, :3] = [[1, 0, 0], [0, np.cos(t), -np.sin(t)], [0, np.sin(t), np.cos(t)]]
    write_nifti_mask(tmp_path / "tilted.nii.gz", vol, affine @ rot)
    lookup = ImageLookup(scan_folder(tmp_path / "ct").series)
    far_result = read_nifti_mask(tmp_path / "far.nii.gz", lookup)
    assert far_result.masks == {} and "does not overlap" in far_result.problems[0].reason
    tilted = read_nifti_mask(tmp_path / "tilted.nii.gz", lookup)
    assert tilted.masks == {} and "not parallel" in tilted.problems[0].reason
    # Found in the folder by the scan, refused there too, and the scan goes on.
    scan = scan_folder(tmp_path)
    labels = load_labels(scan)
    assert sorted(Path(p.source).name for p in labels.problems) == ["far.nii.gz", "tilted.nii.gz"]


def test_csv_with_bad_rows_lists_each_and_keeps_the_rest(tmp_path: Path) -> None:
    a = _ct(tmp_path / "ct" / "a", n=4)
    b = _ct(tmp_path / "ct" / "b", n=3, seed=2)
    sops = [str(pydicom.dcmread(p).SOPInstanceUID) for p in a]
    series_b = str(pydicom.dcmread(b[0]).SeriesInstanceUID)
    rel = b[1].relative_to(tmp_path / "ct")
    (tmp_path / "labels.csv").write_text(
        "SOPInstanceUID,label\n"
        f"{sops[0]},bleed\n"
        "1.2.3.4.5.6,bleed\n"  # unknown key
        f"{sops[1]},\n"  # empty label
        f"{sops[2]},bleed\n"
        f"{sops[2]},normal\n"  # conflicting duplicate
        f"{sops[3]},normal\n"
        f"{sops[3]},normal\n"  # duplicate, same label: fine
        ",normal\n",  # no key
    )
    (tmp_path / "series.csv").write_text(f"series_instance_uid;label\n{series_b};normal\nnope;x\n")
    (tmp_path / "paths.csv").write_text(f"path,label,frame\n{rel},tumour,\n{rel},tumour,x\n")
    scan = scan_folder(tmp_path / "ct")
    lookup = ImageLookup(scan.series, scan.root)
    result = read_label_csv(tmp_path / "labels.csv", lookup)
    rows = {p.row: p.reason for p in result.problems}
    assert set(rows) == {3, 4, 6, 9}
    assert "unknown sop_instance_uid" in rows[3] and "empty label" in rows[4]
    assert "conflicting" in rows[6] and "no key" in rows[9]
    uid_a = scan.series_by_uid(str(pydicom.dcmread(a[0]).SeriesInstanceUID)).series_uid
    assert result.labels[uid_a] == {0: "bleed", 3: "normal"}
    by_series = read_label_csv(tmp_path / "series.csv", lookup)
    assert by_series.labels[series_b] == {0: "normal", 1: "normal", 2: "normal"}
    assert [p.row for p in by_series.problems] == [3]
    by_path = read_label_csv(tmp_path / "paths.csv", lookup)
    assert by_path.labels[series_b] == {1: "tumour"} and "frame" in by_path.problems[0].reason
    (tmp_path / "bad.csv").write_text("name,value\nx,y\n")
    assert (
        "needs a 'label' column" in read_label_csv(tmp_path / "bad.csv", lookup).problems[0].reason
    )


def test_user_labels_live_outside_the_folder_and_round_trip_through_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MEDGAN_CONFIG_DIR", str(tmp_path / "config"))
    _ct(tmp_path / "ct", n=6)
    scan = scan_folder(tmp_path / "ct")
    uid = scan.series[0].series_uid
    user = UserLabels()
    user.set_series(uid, "normal")
    user.set_range(uid, 4, 2, "bleed")
    path = user_label_path(tmp_path / "ct")
    assert tmp_path / "config" in path.parents and tmp_path / "ct" not in path.parents
    save_user_labels(path, user)
    again = load_user_labels(path).to_label_set(scan.series)
    assert again.labels[uid] == {0: "normal", 1: "normal", 2: "bleed", 3: "bleed", 4: "bleed",
                                 5: "normal"}  # fmt: skip
    write_label_csv(tmp_path / "out.csv", again, scan.series)
    back = read_label_csv(tmp_path / "out.csv", ImageLookup(scan.series))
    assert back.labels == again.labels and back.problems == []
    imported = UserLabels.from_label_set(back)
    assert imported.to_label_set(scan.series).labels == again.labels
    assert sorted(p.name for p in (tmp_path / "ct").iterdir()) == sorted(
        p.name for p in (tmp_path / "ct").iterdir() if p.suffix != ".json"
    )
    merged = LabelSet()
    merged.update(load_labels(scan, user=load_user_labels(path)))
    assert merged.label_counts(uid) == {"normal": 3, "bleed": 3}


def test_seg_over_a_multi_frame_source_matches_each_frame(tmp_path: Path) -> None:
    (path,) = _ct(tmp_path / "mf", n=5, multiframe=True, enhanced=True)
    masks = np.zeros((5, 32, 32), np.uint8)
    masks[2, 5:10, 5:10] = 1
    masks[4, 1:3, 1:3] = 1
    write_seg(tmp_path / "seg.dcm", [path], masks)
    scan = scan_folder(tmp_path)
    (series,) = scan.series
    assert [ref.frame for ref in series.images] == [0, 1, 2, 3, 4]
    labels = load_labels(scan, min_area=1)
    assert labels.problems == []
    got = labels.masks[series.series_uid][0].masks
    assert {i: int(m.sum()) for i, m in got.items()} == {0: 0, 1: 0, 2: 25, 3: 0, 4: 4}
