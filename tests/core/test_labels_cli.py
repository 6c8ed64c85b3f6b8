"""``medgan scan`` / ``medgan labels`` / ``medgan train --labels --masks`` account for every
label and mask; the model file records class names and counts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import generate_uid

from medgan.cli import main
from tests.dicom_factory import write_seg, write_series


@pytest.fixture
def labelled(tmp_path: Path) -> tuple[Path, list[Path]]:
    paths = write_series(tmp_path / "data" / "ct", n=6,
                         extra_tags={"FrameOfReferenceUID": generate_uid()})  # fmt: skip
    masks = np.zeros((6, 32, 32), np.uint8)
    masks[2:4, 8:20, 8:20] = 1
    write_seg(tmp_path / "data" / "seg" / "s.dcm", paths, masks, segment_labels=("lesion",))
    sop = pydicom.dcmread(paths[0]).SOPInstanceUID
    (tmp_path / "extra.csv").write_text(f"sop_instance_uid,label\n{sop},artefact\n9.9.9,x\n")
    return tmp_path, paths


def test_scan_json_lists_labels_and_masks_per_series(labelled, capsys) -> None:  # type: ignore[no-untyped-def]
    root, _ = labelled
    assert main(["scan", str(root / "data"), "--json", "-"]) == 0
    doc = json.loads(capsys.readouterr().out)
    (series,) = doc["series"]
    assert series["labels"] == {"lesion": 2, "none": 4}
    (mask,) = series["masks"]
    assert mask["kind"] == "SEG" and mask["segments"] == ["lesion"] and mask["n_slices"] == 6
    assert mask["slices_per_segment"] == {"lesion": 2}
    assert doc["label_problems"] == [] and "notices" in doc
    for key in ("series_uid", "files", "trainable", "problems", "skipped_non_dicom"):
        assert key in series or key in doc  # the old contract is still there


def test_labels_command_reports_matched_and_unmatched_and_writes_csv(labelled, capsys) -> None:  # type: ignore[no-untyped-def]
    root, paths = labelled
    out = root / "out" / "labels.csv"
    args = ["labels", str(root / "data"), "--labels", str(root / "extra.csv"), "--csv", str(out)]
    assert main([*args, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "labels: artefact 1, lesion 2, none 3" in text
    assert "extra.csv, row 3: unknown sop_instance_uid" in text
    assert "7 labelled slice" not in text and "6 labelled slice(s)" in text
    rows = out.read_text().splitlines()
    assert rows[0] == "sop_instance_uid,frame,label" and len(rows) == 7
    assert f"{pydicom.dcmread(paths[0]).SOPInstanceUID},,artefact" in rows


def test_train_with_labels_and_masks_records_classes_in_the_model(
    labelled, tmp_path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    from medgan.models.modelfile import read_metadata

    root, _ = labelled
    monkeypatch.setenv("MEDGAN_CACHE", str(tmp_path / "cache"))
    seg = root / "data" / "seg" / "s.dcm"
    args = ["train", "--data", str(root / "data"), "--out", str(tmp_path / "m"), "--steps", "2",
            "--batch", "4", "--device", "cpu", "--labels", str(root / "extra.csv"),
            "--masks", str(seg), "--no-auto-labels", "--quality-every", "0"]  # fmt: skip
    assert main(args) == 0, capsys.readouterr().err
    err = capsys.readouterr().err
    # The factory's slices are dark in the default window: the three "none" ones are dropped
    # as empty, the minority-class and masked ones are kept.
    assert "Labels: none 0, artefact 1, lesion 2" in err and "label problem" in err
    summary = read_metadata(tmp_path / "m.safetensors").training_summary
    assert summary["classes"] == ["none", "artefact", "lesion"]
    assert summary["class_counts"]["lesion"] == 2 and summary["segments"] == ["lesion"]
    assert summary["dropped_empty_per_class"] == {"none": 3, "artefact": 0, "lesion": 0}
    blob = (tmp_path / "m.safetensors").read_bytes()
    assert str(root).encode() not in blob and b"extra.csv" not in blob
