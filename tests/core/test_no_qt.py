"""The core library must never pull in Qt: the GUI is one listener among others."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import medgan


def test_import_medgan_and_all_submodules_loads_no_qt() -> None:
    names = [m.name for m in pkgutil.walk_packages(medgan.__path__, prefix="medgan.")]
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    if name.endswith('__main__'):\n"
        "        continue\n"
        "    importlib.import_module(name)\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
        "('PySide6', 'shiboken6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'ui'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_import_medgan_is_light() -> None:
    """`import medgan` alone must not import torch (the window opens fast)."""
    code = "import sys, medgan; assert 'torch' not in sys.modules and 'monai' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    assert importlib.import_module("medgan").__version__
