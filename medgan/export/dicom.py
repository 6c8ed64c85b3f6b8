"""DICOM writer: one Secondary Capture instance (``.dcm``) per slice, nothing from any source.

The first instance of each series is built by highdicom's ``SCImage`` (which knows the IOD).
Everything that is the same for every slice of the series is then encoded once (Explicit VR
Little Endian) into byte segments; each file is those segments with the few elements that
differ per slice (SOP Instance UID, Instance Number, comments, pixels) encoded by pydicom in
between, which is several times faster than building and writing a dataset per file. Every export gets a fresh Study Instance UID; synthetic and real
slices go to separate series. No attribute is ever copied from a source file: the patient
is the configured synthetic identity and dates are the export's own.
"""

from __future__ import annotations

import datetime
import logging
import struct

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset, validate_file_meta
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.tag import Tag
from pydicom.uid import generate_uid

from medgan.core.logs import quiet_identifying_loggers
from medgan.export.base import SYNTHETIC_NOTICE, SliceRecord, Writer, WriterContext
from medgan.export.values import dicom_rescale, to_dicom_stored

log = logging.getLogger(__name__)
quiet_identifying_loggers()  # highdicom logs source UIDs at INFO

_STANDARD_MODALITIES = {"CT", "MR", "PT", "NM", "CR", "DX", "MG", "US", "XA", "RF", "OT"}
_SERIES_NUMBER = {"synthetic": 1, "real": 2}
#: Top-level elements that differ per slice, in tag order.
_VARYING = (
    ("SOPInstanceUID", Tag(0x0008, 0x0018), "UI"),
    ("InstanceNumber", Tag(0x0020, 0x0013), "IS"),
    ("ImageComments", Tag(0x0020, 0x4000), "LT"),
    ("PixelData", Tag(0x7FE0, 0x0010), "OW"),
)


def _bytes_io() -> DicomBytesIO:
    fp = DicomBytesIO()
    fp.is_little_endian = True
    fp.is_implicit_VR = False
    return fp


class _EncodedSeries:
    """A series template split into constant byte segments around the per-slice elements."""

    def __init__(self, template: Dataset) -> None:
        meta = FileMetaDataset(template.file_meta)
        validate_file_meta(meta, enforce_standard=True)
        media_uid = Tag(0x0002, 0x0003)
        before, after = Dataset(), Dataset()
        for elem in meta:
            if elem.tag.element == 0 or elem.tag == media_uid:
                continue
            (before if elem.tag < media_uid else after).add(elem)
        self.meta_segments = []
        for part in (before, after):
            fp = _bytes_io()
            write_dataset(fp, part)
            self.meta_segments.append(fp.getvalue())
        charset = template.get("SpecificCharacterSet", "iso8859")
        self.encodings = charset
        self.segments: list[bytes] = []
        bounds = [tag for _, tag, _ in _VARYING]
        lower = -1
        for upper in [*bounds, None]:
            part = Dataset()
            for elem in template:
                if elem.tag > lower and (upper is None or elem.tag < upper):
                    part.add(elem)
            fp = _bytes_io()
            write_dataset(fp, part, charset)
            self.segments.append(fp.getvalue())
            lower = upper if upper is not None else lower

    def encode(self, values: dict[str, object]) -> bytes:
        uid_fp = _bytes_io()
        write_data_element(uid_fp, DataElement(0x00020003, "UI", values["SOPInstanceUID"]))
        media_uid = uid_fp.getvalue()
        group_length = len(self.meta_segments[0]) + len(media_uid) + len(self.meta_segments[1])
        fp = _bytes_io()
        fp.write(b"\x00" * 128 + b"DICM")
        fp.write(struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, group_length))
        fp.write(self.meta_segments[0] + media_uid + self.meta_segments[1])
        for (keyword, tag, vr), segment in zip(_VARYING, self.segments[:-1], strict=True):
            fp.write(segment)
            write_data_element(fp, DataElement(tag, vr, values[keyword]), self.encodings)
        fp.write(self.segments[-1])
        return fp.getvalue()


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "~"


