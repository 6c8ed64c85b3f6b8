"""Background jobs: a QObject worker moved to a QThread, and a registry to stop them all.

The pattern (see docs/architecture.md): a worker calls a plain function that takes
``progress`` and ``cancel`` keyword arguments; every exception becomes ``failed(message,
advice)``; ``finished`` is emitted ALWAYS, last. Cancelling is a direct method call that sets a
``threading.Event`` (a queued signal would never reach a busy thread). Only numpy arrays and
plain values cross the thread boundary.

Connect to the :class:`WorkerHandle` returned by :func:`start_worker`, not to the worker: the
handle lives in the UI thread, so every slot (lambdas included) runs in the UI thread.

Example::

    handle = start_worker(FunctionWorker(scan_folder, root), self,
                          on_result=self.show_scan, on_failed=self.show_error)
    cancel_button.clicked.connect(handle.cancel)
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Qt, QThread, Signal, Slot

from medgan.core.errors import Cancelled, MedganError
from ui.warmup import ensure_data_stack

log = logging.getLogger(__name__)

MAX_SIGNALS_PER_S = 10.0


class Throttle:
    """Lets a call through at most ``rate`` times per second (``force`` always passes)."""

    def __init__(self, rate: float = MAX_SIGNALS_PER_S, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self._clock = clock
        self._last = -float("inf")
        self._lock = threading.Lock()

    def ready(self, force: bool = False) -> bool:
        """True when enough time passed since the last accepted call; records the call."""
        with self._lock:
            now = self._clock()
            if force or now - self._last >= self.interval:
                self._last = now
                return True
            return False


class LatestThrottle:
    """Forwards at most ``rate`` values per second, keeping the newest of the dropped ones.

    ``flush()`` sends the value that was held back, so the last state is never lost.
    """

    def __init__(self, send: Callable[[Any], None], rate: float = MAX_SIGNALS_PER_S) -> None:
        self._send = send
        self._throttle = Throttle(rate)
        self._pending: Any = None
        self._has_pending = False

    def __call__(self, value: Any, force: bool = False) -> None:
        if self._throttle.ready(force):
            self._has_pending = False
            self._pending = None
            self._send(value)
        else:
            self._pending, self._has_pending = value, True

    def flush(self) -> None:
        if self._has_pending:
            value, self._pending, self._has_pending = self._pending, None, False
            self._send(value)


def describe_error(exc: BaseException) -> tuple[str, str]:
    """(message, advice) for an exception, worded for the user."""
    if isinstance(exc, MedganError):
        return exc.message, exc.advice or ""
    if isinstance(exc, MemoryError):
        return ("The computer ran out of memory.",
                "Choose fewer slices, a smaller resolution or batch size, and try again.")
    if isinstance(exc, OSError):
        return (f"A file could not be read or written: {exc}",
                "Check that the folder exists, that you may write there and that the disk is not full.")
    name = type(exc).__name__
    return (f"Unexpected error ({name}): {exc}",
            "This is a bug in MedGAN Studio. The details are in the log panel; please report them.")


class Worker(QObject):
    """Base worker: override :meth:`work`, or use :class:`FunctionWorker`.

    Signals (emitted from the worker thread; connect through :class:`WorkerHandle`):
        progress(float, str): fraction 0..1 (or -1 when unknown) and a message; throttled.
        event(object): free-form payloads (trainer events, thumbnails, ...).
        result(object): the return value of :meth:`work` on success.
        failed(str, str): (message, advice) on any exception except cancellation.
        cancelled(): the job stopped because :meth:`cancel` was called.
        finished(): always emitted last, whatever happened.
    """

    progress = Signal(float, str)
    event = Signal(object)
    result = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    finished = Signal()

    def __init__(self, *, name: str = "", progress_rate: float = MAX_SIGNALS_PER_S) -> None:
        super().__init__()
        self.name = name or type(self).__name__
        self._cancel = threading.Event()
        self._progress_throttle = Throttle(progress_rate)
        self._event_throttle = Throttle(progress_rate)
        self.outcome = ""  # "result", "failed" or "cancelled" once finished

    # -- called from any thread -------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the job to stop; it checks the flag between steps."""
        self._cancel.set()

    @property
    def cancel_event(self) -> threading.Event:
        return self._cancel

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    # -- used inside work() -----------------------------------------------------------------
    def report_progress(self, *args: Any, message: str = "", force: bool = False) -> None:
        """Progress callback accepting ``(fraction)``, ``(done, total)`` or ``(done, total, msg)``.

        Throttled to ≤ 10 signals per second; completion (fraction ≥ 1) always passes.
        """
        fraction = -1.0
        if len(args) == 1:
            fraction = float(args[0])
        elif len(args) >= 2:
            done, total = args[0], args[1]
            fraction = float(done) / float(total) if total else -1.0
            if len(args) >= 3 and not message:
                message = str(args[2])
        if fraction >= 1.0:
            force = True
        if self._progress_throttle.ready(force):
            self.progress.emit(min(fraction, 1.0), message)

    def emit_event(self, payload: Any, force: bool = False) -> bool:
        """Send ``payload`` through ``event`` unless it comes too soon (then drop it)."""
        if self._event_throttle.ready(force):
            self.event.emit(payload)
            return True
        return False

    def check_cancelled(self) -> None:
        """Raise :class:`Cancelled` when the user asked to stop."""
        if self._cancel.is_set():
            raise Cancelled()

    def work(self) -> Any:
        raise NotImplementedError

    # -- thread entry point -----------------------------------------------------------------
    @Slot()
    def run(self) -> None:
        """Run :meth:`work`; translate the outcome into signals; emit ``finished`` always."""
        started = time.monotonic()
        try:
            ensure_data_stack()
            value = self.work()
        except Cancelled:
            self.outcome = "cancelled"
            log.info("%s cancelled after %.1f s", self.name, time.monotonic() - started)
            self.cancelled.emit()
        except BaseException as exc:  # noqa: BLE001 - a worker must never die silently
            self.outcome = "failed"
            message, advice = describe_error(exc)
            if isinstance(exc, MedganError):
                log.warning("%s failed: %s", self.name, message)
            else:
                log.error("%s failed:\n%s", self.name, "".join(traceback.format_exception(exc)))
            self.failed.emit(message, advice)
        else:
            if self._cancel.is_set() and value is None:
                self.outcome = "cancelled"
                self.cancelled.emit()
            else:
                self.outcome = "result"
                self.result.emit(value)
        finally:
            self.finished.emit()


