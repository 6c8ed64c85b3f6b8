"""The demo study: deterministic, valid DICOM, correct geometry, varied anatomy, cached."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import UID

from medgan.core.errors import Cancelled, ExportError
from medgan.demo import study as demo
from medgan.demo.phantom import render_head
from medgan.demo.study import (
    demo_file_names,
    demo_patient,
    ensure_demo_study,
    is_complete,
    write_demo_study,
)

SMALL = {"n_patients": 2, "slices_per_patient": 4, "size": 32}


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The full default demo study, made by ensure_demo_study over an incomplete cache."""
    cache = tmp_path_factory.mktemp("medgan-cache")
    stale = cache / f"demo-v{demo.DEMO_VERSION}"
    (stale / "DEMO01" / "CT_HEAD").mkdir(parents=True)
    (stale / "DEMO01" / "CT_HEAD" / "IM00001.dcm").write_bytes(b"half-written")
    folder = ensure_demo_study(cache)
    assert folder == stale
    return folder


def _read_all(folder: Path) -> list[pydicom.Dataset]:
    return [pydicom.dcmread(p) for p in sorted(folder.rglob("CT_HEAD/*.dcm"))]


def test_full_demo_counts_sizes_and_rescale(demo_cache: Path) -> None:
    files = sorted(demo_cache.rglob("*"))
    files = [f for f in files if f.is_file()]
    assert len(files) == 12 * 56 + 12 + 1  # CT slices, one SEG per series, labels.csv
    assert sorted(str(f.relative_to(demo_cache)) for f in files) == sorted(demo_file_names(12, 56))
    assert not [p for p in demo_cache.parent.iterdir() if p.name.startswith(".")]
    ds = pydicom.dcmread(files[100])
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
    assert ds.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert (ds.Rows, ds.Columns) == (256, 256)
    assert (ds.BitsAllocated, ds.BitsStored, ds.PixelRepresentation) == (16, 16, 1)
    assert ds.pixel_array.dtype == np.int16
    assert float(ds.RescaleSlope) == 1.0 and float(ds.RescaleIntercept) == -1024.0
    assert (float(ds.WindowCenter), float(ds.WindowWidth)) == (40.0, 80.0)
    assert str(ds.PatientName).startswith("DEMO^PATIENT")
    assert "not a real patient" in ds.ImageComments


def test_full_demo_scans_as_twelve_trainable_patients(demo_cache: Path) -> None:
    from medgan.dicom.index import scan_folder

    result = scan_folder(demo_cache)
    assert not result.problems and not result.notices and result.skipped_non_dicom == 1
    assert result.label_files == [str(demo_cache / "labels.csv")]
    assert len(result.patients()) == 12
    assert len(result.series) == 12
    for series in result.series:
        (seg,) = result.label_objects_for(series.series_uid)
        assert seg.kind == "SEG" and seg.segments == ("haemorrhage", "infarct", "tumour", "subdural")
    for series in result.series:
        assert series.trainable, series.reason
        assert series.n_images == 56 and (series.rows, series.cols) == (256, 256)
        assert series.warnings == []
        assert series.slice_spacing == pytest.approx(2.5)


def test_full_demo_files_pass_dcmtk_and_dciodvfy(demo_cache: Path) -> None:
    if not shutil.which("dcmdump") or not shutil.which("dciodvfy"):
        pytest.skip("dcmtk / dicom3tools are not installed")
    sample = [
        demo_cache / f"DEMO{p:02d}" / "CT_HEAD" / f"IM{k:05d}.dcm"
        for p, k in [(1, 1), (2, 28), (3, 56), (4, 9), (5, 40), (6, 17)]
    ]
    for path in sample:
        dump = subprocess.run(["dcmdump", "+E", str(path)], capture_output=True, text=True)
        assert dump.returncode == 0, dump.stderr
        assert not [ln for ln in dump.stderr.splitlines() if ln.startswith("E:")], dump.stderr
        assert "(7fe0,0010) OW" in dump.stdout
        check = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        lines = (check.stdout + check.stderr).splitlines()
        errors = [ln for ln in lines if ln.lstrip().startswith("Error")]
        assert errors == [], "\n".join(errors)
        assert any("CTImage" in ln for ln in lines), lines  # recognised as CT Image
    for p in range(1, 13):
        path = demo_cache / f"DEMO{p:02d}" / "SEG_LESIONS" / "SEG00001.dcm"
        dump = subprocess.run(["dcmdump", "+E", str(path)], capture_output=True, text=True)
        assert dump.returncode == 0 and not [
            ln for ln in dump.stderr.splitlines() if ln.startswith("E:")
        ], dump.stderr
        check = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
        lines = (check.stdout + check.stderr).splitlines()
        assert [ln for ln in lines if ln.lstrip().startswith("Error")] == [], lines
        assert any("Segmentation" in ln for ln in lines), lines


