"""What every report module shares: the error type and the default file names."""

from __future__ import annotations

from medgan.core.errors import MedganError

# Default report file per kind: next to a model, inside an export folder. A utility-study
# report (issue 12) adds its kind here and one builder returning sections.
REPORT_NAMES = {"model": "{stem}.report.html", "export": "report.html"}


class ReportError(MedganError):
    """A report cannot be made or written."""
