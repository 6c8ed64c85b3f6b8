"""Parallel decoding: threads for native pixel data, worker processes for codecs.

Native pixel data is read by threads (file I/O and numpy release the GIL). The codec plugins
(JPEG, JPEG-LS, JPEG 2000) hold the GIL, so compressed files are decoded in worker processes
(:mod:`medgan.dicom.decode_worker`, started with ``python -m``: no ``__main__`` re-import, safe
next to Qt threads, no pickle). Workers start lazily, are reused across calls and exit with
their parent. A codec that crashes its worker costs one file, never the app.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from pathlib import Path
from typing import IO

import numpy as np

from medgan.core.errors import Cancelled, DicomError
from medgan.dicom import pixels
from medgan.dicom.decode_worker import ref_to_json
from medgan.dicom.records import ImageRef

log = logging.getLogger(__name__)

#: Below this much JPEG-family work (pixels), starting processes (~0.5 s) costs more than
#: it saves: about 64 slices of 512x512 at ~20 ms each.
PROCESS_MIN_PIXELS = 64 * 512 * 512

Task = tuple[str, list[tuple[int, ImageRef]]]

# Fast enough in a thread (pylibjpeg-rle, zlib release the GIL or are cheap): not worth a pipe.
_LIGHT_SYNTAXES = {"1.2.840.10008.1.2.5", "1.2.840.10008.1.2.1.99"}


def needs_codec_process(ref: ImageRef) -> bool:
    """True for images whose decoding is codec-bound and holds the GIL (JPEG family)."""
    from pydicom.uid import UID

    return UID(ref.transfer_syntax).is_encapsulated and ref.transfer_syntax not in _LIGHT_SYNTAXES


def codec_pixels(refs: list[ImageRef]) -> int:
    """Pixels among ``refs`` that need codec-bound decoding."""
    return sum(r.rows * r.cols for r in refs if needs_codec_process(r))


def default_processes() -> int:
    """Worker processes for codec-bound decoding: one per core, none on a single core.

    None either in a frozen app, whose executable is the app itself, not Python.
    """
    if getattr(sys, "frozen", False):
        return 0
    if hasattr(os, "sched_getaffinity"):
        cores = len(os.sched_getaffinity(0))
    else:  # pragma: no cover - macOS / Windows
        cores = os.cpu_count() or 1
    return 0 if cores < 2 else min(cores, 8)


class _Worker:
    """One ``decode_worker`` subprocess and its pipes."""

    def __init__(self) -> None:
        env = dict(os.environ)
        package_root = str(Path(__file__).resolve().parents[2])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "medgan.dicom.decode_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )

    def decode(self, path: str, refs: list[ImageRef]) -> np.ndarray:

        assert self.proc.stdin is not None and self.proc.stdout is not None
        request = {"path": path, "refs": [ref_to_json(r) for r in refs]}
        try:
            self.proc.stdin.write(json.dumps(request).encode() + b"\n")
            self.proc.stdin.flush()
            if not _readable_within(self.proc.stdout, DECODE_TIMEOUT_S):
                self.proc.kill()
                raise _WorkerHung
            line = self.proc.stdout.readline()
            if not line:
                raise BrokenPipeError
            header = json.loads(line)
            if not header["ok"]:
                raise DicomError(str(header["error"]))
            shape = tuple(header["shape"])
            nbytes = int(np.prod(shape)) * 4
            payload = self.proc.stdout.read(nbytes)
            if len(payload) != nbytes:
                raise BrokenPipeError
        except (BrokenPipeError, OSError, ValueError) as exc:
            raise _WorkerDied from exc
        return np.frombuffer(payload, dtype=np.float32).reshape(shape)

    def close(self) -> None:
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
            self.proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class _WorkerDied(Exception):
    pass


class _WorkerHung(_WorkerDied):
    pass


#: A codec that takes longer than this on one file is stuck (malformed data): give up on it.
DECODE_TIMEOUT_S = 120.0


def _readable_within(stream: IO[bytes], timeout: float) -> bool:
    """Wait until ``stream`` has data (POSIX select); elsewhere just trust the codec."""
    if os.name != "posix":  # pragma: no cover
        return True
    import select

    ready, _, _ = select.select([stream], [], [], timeout)
    return bool(ready)


class WorkerPool:
    """A fixed number of decoding workers, handed out to threads one at a time."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: queue.Queue[_Worker] = queue.Queue()
        for _ in range(size):
            self._idle.put(_Worker())
        log.debug("started %d decoding processes", size)

    def decode(self, path: str, refs: list[ImageRef]) -> np.ndarray:
        worker = self._idle.get()
        try:
            return worker.decode(path, refs)
        except _WorkerDied as exc:
            worker.close()
            worker = _Worker()
            what = (
                f"did not finish within {DECODE_TIMEOUT_S:g} s"
                if isinstance(exc, _WorkerHung)
                else "crashed"
            )
            raise DicomError(
                f"{path}: the decoder {what} on this file.",
                advice="Leave this image out, or convert the file with another tool.",
            ) from None
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get_nowait().close()


