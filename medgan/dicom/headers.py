"""Header-only reading of one file: is it DICOM, an image, what does decoding need?

Each file becomes exactly one :class:`FileHeader` whose ``kind`` says how the scan accounts
for it: ``image``, ``non_image``, ``dicomdir``, ``non_dicom`` or ``problem`` (with a reason).
Nothing here reads pixel values; for native (uncompressed) pixel data the byte offset is
recorded so that decoding can read straight into an array.
"""

from __future__ import annotations

import logging
import os
import struct
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian, ExplicitVRBigEndian

from medgan.dicom.frames import frame_refs
from medgan.dicom.pixels import decoder_problem
from medgan.dicom.rawtags import RawTags
from medgan.dicom.records import FileHeader, ImageRef, LabelObject

log = logging.getLogger(__name__)

DICOMDIR_SOP_CLASS = "1.2.840.10008.1.3.10"
_PIXEL_TAGS = {
    0x7FE00010: "Pixel Data",
    0x7FE00008: "Float Pixel Data",
    0x7FE00009: "Double Float Pixel Data",
}
_LONG_VRS = {b"OB", b"OW", b"OF", b"OD", b"OL", b"OV", b"UN", b"SQ", b"UT", b"UC", b"UR"}
_SEQ_DELIMITER = 0xFFFEE0DD
_ITEM = 0xFFFEE000

# SOP classes of objects that carry no trainable image: a trailing "." marks a prefix.
_NON_IMAGE_CLASSES: tuple[tuple[str, str], ...] = (
    ("1.2.840.10008.5.1.4.1.1.88.", "structured report"),
    ("1.2.840.10008.5.1.4.1.1.11.", "presentation state"),
    ("1.2.840.10008.5.1.4.1.1.9.", "waveform"),
    ("1.2.840.10008.5.1.4.1.1.66", "raw data"),
    ("1.2.840.10008.5.1.4.1.1.66.", "segmentation, registration or fiducials"),
    ("1.2.840.10008.5.1.4.1.1.104.", "encapsulated document"),
    ("1.2.840.10008.5.1.4.1.1.481.2", "RT dose grid"),
    ("1.2.840.10008.5.1.4.1.1.481.3", "RT structure set"),
    ("1.2.840.10008.5.1.4.1.1.481.4", "RT treatment record"),
    ("1.2.840.10008.5.1.4.1.1.481.5", "RT plan"),
    ("1.2.840.10008.5.1.4.1.1.481.6", "RT treatment record"),
    ("1.2.840.10008.5.1.4.1.1.481.7", "RT treatment record"),
    ("1.2.840.10008.5.1.4.1.1.481.8", "RT ion plan"),
    ("1.2.840.10008.5.1.4.1.1.481.9", "RT treatment record"),
    ("1.2.840.10008.5.1.4.1.1.481.", "RT object"),  # .481.1 (RT Image) is matched first
    ("1.2.840.10008.5.1.4.34.", "RT plan or treatment record"),
    ("1.2.840.10008.5.1.4.1.1.68.", "surface model"),
    ("1.2.840.10008.5.1.4.1.1.90.", "content assessment"),
    ("1.2.840.10008.5.1.4.1.1.200.", "protocol"),
    ("1.2.840.10008.5.1.4.38.", "hanging protocol"),
    ("1.2.840.10008.5.1.4.39.", "colour palette"),
    ("1.2.840.10008.5.1.4.43.", "generic implant template"),
)
_RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"
_SEG = "1.2.840.10008.5.1.4.1.1.66.4"
_LABELMAP_SEG = "1.2.840.10008.5.1.4.1.1.66.7"
_RTSTRUCT = "1.2.840.10008.5.1.4.1.1.481.3"
_DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
_NON_IMAGE_MODALITIES = {
    "SR": "structured report", "PR": "presentation state", "SEG": "segmentation",
    "RTPLAN": "RT plan", "RTSTRUCT": "RT structure set", "RTDOSE": "RT dose grid",
    "RTRECORD": "RT treatment record", "KO": "key object selection", "REG": "registration",
    "ECG": "waveform", "HD": "waveform", "AU": "audio waveform", "DOC": "encapsulated document",
    "PLAN": "plan",
}  # fmt: skip


