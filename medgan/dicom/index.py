"""Scan a folder tree of DICOM files into patients → studies → series of sorted 2D images.

The walk lists every regular file; a header-only pass (parallel threads) classifies each
one as image, non-image object, DICOMDIR, non-DICOM, or a problem with a reason; images are
grouped by SeriesInstanceUID, multi-frame objects split into frames, and each series sorted
anatomically. Every file is accounted for exactly once::

    n_files == len(image files) + len(problems) + len(skipped_non_image)
               + skipped_non_dicom + len(dicomdir)

Example:
    >>> result = scan_folder("/media/cdrom")                     # doctest: +SKIP
    >>> [(s.modality, s.n_images, s.trainable) for s in result.series]  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path

from medgan.core.errors import Cancelled, DicomError
from medgan.dicom.headers import read_header
from medgan.dicom.pixels import stored_range
from medgan.dicom.records import FileHeader, ImageRef, Problem, ScanResult, SeriesRecord
from medgan.dicom.sorting import natural_key, sort_images

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
_CHUNK = 16  # files per header task: small enough that cancel is honoured quickly
_MIN_TRAIN_SIZE = 16
_LABEL_SUFFIXES = (".csv", ".nii", ".nii.gz")
_COLOUR = {
    "RGB",
    "YBR_FULL",
    "YBR_FULL_422",
    "YBR_ICT",
    "YBR_RCT",
    "YBR_PARTIAL_420",
    "PALETTE COLOR",
}


def default_workers() -> int:
    """Header reading is part I/O, part Python: a few threads more than cores pays off."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def _check_root(root: str | os.PathLike[str]) -> str:
    text = os.fspath(root)
    path = Path(text)
    if not path.exists():
        raise DicomError(
            f"The folder {text} does not exist.", advice="Check the path and try again."
        )
    if not path.is_dir():
        raise DicomError(
            f"{text} is not a folder.", advice="Choose the folder that holds the DICOM files."
        )
    try:
        with os.scandir(text):
            pass
    except OSError as exc:
        raise DicomError(
            f"The folder {text} cannot be read ({exc.strerror or exc}).",
            advice="Check its permissions, or copy it somewhere you can read.",
        ) from exc
    return text


def _walk(root: str, cancel: threading.Event | None, unreadable: list[str]) -> Iterator[str]:
    """Every regular file under ``root`` (paths joined onto ``root`` as given), cancellable."""
    stack = [root]
    while stack:
        if cancel is not None and cancel.is_set():
            raise Cancelled("The folder scan was cancelled.")
        folder = stack.pop()
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            unreadable.append(folder)
            continue
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    subdirs.append(entry.path)
                elif entry.is_file():
                    yield entry.path
            except OSError:
                unreadable.append(entry.path)
        stack.extend(reversed(subdirs))


def _read_chunk(paths: list[str], cancel: threading.Event | None) -> list[FileHeader] | None:
    out = []
    for p in paths:
        if cancel is not None and cancel.is_set():
            return None
        out.append(read_header(p))
    return out


def _header_pass(
    files: list[str],
    progress: Progress | None,
    cancel: threading.Event | None,
    workers: int,
) -> list[FileHeader]:
    total = len(files)
    chunks = [files[i : i + _CHUNK] for i in range(0, total, _CHUNK)]
    results: list[list[FileHeader] | None] = [None] * len(chunks)
    done, last = 0, 0.0
    if progress is not None:
        progress(0, total)
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medgan-scan")
    pending: dict[Future[list[FileHeader] | None], int] = {}
    next_chunk = 0
    try:
        while next_chunk < len(chunks) or pending:
            while next_chunk < len(chunks) and len(pending) < 4 * workers:
                fut = pool.submit(_read_chunk, chunks[next_chunk], cancel)
                pending[fut] = next_chunk
                next_chunk += 1
            finished, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            if cancel is not None and cancel.is_set():
                raise Cancelled("The folder scan was cancelled.")
            for fut in finished:
                index = pending.pop(fut)
                results[index] = fut.result()
                done += len(chunks[index])
            now = time.monotonic()
            if progress is not None and finished and (now - last > 0.05 or done == total):
                last = now
                progress(done, total)
    finally:
        for fut in pending:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
    return [h for chunk in results for h in (chunk or [])]


