"""Plain records produced by the folder scan: patients → studies → series → 2D images.

These are the contract between the indexer, the decoder, the training-set builder, the CLI
and the GUI. Fields may be added; none is ever removed or renamed.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ImageRef:
    """One 2D image: a single-frame file, or one frame of a multi-frame object."""

    path: str
    frame: int | None = None  # 0-based frame index in a multi-frame object, else None
    sop_instance_uid: str = ""
    instance_number: int | None = None
    position: tuple[float, float, float] | None = None  # ImagePositionPatient (per frame)
    slice_location: float | None = None  # position projected on the slice normal, in mm
    # Decoding facts gathered by the header pass, so decoding never re-reads headers.
    rows: int = 0
    cols: int = 0
    transfer_syntax: str = ""
    photometric: str = ""
    samples_per_pixel: int = 1
    bits_allocated: int = 0
    bits_stored: int = 0
    pixel_representation: int = 0  # 0 unsigned, 1 signed
    rescale_slope: float = 1.0
    rescale_intercept: float = 0.0
    has_modality_lut: bool = False  # a Modality LUT Sequence replaces slope/intercept
    n_frames: int = 1  # frames in the file this image comes from
    pixel_offset: int | None = None  # byte offset of native (uncompressed) pixel data, else None
    big_endian: bool = False
    orientation: tuple[float, float, float, float, float, float] | None = None


@dataclass(frozen=True)
class Problem:
    """A file that could not be used, with a reason a person can read."""

    path: str
    reason: str


@dataclass
class SeriesRecord:
    """One series, with its images sorted in anatomical order."""

    series_uid: str
    study_uid: str
    patient_id: str  # identifying: show only in the UI, never log or export
    patient_name: str  # identifying: show only in the UI, never log or export
    modality: str = ""
    description: str = ""
    study_description: str = ""
    study_date: str = ""  # identifying: UI only
    series_number: int | None = None
    rows: int = 0
    cols: int = 0
    images: list[ImageRef] = field(default_factory=list)
    pixel_spacing: tuple[float, float] | None = None  # (row, col) mm
    slice_spacing: float | None = None  # mm, median gap between sorted slices
    orientation: tuple[float, float, float, float, float, float] | None = None
    photometric: str = ""
    transfer_syntax: str = ""
    window: tuple[float, float] | None = None  # first (center, width) from the files
    trainable: bool = True
    reason: str | None = None  # why not trainable
    warnings: list[str] = field(default_factory=list)  # gaps, duplicate positions, mixed sizes
    frame_of_reference_uid: str = ""
    sop_class_uid: str = ""
    sorted_by: str = ""  # "position", "position (per orientation)", "instance number", "file name"

    @property
    def n_images(self) -> int:
        return len(self.images)

    @property
    def files(self) -> list[str]:
        """Unique file paths, in image order."""
        return list(dict.fromkeys(ref.path for ref in self.images))

    @property
    def spacing(self) -> tuple[float, float, float] | None:
        """(row, col, slice) spacing in mm, or None when not known."""
        if self.pixel_spacing is None or self.slice_spacing is None:
            return None
        return (self.pixel_spacing[0], self.pixel_spacing[1], self.slice_spacing)


@dataclass
class StudyRecord:
    study_uid: str
    description: str
    date: str
    series: list[SeriesRecord] = field(default_factory=list)


@dataclass
class PatientRecord:
    patient_id: str
    patient_name: str
    studies: list[StudyRecord] = field(default_factory=list)


@dataclass(frozen=True)
class LabelObject:
    """A DICOM SEG or RTSTRUCT found while scanning, and the series it references."""

    path: str
    kind: str  # "SEG" | "RTSTRUCT"
    sop_instance_uid: str = ""
    referenced_series: tuple[str, ...] = ()  # SeriesInstanceUIDs of the source images
    frame_of_reference_uid: str = ""
    segments: tuple[str, ...] = ()  # segment labels / ROI names


@dataclass
class ScanResult:
    """Everything a folder scan found. Every file under the root is accounted for."""

    root: str
    series: list[SeriesRecord] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # DICOM files that cannot be used
    skipped_non_image: list[Problem] = field(default_factory=list)  # SR, RTPLAN, PR, SEG, ...
    skipped_non_dicom: int = 0
    dicomdir: list[str] = field(default_factory=list)  # DICOMDIR index files (not needed)
    unreadable_folders: list[str] = field(default_factory=list)  # sub-folders we may not list
    n_files: int = 0  # regular files seen under root
    # SEG/RTSTRUCT objects (also counted in skipped_non_image) and .csv/.nii(.gz) files
    # (also counted as non-DICOM) that may hold labels or masks for the series.
    label_objects: list[LabelObject] = field(default_factory=list)
    label_files: list[str] = field(default_factory=list)
    # Files that are used but need a look (UID clashes, images grouped without a series UID).
    notices: list[Problem] = field(default_factory=list)

    def label_objects_for(self, series_uid: str) -> list[LabelObject]:
        """SEG/RTSTRUCT objects that reference ``series_uid`` (or, naming none, its frame of
        reference)."""
        try:
            frame = self.series_by_uid(series_uid).frame_of_reference_uid
        except KeyError:
            frame = ""
        return [
            o
            for o in self.label_objects
            if series_uid in o.referenced_series
            or (not o.referenced_series and frame and o.frame_of_reference_uid == frame)
        ]

    def series_by_uid(self, uid: str) -> SeriesRecord:
        for s in self.series:
            if s.series_uid == uid:
                return s
        raise KeyError(uid)

    def patients(self) -> list[PatientRecord]:
        """Group series into patient → study → series, keeping scan order."""
        patients: dict[str, PatientRecord] = {}
        studies: dict[tuple[str, str], StudyRecord] = {}
        for s in self.series:
            p = patients.setdefault(s.patient_id, PatientRecord(s.patient_id, s.patient_name))
            key = (s.patient_id, s.study_uid)
            if key not in studies:
                studies[key] = StudyRecord(s.study_uid, s.study_description, s.study_date)
                p.studies.append(studies[key])
            studies[key].series.append(s)
        return list(patients.values())


@dataclass
class FileHeader:
    """What the header pass learnt about one file."""

    path: str
    kind: str  # image | non_image | dicomdir | non_dicom | problem
    reason: str = ""
    series_uid: str = ""
    study_uid: str = ""
    sop_instance_uid: str = ""
    patient_id: str = ""
    patient_name: str = ""
    modality: str = ""
    series_description: str = ""
    study_description: str = ""
    study_date: str = ""
    series_number: int | None = None
    frame_of_reference_uid: str = ""
    sop_class_uid: str = ""
    pixel_spacing: tuple[float, float] | None = None
    slice_thickness: float | None = None
    window: tuple[float, float] | None = None
    images: list[ImageRef] = field(default_factory=list)
    label_object: LabelObject | None = None  # for SEG / RTSTRUCT (kind "non_image")
