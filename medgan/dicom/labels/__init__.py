"""Labels and masks for scanned series: CSV, the user's label file, DICOM SEG, RTSTRUCT, NIfTI.

Each source module turns one kind of file into a :class:`LabelSet` (per-slice class labels and
per-slice masks keyed by series UID and sorted image index, plus a problem per row or mask that
could not be matched); :func:`load_labels` gathers them all for a scan.
"""

from medgan.dicom.labels.csv_file import read_label_csv, write_label_csv
from medgan.dicom.labels.derived import labels_from_masks
from medgan.dicom.labels.load import load_labels, read_mask_file
from medgan.dicom.labels.match import ImageLookup
from medgan.dicom.labels.nifti import read_nifti_mask
from medgan.dicom.labels.records import NO_LABEL, ClassTable, LabelProblem, LabelSet, SeriesMasks
from medgan.dicom.labels.rtstruct import read_rtstruct
from medgan.dicom.labels.seg import read_seg
from medgan.dicom.labels.user_file import (
    UserLabels,
    load_user_labels,
    save_user_labels,
    user_label_path,
)

__all__ = [
    "NO_LABEL", "ClassTable", "ImageLookup", "LabelProblem", "LabelSet", "SeriesMasks", "UserLabels",
    "labels_from_masks", "load_labels", "load_user_labels", "read_label_csv", "read_mask_file",
    "read_nifti_mask", "read_rtstruct", "read_seg", "save_user_labels", "user_label_path",
    "write_label_csv",
]  # fmt: skip