def scan_folder(
    root: str | os.PathLike[str],
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Index every file under ``root``; see the module docstring for what comes back.

    Args:
        progress: called as ``progress(done, total)`` with files read so far.
        cancel: when set, the scan stops within a second and raises ``Cancelled``.
        workers: header-reading threads (default: a few more than CPU cores).

    Raises:
        DicomError: the folder is missing or unreadable, or holds no usable DICOM image.
    """
    text_root = _check_root(root)
    started = time.monotonic()
    unreadable: list[str] = []
    files = list(_walk(text_root, cancel, unreadable))
    headers = _header_pass(files, progress, cancel, max(1, workers or default_workers()))
    result = assemble(text_root, headers)
    result.unreadable_folders = unreadable
    log.info(
        "Scanned %d files in %.1f s: %d series, %d problems, %d non-image objects, "
        "%d non-DICOM files",
        result.n_files,
        time.monotonic() - started,
        len(result.series),
        len(result.problems),
        len(result.skipped_non_image),
        result.skipped_non_dicom,
    )
    raise_if_empty(result)
    _warm_up_decoders(result)
    return result


def _warm_up_decoders(result: ScanResult) -> None:
    """Start decoding processes now when many JPEG-family files will need them soon."""
    from medgan.dicom.parallel import (
        PROCESS_MIN_PIXELS,
        codec_pixels,
        default_processes,
        worker_pool,
    )

    n_procs = default_processes()
    if n_procs == 0:
        return
    if codec_pixels([ref for s in result.series for ref in s.images]) >= PROCESS_MIN_PIXELS:
        worker_pool(n_procs)


def raise_if_empty(result: ScanResult) -> None:
    """Raise a clear ``DicomError`` when a folder holds no files, or no DICOM file at all.

    A folder whose DICOM files are all unusable is not an error: the result lists each
    file's reason, which is what the user needs to see.
    """
    if result.n_files == 0:
        raise DicomError(
            f"The folder {result.root} holds no files.",
            advice="Choose the folder that holds the DICOM images.",
        )
    if result.skipped_non_dicom == result.n_files:
        raise DicomError(
            f"No DICOM files found in {result.root} ({result.n_files} other files).",
            advice="Choose the folder that holds the DICOM images (e.g. the CD's root).",
        )


def assemble(root: str, headers: list[FileHeader]) -> ScanResult:
    """Group classified files into sorted series; record a reason for every unusable file."""
    result = ScanResult(root=root, n_files=len(headers))
    images: list[FileHeader] = []
    for head in headers:
        if head.kind == "non_dicom":
            result.skipped_non_dicom += 1
            if head.path.lower().endswith(_LABEL_SUFFIXES):
                result.label_files.append(head.path)
        elif head.kind == "dicomdir":
            result.dicomdir.append(head.path)
        elif head.kind == "non_image":
            result.skipped_non_image.append(Problem(head.path, head.reason))
            if head.label_object is not None:
                result.label_objects.append(head.label_object)
        elif head.kind == "problem":
            result.problems.append(Problem(head.path, head.reason))
        else:
            images.append(head)
    if result.dicomdir:
        log.info("DICOMDIR index found; not needed, every file under the folder is read instead")
    images.sort(key=lambda h: natural_key(h.path))
    seen: dict[str, FileHeader] = {}
    groups: dict[str, list[FileHeader]] = {}
    clashes: dict[str, list[str]] = {}  # series uid → notes
    ungrouped: dict[str, int] = {}
    for head in images:
        if not head.series_uid:
            head.series_uid = _series_for_orphan(head)
            ungrouped[head.series_uid] = ungrouped.get(head.series_uid, 0) + 1
            result.notices.append(
                Problem(
                    head.path,
                    "image without a SeriesInstanceUID; grouped with images of "
                    "the same study, modality, frame of reference, orientation and size",
                )
            )
        uid = head.sop_instance_uid
        if uid and uid in seen:
            first = seen[uid]
            if _same_pixels(first, head):
                result.problems.append(
                    Problem(
                        head.path,
                        f"duplicate copy of {first.path} (same SOP Instance UID "
                        "and pixels); left out",
                    )
                )
                continue
            note = (
                f"SOP Instance UID clash: {head.path} and {first.path} share a UID but "
                "hold different images; both kept"
            )
            result.notices.append(Problem(head.path, note))
            for series_uid in {first.series_uid, head.series_uid}:
                clashes.setdefault(series_uid, []).append(note)
        elif uid:
            seen[uid] = head
        groups.setdefault(head.series_uid, []).append(head)
    for uid, members in groups.items():
        series = _build_series(uid, members, result.problems)
        if uid in ungrouped:
            series.warnings.insert(
                0,
                f"{ungrouped[uid]} image(s) have no SeriesInstanceUID: grouped by study, "
                "modality, frame of reference, orientation and size",
            )
        series.warnings.extend(clashes.get(uid, []))
        result.series.append(series)
    result.series.sort(
        key=lambda s: (s.patient_id, s.study_date, s.study_uid, s.series_number or 0, s.series_uid)
    )
    return result


def _series_for_orphan(head: FileHeader) -> str:
    """A stable series UID for images that name none, from what makes them one stack."""
    from pydicom.uid import generate_uid

    ref = head.images[0]
    orientation = tuple(round(v, 3) for v in ref.orientation) if ref.orientation else None
    key = (
        head.study_uid,
        head.modality,
        head.frame_of_reference_uid,
        orientation,
        ref.rows,
        ref.cols,
    )
    return str(generate_uid(entropy_srcs=["medgan-orphan-series", repr(key)]))


def _same_pixels(a: FileHeader, b: FileHeader) -> bool:
    """Byte- or pixel-identical copies (e.g. one instance in two transfer syntaxes)."""
    if [(r.rows, r.cols) for r in a.images] != [(r.rows, r.cols) for r in b.images]:
        return False
    try:
        if os.path.getsize(a.path) == os.path.getsize(b.path):
            with open(a.path, "rb") as fa, open(b.path, "rb") as fb:
                if fa.read() == fb.read():
                    return True
    except OSError:
        return True
    import numpy as np

    from medgan.dicom.decode import read_image

    for ra, rb in zip(a.images, b.images, strict=True):
        try:
            if not np.array_equal(read_image(ra), read_image(rb)):
                return False
        except Exception:  # noqa: BLE001 - cannot tell: treat as the copy it claims to be
            return True
    return True


def _build_series(uid: str, members: list[FileHeader], problems: list[Problem]) -> SeriesRecord:
    warnings: list[str] = []
    sizes = Counter((h.images[0].rows, h.images[0].cols) for h in members for _ in h.images)
    main_size = max(sizes, key=lambda s: (sizes[s], s[0] * s[1]))
    if len(sizes) > 1:
        kept = []
        for h in members:
            size = (h.images[0].rows, h.images[0].cols)
            if size == main_size:
                kept.append(h)
            else:
                problems.append(
                    Problem(
                        h.path,
                        f"image size {size[0]}×{size[1]} differs from the rest of its series "
                        f"({main_size[0]}×{main_size[1]}); left out",
                    )
                )
        warnings.append(
            f"mixed image sizes in one series: {len(members) - len(kept)} file(s) not of size "
            f"{main_size[0]}×{main_size[1]} left out (see problems)"
        )
        members = kept
    refs: list[ImageRef] = [ref for h in members for ref in h.images]
    ordered = sort_images(refs)
    first_path = ordered.images[0].path
    first = next(h for h in members if h.path == first_path)
    record = SeriesRecord(
        series_uid=uid,
        study_uid=first.study_uid,
        patient_id=first.patient_id,
        patient_name=first.patient_name,
        modality=first.modality,
        description=first.series_description,
        study_description=first.study_description,
        study_date=first.study_date,
        series_number=first.series_number,
        rows=main_size[0],
        cols=main_size[1],
        images=ordered.images,
        pixel_spacing=first.pixel_spacing,
        slice_spacing=ordered.slice_spacing,
        orientation=ordered.orientation,
        photometric=ordered.images[0].photometric,
        transfer_syntax=ordered.images[0].transfer_syntax,
        warnings=warnings + ordered.warnings,
        frame_of_reference_uid=first.frame_of_reference_uid,
        sop_class_uid=first.sop_class_uid,
        sorted_by=ordered.sorted_by,
    )
    if record.slice_spacing is None and len(ordered.images) == 1 and first.slice_thickness:
        record.slice_spacing = first.slice_thickness
    record.window = _series_window(members, ordered.images[0])
    if len({h.study_uid for h in members}) > 1:
        record.warnings.append("the series' files name more than one study")
    if any(ref.photometric in _COLOUR for ref in ordered.images):
        record.warnings.append("colour images are converted to grayscale (luminance)")
    if min(record.rows, record.cols) < _MIN_TRAIN_SIZE:
        record.trainable = False
        record.reason = (
            f"images are only {record.rows}×{record.cols} pixels; at least "
            f"{_MIN_TRAIN_SIZE}×{_MIN_TRAIN_SIZE} are needed to train"
        )
    return record


def _series_window(members: list[FileHeader], ref: ImageRef) -> tuple[float, float] | None:
    """The first WindowCenter/Width found, flipped for MONOCHROME1 (decode inverts pixels)."""
    window = next((h.window for h in members if h.window is not None), None)
    if window is None or ref.photometric != "MONOCHROME1":
        return window

    lo, hi = stored_range(ref)
    a = ref.rescale_slope * lo + ref.rescale_intercept
    b = ref.rescale_slope * hi + ref.rescale_intercept
    return (a + b - window[0], window[1])
