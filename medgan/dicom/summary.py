"""De-identified descriptions of series: hashed identities, sizes and counts, never names."""

from __future__ import annotations

from typing import Any

from medgan.core.privacy import hash_id
from medgan.dicom.records import SeriesRecord


def patient_key(series: SeriesRecord) -> str:
    """The hashed patient identity of a series (ID, or name when the ID is empty)."""
    return hash_id(series.patient_id or series.patient_name)


def series_summary(series: SeriesRecord) -> dict[str, Any]:
    """A de-identified description of a series for manifests and model files.

    Holds modality, image size, spacing, counts, photometric and transfer syntax, and
    hashed patient/study/series ids; never names, IDs, dates, descriptions or institutions.
    """
    spacing = series.spacing
    return {
        "patient": patient_key(series),
        "study": hash_id(series.study_uid),
        "series": hash_id(series.series_uid),
        "modality": series.modality,
        "rows": series.rows,
        "cols": series.cols,
        "n_images": series.n_images,
        "n_files": len(series.files),
        "pixel_spacing": list(series.pixel_spacing) if series.pixel_spacing else None,
        "slice_spacing": series.slice_spacing,
        "spacing": list(spacing) if spacing else None,
        "photometric": series.photometric,
        "transfer_syntax": series.transfer_syntax,
        "trainable": series.trainable,
        "n_warnings": len(series.warnings),
    }
