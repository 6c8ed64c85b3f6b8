"""Atomic writes: complete at the final name, or nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from medgan.core.fileio import atomic_open, atomic_path, atomic_write_json, atomic_write_text


def test_failure_keeps_the_old_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_open(target, "w", encoding="utf-8") as fh:
        fh.write("half a new file")
        raise RuntimeError("disk pulled")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_success_replaces_and_json_takes_numpy_values(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    atomic_write_text(target, "old")
    atomic_write_json(target, {"n": np.int64(3), "v": np.arange(2, dtype=np.float32)})
    assert json.loads(target.read_text()) == {"n": 3, "v": [0.0, 1.0]}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_atomic_path_keeps_the_nifti_double_suffix(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "vol.nii.gz") as tmp:
        assert tmp.name.endswith(".nii.gz") and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
    assert (tmp_path / "vol.nii.gz").read_bytes() == b"x"
    assert len(list(tmp_path.iterdir())) == 1