def looks_like_dicom(prefix: bytes) -> bool:
    """Cheap test on the first 132 bytes: 'DICM' preamble, or a plausible first element."""
    if len(prefix) >= 132 and prefix[128:132] == b"DICM":
        return True
    if len(prefix) < 8:
        return False
    # Files without a preamble (old ACR-NEMA style) start with a low group.
    vr = prefix[4:6]
    explicit = vr.isalpha() and vr.isupper()
    for endian in "<>":
        group, elem = struct.unpack(endian + "HH", prefix[:4])
        if group in (0x0002, 0x0008) and elem <= 0x0100:
            if explicit or struct.unpack(endian + "I", prefix[4:8])[0] < 0x10000:
                return True
    return False


def _non_image_reason(tags: RawTags, sop_class: str, has_pixels: bool) -> str | None:
    """Return a description when the object is not an image, else None."""
    if sop_class == _RT_IMAGE:
        return None  # RT Image: a real radiograph
    for uid, what in _NON_IMAGE_CLASSES:
        if sop_class == uid or (uid.endswith(".") and sop_class.startswith(uid)):
            return what
    modality = tags.text("Modality").upper()
    if not has_pixels:
        if modality in _NON_IMAGE_MODALITIES:
            return _NON_IMAGE_MODALITIES[modality]
        if not tags.has("Rows") and sop_class:
            return "object without an image"
    return None


def _pixel_element(fp: BinaryIO, ts: UID, file_size: int) -> tuple[int, int, int] | None:
    """Parse the element header at the current position: (tag, value offset, length)."""
    start = fp.tell()
    head = fp.read(12)
    if len(head) < 8:
        return None
    endian = ">" if ts == ExplicitVRBigEndian else "<"
    group, elem = struct.unpack(endian + "HH", head[:4])
    tag = group << 16 | elem
    if not ts.is_implicit_VR:
        vr = head[4:6]
        if vr in _LONG_VRS:
            if len(head) < 12:
                return None
            return tag, start + 12, struct.unpack(endian + "I", head[8:12])[0]
        return tag, start + 8, struct.unpack(endian + "H", head[6:8])[0]
    return tag, start + 8, struct.unpack(endian + "I", head[4:8])[0]


def _check_encapsulated(fp: BinaryIO, offset: int, file_size: int, n_frames: int) -> str | None:
    """Walk the fragments of encapsulated pixel data; return a reason when broken."""
    pos = offset
    items = 0
    while True:
        fp.seek(pos)
        head = fp.read(8)
        if len(head) < 8:
            return "the file is truncated: compressed pixel data ends before its end marker"
        tag_group, tag_elem, length = struct.unpack("<HHI", head)
        tag = tag_group << 16 | tag_elem
        if tag == _SEQ_DELIMITER:
            break
        if tag != _ITEM or length == 0xFFFFFFFF:
            return "compressed pixel data is corrupt (unexpected bytes between fragments)"
        pos += 8 + length
        if pos > file_size:
            return "the file is truncated: compressed pixel data is incomplete"
        items += 1
    if items - 1 < 1:
        return "compressed pixel data holds no image fragments"
    return None


def read_header(path: str) -> FileHeader:
    """Classify one file from its header; never raises for bad input."""
    try:
        head = _read_header(path)
        if head.kind == "non_dicom" and path.lower().endswith(_DICOM_SUFFIXES):
            return _misnamed(path)
        return head
    except MemoryError:
        raise
    except Exception as exc:  # noqa: BLE001 - one broken file must not stop a scan
        log.debug("unreadable DICOM header in a file: %s", type(exc).__name__)
        return FileHeader(path, "problem", f"unreadable DICOM header ({type(exc).__name__})")


def _misnamed(path: str) -> FileHeader:
    """A file named like DICOM that is not: its own problem, with the reason."""
    try:
        size = os.path.getsize(path)
    except OSError:
        size = -1
    if size == 0:
        return FileHeader(path, "problem", "empty file (zero bytes) named like a DICOM file")
    return FileHeader(
        path, "problem", f"not DICOM ({size} bytes without a DICOM header) despite its name"
    )


