"""Synthetic DICOM files for tests: series in every encoding we can write, broken files,
non-image objects, colour images and DICOMDIR file-sets.

Shared by the whole test suite (``from tests.dicom_factory import write_series``); the
function names and keyword arguments are stable, new keywords may be added.

Pixel convention: :func:`default_pixels` gives slice ``k`` (in anatomical order) the stored
value ``k * 100 + row + col``, so decoded modality values are ``slope * stored + intercept``
and slice order can be checked from the mean alone. ``write_series`` returns the paths in
anatomical order even when file names are shuffled.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import (
    JPEG2000,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    RLELossless,
    generate_uid,
)

# SOP classes used by the factory.
CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2")
MR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.4")
ENHANCED_CT_IMAGE = UID("1.2.840.10008.5.1.4.1.1.2.1")
SECONDARY_CAPTURE = UID("1.2.840.10008.5.1.4.1.1.7")
MULTIFRAME_GRAYSCALE_WORD_SC = UID("1.2.840.10008.5.1.4.1.1.7.3")
CR_IMAGE = UID("1.2.840.10008.5.1.4.1.1.1")
NON_IMAGE_SOP_CLASSES: dict[str, UID] = {
    "SR": UID("1.2.840.10008.5.1.4.1.1.88.11"),  # Basic Text SR
    "RTPLAN": UID("1.2.840.10008.5.1.4.1.1.481.5"),
    "PR": UID("1.2.840.10008.5.1.4.1.1.11.1"),  # Grayscale Softcopy Presentation State
    "SEG": UID("1.2.840.10008.5.1.4.1.1.66.4"),
    "ECG": UID("1.2.840.10008.5.1.4.1.1.9.1.1"),  # 12-lead ECG waveform
}
_MODALITY_SOP = {"CT": CT_IMAGE, "MR": MR_IMAGE, "CR": CR_IMAGE, "DX": CR_IMAGE}

#: Transfer syntaxes :func:`write_series` can produce with the installed encoders.
WRITABLE_SYNTAXES: tuple[UID, ...] = (
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLSLossless,
    JPEGLSNearLossless,
    JPEG2000Lossless,
    JPEG2000,
    JPEGBaseline8Bit,
    JPEGLosslessSV1,
    JPEGLossless,
)

_GDCM_SYNTAXES = (JPEGLosslessSV1, JPEGLossless, JPEGExtended12Bit)


def default_pixels(n: int, rows: int, cols: int, *, dtype: Any = np.int16) -> np.ndarray:
    """Stored values ``k * 100 + row + col`` for slice ``k``: distinct and ordered per slice."""
    k = np.arange(n, dtype=np.int64)[:, None, None] * 100
    r = np.arange(rows, dtype=np.int64)[None, :, None]
    c = np.arange(cols, dtype=np.int64)[None, None, :]
    return (k + r + c).astype(dtype)


def slice_positions(
    n: int,
    *,
    orientation: Sequence[float] = (1, 0, 0, 0, 1, 0),
    spacing: float = 2.5,
    origin: Sequence[float] = (-16.0, -16.0, 0.0),
) -> list[tuple[float, float, float]]:
    """Positions of ``n`` slices stacked ``spacing`` mm apart along the orientation's normal."""
    row = np.asarray(orientation[:3], dtype=float)
    col = np.asarray(orientation[3:], dtype=float)
    normal = np.cross(row, col)
    base = np.asarray(origin, dtype=float)
    return [tuple(float(v) for v in base + k * spacing * normal) for k in range(n)]  # type: ignore[misc]


