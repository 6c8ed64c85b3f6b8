"""Cyclic garbage is collected on the UI thread, never in a worker (where Qt objects must not die)."""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject

from ui.main_thread_gc import MainThreadCollector, install_main_thread_collector


class _Cycle:
    def __init__(self) -> None:
        self.me = self
        self.qt = QObject()  # a Qt object held only by the cycle


def test_a_worker_allocating_never_runs_the_collector(qtbot: object) -> None:
    collector = install_main_thread_collector()
    assert not gc.isenabled()
    threads_collecting: list[str] = []

    def record(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            threads_collecting.append(threading.current_thread().name)

    gc.callbacks.append(record)
    try:
        for _ in range(200):  # cyclic garbage holding Qt objects, made on the UI thread
            _Cycle()

        def allocate() -> None:  # cyclic garbage far past the generation-0 threshold, in a worker
            for _ in range(5 * collector.thresholds[0]):
                pair: list[object] = []
                pair.append(pair)

        worker = threading.Thread(target=allocate, name="allocating-worker")
        worker.start()
        worker.join()
        assert threads_collecting == []
        before = collector.collections
        qtbot.waitUntil(lambda: collector.collections > before, timeout=3000)  # type: ignore[attr-defined]
    finally:
        gc.callbacks.remove(record)
    assert set(threads_collecting) == {threading.main_thread().name}


def test_the_collector_is_installed_once(qapp: object) -> None:
    first = install_main_thread_collector()
    assert install_main_thread_collector() is first
    assert isinstance(first, MainThreadCollector)
    assert not gc.isenabled()
