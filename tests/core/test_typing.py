"""mypy on ``medgan/`` and ``ui/`` is clean, with the settings in pyproject.toml's ``[tool.mypy]``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.skipif(importlib.util.find_spec("mypy") is None,
                    reason="mypy is not installed (pip install -e '.[test]')")
def test_mypy_is_clean() -> None:
    # No arguments: the files and options come from pyproject.toml. The cache in .mypy_cache
    # makes repeat runs take seconds; a fresh clone's first run takes tens of seconds.
    proc = subprocess.run([sys.executable, "-m", "mypy"], cwd=REPO, capture_output=True,
                          text=True, timeout=600)
    report = (proc.stdout + proc.stderr).strip()
    assert proc.returncode == 0, f"mypy found problems (run .venv/bin/mypy):\n{report}"
    assert "Success" in report