def test_full_demo_ground_truth_labels_every_class(demo_cache: Path) -> None:
    from medgan.dicom.index import scan_folder
    from medgan.dicom.labels import load_labels

    result = scan_folder(demo_cache)
    labels = load_labels(result)
    assert labels.problems == []
    counts = labels.label_counts()
    assert sum(counts.values()) == 12 * 56  # labels.csv labels every slice
    for kind in ("haemorrhage", "infarct", "tumour", "subdural"):
        assert counts[kind] >= 10, counts
    assert counts["none"] > counts["subdural"]
    # The SEG alone gives the same slice labels (derived with the same minimum area).
    seg_only = load_labels(result, auto=False, mask_files=[o.path for o in result.label_objects])
    for uid, per_slice in seg_only.labels.items():
        for index, name in per_slice.items():
            assert labels.labels[uid][index] == name
    assert labels.segment_names() == ["haemorrhage", "infarct", "subdural", "tumour"]


def test_full_demo_anatomy_is_head_ct_in_hu_and_varies(demo_cache: Path) -> None:
    mids = []
    for p in range(1, 13):
        ds = pydicom.dcmread(demo_cache / f"DEMO{p:02d}" / "CT_HEAD" / "IM00028.dcm")
        hu = ds.pixel_array.astype(np.float32) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        corners = np.concatenate([hu[:8, :8].ravel(), hu[-8:, -8:].ravel()])
        assert abs(float(np.median(corners)) + 1000.0) < 15.0  # air
        centre = hu[112:144, 112:144]
        assert 0.0 < float(np.median(centre)) < 60.0  # brain parenchyma
        assert (hu > 700).sum() > 1500  # a skull ring
        brain = hu[(hu > 0) & (hu < 80)]
        assert brain.size > 12000
        mids.append(hu)
    # Different patients: different anatomy, not the same image shifted by noise.
    for a, b in [(0, 1), (2, 3), (4, 5), (6, 11)]:
        inside = (mids[a] > -500) ^ (mids[b] > -500)
        assert inside.sum() > 300


def test_same_seed_gives_byte_identical_files(tmp_path: Path) -> None:
    a = write_demo_study(tmp_path / "a", seed=7, **SMALL)
    b = write_demo_study(tmp_path / "b", seed=7, **SMALL)
    c = write_demo_study(tmp_path / "c", seed=8, **SMALL)
    names = demo_file_names(2, 4)
    assert sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file()) == sorted(names)
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    da, dc = pydicom.dcmread(a / names[0]), pydicom.dcmread(c / names[0])
    assert da.SOPInstanceUID != dc.SOPInstanceUID
    assert not np.array_equal(da.pixel_array, dc.pixel_array)


def test_uids_are_valid_unique_and_grouped(tmp_path: Path) -> None:
    folder = write_demo_study(tmp_path / "d", seed=3, **SMALL)
    datasets = _read_all(folder)
    sops = [ds.SOPInstanceUID for ds in datasets]
    assert len(set(sops)) == len(sops) == 8
    for ds in datasets:
        for uid in (
            ds.SOPInstanceUID,
            ds.StudyInstanceUID,
            ds.SeriesInstanceUID,
            ds.FrameOfReferenceUID,
        ):
            assert UID(uid).is_valid, uid
        assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
    by_patient = {ds.PatientID: (ds.StudyInstanceUID, ds.SeriesInstanceUID) for ds in datasets}
    assert len(by_patient) == 2 and len({v[1] for v in by_patient.values()}) == 2


