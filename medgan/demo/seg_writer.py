"""Ground truth of the demo study: a DICOM SEG per series and the slice-level labels.csv.

Each series gets one binary Segmentation (highdicom) with one segment per lesion kind
(``LESION_KINDS``), each frame referencing its source CT slice; only frames that show a lesion
are stored (a lesion-free patient's SEG keeps every frame, all empty, so it still says "none").
Everything that highdicom would take from the clock or a random source (dates, UIDs) is
derived from the seed instead, so the same seed gives identical bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from medgan.core.logs import quiet_identifying_loggers
from medgan.demo.params import LESION_KINDS

quiet_identifying_loggers()  # highdicom logs source UIDs at INFO

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

# (code value, meaning) in SNOMED CT, property category "Morphologically Abnormal Structure".
_CODES = {
    "haemorrhage": ("50960005", "Hemorrhage"),
    "infarct": ("55641003", "Infarct"),
    "tumour": ("108369006", "Neoplasm"),
    "subdural": ("35566002", "Hematoma"),
}
MIN_LABEL_AREA = 20  # pixels of a lesion for a slice to be labelled with it in labels.csv


def _descriptions() -> list[Any]:
    import highdicom as hd
    from pydicom.sr.codedict import codes

    out = []
    for number, kind in enumerate(LESION_KINDS, start=1):
        value, meaning = _CODES[kind]
        out.append(
            hd.seg.SegmentDescription(
                segment_number=number,
                segment_label=kind,
                segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
                segmented_property_type=hd.sr.CodedConcept(value, "SCT", meaning),
                algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
            )
        )
    return out


def lesion_seg(
    sources: Sequence[Dataset],
    labels: np.ndarray,
    uid: Callable[..., str],
    *,
    series_number: int = 3,
) -> Dataset:
    """A binary SEG of ``labels`` (n, rows, cols; value k = LESION_KINDS[k-1]) over ``sources``."""
    import highdicom as hd

    first = sources[0]
    empty = not labels.any()
    seg = hd.seg.Segmentation(
        source_images=list(sources),
        pixel_array=labels.astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=_descriptions(),
        series_instance_uid=uid("seg-series"),
        series_number=series_number,
        sop_instance_uid=uid("seg"),
        instance_number=1,
        manufacturer="MedGAN Studio",
        manufacturer_model_name="Procedural head phantom",
        software_versions="medgan-demo",
        device_serial_number="0",
        series_description="Lesion ground truth (synthetic)",
        content_label="LESIONS",
        content_description="Ground truth lesions of the synthetic head phantom",
        content_creator_name="MedGAN^Studio",
        omit_empty_frames=not empty,
    )
    # Clock- and random-derived values, made deterministic.
    for name in ("ContentDate", "SeriesDate", "InstanceCreationDate"):
        if name in seg:
            setattr(seg, name, first.StudyDate)
    for name in ("ContentTime", "SeriesTime", "InstanceCreationTime"):
        if name in seg:
            setattr(seg, name, "092000")
    for item in seg.get("ContributingEquipmentSequence", []):
        if "ContributionDateTime" in item:
            item.ContributionDateTime = f"{first.StudyDate}092000"
    dim_uid = uid("seg-dimension")
    for item in seg.get("DimensionOrganizationSequence", []):
        item.DimensionOrganizationUID = dim_uid
    for item in seg.get("DimensionIndexSequence", []):
        item.DimensionOrganizationUID = dim_uid
    return seg


def slice_labels(labels: np.ndarray) -> list[str]:
    """One class per slice: the lesion kind covering most pixels (≥ MIN_LABEL_AREA), else none."""
    out = []
    for k in range(labels.shape[0]):
        counts = np.bincount(labels[k].ravel(), minlength=len(LESION_KINDS) + 1)[1:]
        out.append(
            LESION_KINDS[int(np.argmax(counts))] if counts.max() >= MIN_LABEL_AREA else "none"
        )
    return out
