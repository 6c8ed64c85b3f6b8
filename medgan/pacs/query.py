"""One search, two protocols: the matching keys of a :class:`FindQuery` and hits built back.

C-FIND and QIDO-RS take the same DICOM attributes (QIDO by keyword in the URL), so both
clients share :func:`match_keys`, :func:`return_keys` and :func:`make_hit`.
"""

from __future__ import annotations

from collections.abc import Callable

from medgan.pacs.records import FindQuery, Hit

STUDY_RETURN = (
    "StudyInstanceUID",
    "PatientName",
    "PatientID",
    "StudyDate",
    "AccessionNumber",
    "StudyDescription",
    "ModalitiesInStudy",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
)
SERIES_RETURN = (
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "PatientName",
    "PatientID",
    "StudyDate",
    "AccessionNumber",
    "SeriesDescription",
    "Modality",
    "NumberOfSeriesRelatedInstances",
)


def _contains(text: str) -> str:
    text = text.strip()
    if not text or "*" in text or "?" in text:
        return text
    return f"*{text}*"


def match_keys(q: FindQuery) -> dict[str, str]:
    """Keyword → matching value for the non-empty search fields."""
    keys: dict[str, str] = {}
    if q.patient_id.strip():
        keys["PatientID"] = q.patient_id.strip()
    if q.patient_name.strip():
        keys["PatientName"] = _contains(q.patient_name)
    if q.accession.strip():
        keys["AccessionNumber"] = q.accession.strip()
    if q.date_range():
        keys["StudyDate"] = q.date_range()
    if q.study_uid.strip():
        keys["StudyInstanceUID"] = q.study_uid.strip()
    if q.series_uid.strip() and q.level == "series":
        keys["SeriesInstanceUID"] = q.series_uid.strip()
    if q.modality.strip():
        keys["ModalitiesInStudy" if q.level == "study" else "Modality"] = q.modality.strip().upper()
    if q.description.strip():
        field = "StudyDescription" if q.level == "study" else "SeriesDescription"
        keys[field] = _contains(q.description)
    return keys


def return_keys(level: str) -> tuple[str, ...]:
    return STUDY_RETURN if level == "study" else SERIES_RETURN


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def make_hit(level: str, get: Callable[[str], str]) -> Hit:
    """A hit from ``get(keyword) -> str`` ('' when absent)."""
    if level == "study":
        return Hit(
            level=level,
            study_uid=get("StudyInstanceUID"),
            patient_name=get("PatientName"),
            patient_id=get("PatientID"),
            study_date=get("StudyDate"),
            accession=get("AccessionNumber"),
            description=get("StudyDescription"),
            modality=get("ModalitiesInStudy"),
            n_series=_int(get("NumberOfStudyRelatedSeries")),
            n_instances=_int(get("NumberOfStudyRelatedInstances")),
        )
    return Hit(
        level=level,
        study_uid=get("StudyInstanceUID"),
        series_uid=get("SeriesInstanceUID"),
        patient_name=get("PatientName"),
        patient_id=get("PatientID"),
        study_date=get("StudyDate"),
        accession=get("AccessionNumber"),
        description=get("SeriesDescription"),
        modality=get("Modality"),
        n_instances=_int(get("NumberOfSeriesRelatedInstances")),
    )


def sort_hits(hits: list[Hit]) -> list[Hit]:
    """Stable order for paging over protocols that do not page (C-FIND)."""
    return sorted(hits, key=lambda h: (h.study_date, h.study_uid, h.series_uid))
