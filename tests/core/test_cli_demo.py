"""``medgan demo-data`` and ``medgan convert`` from the command line."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import pytest

from medgan.cli import main
from medgan.dicom.index import scan_folder
from tests.dicom_factory import write_series

SMALL = ["--patients", "2", "--slices", "4", "--size", "64", "--quiet"]


@pytest.fixture
def demo_dir(tmp_path: Path) -> Path:
    out = tmp_path / "demo"
    assert main(["demo-data", str(out), "--seed", "4", *SMALL]) == 0
    return out


def test_demo_data_writes_the_study_and_says_where(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    demo_dir = tmp_path / "study"
    assert main(["demo-data", str(demo_dir), "--seed", "4", *SMALL]) == 0
    out = capsys.readouterr().out
    assert str(demo_dir) in out and "2 patients" in out and "8 CT slices" in out
    files = sorted(demo_dir.rglob("CT_HEAD/*.dcm"))  # plus one lesion SEG per patient
    assert len(files) == 8
    result = scan_folder(demo_dir)
    assert len(result.patients()) == 2
    assert all(s.trainable and (s.rows, s.cols) == (64, 64) for s in result.series)


def test_demo_data_refuses_a_non_empty_folder(
    demo_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.stat().st_mtime_ns for p in demo_dir.rglob("*.dcm"))
    assert main(["demo-data", str(demo_dir), *SMALL]) == 1
    assert "not an empty folder" in capsys.readouterr().err
    assert sorted(p.stat().st_mtime_ns for p in demo_dir.rglob("*.dcm")) == before


def test_demo_data_rejects_bad_counts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["demo-data", str(tmp_path / "x"), "--patients", "0"])
    assert exc.value.code == 2
    assert "at least 1" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_convert_writes_nifti_for_a_series(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    series = scan_folder(demo_dir).series[1]
    out = tmp_path / "vol.nii.gz"
    code = main(
        ["convert", str(demo_dir), "--series", series.series_uid, "--out", str(out), "--quiet"]
    )
    assert code == 0
    assert "Wrote" in capsys.readouterr().out
    img = nib.load(out)
    assert img.shape == (64, 64, 4)
    data = img.get_fdata()
    assert data.min() >= -1024 and data.max() > 700  # HU: air to bone


def test_convert_unknown_uid_lists_the_series(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "vol.nii.gz"
    assert (
        main(["convert", str(demo_dir), "--series", "1.2.3.999", "--out", str(out), "--quiet"]) == 1
    )
    err = capsys.readouterr().err
    assert "No series with UID '1.2.3.999'" in err
    for series in scan_folder(demo_dir).series:
        assert series.series_uid in err
    assert "DEMO^" not in err  # names stay out of the listing
    assert not out.exists()


def test_convert_ambiguous_prefix_and_existing_output(
    demo_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    uids = [s.series_uid for s in scan_folder(demo_dir).series]
    prefix = "1.2.826.0.1.3680043.8.498."
    assert all(u.startswith(prefix) for u in uids)
    out = tmp_path / "v.nii.gz"
    assert main(["convert", str(demo_dir), "--series", prefix, "--out", str(out), "--quiet"]) == 1
    assert "matches 2 series" in capsys.readouterr().err
    out.write_bytes(b"keep")
    assert main(["convert", str(demo_dir), "--series", uids[0], "--out", str(out), "--quiet"]) == 1
    assert "--force" in capsys.readouterr().err and out.read_bytes() == b"keep"
    assert (
        main(
            ["convert", str(demo_dir), "--series", uids[0], "--out", str(out), "--quiet", "--force"]
        )
        == 0
    )
    assert nib.load(out).shape == (64, 64, 4)


def test_convert_refuses_an_unusable_series_with_its_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_series(tmp_path / "tiny", n=3, rows=8, cols=8)
    series = scan_folder(tmp_path / "tiny").series[0]
    assert not series.trainable
    out = tmp_path / "tiny.nii.gz"
    assert (
        main(
            [
                "convert",
                str(tmp_path / "tiny"),
                "--series",
                series.series_uid,
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert "cannot be converted" in err and series.reason in err
    assert not out.exists()


def test_convert_empty_folder_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty").mkdir()
    code = main(
        [
            "convert",
            str(tmp_path / "empty"),
            "--series",
            "1.2",
            "--out",
            str(tmp_path / "v.nii.gz"),
            "--quiet",
        ]
    )
    assert code == 1
    assert "medgan: error:" in capsys.readouterr().err
