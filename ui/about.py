"""The About box's text: app and library versions, the device, the system."""

from __future__ import annotations

import importlib
import platform
from html import escape
from typing import Any

LIBRARIES = ("PySide6", "pyqtgraph", "numpy", "pydicom")


def about_html(device: str, device_info: dict[str, Any]) -> str:
    """Rich text for Help → About (torch's version comes from the warm-up, never imported here)."""
    versions = {"Python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = str(importlib.import_module(name).__version__)
        except Exception:  # noqa: BLE001 - a version we cannot read is not an error
            versions[name] = "?"
    versions["torch"] = str(device_info.get("torch") or "not loaded yet")
    if device_info.get("monai"):
        versions["MONAI"] = str(device_info["monai"])
    try:
        from importlib.metadata import version

        app_version = version("medgan-studio")
    except Exception:  # noqa: BLE001
        app_version = "dev"
    rows = "".join(f"<tr><td>{escape(k)}&nbsp;&nbsp;</td><td>{escape(v)}</td></tr>"
                   for k, v in versions.items())
    return (f"<h3>MedGAN Studio {escape(app_version)}</h3>"
            "<p>Train 2D GANs on your DICOM slices and export curated synthetic images.</p>"
            f"<p><b>Device:</b> {escape(device or 'probing…')}<br>"
            f"<b>System:</b> {escape(platform.system())} {escape(platform.machine())}</p>"
            f"<table>{rows}</table>")