_lock = threading.Lock()
_pool: WorkerPool | None = None


def worker_pool(size: int) -> WorkerPool:
    """The shared pool with ``size`` workers (restarted when the size changes)."""
    global _pool
    with _lock:
        if _pool is None or _pool.size != size:
            if _pool is not None:
                _pool.close()
            _pool = WorkerPool(size)
        return _pool


def close_pool() -> None:
    """Stop the worker processes (also done at exit)."""
    global _pool
    with _lock:
        if _pool is not None:
            _pool.close()
        _pool = None


atexit.register(close_pool)


def run_tasks(
    tasks: list[Task],
    out: np.ndarray,
    n_threads: int,
    n_processes: int,
    progress: Callable[[int, int], None] | None,
    cancel: threading.Event | None,
) -> None:
    """Decode every (path, [(output index, ref)]) task into ``out``.

    Native files are read by threads straight into ``out``; with ``n_processes`` > 0,
    JPEG-family files are sent to worker processes and their pixels copied in. At most a few
    tasks per worker are in flight, so cancelling never waits on a long queue.
    """
    total = sum(len(items) for _, items in tasks)
    pool = worker_pool(n_processes) if n_processes > 0 else None
    threads = ThreadPoolExecutor(
        max_workers=n_threads + n_processes, thread_name_prefix="medgan-decode"
    )
    pending: dict[Future[None], Task] = {}
    todo = iter(tasks)
    limit = 4 * (n_threads + n_processes)
    done, last_report = 0, 0.0

    def remote(path: str, items: list[tuple[int, ImageRef]]) -> None:
        assert pool is not None
        if cancel is not None and cancel.is_set():
            return
        out[[i for i, _ in items]] = pool.decode(path, [r for _, r in items])

    def submit(task: Task) -> None:
        path, items = task
        if pool is not None and any(needs_codec_process(ref) for _, ref in items):
            pending[threads.submit(remote, path, items)] = task
        else:
            pending[threads.submit(pixels.decode_file, path, items, out, cancel)] = task

    try:
        for task in todo:
            submit(task)
            if len(pending) >= limit:
                break
        while pending:
            finished, _ = wait(pending, timeout=0.1, return_when=FIRST_COMPLETED)
            if cancel is not None and cancel.is_set():
                raise Cancelled("Loading the series was cancelled.")
            for fut in finished:
                _, items = pending.pop(fut)
                fut.result()
                done += len(items)
                nxt = next(todo, None)
                if nxt is not None:
                    submit(nxt)
            now = time.monotonic()
            if progress is not None and finished and (now - last_report > 0.05 or done == total):
                last_report = now
                progress(done, total)
        if cancel is not None and cancel.is_set():
            raise Cancelled("Loading the series was cancelled.")
    finally:
        for fut in pending:
            fut.cancel()
        threads.shutdown(wait=True, cancel_futures=True)