def test_geometry_matches_the_rendered_phantom(tmp_path: Path) -> None:
    folder = write_demo_study(tmp_path / "g", seed=5, **SMALL)
    patient = demo_patient(5, 1, slices=4, size=32)
    files = sorted((folder / "DEMO02" / "CT_HEAD").glob("*.dcm"))
    datasets = [pydicom.dcmread(f) for f in files]
    # Instance 1 is the top slice; positions climb by the slice spacing from first_z.
    datasets.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))
    assert [int(ds.InstanceNumber) for ds in datasets] == [4, 3, 2, 1]
    z = [float(ds.ImagePositionPatient[2]) for ds in datasets]
    assert np.allclose(np.diff(z), patient.slice_spacing)
    assert z[0] == pytest.approx(patient.first_z)
    ps = patient.pixel_spacing
    for ds in datasets:
        assert [float(v) for v in ds.ImageOrientationPatient] == [1, 0, 0, 0, 1, 0]
        assert [float(v) for v in ds.PixelSpacing] == pytest.approx([ps, ps])
        x0, y0, _ = (float(v) for v in ds.ImagePositionPatient)
        assert x0 == pytest.approx(-15.5 * ps) and y0 == pytest.approx(-15.5 * ps)
        assert float(ds.SliceThickness) == pytest.approx(patient.slice_spacing)
        assert float(ds.SpacingBetweenSlices) == pytest.approx(patient.slice_spacing)
        assert float(ds.SliceLocation) == pytest.approx(float(ds.ImagePositionPatient[2]))
    expected = render_head(patient.head, rows=32, cols=32, pixel_spacing=ps, slice_z=np.asarray(z))
    stored = np.stack([ds.pixel_array for ds in datasets]).astype(np.float32)
    assert np.array_equal(stored - 1024.0, np.rint(expected))


def test_refuses_non_empty_folder_and_leaves_it_alone(tmp_path: Path) -> None:
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(ExportError, match="not an empty folder"):
        write_demo_study(out, **SMALL)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    assert write_demo_study(empty, **SMALL) == empty.absolute()
    assert is_complete(empty, 2, 4)


def test_cancel_leaves_nothing_behind(tmp_path: Path) -> None:
    cancel = threading.Event()
    seen: list[tuple[int, int]] = []

    def progress(done: int, total: int) -> None:
        seen.append((done, total))
        if done == 3:
            cancel.set()

    with pytest.raises(Cancelled):
        write_demo_study(tmp_path / "x", progress=progress, cancel=cancel, **SMALL)
    assert seen[:3] == [(1, 8), (2, 8), (3, 8)]
    assert list(tmp_path.iterdir()) == []


