"""The worker pattern: finished always arrives, failures reach the UI thread with advice,
cancel stops a busy job, buttons never stay disabled, and no thread is left running."""

from __future__ import annotations

import threading
import time

import pytest
from PySide6.QtWidgets import QPushButton

from medgan.core.errors import Cancelled, DataError
from ui.workers import (
    FunctionWorker,
    LatestThrottle,
    Throttle,
    Worker,
    registry,
    start_worker,
)


def _busy(n: int, *, progress, cancel) -> int:
    for i in range(n):
        if cancel.is_set():
            raise Cancelled()
        time.sleep(0.005)
        progress(i + 1, n)
    return n


def test_result_progress_and_finished_arrive_in_ui_thread(qtbot) -> None:
    seen: list[tuple[str, object, str]] = []
    here = threading.current_thread().name
    handle = start_worker(
        FunctionWorker(_busy, 40),
        on_progress=lambda f, _m: seen.append(("progress", f, threading.current_thread().name)),
        on_result=lambda v: seen.append(("result", v, threading.current_thread().name)),
    )
    with qtbot.waitSignal(handle.finished, timeout=5000):
        pass
    kinds = [k for k, _v, _t in seen]
    assert kinds[-1] == "result" and seen[-1][1] == 40
    assert all(t == here for _k, _v, t in seen), "a slot ran outside the UI thread"
    fractions = [v for k, v, _t in seen if k == "progress"]
    assert fractions[-1] == 1.0  # completion is never throttled away
    assert len(fractions) <= 12  # ≤ 10 per second over ~0.2 s, plus the forced last one
    qtbot.waitUntil(lambda: not registry().handles(), timeout=3000)


@pytest.mark.parametrize("exc, expect_advice", [
    (DataError("Too few slices.", advice="Choose more series."), "Choose more series."),
    (ValueError("boom"), "bug"),
    (MemoryError(), "smaller"),
])
def test_failure_reports_message_advice_and_reenables_button(qtbot, exc, expect_advice) -> None:
    def fail(*, progress, cancel):
        raise exc

    button = QPushButton("Start")
    qtbot.addWidget(button)
    button.setEnabled(False)  # a page disables its button while the job runs
    failures: list[tuple[str, str]] = []
    handle = start_worker(FunctionWorker(fail), on_failed=lambda m, a: failures.append((m, a)),
                          on_finished=lambda: button.setEnabled(True))
    with qtbot.waitSignal(handle.finished, timeout=5000):
        pass
    assert button.isEnabled(), "a failing worker left the button disabled"
    assert len(failures) == 1
    assert expect_advice in failures[0][1]
    assert handle.worker.outcome == "failed"


def test_cancel_reaches_a_busy_worker_quickly(qtbot) -> None:
    cancelled = []
    results = []
    handle = start_worker(FunctionWorker(_busy, 100000), on_cancelled=lambda: cancelled.append(1),
                          on_result=results.append)
    qtbot.wait(50)
    t0 = time.monotonic()
    handle.cancel()  # direct call: works although the worker thread never returns to its loop
    with qtbot.waitSignal(handle.finished, timeout=3000):
        pass
    assert time.monotonic() - t0 < 1.0
    assert cancelled == [1] and results == []
    assert handle.worker.outcome == "cancelled"


def test_finished_is_emitted_even_when_work_raises_base_exception(qtbot) -> None:
    class Exploding(Worker):
        def work(self):
            raise KeyboardInterrupt  # even this must not kill the thread silently

    failed = []
    handle = start_worker(Exploding(), on_failed=lambda m, a: failed.append(m))
    with qtbot.waitSignal(handle.finished, timeout=5000):
        pass
    assert failed


def test_registry_shutdown_cancels_and_waits_for_everything(qtbot) -> None:
    handles = [start_worker(FunctionWorker(_busy, 100000)) for _ in range(3)]
    qtbot.wait(30)
    assert len(registry().running()) == 3
    assert registry().shutdown(timeout_ms=5000)
    assert not any(h.is_running() for h in handles)
    assert all(h.worker.outcome == "cancelled" for h in handles)


def test_parent_destroyed_cancels_worker(qtbot) -> None:
    parent = QPushButton()
    handle = start_worker(FunctionWorker(_busy, 100000), parent)
    qtbot.wait(20)
    parent.deleteLater()
    with qtbot.waitSignal(handle.finished, timeout=3000):
        pass
    assert handle.worker.outcome == "cancelled"


def test_throttles_limit_rate_but_keep_the_last_value() -> None:
    now = [0.0]
    throttle = Throttle(10, clock=lambda: now[0])
    passed = 0
    for _ in range(100):  # 100 calls over 1 s
        passed += throttle.ready()
        now[0] += 0.01
    assert 9 <= passed <= 11
    assert throttle.ready(force=True)

    sent: list[int] = []
    latest = LatestThrottle(sent.append, rate=1e-6)  # only the first passes
    for i in range(5):
        latest(i)
    assert sent == [0]
    latest.flush()
    assert sent == [0, 4]


def test_stall_probe_catches_a_blocked_event_loop(qtbot, stall_probe) -> None:
    stall_probe.start()
    qtbot.wait(50)
    end = time.thread_time() + 0.25
    while time.thread_time() < end:  # what decoding on the UI thread would do: 250 ms of CPU
        sum(range(1000))
    qtbot.wait(30)
    with pytest.raises(AssertionError, match="stalled"):
        stall_probe.assert_responsive(100)
    assert stall_probe.max_gap_ms >= 240


def test_leak_guard_sees_running_threads(qtbot) -> None:
    from PySide6.QtCore import QThread

    from tests.ui.conftest import running_qthreads

    thread = QThread()
    thread.start()  # an event loop that nobody quits
    try:
        qtbot.waitUntil(thread.isRunning, timeout=2000)
        assert thread in running_qthreads()
    finally:
        thread.quit()
        thread.wait(2000)
    assert thread not in running_qthreads()
