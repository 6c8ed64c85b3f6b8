"""Fixtures for the core tests, built on :mod:`tests.dicom_factory`.

The hashing key is fixed for the test session so ``hash_id`` never touches the user's home
folder; tests of the key file itself override the environment.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from tests.dicom_factory import write_messy_folder, write_series

os.environ.setdefault("MEDGAN_HASH_KEY", "medgan-test-session-key")

#: Marker strings planted in identifying tags by privacy tests; they must never leak.
MARKER_NAME = "Zzmarkername^Qqsecret"
MARKER_ID = "ZZMARKER-ID-4711"


@pytest.fixture
def ct_series(tmp_path: Path) -> list[Path]:
    """Eight 32×32 CT slices, shuffled file names, in anatomical order."""
    return write_series(tmp_path / "ct", n=8)


@pytest.fixture
def messy_folder(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """A nested folder mixing series, compression, multi-frame, broken and non-DICOM files."""
    root = tmp_path / "messy"
    return root, write_messy_folder(root)


@pytest.fixture
def marked_folder(tmp_path: Path) -> Path:
    """A folder whose identifying tags carry :data:`MARKER_NAME` / :data:`MARKER_ID`."""
    root = tmp_path / "marked"
    write_series(
        root / "s1",
        n=4,
        patient_name=MARKER_NAME,
        patient_id=MARKER_ID,
        extra_tags={"InstitutionName": "ZZMARKER-HOSPITAL", "StudyDate": "19991231"},
    )
    write_series(
        root / "s2",
        n=3,
        multiframe=True,
        enhanced=True,
        patient_name=MARKER_NAME,
        patient_id=MARKER_ID,
    )
    (root / "s1" / "truncated.dcm").write_bytes(next((root / "s1").iterdir()).read_bytes()[:1500])
    return root