def _file_meta(sop_class: str, sop_instance: str, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop_instance
    meta.TransferSyntaxUID = transfer_syntax
    meta.ImplementationClassUID = UID("1.2.826.0.1.3680043.8.498.1")
    meta.ImplementationVersionName = "MEDGAN_TEST"
    return meta


def _base_dataset(
    *,
    sop_class: str,
    modality: str,
    patient_name: str,
    patient_id: str,
    study_uid: str,
    series_uid: str,
    series_description: str,
    series_number: int,
) -> Dataset:
    ds = Dataset()
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.PatientName = patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyDate = "20240102"
    ds.StudyTime = "101010"
    ds.StudyID = "1"
    ds.AccessionNumber = "ACC0001"
    ds.ReferringPhysicianName = ""
    ds.InstitutionName = "Fixture Hospital"
    ds.StudyDescription = "Fixture study"
    ds.SeriesDescription = series_description
    ds.SeriesNumber = series_number
    ds.Modality = modality
    ds.Manufacturer = "MedGAN test factory"
    ds.FrameOfReferenceUID = generate_uid()
    return ds


def _save(ds: Dataset, path: Path, transfer_syntax: UID) -> None:
    ds.file_meta = _file_meta(ds.SOPClassUID, ds.SOPInstanceUID, transfer_syntax)
    path.parent.mkdir(parents=True, exist_ok=True)
    little = transfer_syntax != ExplicitVRBigEndian
    implicit = transfer_syntax == ImplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True, little_endian=little, implicit_vr=implicit)


def _set_pixels(ds: Dataset, frames: np.ndarray, transfer_syntax: UID) -> UID:
    """Store ``frames`` ((F, rows, cols) or (F, rows, cols, 3)) in ``ds`` under the syntax.

    Returns the syntax to write the file with (gdcm-only syntaxes are written uncompressed
    first and transcoded afterwards by the caller).
    """
    if transfer_syntax in _GDCM_SYNTAXES:
        transfer_syntax = ExplicitVRLittleEndian
    if transfer_syntax == JPEGBaseline8Bit:
        ds.PixelData = encapsulate([_jpeg_baseline(frame) for frame in frames])
        ds["PixelData"].VR = "OB"
        if ds.SamplesPerPixel == 3:
            ds.PhotometricInterpretation = "YBR_FULL_422"
        return transfer_syntax
    if transfer_syntax.is_compressed:
        arr = frames[0] if frames.shape[0] == 1 else frames
        options: dict[str, Any] = {"j2k_cr": [5]} if transfer_syntax == JPEG2000 else {}
        if transfer_syntax == JPEGLSNearLossless:
            options["jls_error"] = 1
        ds.compress(transfer_syntax, arr, generate_instance_uid=False, **options)
        return transfer_syntax
    data = np.ascontiguousarray(frames)
    if transfer_syntax == ExplicitVRBigEndian and data.dtype.itemsize > 1:
        data = data.astype(data.dtype.newbyteorder(">"))
    ds.PixelData = data.tobytes()
    ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    return transfer_syntax


