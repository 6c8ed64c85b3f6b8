"""Scan results as the ``medgan scan --json`` document and as a readable text tree.

JSON contract (keys may be added, never removed)::

    {"series": [{"series_uid", "study_uid", "modality", "description", "rows", "cols",
                 "n_images", "files": [paths], "spacing": [row, col, slice] | null,
                 "trainable": bool, "reason": str | null,
                 "labels": {class: n_slices}, "masks": [{"path", "kind", "segments",
                 "n_slices", "slices_per_segment"}]}],
     "problems": [{"path", "reason"}], "skipped_non_dicom": int,
     "notices": [{"path", "reason"}], "label_problems": [{"path", "row", "reason"}]}

``labels``/``masks`` come from :func:`medgan.dicom.labels.load_labels` when it is given; SEG
and RTSTRUCT files found by the scan are listed under the series they reference even then.

Patients appear only as keyed hashes; names, IDs and dates are left out unless the caller
asks for them (``show_names``), which only the interactive text output does.
"""

from __future__ import annotations

from typing import Any

from medgan.core.privacy import hash_id
from medgan.dicom.labels.records import LabelSet
from medgan.dicom.records import ScanResult, SeriesRecord
from medgan.dicom.summary import patient_key


def _masks_json(
    series: SeriesRecord, labels: LabelSet | None, result: ScanResult | None
) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for m in labels.masks.get(series.series_uid, []) if labels else []:
        seen.add(m.source)
        out.append(
            {
                "path": m.source,
                "kind": m.kind,
                "segments": list(m.segments),
                "n_slices": len(m.masks),
                "slices_per_segment": m.areas(),
            }
        )
    for obj in result.label_objects_for(series.series_uid) if result else []:
        if obj.path not in seen:  # found by the scan but not (yet) matched
            out.append(
                {"path": obj.path, "kind": obj.kind, "segments": list(obj.segments), "n_slices": 0}
            )
    return out


def series_to_json(
    series: SeriesRecord, labels: LabelSet | None = None, result: ScanResult | None = None
) -> dict[str, Any]:
    """One series in the JSON contract's shape (plus a few extra, non-identifying keys)."""
    spacing = series.spacing
    return {
        "labels": labels.label_counts(series.series_uid) if labels else {},
        "masks": _masks_json(series, labels, result),
        "series_uid": series.series_uid,
        "study_uid": series.study_uid,
        "modality": series.modality,
        "description": series.description,
        "rows": series.rows,
        "cols": series.cols,
        "n_images": series.n_images,
        "files": series.files,
        "spacing": [float(v) for v in spacing] if spacing else None,
        "trainable": bool(series.trainable),
        "reason": series.reason,
        "patient": patient_key(series),
        "series_number": series.series_number,
        "photometric": series.photometric,
        "transfer_syntax": series.transfer_syntax,
        "sorted_by": series.sorted_by,
        "window": list(series.window) if series.window else None,
        "warnings": list(series.warnings),
    }


def scan_to_json(result: ScanResult, labels: LabelSet | None = None) -> dict[str, Any]:
    """The whole scan in the ``medgan scan --json`` contract."""
    return {
        "root": result.root,
        "series": [series_to_json(s, labels, result) for s in result.series],
        "notices": [{"path": p.path, "reason": p.reason} for p in result.notices],
        "label_problems": [
            {"path": p.source, "row": p.row, "reason": p.reason}
            for p in (labels.problems if labels else [])
        ],
        "problems": [{"path": p.path, "reason": p.reason} for p in result.problems],
        "skipped_non_dicom": int(result.skipped_non_dicom),
        "skipped_non_image": [
            {"path": p.path, "reason": p.reason} for p in result.skipped_non_image
        ],
        "dicomdir": list(result.dicomdir),
        "unreadable_folders": list(result.unreadable_folders),
        "n_files": int(result.n_files),
    }


def _size(series: SeriesRecord) -> str:
    spacing = series.spacing
    mm = f", {spacing[0]:.2f}×{spacing[1]:.2f}×{spacing[2]:.2f} mm" if spacing else ""
    return f"{series.rows}×{series.cols}{mm}"


def _label_lines(s: SeriesRecord, labels: LabelSet | None, result: ScanResult) -> list[str]:
    lines = []
    counts = labels.label_counts(s.series_uid) if labels else {}
    if counts:
        text = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"      labels: {text}")
    for m in _masks_json(s, labels, result):
        per = m.get("slices_per_segment") or {}
        detail = ", ".join(f"{k} {v}" for k, v in sorted(per.items())) or "no segment matched"
        lines.append(f"      masks: {m['kind']} {m['path']} ({m['n_slices']} slices: {detail})")
    return lines


def scan_to_text(
    result: ScanResult,
    *,
    show_names: bool = False,
    max_problems: int = 50,
    labels: LabelSet | None = None,
) -> str:
    """A patient → study → series tree, counts and problems, for the terminal."""
    lines: list[str] = []
    for patient in result.patients():
        if show_names:
            label = f"{patient.patient_name or '(no name)'} [{patient.patient_id or 'no ID'}]"
        else:
            label = hash_id(patient.patient_id or patient.patient_name)
        lines.append(f"Patient {label}")
        for study in patient.studies:
            desc = study.description if show_names else ""
            date = f" {study.date}" if show_names and study.date else ""
            lines.append(f"  Study {hash_id(study.study_uid)}{date}{(' ' + desc) if desc else ''}")
            for s in study.series:
                status = "trainable" if s.trainable else f"NOT trainable: {s.reason}"
                number = f"#{s.series_number} " if s.series_number is not None else ""
                lines.append(
                    f"    Series {number}{s.modality} '{s.description}': {s.n_images} images "
                    f"{_size(s)} ({status})"
                )
                lines.append(f"      uid {s.series_uid}")
                lines.extend(f"      warning: {w}" for w in s.warnings)
                lines.extend(_label_lines(s, labels, result))
    n_image_files = sum(len(s.files) for s in result.series)
    lines.append("")
    lines.append(
        f"{result.n_files} files: {n_image_files} image files in {len(result.series)} series, "
        f"{len(result.problems)} problems, {len(result.skipped_non_image)} non-image objects, "
        f"{result.skipped_non_dicom} non-DICOM files"
        + (f", {len(result.dicomdir)} DICOMDIR" if result.dicomdir else "")
    )
    for p in result.skipped_non_image[:max_problems]:
        lines.append(f"  skipped {p.path}: {p.reason}")
    if result.problems:
        lines.append("Problems:")
        for p in result.problems[:max_problems]:
            lines.append(f"  {p.path}: {p.reason}")
        if len(result.problems) > max_problems:
            lines.append(f"  ... and {len(result.problems) - max_problems} more (see --json)")
    if result.notices:
        lines.append("Notices (files used, but check them):")
        lines.extend(f"  {p.path}: {p.reason}" for p in result.notices[:max_problems])
    if labels is not None and labels.problems:
        lines.append("Label problems:")
        lines.extend(f"  {p.text()}" for p in labels.problems[:max_problems])
        if len(labels.problems) > max_problems:
            lines.append(f"  ... and {len(labels.problems) - max_problems} more (see --json)")
    for folder in result.unreadable_folders:
        lines.append(f"  cannot read folder {folder}")
    return "\n".join(lines)
