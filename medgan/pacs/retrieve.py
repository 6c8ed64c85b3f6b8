"""Retrieve series into the private cache: parallel, resumable, cancellable, all-or-nothing.

:func:`retrieve_series` lists each series' instances, skips those an interrupted retrieve
already wrote, fetches the rest (DIMSE: C-GET batches over ``profile.workers`` associations at
once; DICOMweb: one WADO-RS stream per series, or parallel per-instance requests when most of
the series is already cached), then marks the series complete by renaming its folder
(:mod:`medgan.pacs.cache`). ``progress(done, total)`` counts instances; ``cancel`` stops every
transfer within about a second (the partial folder stays for a later resume).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from pathlib import Path

from medgan.core.errors import Cancelled
from medgan.pacs.cache import SeriesCache, cache_root
from medgan.pacs.client import PacsClient, close_client, open_client, resolve_secret
from medgan.pacs.dicomweb import DicomWebClient
from medgan.pacs.profiles import Profile
from medgan.pacs.records import PacsError, RetrieveOutcome, SeriesRef, step_error

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
DIMSE_BATCH = 50  # instances per C-GET / C-MOVE request
WEB_BATCH = 25  # instances per WADO-RS worker task


def _batches(items: Sequence[str], size: int) -> list[list[str]]:
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


class _Linked(threading.Event):
    """An event that also reads as set when ``outer`` (the caller's cancel) is set."""

    def __init__(self, outer: threading.Event) -> None:
        super().__init__()
        self._outer = outer

    def is_set(self) -> bool:
        return super().is_set() or self._outer.is_set()


class _Counter:
    """Thread-safe instance counter that reports progress."""

    def __init__(self, total: int, progress: ProgressFn | None) -> None:
        self.total = total
        self.done = 0
        self._progress = progress
        self._lock = threading.Lock()

    def add(self, n: int = 1) -> None:
        with self._lock:
            self.done += n
            if self._progress is not None:
                self._progress(self.done, self.total)


def _transfer(
    profile: Profile,
    secret: str | None,
    ref: SeriesRef,
    missing: list[str],
    cache: SeriesCache,
    counter: _Counter,
    cancel: threading.Event,
    workers: int,
    stream: bool = False,
) -> int:
    """Fetch ``missing`` into the partial folder with up to ``workers`` parallel clients.

    DICOMweb with ``stream``: one WADO-RS multipart stream for the series, keeping the missing
    instances (measured 4x faster than parallel per-instance requests, docs/benchmarks.md).
    """

    def sink(uid: str, data: bytes) -> None:
        try:
            cache.write(uid, data)
        except OSError as exc:
            raise PacsError(
                f"A retrieved file cannot be written to the cache {cache.root} "
                f"({exc.strerror or exc}).",
                advice="Free some disk space or set MEDGAN_PACS_CACHE to another folder; "
                "the retrieve resumes where it stopped.",
            ) from exc
        counter.add()

    size = DIMSE_BATCH if profile.kind == "dimse" else WEB_BATCH
    batches = _batches(missing, max(1, min(size, -(-len(missing) // workers))))
    if profile.kind == "dicomweb" and len(missing) > 1 and (workers == 1 or stream):
        client = DicomWebClient(profile, secret)
        try:
            count = client.fetch_series(ref, set(missing), sink, cancel)
        finally:
            client.close()
        if count < len(missing) and not cancel.is_set():
            raise step_error(
                profile.server,
                "WADO-RS series retrieve",
                f"the reply ended after {count} of {len(missing)} instances (truncated)",
                "Try again; the retrieve resumes where it stopped.",
            )
        return count

    local = threading.local()
    clients: list[PacsClient] = []
    clients_lock = threading.Lock()

    def task(batch: list[str]) -> int:
        if cancel.is_set():
            raise Cancelled("The retrieve was cancelled.")
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = open_client(profile, secret)
            with clients_lock:
                clients.append(client)
        return client.fetch(ref, batch, sink, cancel)

    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="medgan-pacs")
    try:
        futures = [pool.submit(task, b) for b in batches]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        failed = [f for f in done if f.exception() is not None]
        if failed:
            cancel_local = failed[0].exception()
            cancel.set()  # stop the other transfers at their next instance
            wait(futures)
            assert cancel_local is not None
            raise cancel_local
        return sum(f.result() for f in futures)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for c in clients:
            close_client(c)


def retrieve_series(
    profile: Profile,
    refs: Sequence[SeriesRef],
    *,
    secret: str | None = None,
    root: Path | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
    workers: int | None = None,
    stream: bool | None = None,
) -> RetrieveOutcome:
    """Retrieve every series of ``refs`` into the cache; return their complete folders.

    ``stream`` (DICOMweb only): True always streams whole series, False always sends parallel
    per-instance requests, None (default) streams unless over 3/4 of the series is cached.
    """
    started = time.monotonic()
    cancel = cancel if cancel is not None else threading.Event()
    inner = _Linked(cancel)  # set by the caller's cancel or by a failing worker
    workers = max(1, workers or profile.workers)
    if profile.kind == "dimse" and profile.dimse.retrieve == "move":
        workers = 1  # one storage SCP on one port receives the C-MOVE sub-operations
    secret = resolve_secret(profile, secret)
    root = root if root is not None else cache_root()
    outcome = RetrieveOutcome()
    refs = list(dict.fromkeys(refs))  # the same series twice is retrieved once
    lister = open_client(profile, secret)
    plans: list[tuple[SeriesRef, SeriesCache, list[str]]] = []
    try:
        for ref in refs:
            if cancel.is_set():
                raise Cancelled("The retrieve was cancelled.")
            cache = SeriesCache(root, profile.name, ref)
            if cache.is_complete():
                plans.append((ref, cache, []))
                continue
            plans.append((ref, cache, lister.list_instances(ref)))
    finally:
        close_client(lister)
    total = sum(len(uids) if not c.is_complete() else c.complete_count() for _, c, uids in plans)
    counter = _Counter(total, progress)
    counter.add(0)

    try:
        for ref, cache, uids in plans:
            if cache.is_complete():
                n = cache.complete_count()
                outcome.reused += n
                counter.add(n)
                outcome.folders.append(str(cache.final))
                continue
            if not uids:
                log.warning("A series of %s has no instances; skipped", profile.server)
                continue
            cache.start()
            present = cache.present(uids)
            missing = [u for u in uids if u not in present]
            if present:
                log.info(
                    "Resuming a series: %d of %d instances already cached", len(present), len(uids)
                )
                outcome.reused += len(present)
                counter.add(len(present))
            fetched = 0
            if missing:
                # Stream the series unless most of it is already cached (a resume).
                whole = len(missing) * 4 > len(uids) if stream is None else stream
                fetched = _transfer(
                    profile, secret, ref, missing, cache, counter, inner, workers, whole
                )
            if cancel.is_set():
                raise Cancelled("The retrieve was cancelled.")
            outcome.fetched += fetched
            outcome.folders.append(str(cache.finish(uids, profile=profile.name, fetched=fetched)))
    except Cancelled:
        log.info(
            "Retrieve from %s cancelled after %d of %d instances",
            profile.server,
            counter.done,
            total,
        )
        raise Cancelled(
            "The retrieve was cancelled; what was received is kept for a resume."
        ) from None
    outcome.seconds = time.monotonic() - started
    log.info(
        "Retrieved %d series from %s: %d instances fetched, %d reused, %.1f s",
        len(outcome.folders),
        profile.server,
        outcome.fetched,
        outcome.reused,
        outcome.seconds,
    )
    return outcome