def test_ensure_reuses_a_complete_cache(
    demo_cache: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    before = {p: p.stat().st_mtime_ns for p in demo_cache.rglob("*.dcm")}
    assert ensure_demo_study(demo_cache.parent) == demo_cache
    assert {p: p.stat().st_mtime_ns for p in demo_cache.rglob("*.dcm")} == before
    # $MEDGAN_CACHE picks the cache root when no folder is given.
    root = tmp_path / "env-cache"
    root.mkdir()
    os.symlink(demo_cache, root / demo_cache.name)
    monkeypatch.setenv("MEDGAN_CACHE", str(root))
    assert demo.default_cache_root() == root
    assert ensure_demo_study() == root / demo_cache.name


def test_phantom_lesions_show_at_their_place_with_their_density() -> None:
    from medgan.demo.phantom import HeadParams, Lesion, random_head

    kinds = {les.kind for s in range(40) for les in random_head(np.random.default_rng(s)).lesions}
    assert kinds == {"haemorrhage", "infarct", "tumour", "subdural"}
    bleed = Lesion("haemorrhage", (25.0, -10.0, 20.0), 12.0, 70.0, edema_mm=4.0)
    grid = {"rows": 96, "cols": 96, "pixel_spacing": 2.0, "slice_z": np.array([20.0])}
    clean = render_head(HeadParams(noise_hu=0.0), **grid)[0]
    sick = render_head(HeadParams(noise_hu=0.0, lesions=(bleed,)), **grid)[0]
    # World x = 25 mm (patient left) is column 47.5 + 12.5; y = -10 mm is row 47.5 - 5.
    at = (43, 60)
    assert 60.0 < sick[at] < 80.0 and 15.0 < clean[at] < 45.0
    mirror = (43, 35)  # same place on the right: untouched apart from mass effect
    assert abs(float(sick[mirror]) - float(clean[mirror])) < 15.0
    assert (np.abs(sick - clean) > 20).sum() > 60  # a lesion of ~12 mm radius, not a dot


def test_lesion_mask_agrees_with_the_rendered_lesions() -> None:
    import dataclasses

    from medgan.demo.lesion_masks import lesion_label_volume
    from medgan.demo.params import LESION_KINDS

    grid = {"rows": 96, "cols": 96, "pixel_spacing": 2.4, "slice_z": np.arange(-30.0, 60.0, 6.0)}
    seen = set()
    for index in range(4):  # the demo's first patients: one lesion kind each
        head = demo_patient(0, index, slices=16, size=96).head
        labels = lesion_label_volume(head, **grid)
        sick = render_head(head, **grid)
        clean = render_head(dataclasses.replace(head, lesions=()), **grid)
        diff = np.abs(sick - clean)
        for value in np.unique(labels[labels > 0]):
            inside = labels == value
            seen.add(LESION_KINDS[int(value) - 1])
            # Lesion voxels differ from the lesion-free head; elsewhere only mass effect,
            # oedema and the blur at the edges change a little.
            assert (diff[inside] > 5.0).mean() > 0.75, LESION_KINDS[int(value) - 1]
            assert diff[inside].mean() > 5 * diff[labels == 0].mean()
    assert seen == set(LESION_KINDS)


def test_seg_references_the_source_slices_and_matches_labels_csv(tmp_path: Path) -> None:
    import csv

    import highdicom as hd

    folder = write_demo_study(tmp_path / "s", seed=2, n_patients=2, slices_per_patient=12, size=48)
    cts = {ds.SOPInstanceUID: ds for ds in _read_all(folder)}
    rows = list(csv.DictReader((folder / "labels.csv").open()))
    assert {r["sop_instance_uid"] for r in rows} == set(cts)
    assert {r["label"] for r in rows} <= {"none", "haemorrhage", "infarct", "tumour", "subdural"}
    for p in (1, 2):
        seg = hd.seg.segread(folder / f"DEMO{p:02d}" / "SEG_LESIONS" / "SEG00001.dcm")
        assert [d.segment_label for d in map(seg.get_segment_description, (1, 2, 3, 4))] == [
            "haemorrhage", "infarct", "tumour", "subdural",
        ]  # fmt: skip
        sources = {uid for _, _, uid in seg.get_source_image_uids()}
        assert sources and sources <= set(cts)
        assert seg.FrameOfReferenceUID == next(iter(cts.values())).FrameOfReferenceUID or p == 2
        assert "PatientName" not in seg or str(seg.PatientName).startswith("DEMO^PATIENT")


def test_phantom_has_posterior_fossa_and_inner_structure() -> None:
    """Low slices hold skull-base bone and cerebellum; mid slices more than a flat blob."""
    from medgan.demo.phantom import HeadParams

    head = HeadParams(center=(0.0, 0.0, 20.0))
    grid = {"rows": 96, "cols": 96, "pixel_spacing": 2.5}
    hu = render_head(head, slice_z=np.array([-22.0, 32.0]), **grid)
    low, mid = hu[0], hu[1]
    yy, xx = np.mgrid[:96, :96]
    inside = ((xx - 47.5) * 2.5 / 55.0) ** 2 + ((yy - 47.5) * 2.5 / 70.0) ** 2 < 1.0
    assert (low[inside] > 300).mean() > 0.08  # petrous ridges, clivus, orbital roofs
    assert (mid[inside] > 300).mean() < 0.02
    soft = inside & (mid > -50) & (mid < 100)
    assert (mid[soft] < 15).mean() > 0.03  # ventricles and sulci (CSF)
    assert np.percentile(mid[soft], 90) - np.percentile(mid[soft], 10) > 12.0
