"""The README's run command, end to end: a fresh process opens the demo study cleanly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_main_demo_opens_the_demo_study_without_errors(tmp_path: Path) -> None:
    """Generate the demo, warm up and scan at once in a new process: nothing may fail.

    This caught two workers importing pydicom at the same time (a half-initialised module).
    """
    from medgan.demo.study import ensure_demo_study

    ensure_demo_study(tmp_path / "cache")  # cached, as on a second launch: the scan starts at once
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", MEDGAN_CACHE=str(tmp_path / "cache"),
               HOME=str(tmp_path), PYTHONPYCACHEPREFIX=str(tmp_path / "pyc"))  # cold imports
    proc = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), "--demo", "--quit-when-idle"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert summary and summary[-1]["event"] == "idle", proc.stdout
    assert summary[-1]["series"] == 12  # the demo study: 12 patients, one series each
    assert summary[-1]["errors_logged"] == 0, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
