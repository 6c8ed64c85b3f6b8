"""Every labelled export format, read back by the tools its users load it with."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from PIL import Image

from medgan.core.errors import ExportError
from medgan.export import ExportConfig, SliceSet, export_set
from medgan.export.labelled.names import class_folders, safe_name
from tests.core._export_data import provenance
from tests.core._labelled_data import CLASSES, SEGMENTS, labelled_set

RES = 16


def _sets(n: int = 6, n_real: int = 2) -> tuple[SliceSet, SliceSet]:
    images, labels, masks, _ = labelled_set(n + n_real, RES)
    masks[1] = 0  # an empty mask is still a mask ("nothing segmented")
    keep = np.ones(n, bool)
    keep[n - 1] = False
    syn = SliceSet(
        images[:n], seeds=np.full(n, 3), indices=np.arange(n), labels=labels[:n],
        masks=masks[:n], keep=keep, scores={"realism": np.linspace(0, 1, n)},
        reasons=[""] * (n - 1) + ["rejected for the test"],
    )  # fmt: skip
    real = SliceSet(images[n:], kind="real", labels=labels[n:], masks=masks[n:])
    return syn, real


def _export(tmp_path: Path, fmt: str, **kw: object) -> tuple[Path, SliceSet, SliceSet]:
    syn, real = _sets()
    dest = tmp_path / fmt
    export_set(
        syn, ExportConfig(format=fmt, destination=str(dest), include_real=True), provenance(),
        real=real, class_names=CLASSES, segment_names=SEGMENTS, **kw,  # type: ignore[arg-type]
    )  # fmt: skip
    return dest, syn, real


def _manifest(dest: Path) -> list[dict[str, str]]:
    with open(dest / "manifest.csv", newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _expected(syn: SliceSet, real: SliceSet) -> tuple[list[np.ndarray], list[int], list[str]]:
    kept = syn.kept
    masks = [syn.masks[i] for i in kept] + list(real.masks)  # type: ignore[index]
    labels = [int(syn.labels[i]) for i in kept] + [int(v) for v in real.labels]  # type: ignore[index]
    kinds = ["synthetic"] * len(kept) + ["real"] * len(real)
    return masks, labels, kinds


def test_class_folders_load_as_an_image_folder(tmp_path: Path) -> None:
    dest, syn, real = _export(tmp_path, "imagefolder")
    _, labels, kinds = _expected(syn, real)
    rows = _manifest(dest)
    assert [r["label"] for r in rows] == [CLASSES[k] for k in labels]  # exact names
    assert [r["kind"] for r in rows] == kinds  # the source of every row
    folders = sorted(p.name for p in dest.iterdir() if p.is_dir())
    assert folders == sorted(["dark disc", "bright_disc"])  # "/" sanitised
    # A plain directory walk, as torchvision's ImageFolder does it: class = parent folder.
    table = json.loads((dest / "manifest.json").read_text())["classes"]
    by_folder = {c["folder"]: c["name"] for c in table}
    walked = sorted(
        (str(p.relative_to(dest)), by_folder[p.parent.name]) for p in dest.glob("*/*.png")
    )
    assert walked == sorted((r["file"], r["label"]) for r in rows)
    with Image.open(dest / rows[0]["file"]) as im:
        assert im.mode == "L" and im.size == (RES, RES)
    try:
        from torchvision.datasets import ImageFolder
    except ImportError:
        return
    ds = ImageFolder(str(dest))
    assert len(ds) == len(rows)


def test_png_pairs_hold_the_masks(tmp_path: Path) -> None:
    dest, syn, real = _export(tmp_path, "pairs-png")
    masks, _, _ = _expected(syn, real)
    rows = _manifest(dest)
    assert all(r["mask_file"].startswith("masks/") for r in rows)
    for row, mask in zip(rows, masks, strict=True):
        with Image.open(dest / row["mask_file"]) as im:
            assert im.mode == "L"
            assert np.array_equal(np.asarray(im), mask)
        assert Path(row["file"]).name == Path(row["mask_file"]).name
    document = json.loads((dest / "manifest.json").read_text())
    assert document["segments"] == [{"value": 0, "name": "background"},
                                    {"value": 1, "name": "lesion"}]  # fmt: skip
    assert "synthetic_s3_000005" not in " ".join(r["file"] for r in rows)  # rejected one
    assert document["rejected"][0]["label"] in CLASSES
    readme = (dest / "README.md").read_text()
    assert "Mask values: 0 = background, 1 = lesion" in readme and "`bright/disc`" in readme


@pytest.mark.parametrize("fmt", ["pairs-nifti", "nnunet", "monai"])
def test_nifti_pairs_read_back_with_nibabel(tmp_path: Path, fmt: str) -> None:
    dest, syn, real = _export(tmp_path, fmt)
    masks, _, _ = _expected(syn, real)
    rows = _manifest(dest)
    for row, mask in zip(rows, masks, strict=True):
        image, label = nib.load(dest / row["file"]), nib.load(dest / row["mask_file"])
        assert np.allclose(image.affine, label.affine) and image.shape == label.shape
        assert label.get_data_dtype() == np.uint8
        assert np.array_equal(np.asarray(label.dataobj)[:, :, 0].T, mask)
        assert image.get_data_dtype() == np.float32


def test_nnunet_layout_and_dataset_json(tmp_path: Path) -> None:
    """Checked against nnU-Net v2's documented format (dataset_format.md): nnunetv2 itself
    needs torch, SimpleITK, batchgenerators and more, too heavy for the test environment."""
    dest, syn, real = _export(tmp_path, "nnunet")
    spec = json.loads((dest / "dataset.json").read_text())
    assert set(spec) >= {"channel_names", "labels", "numTraining", "file_ending"}
    assert spec["channel_names"] == {"0": "CT"}
    assert spec["labels"] == {"background": 0, "lesion": 1}
    assert sorted(spec["labels"].values()) == list(range(len(spec["labels"])))  # consecutive
    cases = sorted(p.name[: -len("_0000.nii.gz")] for p in (dest / "imagesTr").iterdir())
    labels = sorted(p.name[: -len(".nii.gz")] for p in (dest / "labelsTr").iterdir())
    assert cases == labels and spec["numTraining"] == len(cases) == len(syn.kept) + len(real)
    assert all(p.name.endswith(spec["file_ending"]) for p in (dest / "imagesTr").iterdir())
    for case in cases:
        values = np.unique(np.asarray(nib.load(dest / "labelsTr" / f"{case}.nii.gz").dataobj))
        assert set(values.tolist()) <= set(spec["labels"].values())


@pytest.mark.filterwarnings("ignore:NvImgCodec:UserWarning")  # MONAI's optional GPU codec
def test_monai_datalist_loads_with_monai(tmp_path: Path) -> None:
    from monai.data import load_decathlon_datalist
    from monai.transforms import LoadImaged

    dest, syn, real = _export(tmp_path, "monai")
    items = load_decathlon_datalist(str(dest / "datalist.json"), is_segmentation=True,
                                    data_list_key="training")  # fmt: skip
    assert len(items) == len(syn.kept) + len(real)
    assert all(os.path.exists(i["image"]) and os.path.exists(i["label"]) for i in items)
    assert {i["source"] for i in items} == {"synthetic", "real"}
    assert {i["class"] for i in items} <= set(CLASSES)
    loaded = LoadImaged(keys=["image", "label"], reader="NibabelReader", image_only=True)(items[0])
    assert tuple(loaded["image"].shape[:2]) == (RES, RES)


def _dicom_errors(path: Path) -> tuple[list[str], list[str]]:
    dump = subprocess.run(["dcmdump", "+E", str(path)], capture_output=True, text=True)
    assert dump.returncode == 0, dump.stderr
    check = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    lines = (check.stdout + check.stderr).splitlines()
    return [ln for ln in dump.stderr.splitlines() if ln.startswith("E:")], [
        ln for ln in lines if ln.lstrip().startswith("Error")
    ]


def test_dicom_seg_references_its_image_and_passes_the_validators(tmp_path: Path) -> None:
    import highdicom as hd
    import pydicom

    dest, syn, real = _export(tmp_path, "dicom")
    masks, labels, _ = _expected(syn, real)
    rows = _manifest(dest)
    assert all(r["mask_file"].endswith("_seg.dcm") for r in rows)
    for row, mask, label in zip(rows, masks, labels, strict=True):
        image = pydicom.dcmread(dest / row["file"])
        seg = hd.seg.segread(dest / row["mask_file"])
        ref = seg.ReferencedSeriesSequence[0].ReferencedInstanceSequence[0]
        assert ref.ReferencedSOPInstanceUID == image.SOPInstanceUID
        assert seg.StudyInstanceUID == image.StudyInstanceUID
        assert seg.PatientID == image.PatientID == "SYNTH0001"
        got = seg.get_pixels_by_source_instance(
            source_sop_instance_uids=[image.SOPInstanceUID], segment_numbers=[1],
            combine_segments=True, skip_overlap_checks=True,
        )  # fmt: skip
        assert np.array_equal(got[0], mask)
        assert f"Class: {CLASSES[label]}." in image.ImageComments
        if row["kind"] == "synthetic":
            assert "SYNTHETIC" in seg.SeriesDescription and "SYNTHETIC" in seg.ContentDescription
            assert "SYNTHETIC" in image.SeriesDescription
    if not shutil.which("dcmdump") or not shutil.which("dciodvfy"):
        pytest.skip("dcmtk / dicom3tools are not installed")
    for name in (rows[0]["file"], rows[0]["mask_file"], rows[1]["mask_file"],
                 rows[-1]["mask_file"]):  # fmt: skip
        dump_errors, iod_errors = _dicom_errors(dest / name)
        assert dump_errors == [] and iod_errors == [], (name, dump_errors, iod_errors)
    lines = subprocess.run(["dciodvfy", str(dest / rows[0]["mask_file"])],
                           capture_output=True, text=True).stderr  # fmt: skip
    assert "Segmentation" in lines


def test_unlabelled_dicom_has_no_seg_and_unchanged_manifest(tmp_path: Path) -> None:
    syn, _ = _sets()
    plain = SliceSet(syn.images, seeds=syn.seeds, indices=syn.indices)
    dest = tmp_path / "plain"
    export_set(plain, ExportConfig(format="dicom", destination=str(dest)), provenance())
    assert not list(dest.glob("*_seg.dcm"))
    header = (dest / "manifest.csv").read_text().splitlines()[0]
    assert "label" not in header and "mask_file" not in header
    assert "classes" not in json.loads((dest / "manifest.json").read_text())


@pytest.mark.parametrize("fmt", ["imagefolder", "pairs-png", "pairs-nifti", "nnunet", "monai"])
def test_labelled_format_for_an_unlabelled_set_is_refused(tmp_path: Path, fmt: str) -> None:
    syn, _ = _sets()
    plain = SliceSet(syn.images, seeds=syn.seeds, indices=syn.indices)
    with pytest.raises(ExportError) as err:
        export_set(plain, ExportConfig(format=fmt, destination=str(tmp_path / "x")),
                   provenance())  # fmt: skip
    assert err.value.advice and "no " in str(err.value)
    assert not (tmp_path / "x").exists() and list(tmp_path.iterdir()) == []


def test_missing_masks_or_labels_refuse_before_writing(tmp_path: Path) -> None:
    syn, real = _sets()
    present = np.ones(len(syn), bool)
    present[2] = False
    partial = SliceSet(syn.images, seeds=syn.seeds, indices=syn.indices, labels=syn.labels,
                       masks=syn.masks, mask_present=present)  # fmt: skip
    with pytest.raises(ExportError, match="1 synthetic slice"):
        export_set(partial, ExportConfig(format="nnunet", destination=str(tmp_path / "a")),
                   provenance(), segment_names=SEGMENTS, class_names=CLASSES)  # fmt: skip
    unlabelled_real = SliceSet(real.images, kind="real")
    with pytest.raises(ExportError, match="real") as err:
        export_set(syn, ExportConfig(format="imagefolder", destination=str(tmp_path / "b"),
                                     include_real=True), provenance(), real=unlabelled_real,
                   class_names=CLASSES, segment_names=SEGMENTS)  # fmt: skip
    assert "include real" in (err.value.advice or "")
    with pytest.raises(ExportError, match="class table"):
        export_set(syn, ExportConfig(format="png", destination=str(tmp_path / "c")),
                   provenance(), class_names=CLASSES[:1], segment_names=SEGMENTS)  # fmt: skip
    assert list(tmp_path.iterdir()) == []
    # A mask missing for one slice is fine for DICOM: that image just gets no SEG.
    export_set(partial, ExportConfig(format="dicom", destination=str(tmp_path / "d")),
               provenance(), segment_names=SEGMENTS, class_names=CLASSES)  # fmt: skip
    rows = _manifest(tmp_path / "d")
    assert [bool(r["mask_file"]) for r in rows] == [True, True, False, True, True, True]


def test_safe_folder_names() -> None:
    assert safe_name("bright/disc") == "bright_disc"
    assert safe_name("..") == "class" and safe_name("") == "class"
    assert safe_name("CON") == "CON_" and safe_name("nul.txt") == "nul.txt_"
    assert safe_name("Hämorrhagie ") == "Hamorrhagie"
    assert safe_name("a" * 300) == "a" * 64
    assert class_folders(["A/B", "A:B", "a_b", "ok"]) == ["A_B", "A_B_2", "a_b_3", "ok"]
