"""``medgan scan``: the printed tree, the JSON contract, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from medgan.cli import main as cli_main

_SERIES_KEYS = {
    "series_uid": str, "study_uid": str, "modality": str, "description": str, "rows": int,
    "cols": int, "n_images": int, "files": list, "spacing": (list, type(None)),
    "trainable": bool, "reason": (str, type(None)),
}  # fmt: skip


def test_json_contract(messy_folder, tmp_path, capsys):
    root, expected = messy_folder
    out = tmp_path / "scan.json"
    assert cli_main(["scan", str(root), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {"series", "problems", "skipped_non_dicom"} <= set(doc)
    assert doc["skipped_non_dicom"] == expected["non_dicom"]
    assert {s["series_uid"] for s in doc["series"]} == expected["series"]
    for s in doc["series"]:
        for key, kind in _SERIES_KEYS.items():
            assert isinstance(s[key], kind), key
        assert s["n_images"] >= len(s["files"]) >= 1
        assert all(os.path.isabs(f) and Path(f).is_file() for f in s["files"])
        assert s["spacing"] == [0.5, 0.5, 2.5]
        assert s["trainable"] is True and s["reason"] is None
    assert [set(p) for p in doc["problems"]] == [{"path", "reason"}]
    assert doc["problems"][0]["path"].endswith("cut.dcm")
    n_files = sum(len(s["files"]) for s in doc["series"])
    n_files += len(doc["problems"]) + len(doc["skipped_non_image"]) + doc["skipped_non_dicom"]
    assert n_files == expected["n_files"] == doc["n_files"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    text = capsys.readouterr().out
    assert "3 series" in text and "cut.dcm" in text and "truncated" in text


def test_json_to_stdout_and_relative_paths(messy_folder, capsys, monkeypatch):
    root, _ = messy_folder
    monkeypatch.chdir(root.parent)
    assert cli_main(["scan", root.name, "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    files = [f for s in doc["series"] for f in s["files"]]
    assert files and all(f.startswith(root.name + os.sep) for f in files)


def test_untrainable_series_has_a_reason(tmp_path, capsys):
    from tests.dicom_factory import write_series

    write_series(tmp_path, n=2, rows=8, cols=8)
    assert cli_main(["scan", str(tmp_path), "--json", "-"]) == 0
    (series,) = json.loads(capsys.readouterr().out)["series"]
    assert series["trainable"] is False and "8×8" in series["reason"]


@pytest.mark.parametrize("case", ["missing", "empty", "no_dicom"])
def test_bad_folders_exit_1_with_a_message(tmp_path, capsys, case):
    target = tmp_path / "x"
    if case != "missing":
        target.mkdir()
    if case == "no_dicom":
        (target / "notes.txt").write_text("hello")
    assert cli_main(["scan", str(target)]) == 1
    err = capsys.readouterr().err
    assert "medgan: error:" in err
    assert {"missing": "does not exist", "empty": "holds no files", "no_dicom": "No DICOM"}[
        case
    ] in err


def test_console_entry_point_runs(messy_folder):
    root, _ = messy_folder
    run = subprocess.run(
        [sys.executable, "-m", "medgan", "scan", str(root), "--quiet"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "Patient " in run.stdout and "Series " in run.stdout


def test_folder_with_only_unusable_dicom_lists_reasons_and_exits_1(tmp_path, capsys):
    from tests.dicom_factory import write_broken_header, write_non_image

    write_non_image(tmp_path / "sr", "SR")
    write_broken_header(tmp_path / "bad.dcm")
    assert cli_main(["scan", str(tmp_path), "--quiet"]) == 1
    captured = capsys.readouterr()
    assert "bad.dcm" in captured.out and "unreadable DICOM header" in captured.out
    assert "no image to train on" in captured.out
    assert "no usable image series" in captured.err
