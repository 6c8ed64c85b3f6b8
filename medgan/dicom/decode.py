"""Reading images and series: one image by reference, or a whole series in order, in parallel.

The per-file decoding lives in :mod:`medgan.dicom.pixels`; worker threads and processes in
:mod:`medgan.dicom.parallel`.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence

import numpy as np

from medgan.core.errors import Cancelled, DicomError
from medgan.dicom import pixels
from medgan.dicom.headers import read_header
from medgan.dicom.parallel import (
    PROCESS_MIN_PIXELS,
    codec_pixels,
    default_processes,
    run_tasks,
)
from medgan.dicom.pixels import decoder_problem
from medgan.dicom.records import ImageRef, SeriesRecord

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


def complete_ref(ref: ImageRef) -> ImageRef:
    """``ref`` itself when it carries the decoding facts, else one rebuilt from its header.

    Lets callers decode an ``ImageRef(path=..., frame=...)`` they built by hand.
    """
    if ref.rows > 0 and ref.transfer_syntax:
        return ref
    head = read_header(ref.path)
    if head.kind != "image":
        raise DicomError(f"{ref.path}: {head.reason or 'not a DICOM image'}.")
    for candidate in head.images:
        if (candidate.frame or 0) == (ref.frame or 0):
            return candidate
    raise DicomError(f"{ref.path}: frame {ref.frame} does not exist.")


def read_image(ref: ImageRef) -> np.ndarray:
    """One 2D image as float32 (rows, cols) in modality units; ``DicomError`` with the reason."""
    ref = complete_ref(ref)
    problem = decoder_problem(
        ref.transfer_syntax,
        ref.photometric,
        ref.samples_per_pixel,
        ref.bits_allocated or 8,
        ref.bits_stored,
    )
    if problem:
        raise DicomError(f"{ref.path}: {problem}.")
    out = np.empty((1, ref.rows, ref.cols), dtype=np.float32)
    pixels.decode_file(ref.path, [(0, ref)], out, None)
    return out[0]


def default_workers() -> int:
    """Threads for decoding: I/O and codecs release the GIL, so a few more than cores."""
    return max(2, min(8, 2 * (os.cpu_count() or 1)))


def load_series(
    series: SeriesRecord,
    indices: Sequence[int] | None = None,
    *,
    progress: Progress | None = None,
    cancel: threading.Event | None = None,
    workers: int | None = None,
    processes: int | None = None,
) -> np.ndarray:
    """Decode a series (or the images at ``indices``) into float32 (N, rows, cols), in order.

    The output is allocated once and filled in place: native pixel data by a thread pool
    (``workers``), compressed files by worker processes (``processes``; default: one per
    core when there are many compressed files, 0 = threads only). Frames from one
    multi-frame file are decoded together. Raises ``Cancelled`` within a fraction of a second
    of ``cancel`` being set, ``DicomError`` naming the first file that cannot be decoded.
    """
    picked = list(range(series.n_images)) if indices is None else [int(i) for i in indices]
    refs = []
    for i in picked:
        if not -series.n_images <= i < series.n_images:
            raise DicomError(f"Image index {i} is out of range (the series has {series.n_images}).")
        refs.append(complete_ref(series.images[i]))
    if not refs:
        return np.empty((0, series.rows, series.cols), dtype=np.float32)
    shapes = {(r.rows, r.cols) for r in refs}
    if len(shapes) > 1:
        raise DicomError(
            "The chosen images have different sizes and cannot be stacked.",
            advice="Pick images of one size.",
        )
    rows, cols = shapes.pop()
    out = np.empty((len(refs), rows, cols), dtype=np.float32)
    by_file: dict[str, list[tuple[int, ImageRef]]] = {}
    for i, ref in enumerate(refs):
        by_file.setdefault(ref.path, []).append((i, ref))
    tasks = list(by_file.items())
    n_workers = max(1, workers or default_workers())
    n_codec = codec_pixels(refs)
    if processes is None:
        processes = default_processes() if n_codec >= PROCESS_MIN_PIXELS else 0
    if processes == 0 and (n_workers == 1 or len(tasks) == 1):
        done = 0
        for path, items in tasks:
            _check(cancel)
            pixels.decode_file(path, items, out, cancel)
            done += len(items)
            if progress is not None:
                progress(done, len(refs))
        _check(cancel)
        return out
    run_tasks(tasks, out, n_workers, processes if n_codec else 0, progress, cancel)
    return out


def _check(cancel: threading.Event | None) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled("Loading the series was cancelled.")
