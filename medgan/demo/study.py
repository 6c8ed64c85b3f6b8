"""The demo study: a procedurally generated head-CT DICOM study that ships with no data.

:func:`write_demo_study` renders one :mod:`medgan.demo.phantom` head per synthetic patient and
writes it as a CT Image Storage series (int16, rescale slope 1 / intercept -1024, HU) with
valid, seed-derived UIDs, consistent geometry, brain window and fake, non-identifying names.
Ground truth comes with it: a DICOM SEG per series with one segment per lesion kind
(``DEMOnn/SEG_LESIONS/SEG00001.dcm``, :mod:`medgan.demo.seg_writer`) and a slice-level
``labels.csv`` (``sop_instance_uid,label``; ``none`` for slices without a lesion).
The same seed and settings give byte-identical files (with the same numpy, scipy and
pydicom versions; another CPU's maths library could move a rare voxel by 1 HU).
:func:`ensure_demo_study` keeps one copy in the user's cache for the app's "Open demo study"
and the README's run command.

Example::

    from medgan.demo.study import ensure_demo_study
    folder = ensure_demo_study()          # ~/.cache/medgan-studio/demo-v2
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import shutil
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from medgan.core.errors import Cancelled, ExportError, MedganError
from medgan.demo.lesion_masks import lesion_label_volume
from medgan.demo.params import LESION_KINDS
from medgan.demo.phantom import HeadParams, random_head, render_head
from medgan.demo.seg_writer import lesion_seg, slice_labels

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

DEMO_VERSION = 3  # 2: 12 patients, lesion SEGs and labels.csv; 3: skull base, cerebellum
DEFAULT_PATIENTS = 12
DEFAULT_SLICES = 56
LABELS_CSV = "labels.csv"
CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"
EXPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2.1"
RESCALE_INTERCEPT = -1024
COVERAGE_MM = 140.0  # skull base region to vertex, whatever the number of slices
FOVS_MM = (224.0, 232.0, 240.0, 248.0)
ProgressFn = Callable[[int, int], None]


@dataclass(frozen=True)
class DemoPatient:
    """Acquisition and identity of one synthetic patient (all fake, derived from the seed)."""

    index: int  # 0-based
    head: HeadParams
    pixel_spacing: float
    slice_spacing: float
    first_z: float
    study_date: str
    birth_date: str
    sex: str


def demo_uid(seed: int, *parts: object) -> str:
    """A valid, deterministic UID under pydicom's root for one demo object."""
    from pydicom.uid import generate_uid

    # One joined source: pydicom concatenates the list, so (1, 19) and (11, 9) would collide.
    text = "/".join(["medgan-demo", str(DEMO_VERSION), str(seed), *map(str, parts)])
    return str(generate_uid(entropy_srcs=[text]))


def demo_patient(seed: int, index: int, *, slices: int, size: int) -> DemoPatient:
    """Draw patient ``index`` of the study with ``seed``; independent of the other patients."""
    rng = np.random.default_rng([seed, index, DEMO_VERSION])
    head = random_head(rng)
    if index < 3 * len(LESION_KINDS):
        # The first 12 patients show each lesion kind three times: every class has examples.
        want = LESION_KINDS[index % len(LESION_KINDS)]
        for _ in range(64):
            if any(les.kind == want for les in head.lesions):
                break
            head = random_head(rng)
    fov = float(rng.choice(FOVS_MM))
    base = dt.date(2021, 1, 4) + dt.timedelta(days=int((seed * 97 + index * 23) % 1400))
    age = int(rng.integers(24, 88))
    birth = base - dt.timedelta(days=365 * age + int(rng.integers(0, 365)))
    return DemoPatient(
        index=index,
        head=head,
        pixel_spacing=round(fov / size, 6),
        slice_spacing=round(COVERAGE_MM / max(slices, 1), 4),
        first_z=round(float(rng.uniform(-45.0, -35.0)), 1),
        study_date=base.strftime("%Y%m%d"),
        birth_date=birth.strftime("%Y%m%d"),
        sex=str(rng.choice(["F", "M"])),
    )


def demo_file_names(n_patients: int, slices_per_patient: int) -> list[str]:
    """Relative paths of every file a demo study with these settings contains."""
    images = [
        f"DEMO{p + 1:02d}/CT_HEAD/IM{k + 1:05d}.dcm"
        for p in range(n_patients)
        for k in range(slices_per_patient)
    ]
    return (
        images
        + [f"DEMO{p + 1:02d}/SEG_LESIONS/SEG00001.dcm" for p in range(n_patients)]
        + [LABELS_CSV]
    )


