"""Privacy: keyed hashes, de-identified summaries, and no identity in logs or scan output."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys

import pytest

from medgan.cli import main as cli_main
from medgan.core import privacy
from medgan.core.privacy import hash_id
from medgan.dicom.decode import load_series
from medgan.dicom.index import scan_folder
from medgan.dicom.report import scan_to_json
from medgan.dicom.summary import series_summary
from tests.core.conftest import MARKER_ID, MARKER_NAME

_MARKERS = (MARKER_NAME, MARKER_ID, "Zzmarkername", "ZZMARKER", "19991231")


def _assert_clean(text: str) -> None:
    for marker in _MARKERS:
        assert marker.lower() not in text.lower(), f"{marker!r} leaked"


def test_hash_id_is_short_stable_and_distinct():
    a = hash_id("PAT-001")
    assert len(a) == 16 and all(c in "0123456789abcdef" for c in a)
    assert hash_id("PAT-001") == a
    assert hash_id("PAT-001  ") == a  # DICOM padding ignored
    assert hash_id("PAT-002") != a
    assert hash_id(None) == hash_id("")


def test_hash_id_is_stable_across_processes_and_keyed(monkeypatch):
    code = "from medgan.core.privacy import hash_id; print(hash_id('PAT-001'))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert run.stdout.strip() == hash_id("PAT-001")
    monkeypatch.setenv("MEDGAN_HASH_KEY", "another installation")
    assert hash_id("PAT-001") != run.stdout.strip()


def test_key_file_is_created_private_and_reused(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDGAN_HASH_KEY", raising=False)
    monkeypatch.setenv("MEDGAN_CONFIG_DIR", str(tmp_path / "cfg"))
    first = hash_id("PAT-001")
    key_file = tmp_path / "cfg" / "hash_key"
    assert key_file.is_file() and len(key_file.read_bytes().strip()) >= 32
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    privacy._key_cache.clear()  # as if a new process started
    assert hash_id("PAT-001") == first
    assert [p.name for p in (tmp_path / "cfg").iterdir()] == ["hash_key"]  # no temp left


def test_series_summary_is_de_identified(marked_folder):
    result = scan_folder(marked_folder)
    for series in result.series:
        summary = series_summary(series)
        text = json.dumps(summary)
        _assert_clean(text)
        assert series.series_uid not in text and series.study_uid not in text
        assert summary["patient"] == hash_id(MARKER_ID)
        assert summary["modality"] == "CT"
        assert (summary["rows"], summary["cols"]) == (32, 32)
        assert summary["n_images"] == series.n_images
        assert summary["spacing"] == pytest.approx([0.5, 0.5, 2.5])


def test_no_identity_in_logs(marked_folder, caplog):
    caplog.set_level(logging.DEBUG)
    result = scan_folder(marked_folder)
    for series in result.series:
        load_series(series)
    assert result.problems  # the truncated file was reported (and logged about)
    assert caplog.records
    _assert_clean("\n".join(r.getMessage() for r in caplog.records))


def test_scan_output_hides_names_by_default(marked_folder, capsys, tmp_path):
    out_json = tmp_path / "scan.json"
    assert cli_main(["-v", "scan", str(marked_folder), "--json", str(out_json)]) == 0
    captured = capsys.readouterr()
    _assert_clean(captured.out + captured.err)
    assert hash_id(MARKER_ID) in captured.out
    _assert_clean(json.dumps(scan_to_json(scan_folder(marked_folder))))
    _assert_clean(out_json.read_text())
    # Names appear only on request.
    assert cli_main(["scan", str(marked_folder), "--show-names", "--quiet"]) == 0
    assert MARKER_NAME in capsys.readouterr().out
