"""Third-party libraries must not put identifiers into our logs (highdicom logs UIDs at INFO)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pydicom

ROOT = Path(__file__).resolve().parents[2]

_SCRIPT = """
import logging, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stdout)  # a user who turns logging up
from medgan.demo.study import write_demo_study
write_demo_study(sys.argv[1], n_patients=2, slices_per_patient=4, size=48)
"""


def test_writing_seg_files_logs_no_uid(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    run = subprocess.run([sys.executable, "-c", _SCRIPT, str(out)], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)  # fmt: skip
    assert run.returncode == 0, run.stderr[-2000:]
    files = [pydicom.dcmread(p, stop_before_pixels=True) for p in out.rglob("*.dcm")]
    assert any(ds.Modality == "SEG" for ds in files), "the demo study should hold SEG files"
    uids = {str(ds[tag].value) for ds in files
            for tag in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID")}  # fmt: skip
    log = run.stdout + run.stderr
    assert "Demo study written" in log  # our own INFO records do come through
    assert not [u for u in uids if u in log], "a UID reached the log"