def _jpeg_baseline(frame: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(frame.astype(np.uint8)).save(buf, format="JPEG", quality=95)
    return buf.getvalue()


def _transcode_gdcm(path: Path, transfer_syntax: UID) -> None:
    """Re-encode a file in place with GDCM (for the JPEG lossless syntaxes pydicom cannot write)."""
    import gdcm

    ts_map = {
        JPEGLosslessSV1: gdcm.TransferSyntax.JPEGLosslessProcess14_1,
        JPEGLossless: gdcm.TransferSyntax.JPEGLosslessProcess14,
        JPEGExtended12Bit: gdcm.TransferSyntax.JPEGExtendedProcess2_4,
    }
    reader = gdcm.ImageReader()
    reader.SetFileName(str(path))
    if not reader.Read():
        raise RuntimeError(f"gdcm could not read {path}")
    change = gdcm.ImageChangeTransferSyntax()
    change.SetTransferSyntax(gdcm.TransferSyntax(ts_map[transfer_syntax]))
    change.SetInput(reader.GetImage())
    if not change.Change():
        raise RuntimeError(f"gdcm could not encode {transfer_syntax.name}")
    writer = gdcm.ImageWriter()
    writer.SetFileName(str(path))
    writer.SetFile(reader.GetFile())
    writer.SetImage(change.GetOutput())
    if not writer.Write():
        raise RuntimeError(f"gdcm could not write {path}")


def _pixel_module(
    ds: Dataset, rows: int, cols: int, *, photometric: str, bits_allocated: int, signed: bool
) -> None:
    ds.Rows = rows
    ds.Columns = cols
    ds.SamplesPerPixel = 3 if photometric in ("RGB", "YBR_FULL", "YBR_FULL_422") else 1
    if ds.SamplesPerPixel == 3:
        ds.PlanarConfiguration = 0
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = bits_allocated
    ds.BitsStored = bits_allocated if bits_allocated == 8 else 12 if not signed else 16
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if signed else 0


def write_series(
    directory: str | Path,
    *,
    n: int = 8,
    rows: int = 32,
    cols: int = 32,
    transfer_syntax: str = ExplicitVRLittleEndian,
    photometric: str = "MONOCHROME2",
    big_endian: bool = False,
    implicit: bool = False,
    multiframe: bool = False,
    enhanced: bool = False,
    orientation: Sequence[float] | None = (1, 0, 0, 0, 1, 0),
    positions: Sequence[Sequence[float] | None] | None = None,
    slice_spacing: float = 2.5,
    pixel_spacing: tuple[float, float] | None = (0.5, 0.5),
    instance_numbers: Sequence[int | None] | None = None,
    shuffle_names: bool = True,
    name_prefix: str = "",
    extension: str = "",
    patient_name: str = "Fixture^Patient",
    patient_id: str = "FIXTURE-0001",
    study_uid: str | None = None,
    series_uid: str | None = None,
    series_description: str = "Fixture series",
    series_number: int = 1,
    extra_tags: dict[str, Any] | None = None,
    modality: str = "CT",
    rescale: tuple[float, float] | None = (1.0, -1024.0),
    window: tuple[float, float] | None = (40.0, 400.0),
    pixels: np.ndarray | None = None,
    bits_allocated: int = 16,
    signed: bool = True,
    seed: int = 0,
) -> list[Path]:
    """Write one synthetic series; return its file paths in anatomical (slice) order.

    Args:
        n: number of slices (frames when ``multiframe``).
        transfer_syntax: any of :data:`WRITABLE_SYNTAXES`; ``big_endian``/``implicit`` are
            shortcuts for the two uncompressed variants.
        multiframe: one file with ``n`` frames; ``enhanced`` adds per-frame functional groups
            (Enhanced CT) carrying each frame's position, orientation and rescale.
        orientation: ImageOrientationPatient, or None to omit it (and positions).
        positions: per-slice ImagePositionPatient (None entries omit the tag); defaults to
            slices ``slice_spacing`` mm apart along the normal.
        instance_numbers: per-slice InstanceNumber (None omits); default 1..n.
        shuffle_names: file names in random order, unrelated to slice order.
        extra_tags: keyword → value set on every dataset last (may override anything).
        pixels: stored values (n, rows, cols); default :func:`default_pixels`.
        rescale: (slope, intercept), or None to omit the tags.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if big_endian:
        transfer_syntax = ExplicitVRBigEndian
    if implicit:
        transfer_syntax = ImplicitVRLittleEndian
    transfer_syntax = UID(transfer_syntax)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    if transfer_syntax == JPEGBaseline8Bit:
        bits_allocated, signed = 8, False
    dtype = {(8, False): np.uint8, (16, False): np.uint16, (16, True): np.int16}[
        (bits_allocated, signed)
    ]
    if pixels is None:
        pixels = default_pixels(n, rows, cols, dtype=np.int64)
        if bits_allocated == 8:
            pixels = pixels % 256
    pixels = np.asarray(pixels).astype(dtype)
    if photometric in ("RGB", "YBR_FULL") and pixels.ndim == 3:
        pixels = np.stack([pixels, pixels // 2, pixels // 3], axis=-1).astype(dtype)
    if orientation is not None and positions is None:
        positions = slice_positions(n, orientation=orientation, spacing=slice_spacing)
    numbers = list(instance_numbers) if instance_numbers is not None else list(range(1, n + 1))
    sop_class = _MODALITY_SOP.get(modality, SECONDARY_CAPTURE)
    if multiframe:
        sop_class = ENHANCED_CT_IMAGE if enhanced else MULTIFRAME_GRAYSCALE_WORD_SC
    names = [f"{name_prefix}IM{i:05d}{extension}" for i in range(1 if multiframe else n)]
    if shuffle_names:
        random.Random(seed).shuffle(names)

    def make(index: int) -> Dataset:
        ds = _base_dataset(
            sop_class=sop_class,
            modality=modality,
            patient_name=patient_name,
            patient_id=patient_id,
            study_uid=study_uid,
            series_uid=series_uid,
            series_description=series_description,
            series_number=series_number,
        )
        _pixel_module(
            ds, rows, cols, photometric=photometric, bits_allocated=bits_allocated, signed=signed
        )
        if numbers[index] is not None:
            ds.InstanceNumber = numbers[index]
        if window is not None and photometric.startswith("MONOCHROME"):
            ds.WindowCenter, ds.WindowWidth = window
        return ds

    def geometry(ds: Dataset, k: int) -> None:
        if orientation is not None:
            ds.ImageOrientationPatient = [float(v) for v in orientation]
        if positions is not None and positions[k] is not None:
            ds.ImagePositionPatient = [float(v) for v in positions[k]]  # type: ignore[union-attr]
        if pixel_spacing is not None:
            ds.PixelSpacing = list(pixel_spacing)
            ds.SliceThickness = slice_spacing
        if rescale is not None and photometric.startswith("MONOCHROME"):
            ds.RescaleSlope, ds.RescaleIntercept = rescale
            ds.RescaleType = "HU" if modality == "CT" else "US"

    paths: list[Path] = []
    if multiframe:
        ds = make(0)
        ds.NumberOfFrames = n
        if enhanced:
            _enhanced_groups(ds, n, orientation, positions, pixel_spacing, slice_spacing, rescale)
        else:
            geometry(ds, 0)
            for kw in ("ImagePositionPatient",):
                if kw in ds:
                    del ds[kw]
        _apply_extra(ds, extra_tags)
        write_ts = _set_pixels(ds, pixels, transfer_syntax)
        path = directory / names[0]
        _save(ds, path, write_ts)
        if transfer_syntax in _GDCM_SYNTAXES:
            _transcode_gdcm(path, transfer_syntax)
        return [path]
    for k in range(n):
        ds = make(k)
        geometry(ds, k)
        _apply_extra(ds, extra_tags)
        write_ts = _set_pixels(ds, pixels[k : k + 1], transfer_syntax)
        path = directory / names[k]
        _save(ds, path, write_ts)
        if transfer_syntax in _GDCM_SYNTAXES:
            _transcode_gdcm(path, transfer_syntax)
        paths.append(path)
    return paths


def _apply_extra(ds: Dataset, extra_tags: dict[str, Any] | None) -> None:
    for keyword, value in (extra_tags or {}).items():
        if value is None:
            if keyword in ds:
                delattr(ds, keyword)
        else:
            setattr(ds, keyword, value)


def _enhanced_groups(
    ds: Dataset,
    n: int,
    orientation: Sequence[float] | None,
    positions: Sequence[Sequence[float] | None] | None,
    pixel_spacing: tuple[float, float] | None,
    slice_spacing: float,
    rescale: tuple[float, float] | None,
) -> None:
    shared = Dataset()
    if orientation is not None:
        plane = Dataset()
        plane.ImageOrientationPatient = [float(v) for v in orientation]
        shared.PlaneOrientationSequence = DicomSequence([plane])
    if pixel_spacing is not None:
        measures = Dataset()
        measures.PixelSpacing = list(pixel_spacing)
        measures.SliceThickness = slice_spacing
        shared.PixelMeasuresSequence = DicomSequence([measures])
    if rescale is not None:
        transform = Dataset()
        transform.RescaleSlope, transform.RescaleIntercept = rescale
        transform.RescaleType = "HU"
        shared.PixelValueTransformationSequence = DicomSequence([transform])
    ds.SharedFunctionalGroupsSequence = DicomSequence([shared])
    per_frame = []
    for k in range(n):
        item = Dataset()
        if positions is not None and positions[k] is not None:
            pos = Dataset()
            pos.ImagePositionPatient = [float(v) for v in positions[k]]  # type: ignore[union-attr]
            item.PlanePositionSequence = DicomSequence([pos])
        content = Dataset()
        content.InStackPositionNumber = k + 1
        item.FrameContentSequence = DicomSequence([content])
        per_frame.append(item)
    ds.PerFrameFunctionalGroupsSequence = DicomSequence(per_frame)
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL", "NONE"]


# --- colour images ----------------------------------------------------------------------


def write_color_image(
    path: str | Path,
    *,
    photometric: str = "RGB",
    rows: int = 16,
    cols: int = 16,
    transfer_syntax: str = ExplicitVRLittleEndian,
    patient_name: str = "Fixture^Colour",
    patient_id: str = "FIXTURE-COLOUR",
    series_uid: str | None = None,
) -> Path:
    """One colour secondary-capture image: ``RGB``, ``YBR_FULL`` or ``PALETTE COLOR``.

    RGB pixels are (R, G, B) = (row*8, col*8, 128) so grayscale conversions are checkable.
    """
    path = Path(path)
    ds = _base_dataset(
        sop_class=SECONDARY_CAPTURE,
        modality="OT",
        patient_name=patient_name,
        patient_id=patient_id,
        study_uid=generate_uid(),
        series_uid=series_uid or generate_uid(),
        series_description=f"Colour {photometric}",
        series_number=1,
    )
    ds.InstanceNumber = 1
    rr, cc = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    rgb = np.stack([rr * 8 % 256, cc * 8 % 256, np.full_like(rr, 128)], axis=-1).astype(np.uint8)
    if photometric == "PALETTE COLOR":
        _pixel_module(ds, rows, cols, photometric="MONOCHROME2", bits_allocated=8, signed=False)
        ds.PhotometricInterpretation = "PALETTE COLOR"
        lut = np.arange(256, dtype=np.uint16) * 257
        for colour, data in (("Red", lut), ("Green", lut[::-1].copy()), ("Blue", lut // 2)):
            setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, 16])
            setattr(ds, f"{colour}PaletteColorLookupTableData", data.astype("<u2").tobytes())
        indices = ((rr + cc) * 4 % 256).astype(np.uint8)
        ds.PixelData = indices.tobytes()
        ds["PixelData"].VR = "OB"
        _save(ds, path, UID(transfer_syntax))
        return path
    _pixel_module(ds, rows, cols, photometric="RGB", bits_allocated=8, signed=False)
    data = rgb
    if photometric == "YBR_FULL":
        from pydicom.pixels import convert_color_space

        data = convert_color_space(rgb, "RGB", "YBR_FULL")
        ds.PhotometricInterpretation = "YBR_FULL"
    ds.PixelData = np.ascontiguousarray(data).tobytes()
    ds["PixelData"].VR = "OB"
    _save(ds, path, UID(transfer_syntax))
    return path


# --- broken and non-DICOM files ---------------------------------------------------------


def write_zero_byte(path: str | Path) -> Path:
    """An empty file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_garbage(path: str | Path, *, size: int = 4096, seed: int = 0) -> Path:
    """Random bytes that are not DICOM (no 'DICM' preamble, no parsable elements)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


def write_text_file(path: str | Path, text: str = "Notes about this CD.\n") -> Path:
    """A plain text file, as found on CD exports (README, autorun.inf)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def write_truncated(path: str | Path, source: str | Path, *, keep: float = 0.5) -> Path:
    """A copy of ``source`` cut to ``keep`` of its length (header intact, pixel data short)."""
    data = Path(source).read_bytes()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data[: max(132, int(len(data) * keep))])
    return path


