"""Every export format read back by its standard reader; values round-trip to modality units."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from PIL import Image

from medgan.export import FORMATS, ExportConfig, export_set, to_modality
from tests.core._export_data import WINDOW, provenance, real, synthetic


def _export(tmp_path: Path, fmt: str, **cfg: object):
    syn = synthetic(5, keep=[True, True, False, True, True])
    rl = real(3)
    config = ExportConfig(format=fmt, destination=str(tmp_path / fmt), include_real=True, **cfg)  # type: ignore[arg-type]
    result = export_set(syn, config, provenance(), real=rl, durable=False)
    expected = np.concatenate(
        [to_modality(syn.images[[0, 1, 3, 4]], WINDOW), to_modality(rl.images, WINDOW)]
    )
    return result, expected


def _manifest(folder: Path) -> tuple[list[dict[str, str]], dict]:
    with open(folder / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return rows, json.loads((folder / "manifest.json").read_text())


def test_png8_is_windowed_grayscale(tmp_path: Path) -> None:
    result, expected = _export(tmp_path, "png")
    rows, _ = _manifest(result.path)
    lo = WINDOW[0] - WINDOW[1] / 2
    for row, ref in zip(rows, expected, strict=True):
        with Image.open(result.path / row["file"]) as im:
            assert im.mode == "L"
            pixels = np.asarray(im).astype(np.float64)
        assert np.abs(pixels / 255.0 * WINDOW[1] + lo - ref).max() <= WINDOW[1] / 255 / 2 + 1e-3


@pytest.mark.parametrize("fmt", ["png16", "tiff"])
def test_16bit_modality_units_with_offset(tmp_path: Path, fmt: str) -> None:
    result, expected = _export(tmp_path, fmt)
    rows, doc = _manifest(result.path)
    assert doc["export"]["offset"] == 32768 and doc["export"]["bit_mode"] == "modality"
    assert "32768" in (result.path / "README.md").read_text()
    for row, ref in zip(rows, expected, strict=True):
        with Image.open(result.path / row["file"]) as im:
            pixels = np.asarray(im).astype(np.float64)
        assert pixels.shape == ref.shape
        assert np.abs(pixels - 32768 - ref).max() <= 0.5 + 1e-3  # HU to the nearest unit


def test_16bit_windowed_mode(tmp_path: Path) -> None:
    result, expected = _export(tmp_path, "png16", bit_mode="windowed")
    rows, _ = _manifest(result.path)
    with Image.open(result.path / rows[0]["file"]) as im:
        pixels = np.asarray(im).astype(np.float64)
    lo = WINDOW[0] - WINDOW[1] / 2
    assert np.abs(pixels / 65535 * WINDOW[1] + lo - expected[0]).max() < 0.01


def test_npy_stack_in_manifest_order(tmp_path: Path) -> None:
    result, expected = _export(tmp_path, "npy")
    stack = np.load(result.path / "images.npy", allow_pickle=False)
    rows, _ = _manifest(result.path)
    assert stack.dtype == np.float32 and stack.shape == expected.shape
    np.testing.assert_allclose(stack, expected, atol=1e-3)
    assert [int(r["stack_index"]) for r in rows] == list(range(len(expected)))
    assert [r["kind"] for r in rows] == ["synthetic"] * 4 + ["real"] * 3


def test_npz_holds_scores_kinds_and_seeds(tmp_path: Path) -> None:
    result, expected = _export(tmp_path, "npz")
    with np.load(result.path / "images.npz", allow_pickle=False) as data:
        np.testing.assert_allclose(data["images"], expected, atol=1e-3)
        assert list(data["kind"]) == ["synthetic"] * 4 + ["real"] * 3
        assert list(data["index"][:4]) == [0, 1, 3, 4] and data["seed"][0] == 11
        assert np.isnan(data["score_realism"][4:]).all()
        assert np.isfinite(data["score_realism"][:4]).all()


def test_nifti_per_slice_and_stack(tmp_path: Path) -> None:
    result, expected = _export(tmp_path, "nifti")
    rows, _ = _manifest(result.path)
    for row, ref in zip(rows, expected, strict=True):
        img = nib.load(result.path / row["file"])
        assert row["file"].endswith(".nii.gz")
        np.testing.assert_allclose(np.asarray(img.dataobj)[:, :, 0].T, ref, atol=1e-3)
        assert img.header.get_zooms()[:2] == pytest.approx((1.5, 2.0))  # (col, row) spacing
    result, expected = _export(tmp_path, "nifti-stack")
    data = np.asarray(nib.load(result.path / "images.nii.gz").dataobj)
    assert data.shape == (16, 16, len(expected))
    np.testing.assert_allclose(np.moveaxis(data, 2, 0).transpose(0, 2, 1), expected, atol=1e-3)


def test_dicom_rescales_to_hounsfield(tmp_path: Path) -> None:
    result, expected = _export(tmp_path, "dicom")
    rows, _ = _manifest(result.path)
    for row, ref in zip(rows, expected, strict=True):
        assert row["file"].endswith(".dcm")
        ds = pydicom.dcmread(result.path / row["file"])
        hu = ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)
        assert np.abs(hu - ref).max() <= 0.5 * float(ds.RescaleSlope) + 1e-3
        assert ds.RescaleType == "HU" and [float(v) for v in ds.PixelSpacing] == [2.0, 1.5]


def test_manifest_records_everything(tmp_path: Path) -> None:
    result, _ = _export(tmp_path, "png")
    rows, doc = _manifest(result.path)
    files = {p.name for p in result.path.iterdir()}
    assert {"manifest.csv", "manifest.json", "README.md"} <= files
    assert {r["file"] for r in rows} == files - {"manifest.csv", "manifest.json", "README.md"}
    assert rows[0]["kind"] == "synthetic" and rows[0]["seed"] == "11" and rows[0]["index"] == "0"
    assert "score_realism" in rows[0] and rows[0]["score_realism"] != ""
    assert doc["model"]["model_sha256"] == "0123456789abcdef" * 4
    assert doc["recipe"] == "default" and doc["app"]["version"]
    assert doc["created_utc"].endswith("Z")
    assert doc["counts"] == {
        "synthetic_generated": 5,
        "synthetic_exported": 4,
        "synthetic_rejected": 1,
        "real_exported": 3,
    }
    assert doc["rejected"][0]["index"] == 2 and "memorization" in doc["rejected"][0]["reasons"]
    readme = (result.path / "README.md").read_text()
    assert "not for diagnosis" in readme and "synthetic" in readme.lower()


def test_without_real_only_synthetic_is_written(tmp_path: Path) -> None:
    config = ExportConfig(format="png", destination=str(tmp_path / "out"))
    result = export_set(synthetic(3), config, provenance(), real=real(2), durable=False)
    rows, _ = _manifest(result.path)
    assert result.n_real == 0 and {r["kind"] for r in rows} == {"synthetic"} and len(rows) == 3


def test_every_format_is_covered() -> None:
    assert set(FORMATS) == {"png", "png16", "tiff", "npy", "npz", "nifti", "nifti-stack", "dicom"}
