"""Export curated synthetic slices: one writer per format, a manifest, atomic folders.

Entry point: :func:`export_set` (``medgan.export.run``). Writers and the manifest work on
plain arrays (:class:`SliceSet`) and model facts (:class:`Provenance`), never on DICOM headers,
so nothing identifying can reach an export.
"""

from __future__ import annotations

from medgan.export.adapters import (
    provenance_from_model,
    real_from_training,
    synthetic_from_engine,
)
from medgan.export.atomic import check_destination
from medgan.export.config import ALL_FORMATS, FORMATS, LABELLED_FORMATS, ExportConfig
from medgan.export.items import Provenance, SliceSet, to_modality
from medgan.export.run import ExportResult, export_set

__all__ = [
    "ALL_FORMATS",
    "FORMATS",
    "LABELLED_FORMATS",
    "ExportConfig",
    "ExportResult",
    "Provenance",
    "SliceSet",
    "check_destination",
    "export_set",
    "provenance_from_model",
    "real_from_training",
    "synthetic_from_engine",
    "to_modality",
]