def _label_object(path: str, ds: Dataset, sop_class: str) -> LabelObject:
    """What a SEG or RTSTRUCT refers to, from its header (no pixel data read)."""
    series: list[str] = []
    segments: list[str] = []
    frame = str(ds.get("FrameOfReferenceUID", "") or "")
    if sop_class in (_SEG, _LABELMAP_SEG):
        series = [
            str(s.get("SeriesInstanceUID", "")) for s in ds.get("ReferencedSeriesSequence", [])
        ]
        segments = [str(s.get("SegmentLabel", "")) for s in ds.get("SegmentSequence", [])]
    else:
        for fr in ds.get("ReferencedFrameOfReferenceSequence", []):
            frame = frame or str(fr.get("FrameOfReferenceUID", ""))
            for study in fr.get("RTReferencedStudySequence", []):
                series += [
                    str(s.get("SeriesInstanceUID", ""))
                    for s in study.get("RTReferencedSeriesSequence", [])
                ]
        segments = [str(r.get("ROIName", "")) for r in ds.get("StructureSetROISequence", [])]
    return LabelObject(
        path=path,
        kind="RTSTRUCT" if sop_class == _RTSTRUCT else "SEG",
        sop_instance_uid=str(ds.get("SOPInstanceUID", "")),
        referenced_series=tuple(s for s in series if s),
        frame_of_reference_uid=frame,
        segments=tuple(segments),
    )


def _read_header(path: str) -> FileHeader:
    try:
        file_size = os.path.getsize(path)
        fp = open(path, "rb")  # noqa: SIM115 - closed below
    except OSError as exc:
        return FileHeader(path, "problem", f"cannot open the file ({exc.strerror or exc})")
    with fp:
        prefix = fp.read(132)
        if not looks_like_dicom(prefix):
            return FileHeader(path, "non_dicom")
        fp.seek(0)
        has_preamble = prefix[128:132] == b"DICM"
        try:
            ds = pydicom.dcmread(fp, stop_before_pixels=True, force=not has_preamble)
        except Exception as exc:  # noqa: BLE001
            if not has_preamble:
                return FileHeader(path, "non_dicom")
            return FileHeader(path, "problem", f"unreadable DICOM header ({_short(exc)})")
        if not has_preamble and not ("SOPClassUID" in ds or "SeriesInstanceUID" in ds):
            return FileHeader(path, "non_dicom")  # forced parse of something that is not DICOM
        meta = getattr(ds, "file_meta", None)
        media_class = str(meta.get("MediaStorageSOPClassUID", "")) if meta is not None else ""
        if media_class == DICOMDIR_SOP_CLASS or "DirectoryRecordSequence" in ds:
            return FileHeader(path, "dicomdir")
        ts = UID(str(meta.get("TransferSyntaxUID", "")) if meta is not None else "")
        if not ts:
            ts = _guessed_syntax(ds)
        pixel = None
        if ts != DeflatedExplicitVRLittleEndian:
            pixel = _pixel_element(fp, ts, file_size)
        return _from_dataset(path, ds, ts, pixel, fp, file_size)


def _guessed_syntax(ds: Dataset) -> UID:
    """The encoding pydicom detected in a file without a meta header."""
    implicit, little = getattr(ds, "original_encoding", (True, True))
    if implicit is not False:
        return UID("1.2.840.10008.1.2")
    return UID("1.2.840.10008.1.2.1") if little is not False else ExplicitVRBigEndian


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:160]


def _from_dataset(
    path: str,
    ds: Dataset,
    ts: UID,
    pixel: tuple[int, int, int] | None,
    fp: BinaryIO,
    file_size: int,
) -> FileHeader:
    tags = RawTags(ds)
    sop_class = tags.text("SOPClassUID")
    has_pixels = pixel is not None and pixel[0] in _PIXEL_TAGS
    if ts == DeflatedExplicitVRLittleEndian:
        has_pixels = tags.has("Rows")  # stream position unknown in a deflated file
    head = FileHeader(
        path,
        "image",
        series_uid=tags.text("SeriesInstanceUID"),
        study_uid=tags.text("StudyInstanceUID"),
        sop_instance_uid=tags.text("SOPInstanceUID"),
        patient_id=tags.decoded("PatientID"),
        patient_name=tags.decoded("PatientName"),
        modality=tags.text("Modality"),
        series_description=tags.decoded("SeriesDescription"),
        study_description=tags.decoded("StudyDescription"),
        study_date=tags.text("StudyDate"),
        frame_of_reference_uid=tags.text("FrameOfReferenceUID"),
        sop_class_uid=sop_class,
        series_number=tags.int_text("SeriesNumber"),
    )
    if not sop_class and not head.series_uid and not tags.has("Rows"):
        head.kind = "problem"
        head.reason = "unreadable DICOM header (damaged: no SOP Class, series or image tags)"
        return head
    what = _non_image_reason(tags, sop_class, has_pixels)
    if what is not None:
        name = UID(sop_class).name if sop_class else what
        head.kind, head.reason = "non_image", f"{name} ({what}): no image to train on"
        if sop_class in (_SEG, _LABELMAP_SEG, _RTSTRUCT):
            head.label_object = _label_object(path, tags.ds, sop_class)
            head.reason = (
                f"{name} ({what}): no image to train on; masks for the series it references"
            )
        return head
    if not has_pixels:
        head.kind, head.reason = "problem", "image header without pixel data"
        return head
    assert pixel is not None or ts == DeflatedExplicitVRLittleEndian
    if pixel is not None and pixel[0] != 0x7FE00010:
        head.kind = "problem"
        head.reason = f"{_PIXEL_TAGS[pixel[0]]} (floating point pixels) is not supported"
        return head
    reason = _image_facts(head, tags, ts, pixel, fp, file_size)
    if reason:
        head.kind, head.reason, head.images = "problem", reason, []
    return head