def write_broken_header(path: str | Path) -> Path:
    """A file with the 'DICM' preamble followed by garbage: DICOM-looking but unreadable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    path.write_bytes(b"\0" * 128 + b"DICM" + rng.integers(0, 256, 300, dtype=np.uint8).tobytes())
    return path


def write_no_pixels_image(path: str | Path, **kwargs: Any) -> Path:
    """A CT image header whose Pixel Data element is missing."""
    tmp = write_series(Path(path).parent, n=1, shuffle_names=False, name_prefix=".tmp_", **kwargs)[
        0
    ]
    import pydicom

    ds = pydicom.dcmread(tmp)
    del ds.PixelData
    ds.save_as(path)
    tmp.unlink()
    return Path(path)


# --- non-image objects ------------------------------------------------------------------


def write_non_image(
    path: str | Path,
    kind: str = "SR",
    *,
    patient_name: str = "Fixture^Report",
    patient_id: str = "FIXTURE-REPORT",
) -> Path:
    """A non-image object: ``SR``, ``RTPLAN``, ``PR``, ``SEG`` (with pixel data) or ``ECG``."""
    path = Path(path)
    modality = {"PR": "PR", "SEG": "SEG", "ECG": "ECG", "SR": "SR", "RTPLAN": "RTPLAN"}[kind]
    ds = _base_dataset(
        sop_class=NON_IMAGE_SOP_CLASSES[kind],
        modality=modality,
        patient_name=patient_name,
        patient_id=patient_id,
        study_uid=generate_uid(),
        series_uid=generate_uid(),
        series_description=f"{kind} object",
        series_number=99,
    )
    ds.InstanceNumber = 1
    if kind == "SR":
        ds.ValueType = "CONTAINER"
        ds.ContinuityOfContent = "SEPARATE"
    elif kind == "RTPLAN":
        ds.RTPlanLabel = "PLAN1"
    elif kind == "SEG":
        _pixel_module(ds, 8, 8, photometric="MONOCHROME2", bits_allocated=8, signed=False)
        ds.BitsAllocated = ds.BitsStored = 1
        ds.HighBit = 0
        ds.NumberOfFrames = 1
        ds.SegmentationType = "BINARY"
        ds.PixelData = np.packbits(np.eye(8, dtype=np.uint8).ravel(), bitorder="little").tobytes()
        ds["PixelData"].VR = "OB"
    elif kind == "ECG":
        wave = Dataset()
        wave.NumberOfWaveformChannels = 1
        wave.NumberOfWaveformSamples = 4
        wave.SamplingFrequency = 500
        wave.WaveformBitsAllocated = 16
        wave.WaveformSampleInterpretation = "SS"
        wave.WaveformData = np.arange(4, dtype="<i2").tobytes()
        ds.WaveformSequence = DicomSequence([wave])
    _save(ds, path, ExplicitVRLittleEndian)
    return path


# --- DICOMDIR ---------------------------------------------------------------------------


def write_dicomdir(directory: str | Path, *, n: int = 4, **series_kwargs: Any) -> list[Path]:
    """A CD-style file-set: ``DICOMDIR`` plus ``n`` images in pydicom's PT/ST/SE layout.

    Returns the image paths (in anatomical order); ``directory / "DICOMDIR"`` is the index.
    """
    import pydicom
    from pydicom.fileset import FileSet

    directory = Path(directory)
    staging = directory.parent / (directory.name + "_staging")
    sources = write_series(staging, n=n, shuffle_names=False, **series_kwargs)
    fileset = FileSet()
    for p in sources:
        fileset.add(pydicom.dcmread(p))
    fileset.write(directory)
    order = {}
    reread = FileSet(directory / "DICOMDIR")
    for inst in reread:
        order[int(inst.InstanceNumber)] = Path(inst.path)
    for fs in (fileset, reread):  # FileSet stages in a TemporaryDirectory it never cleans up
        stage = getattr(fs, "_stage", {}).get("t")
        if stage is not None:
            stage.cleanup()
    out = [order[k] for k in sorted(order)]
    for p in sources:
        p.unlink()
    staging.rmdir()
    return out


# --- a mixed real-world-like folder -----------------------------------------------------


def write_messy_folder(root: str | Path) -> dict[str, Any]:
    """A nested folder mixing series, compression, multi-frame, broken and non-DICOM files.

    Returns counts the scan must reproduce: ``series`` (UIDs), ``problems``, ``non_image``,
    ``non_dicom``, ``n_files``.
    """
    root = Path(root)
    a = write_series(root / "a" / "b", n=6, patient_name="Messy^One", patient_id="MESSY-1")
    b = write_series(
        root / "c",
        n=5,
        transfer_syntax=RLELossless,
        patient_name="Messy^Two",
        patient_id="MESSY-2",
        series_description="RLE series",
    )
    c = write_series(
        root / "c" / "mf",
        n=4,
        multiframe=True,
        enhanced=True,
        patient_name="Messy^Two",
        patient_id="MESSY-2",
    )
    write_truncated(root / "broken" / "cut.dcm", a[0], keep=0.6)
    write_zero_byte(root / "broken" / "empty")
    write_garbage(root / "broken" / "noise.bin")
    write_text_file(root / "README.TXT")
    write_non_image(root / "other" / "report", "SR")
    import pydicom

    uids = {
        str(pydicom.dcmread(p[0], stop_before_pixels=True).SeriesInstanceUID) for p in (a, b, c)
    }
    return {
        "series": uids,
        "problems": 1,
        "non_image": 1,
        "non_dicom": 3,
        "n_files": len(a) + len(b) + len(c) + 5,
    }


# --------------------------------------------------------------------------- label fixtures


def write_seg(
    path: str | Path,
    sources: Sequence[str | Path],
    masks: np.ndarray,
    *,
    segment_labels: Sequence[str] = ("lesion",),
    fractional: bool = False,
    extra_tags: dict[str, Any] | None = None,
    strip_references: bool = False,
) -> Path:
    """A DICOM SEG written with highdicom over the source files (in ``sources`` order).

    ``masks``: (n, rows, cols) integer labels (value k = segment k) for binary SEGs, or
    (n, rows, cols, n_segments) floats in [0, 1] for fractional ones. ``strip_references``
    removes each frame's source image reference, so it can only be matched by geometry.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    datasets = [pydicom.dcmread(p) for p in sources]
    descriptions = [
        hd.seg.SegmentDescription(
            segment_number=k,
            segment_label=label,
            segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
            segmented_property_type=codes.SCT.Lesion,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
        )
        for k, label in enumerate(segment_labels, start=1)
    ]
    seg = hd.seg.Segmentation(
        source_images=datasets,
        pixel_array=masks if fractional else masks.astype(np.uint8),
        segmentation_type="FRACTIONAL" if fractional else "BINARY",
        segment_descriptions=descriptions,
        series_instance_uid=generate_uid(),
        series_number=99,
        sop_instance_uid=generate_uid(),
        instance_number=1,
        manufacturer="fixture",
        manufacturer_model_name="fixture",
        software_versions="0",
        device_serial_number="0",
        omit_empty_frames=False,
    )
    if strip_references:
        for item in seg.PerFrameFunctionalGroupsSequence:
            if "DerivationImageSequence" in item:
                del item.DerivationImageSequence
        if "ReferencedSeriesSequence" in seg:
            del seg.ReferencedSeriesSequence
    _apply_extra(seg, extra_tags)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(path)
    return path