def _ds(value: float) -> str:
    """Format a decimal string (DS) within its 16-character limit."""
    text = f"{value:.6f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def write_demo_study(
    out_dir: str | os.PathLike[str],
    *,
    seed: int = 0,
    n_patients: int = DEFAULT_PATIENTS,
    slices_per_patient: int = DEFAULT_SLICES,
    size: int = 256,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Write the demo study into ``out_dir`` (which must not exist or be empty); return it.

    The study is built in a temporary sibling folder and renamed into place, so ``out_dir``
    either holds the complete study or nothing. ``progress(done, total)`` counts slices.
    Raises :class:`Cancelled` (leaving nothing behind) when ``cancel`` is set.
    """
    if n_patients < 1 or slices_per_patient < 1 or size < 16:
        raise MedganError(
            f"Invalid demo settings: {n_patients} patients, {slices_per_patient} slices, "
            f"{size} px.",
            advice="Use at least 1 patient, 1 slice and 16 px.",
        )
    out = Path(out_dir).expanduser().absolute()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(
            f"Cannot write the demo study to {out}: it already exists and is not an empty folder.",
            advice="Choose a new or empty folder.",
        )
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.parent / f".{out.name}.partial-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        tmp.mkdir()
    except OSError as exc:
        raise ExportError(
            f"Cannot create the demo study folder next to {out}: {exc}.",
            advice="Check that the location exists and is writable.",
        ) from exc
    total = n_patients * slices_per_patient
    log.info(
        "Writing demo study (%d patients x %d slices of %d px)",
        n_patients,
        slices_per_patient,
        size,
    )
    try:
        done = 0
        rows: list[str] = ["sop_instance_uid,label"]
        for p in range(n_patients):
            _check(cancel)
            patient = demo_patient(seed, p, slices=slices_per_patient, size=size)
            done = _write_patient(
                tmp, seed, patient, slices_per_patient, size, done, total, progress, cancel, rows
            )
        (tmp / LABELS_CSV).write_text("\n".join(rows) + "\n", encoding="utf-8")
        if out.exists():
            out.rmdir()  # empty (checked above); a rename onto it would fail elsewhere
        os.replace(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise ExportError(
            f"Could not write the demo study to {out}: {exc}.",
            advice="Check free disk space and permissions.",
        ) from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("Demo study written: %d files", total)
    return out


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("Demo study generation cancelled; nothing was written.")


def _write_patient(
    root: Path,
    seed: int,
    patient: DemoPatient,
    n: int,
    size: int,
    done: int,
    total: int,
    progress: ProgressFn | None,
    cancel: threading.Event | None,
    label_rows: list[str],
) -> int:
    from pydicom import dcmwrite

    z = patient.first_z + patient.slice_spacing * np.arange(n)
    z = np.round(z, 4)
    hu = render_head(
        patient.head, rows=size, cols=size, pixel_spacing=patient.pixel_spacing, slice_z=z
    )
    stored = np.clip(np.rint(hu) - RESCALE_INTERCEPT, -32768, 32767).astype("<i2")
    lesions = lesion_label_volume(
        patient.head, rows=size, cols=size, pixel_spacing=patient.pixel_spacing, slice_z=z
    )
    folder = root / f"DEMO{patient.index + 1:02d}" / "CT_HEAD"
    folder.mkdir(parents=True)
    sources = []
    for k in range(n):
        _check(cancel)
        # Instance 1 is the top slice, as many scanners number them: file order is not
        # anatomical order, and readers must sort by position.
        instance = n - k
        ds = ct_slice_dataset(seed, patient, k, instance, float(z[k]), size, stored[k])
        dcmwrite(folder / f"IM{instance:05d}.dcm", ds, enforce_file_format=True)
        sources.append(ds)
        done += 1
        if progress is not None:
            progress(done, total)
    p = patient.index

    def uid(*parts: object) -> str:
        return demo_uid(seed, *parts, p)

    seg = lesion_seg(sources, lesions, uid)
    seg_folder = folder.parent / "SEG_LESIONS"
    seg_folder.mkdir()
    seg.save_as(seg_folder / "SEG00001.dcm", enforce_file_format=True)
    for ds, label in zip(sources, slice_labels(lesions), strict=True):
        label_rows.append(f"{ds.SOPInstanceUID},{label}")
    return done


def ct_slice_dataset(
    seed: int, patient: DemoPatient, k: int, instance: int, z: float, size: int, pixels: np.ndarray
) -> Dataset:
    """Slice ``k`` (0 = lowest) of ``patient`` as a CT Image Storage dataset with file meta.

    ``pixels`` are the stored int16 values (HU + 1024); everything else derives from the seed.
    """
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import UID

    p = patient.index
    ps = patient.pixel_spacing
    sop_uid = demo_uid(seed, "image", p, k)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(CT_IMAGE_STORAGE)
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = UID(EXPLICIT_VR_LITTLE_ENDIAN)
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.SOPClassUID = CT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = patient.study_date
    ds.StudyTime = "091500"
    ds.SeriesTime = "091700"
    ds.AcquisitionTime = ds.ContentTime = f"0918{k % 60:02d}"
    ds.AccessionNumber = f"DEMO{seed % 10000:04d}{p + 1:02d}"
    ds.Modality = "CT"
    ds.Manufacturer = "MedGAN Studio"
    ds.ReferringPhysicianName = ""
    ds.StudyDescription = "CT HEAD WITHOUT CONTRAST (SYNTHETIC)"
    ds.SeriesDescription = f"Axial brain {patient.slice_spacing:g} mm (synthetic)"
    ds.ManufacturerModelName = "Procedural head phantom"
    ds.PatientName = f"DEMO^PATIENT{p + 1:02d}"
    ds.PatientID = f"MEDGAN-DEMO-{p + 1:02d}" + (f"-S{seed}" if seed else "")
    ds.PatientBirthDate = patient.birth_date
    ds.PatientSex = patient.sex
    ds.BodyPartExamined = "HEAD"
    ds.SliceThickness = _ds(patient.slice_spacing)
    ds.KVP = "120"
    ds.SpacingBetweenSlices = _ds(patient.slice_spacing)
    ds.PatientPosition = "HFS"
    ds.StudyInstanceUID = demo_uid(seed, "study", p)
    ds.SeriesInstanceUID = demo_uid(seed, "series", p)
    ds.StudyID = f"{p + 1}"
    ds.SeriesNumber = 2
    ds.AcquisitionNumber = 1
    ds.InstanceNumber = instance
    half = (size - 1) / 2.0 * ps
    ds.ImagePositionPatient = [_ds(-half), _ds(-half), _ds(z)]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = demo_uid(seed, "frame", p)
    ds.PositionReferenceIndicator = ""
    ds.SliceLocation = _ds(z)
    ds.ImageComments = "Synthetic image generated by MedGAN Studio; not a real patient."
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = size
    ds.Columns = size
    ds.PixelSpacing = [_ds(ps), _ds(ps)]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.WindowCenter = "40"
    ds.WindowWidth = "80"
    ds.RescaleIntercept = str(RESCALE_INTERCEPT)
    ds.RescaleSlope = "1"
    ds.RescaleType = "HU"
    ds.WindowCenterWidthExplanation = "BRAIN"
    ds.PixelData = np.ascontiguousarray(pixels, dtype="<i2").tobytes()
    return ds


def default_cache_root() -> Path:
    """``$MEDGAN_CACHE`` if set, else ``~/.cache/medgan-studio``."""
    env = os.environ.get("MEDGAN_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "medgan-studio"


def is_complete(
    folder: Path, n_patients: int = DEFAULT_PATIENTS, slices_per_patient: int = DEFAULT_SLICES
) -> bool:
    """True when ``folder`` holds every file of a demo study with these settings."""
    try:
        return all(
            (folder / name).stat().st_size > (1024 if name.endswith(".dcm") else 16)
            for name in demo_file_names(n_patients, slices_per_patient)
        )
    except OSError:
        return False


def ensure_demo_study(
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> Path:
    """Return the cached default demo study, generating it (a few seconds) when missing.

    It lives in ``<cache_dir>/demo-v2`` (``cache_dir`` defaults to :func:`default_cache_root`).
    An incomplete copy (e.g. files deleted by hand) is replaced.
    """
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_root()
    folder = root / f"demo-v{DEMO_VERSION}"
    if is_complete(folder):
        return folder
    if folder.exists():
        log.warning("Demo study cache at %s is incomplete; regenerating it", folder)
        stale = folder.with_name(f".{folder.name}.stale-{os.getpid()}-{uuid.uuid4().hex[:8]}")
        try:
            os.replace(folder, stale)
            shutil.rmtree(stale, ignore_errors=True)
        except OSError as exc:
            raise ExportError(
                f"Cannot replace the incomplete demo study at {folder}: {exc}.",
                advice="Delete that folder and try again.",
            ) from exc
    try:
        return write_demo_study(folder, progress=progress, cancel=cancel)
    except ExportError:
        if is_complete(folder):  # another process finished it first
            return folder
        raise
