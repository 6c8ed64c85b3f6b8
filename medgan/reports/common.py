"""What every report module shares: the error type and the default file names."""

from __future__ import annotations

from medgan.core.errors import MedganError

# Default report file per kind: next to a model or a utility result JSON, inside an export.
REPORT_NAMES = {
    "model": "{stem}.report.html",
    "export": "report.html",
    "utility": "{stem}.report.html",
}


class ReportError(MedganError):
    """A report cannot be made or written."""
