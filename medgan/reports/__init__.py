"""Self-contained HTML reports (figures embedded, no network, no JavaScript) for a model file,
an export folder and a utility result.

- :func:`write_report` (``medgan.reports.write``): target → kind → page → atomic write.
- :func:`~medgan.reports.model_report.model_report_html`: data summary, settings, device and
  versions, losses, D(x)/D(G(z)), augmentation, quality curve, sample grids, timing.
- :func:`~medgan.reports.export_report.export_report_html`: filters, score histograms,
  contact sheet, optional closest synthetic/real pairs, manifest summary, checksums.
- :func:`~medgan.reports.utility_report.utility_report_html`: verdict with its interval,
  protocol, mean ± sd per arm, paired intervals, controls, learning curve, warnings.

Reports are lists of :class:`~medgan.reports.html.Section`; a new kind is one more builder
returning sections, registered in ``REPORT_NAMES``.
"""

from __future__ import annotations

from medgan.reports.write import ReportError, default_output, report_kind, write_report

__all__ = ["ReportError", "default_output", "report_kind", "write_report"]