def write_rtstruct(
    path: str | Path,
    sources: Sequence[str | Path],
    rois: dict[str, dict[int, list[np.ndarray]]],
    *,
    reference_images: bool = True,
    extra_tags: dict[str, Any] | None = None,
) -> Path:
    """An RT Structure Set written with pydicom: per ROI name, per source index, a list of
    closed contours, each (k, 2) in (row, col) pixel coordinates of that slice."""
    import pydicom

    first = pydicom.dcmread(sources[0], stop_before_pixels=True)
    sop = generate_uid()
    meta = _file_meta("1.2.840.10008.5.1.4.1.1.481.3", sop, ExplicitVRLittleEndian)
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.481.3"
    ds.SOPInstanceUID = sop
    ds.Modality = "RTSTRUCT"
    for key in ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "StudyID"):
        if key in first:
            setattr(ds, key, getattr(first, key))
    ds.SeriesInstanceUID = generate_uid()
    ds.SeriesNumber = 98
    ds.StructureSetLabel = "fixture"
    ds.StructureSetDate = "20240102"
    ds.StructureSetTime = "120000"
    headers = [pydicom.dcmread(p, stop_before_pixels=True) for p in sources]
    frame = Dataset()
    frame.FrameOfReferenceUID = first.FrameOfReferenceUID
    study = Dataset()
    study.ReferencedSOPClassUID = "1.2.840.10008.3.1.2.3.1"
    study.ReferencedSOPInstanceUID = first.StudyInstanceUID
    series = Dataset()
    series.SeriesInstanceUID = first.SeriesInstanceUID
    contour_images = []
    for h in headers:
        item = Dataset()
        item.ReferencedSOPClassUID = h.SOPClassUID
        item.ReferencedSOPInstanceUID = h.SOPInstanceUID
        contour_images.append(item)
    series.ContourImageSequence = DicomSequence(contour_images)
    study.RTReferencedSeriesSequence = DicomSequence([series])
    frame.RTReferencedStudySequence = DicomSequence([study])
    ds.ReferencedFrameOfReferenceSequence = DicomSequence([frame])
    roi_items, contour_items, obs = [], [], []
    for number, (name, per_slice) in enumerate(rois.items(), start=1):
        r = Dataset()
        r.ROINumber = number
        r.ReferencedFrameOfReferenceUID = first.FrameOfReferenceUID
        r.ROIName = name
        r.ROIGenerationAlgorithm = "MANUAL"
        roi_items.append(r)
        c = Dataset()
        c.ReferencedROINumber = number
        c.ROIDisplayColor = [255, 0, 0]
        contours = []
        for index, polygons in per_slice.items():
            h = headers[index]
            origin = np.asarray([float(v) for v in h.ImagePositionPatient])
            iop = [float(v) for v in h.ImageOrientationPatient]
            row_dir, col_dir = np.asarray(iop[:3]), np.asarray(iop[3:])
            dr, dc = (float(v) for v in h.PixelSpacing)
            for poly in polygons:
                poly = np.asarray(poly, float)
                world = origin + poly[:, 1:2] * dc * row_dir + poly[:, 0:1] * dr * col_dir
                item = Dataset()
                item.ContourGeometricType = "CLOSED_PLANAR"
                item.NumberOfContourPoints = len(world)
                item.ContourData = [f"{v:.4f}" for v in world.ravel()]
                if reference_images:
                    ref = Dataset()
                    ref.ReferencedSOPClassUID = h.SOPClassUID
                    ref.ReferencedSOPInstanceUID = h.SOPInstanceUID
                    item.ContourImageSequence = DicomSequence([ref])
                contours.append(item)
        c.ContourSequence = DicomSequence(contours)
        contour_items.append(c)
        o = Dataset()
        o.ObservationNumber = number
        o.ReferencedROINumber = number
        o.RTROIInterpretedType = "ORGAN"
        o.ROIInterpreter = ""
        obs.append(o)
    ds.StructureSetROISequence = DicomSequence(roi_items)
    ds.ROIContourSequence = DicomSequence(contour_items)
    ds.RTROIObservationsSequence = DicomSequence(obs)
    _apply_extra(ds, extra_tags)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return path