def _image_facts(
    head: FileHeader,
    tags: RawTags,
    ts: UID,
    pixel: tuple[int, int, int] | None,
    fp: BinaryIO,
    file_size: int,
) -> str | None:
    """Fill ``head.images``; return a reason when the image cannot be used."""

    rows, cols = tags.ushort("Rows"), tags.ushort("Columns")
    if rows <= 0 or cols <= 0:
        return "image without valid Rows/Columns"
    samples = tags.ushort("SamplesPerPixel", 1) or 1
    bits_alloc = tags.ushort("BitsAllocated")
    bits_stored = tags.ushort("BitsStored", bits_alloc) or bits_alloc
    rep = tags.ushort("PixelRepresentation")
    photometric = tags.text("PhotometricInterpretation").upper()
    n_frames = max(1, tags.int_text("NumberOfFrames") or 1)
    problem = decoder_problem(ts, photometric, samples, bits_alloc, bits_stored)
    if problem:
        return problem
    offset: int | None = None
    if pixel is not None:
        _, value_offset, length = pixel
        if length == 0xFFFFFFFF:
            if not ts.is_encapsulated:
                return "undefined-length pixel data in an uncompressed transfer syntax"
            reason = _check_encapsulated(fp, value_offset, file_size, n_frames)
            if reason:
                return reason
        else:
            if ts.is_encapsulated:
                return "compressed transfer syntax but the pixel data is not encapsulated"
            expected = (rows * cols * samples * n_frames * bits_alloc + 7) // 8
            available = min(length, file_size - value_offset)
            if available < expected:
                return (
                    f"the file is truncated: pixel data holds {max(available, 0)} of the "
                    f"{expected} bytes its header promises"
                )
            offset = value_offset if bits_alloc in (8, 16, 32) else None
    # Projection radiographs often give only the detector's spacing.
    head.pixel_spacing = tags.floats("PixelSpacing", 2) or tags.floats(  # type: ignore[assignment]
        "ImagerPixelSpacing", 2
    )
    head.slice_thickness = tags.first_float("SliceThickness")
    center, width = tags.first_float("WindowCenter"), tags.first_float("WindowWidth")
    if center is not None and width is not None and width > 0:
        head.window = (center, width)
    slope = tags.first_float("RescaleSlope", 1.0) or 1.0
    intercept = tags.first_float("RescaleIntercept", 0.0) or 0.0
    has_lut = tags.has("ModalityLUTSequence") and not tags.has("RescaleSlope")
    orientation = tags.floats("ImageOrientationPatient", 6)
    position = tags.floats("ImagePositionPatient", 3)
    instance_number = tags.int_text("InstanceNumber")
    common: dict[str, Any] = {
        "path": head.path,
        "sop_instance_uid": head.sop_instance_uid,
        "instance_number": instance_number,
        "rows": rows,
        "cols": cols,
        "transfer_syntax": str(ts),
        "photometric": photometric,
        "samples_per_pixel": samples,
        "bits_allocated": bits_alloc,
        "bits_stored": bits_stored,
        "pixel_representation": rep,
        "rescale_slope": slope,
        "rescale_intercept": intercept,
        "has_modality_lut": has_lut,
        "n_frames": n_frames,
        "pixel_offset": offset,
        "big_endian": ts == ExplicitVRBigEndian,
    }
    if n_frames == 1:
        head.images = [ImageRef(frame=None, position=position, orientation=orientation, **common)]  # type: ignore[arg-type]
        return None

    head.images = frame_refs(tags.ds, common, position, orientation, head)
    return None