class FunctionWorker(Worker):
    """Runs ``fn(*args, progress=..., cancel=..., **kwargs)`` in the worker thread.

    ``progress_kw`` / ``cancel_kw`` name the keyword arguments to pass (None: don't pass).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *args: Any,
        name: str = "",
        progress_kw: str | None = "progress",
        cancel_kw: str | None = "cancel",
        **kwargs: Any,
    ) -> None:
        super().__init__(name=name or getattr(fn, "__name__", "job"))
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._progress_kw = progress_kw
        self._cancel_kw = cancel_kw

    def work(self) -> Any:
        kwargs = dict(self._kwargs)
        if self._progress_kw:
            kwargs[self._progress_kw] = self.report_progress
        if self._cancel_kw:
            kwargs[self._cancel_kw] = self._cancel
        return self._fn(*self._args, **kwargs)


class WorkerHandle(QObject):
    """UI-thread side of a running worker: relays its signals and owns its thread."""

    progress = Signal(float, str)
    event = Signal(object)
    result = Signal(object)
    failed = Signal(str, str)
    cancelled = Signal()
    finished = Signal()
    thread_finished = Signal()  # the thread has ended; the handle may be dropped

    def __init__(self, worker: Worker, thread: QThread) -> None:
        super().__init__()
        self.worker = worker
        self.thread = thread
        self.name = worker.name
        self.done = False
        # Signal-to-signal connections into an object of the UI thread are queued, so every
        # slot connected to this handle runs in the UI thread.
        worker.progress.connect(self.progress)
        worker.event.connect(self.event)
        worker.result.connect(self.result)
        worker.failed.connect(self.failed)
        worker.cancelled.connect(self.cancelled)
        worker.finished.connect(self._on_worker_finished)
        thread.finished.connect(self._on_thread_finished)

    @Slot()
    def _on_worker_finished(self) -> None:
        self.done = True
        self.finished.emit()

    @Slot()
    def _on_thread_finished(self) -> None:
        self.thread_finished.emit()

    def cancel(self) -> None:
        """Ask the worker to stop (direct call; safe from the UI thread)."""
        self.worker.cancel()

    def is_running(self) -> bool:
        try:
            return self.thread.isRunning()
        except RuntimeError:  # C++ object already gone
            return False

    def wait(self, timeout_ms: int = 5000) -> bool:
        """Block until the thread ended; True when it did within ``timeout_ms``."""
        try:
            return bool(self.thread.wait(timeout_ms))
        except RuntimeError:
            return True


class WorkerRegistry(QObject):
    """Keeps every running worker alive, and stops them all on close."""

    def __init__(self) -> None:
        super().__init__()
        self._handles: list[WorkerHandle] = []

    def add(self, handle: WorkerHandle) -> None:
        self._handles.append(handle)
        # Bound to the handle (a UI-thread object), so the release runs in the UI thread; a
        # lambda connected to a worker-thread signal would run in the worker thread.
        handle.thread_finished.connect(lambda h=handle: self._release(h))

    def _release(self, handle: WorkerHandle) -> None:
        handle.wait(1000)
        if handle in self._handles:
            self._handles.remove(handle)

    def handles(self) -> list[WorkerHandle]:
        return list(self._handles)

    def running(self) -> list[WorkerHandle]:
        return [h for h in self._handles if h.is_running()]

    def cancel_all(self) -> None:
        for handle in list(self._handles):
            handle.cancel()

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel every worker, quit its thread and wait; True when all ended in time."""
        self.cancel_all()
        deadline = time.monotonic() + timeout_ms / 1000
        ok = True
        for handle in list(self._handles):
            handle.thread.quit()
            left = max(0, int((deadline - time.monotonic()) * 1000))
            if not handle.wait(left):
                log.error("Worker %s did not stop within %d ms", handle.name, timeout_ms)
                ok = False
        self._handles = [h for h in self._handles if h.is_running()]
        return ok