def series_affine_lps(sources: Sequence[str | Path]) -> np.ndarray:
    """4×4 voxel (col i, row j, slice k) → LPS mm affine of a series given in slice order."""
    import pydicom

    first, last = (pydicom.dcmread(p, stop_before_pixels=True) for p in (sources[0], sources[-1]))
    iop = [float(v) for v in first.ImageOrientationPatient]
    dr, dc = (float(v) for v in first.PixelSpacing)
    p0 = np.asarray([float(v) for v in first.ImagePositionPatient])
    p1 = np.asarray([float(v) for v in last.ImagePositionPatient])
    step = (p1 - p0) / max(len(sources) - 1, 1)
    out = np.eye(4)
    out[:3, 0] = np.asarray(iop[:3]) * dc
    out[:3, 1] = np.asarray(iop[3:]) * dr
    out[:3, 2] = step
    out[:3, 3] = p0
    return out


def write_nifti_mask(path: str | Path, volume: np.ndarray, affine_lps: np.ndarray) -> Path:
    """A NIfTI label volume with nibabel: ``volume`` indexed (i, j, k) by ``affine_lps``
    (DICOM LPS), stored with the RAS affine NIfTI uses."""
    import nibabel as nib

    ras = np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine_lps
    img = nib.Nifti1Image(np.asarray(volume, np.uint8), ras)
    img.set_qform(ras, code=1)
    img.set_sform(ras, code=1)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))
    return path
