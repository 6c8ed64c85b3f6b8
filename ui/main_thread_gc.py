"""Cyclic garbage collection on the UI thread only.

Python runs the cyclic collector in whichever thread happens to allocate when a threshold is
crossed. If that is a worker and the garbage holds a Qt object (a closed dialog, a page of a
window that is gone, a signal connection in a cycle), Qt destroys that object outside the GUI
thread, which crashes the process (a segmentation fault seen in a worker loading a model
file). So the app turns the automatic collector off and collects from a timer on the UI
thread, with the interpreter's own thresholds: the same amount of collecting, in a safe place.
Reference counting still frees everything that is not in a cycle at once.
"""

from __future__ import annotations

import gc
import logging

from PySide6.QtCore import QCoreApplication, QObject, QTimer

log = logging.getLogger(__name__)

CHECK_INTERVAL_MS = 250


class MainThreadCollector(QObject):
    """Disables automatic collection and collects from a UI-thread timer instead."""

    def __init__(self, parent: QObject, interval_ms: int = CHECK_INTERVAL_MS) -> None:
        super().__init__(parent)
        self.thresholds = gc.get_threshold()
        self.collections = 0
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.check)
        gc.disable()
        self._timer.start()
        self.destroyed.connect(gc.enable)

    def check(self) -> None:
        """Collect the generations whose allocation counts crossed their thresholds."""
        counts = gc.get_count()
        for generation in (2, 1, 0):  # the oldest due generation takes the younger with it
            if counts[generation] > self.thresholds[generation]:
                gc.collect(generation)
                self.collections += 1
                return


def install_main_thread_collector(app: QCoreApplication | None = None) -> MainThreadCollector:
    """Install the collector on ``app`` (the running application by default), once."""
    app = app or QCoreApplication.instance()
    if app is None:
        raise RuntimeError("the QApplication must exist before the collector is installed")
    existing = app.findChild(MainThreadCollector)
    if isinstance(existing, MainThreadCollector):
        return existing
    collector = MainThreadCollector(app)
    log.debug("Cyclic garbage collection moved to the UI thread (thresholds %s)", collector.thresholds)
    return collector
