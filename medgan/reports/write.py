"""Write a report: pick the kind from the target (a model file, an export folder or a utility
result JSON), build the page and write it atomically. A new kind of report (e.g. a utility study) adds one entry to
``REPORT_NAMES`` (:mod:`medgan.reports.common`) and one builder returning sections (see
:mod:`medgan.reports.html`).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from medgan.core.fileio import atomic_write_text
from medgan.reports.common import REPORT_NAMES, ReportError

log = logging.getLogger(__name__)

__all__ = ["REPORT_NAMES", "ReportError", "default_output", "report_kind", "write_report"]


def report_kind(target: str | os.PathLike[str]) -> str:
    """``"model"`` for a ``.safetensors`` file, ``"export"`` for a folder with a manifest,
    ``"utility"`` for a ``.json`` result of ``medgan utility``."""
    p = Path(target)
    if p.is_dir():
        if (p / "manifest.json").is_file():
            return "export"
        raise ReportError(
            f"{p} is a folder without manifest.json, so it is not a MedGAN Studio export.",
            advice="Give an export folder written by `medgan generate` or the Export page, or "
            "a model file (.safetensors).",
        )
    if p.is_file() and p.suffix == ".safetensors":
        return "model"
    if p.is_file() and p.suffix.lower() == ".json":
        from medgan.reports.utility_report import read_result

        read_result(p)  # a clear message when it is some other JSON
        return "utility"
    if not p.exists():
        raise ReportError(f"{p} does not exist.", advice="Check the path.")
    raise ReportError(
        f"{p} is neither a model file (.safetensors), an export folder nor a utility result "
        "(.json).",
        advice="Give a model file, an export folder or the JSON of `medgan utility --out`.",
    )


def default_output(target: str | os.PathLike[str], kind: str) -> Path:
    """Next to the model or result (``head.report.html``) or inside the export (``report.html``)."""
    p = Path(target)
    if kind in ("model", "utility"):
        return p.with_name(REPORT_NAMES[kind].format(stem=p.stem))
    return p / REPORT_NAMES[kind]


def write_html(page: str, out: str | os.PathLike[str]) -> Path:
    """Write ``page`` atomically; an unwritable destination is a :class:`ReportError`."""
    path = Path(out)
    if path.is_dir():
        raise ReportError(f"{path} is a folder; give a file name such as report.html.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, page)
    except OSError as exc:
        raise ReportError(
            f"Cannot write the report {path}: {exc.strerror or exc}.",
            advice="Choose a writable destination (e.g. --out ~/report.html) and check free "
            "disk space.",
        ) from exc
    log.info("Report written to %s (%d kB)", path, len(page.encode()) // 1024)
    return path


def write_report(
    target: str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    **options: Any,
) -> Path:
    """Build and write the report for a model file, an export folder or a utility result;
    returns its path.

    ``options`` go to the builder: for a model ``fresh_samples``; for an export ``model``
    (path, to show rejected samples and pairs), ``real_images`` and ``show_real_pairs``; a
    utility result takes none.
    """
    kind = report_kind(target)
    if kind == "utility":
        from medgan.reports.utility_report import utility_report_html

        if options:
            raise ReportError(f"A utility report takes no options ({', '.join(options)}).")
        page = utility_report_html(target)
    elif kind == "model":
        from medgan.reports.model_report import model_report_html

        page = model_report_html(target, **options)
    else:
        from medgan.reports.export_report import export_report_html

        page = export_report_html(target, **options)
    return write_html(page, out if out is not None else default_output(target, kind))