class DicomWriter(Writer):
    suffix = ".dcm"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        prov = ctx.provenance
        self.study_uid = generate_uid()
        self.series_uids = {kind: generate_uid() for kind in _SERIES_NUMBER}
        self.slope, self.intercept = dicom_rescale(prov.window, ctx.config.offset)
        self._series: dict[str, _EncodedSeries] = {}
        self._now = datetime.datetime.now(datetime.timezone.utc)
        ctx.details.update(
            study_instance_uid=self.study_uid,
            series_instance_uids=dict(self.series_uids),
            values=(
                f"uint16 stored; modality value = stored * {self.slope:g} + {self.intercept:g}"
                f" {prov.units}"
            ).strip(),
            sop_class="Secondary Capture Image Storage (1.2.840.10008.5.1.4.1.1.7)",
        )

    # -- template -----------------------------------------------------------------------
    def _series_description(self, kind: str) -> str:
        prov = self.ctx.provenance
        if kind == "real":
            return "MEDGAN REAL TRAINING SLICES de-identified"
        return _clip(f"SYNTHETIC MedGAN {prov.recipe} seed {prov.seed}", 64)

    def _template(self, kind: str, pixels: np.ndarray) -> Dataset:
        import highdicom as hd

        cfg, prov = self.ctx.config, self.ctx.provenance
        now = self._now
        ds = hd.sc.SCImage(
            pixel_array=pixels,
            photometric_interpretation="MONOCHROME2",
            bits_allocated=16,
            coordinate_system="PATIENT",
            study_instance_uid=self.study_uid,
            series_instance_uid=self.series_uids[kind],
            series_number=_SERIES_NUMBER[kind],
            sop_instance_uid=generate_uid(),
            instance_number=1,
            manufacturer="MedGAN Studio",
            patient_id=cfg.patient_id,
            patient_name=cfg.patient_name,
            study_id="MEDGAN",
            study_date=now.date(),
            study_time=now.time().replace(microsecond=0),
            patient_orientation=("L", "P"),
            pixel_spacing=prov.pixel_spacing,
            series_description=self._series_description(kind),
            software_versions=f"MedGAN Studio {self.ctx.app_version}",
        )
        # Orientation of a generated slice is unknown: leave the Type 2C attributes empty.
        # pydicom writes None as an empty value; its generated stubs only allow list[str]/str.
        ds.PatientOrientation = None  # type: ignore[assignment]
        ds.Laterality = None  # type: ignore[assignment]
        if kind == "synthetic":  # a generated image holds no burned-in text
            ds.BurnedInAnnotation = "NO"
        # Real slices keep their source pixels (windowed, resized): whether those hold burned-in
        # text is not known here, so the optional attribute is left out rather than guessed.
        ds.PatientIdentityRemoved = "YES"
        ds.DeidentificationMethod = (
            "Synthetic image: no patient identity"
            if kind == "synthetic"
            else "Pixels only: no attribute copied from the source files"
        )
        ds.StudyDescription = "MEDGAN SYNTHETIC EXPORT"
        ds.ManufacturerModelName = "MedGAN Studio"
        ds.DerivationDescription = _clip(
            (
                f"Generated by a GAN ({prov.recipe}, model sha256 {prov.model_sha256[:16]})"
                if kind == "synthetic"
                else "Preprocessed (windowed, resized) training slice"
            ),
            1024,
        )
        if prov.modality.upper() in _STANDARD_MODALITIES:
            ds.Modality = prov.modality.upper()
        ds.RescaleIntercept = f"{self.intercept:.10g}"
        ds.RescaleSlope = f"{self.slope:.10g}"
        ds.RescaleType = "HU" if prov.units.upper() == "HU" else "US"
        center, width = prov.window.as_tuple() if prov.window else (0.0, 2.0)
        ds.WindowCenter = f"{center:.6g}"
        ds.WindowWidth = f"{max(width, 1e-6):.6g}"
        return ds

    # -- per slice ----------------------------------------------------------------------
    def _comments(self, record: SliceRecord) -> str:
        prov = self.ctx.provenance
        names = self.ctx.class_names
        label = ""
        if record.label is not None and 0 <= record.label < len(names):
            label = f" Class: {names[record.label]}."
        if record.kind == "real":
            return (
                "Real training slice (preprocessed, de-identified) exported alongside "
                "synthetic slices by MedGAN Studio. Not for diagnosis." + label
            )
        return (
            f"{SYNTHETIC_NOTICE}. Model {prov.model_name} sha256 {prov.model_sha256}, "
            f"recipe {prov.recipe}, seed {record.seed}, index {record.index}." + label
        )

    def encode(self, record: SliceRecord) -> tuple[str, bytes]:
        """The file name and the bytes of one slice's instance."""
        stored = to_dicom_stored(record.modality, self.slope, self.intercept)
        series = self._series.get(record.kind)
        if series is None:
            series = self._series[record.kind] = _EncodedSeries(self._template(record.kind, stored))
        data = series.encode({
            "SOPInstanceUID": generate_uid(),
            "InstanceNumber": str(record.number + 1),
            "ImageComments": self._comments(record),
            "PixelData": stored.tobytes(),
        })  # fmt: skip
        return record.stem + self.suffix, data

    def write(self, batch: list[SliceRecord]) -> list[str]:
        names, tasks = [], []
        for record in batch:
            name, data = self.encode(record)
            tasks.append(lambda path=self.ctx.folder / name, data=data: path.write_bytes(data))
            names.append(name)
        self.run_parallel(tasks)
        return names