_registry: WorkerRegistry | None = None


def registry() -> WorkerRegistry:
    """The process-wide worker registry (created on first use, in the UI thread)."""
    global _registry
    if _registry is None:
        _registry = WorkerRegistry()
    return _registry


def start_worker(
    worker: Worker,
    parent: QObject | None = None,
    *,
    on_progress: Callable[[float, str], Any] | None = None,
    on_event: Callable[[Any], Any] | None = None,
    on_result: Callable[[Any], Any] | None = None,
    on_failed: Callable[[str, str], Any] | None = None,
    on_cancelled: Callable[[], Any] | None = None,
    on_finished: Callable[[], Any] | None = None,
) -> WorkerHandle:
    """Move ``worker`` to a new QThread, connect the callbacks, start it, return its handle.

    The handle is kept in :func:`registry` until the thread ends. When ``parent`` is
    destroyed the worker is cancelled. Callbacks run in the UI thread.
    """
    thread = QThread()
    thread.setObjectName(f"medgan-{worker.name}")
    worker.moveToThread(thread)
    handle = WorkerHandle(worker, thread)
    for signal, slot in (
        (handle.progress, on_progress),
        (handle.event, on_event),
        (handle.result, on_result),
        (handle.failed, on_failed),
        (handle.cancelled, on_cancelled),
        (handle.finished, on_finished),
    ):
        if slot is not None:
            signal.connect(slot)
    thread.started.connect(worker.run)
    worker.finished.connect(thread.quit, Qt.ConnectionType.DirectConnection)
    if parent is not None:
        cancel_event = worker.cancel_event
        parent.destroyed.connect(lambda *_: cancel_event.set())
    registry().add(handle)
    log.debug("Starting worker %s", worker.name)
    thread.start()
    return handle
