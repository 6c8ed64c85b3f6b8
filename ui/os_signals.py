"""SIGTERM / SIGHUP (and Windows' SIGBREAK) close the app cleanly, like the window's close box.

A shutdown, ``kill``, a session manager or a closed terminal sends these. The first one closes
the main window, whose ``closeEvent`` stops training (saving a checkpoint) and waits for the
workers; a second one exits at once. Python runs signal handlers only between bytecodes, so a
short timer wakes the interpreter while Qt's event loop (C++) waits.
"""

from __future__ import annotations

import logging
import os
import signal
from typing import Any

from PySide6.QtCore import QObject, QTimer

log = logging.getLogger(__name__)

CLOSE_SIGNALS: tuple[str, ...] = ("SIGTERM", "SIGHUP", "SIGBREAK")
WAKE_MS = 200


def close_on_signals(window: Any) -> QTimer:
    """Install the handlers for ``window``; returns the wake-up timer (keep a reference)."""
    received: list[int] = []

    def handle(signum: int, frame: Any) -> None:
        if received:
            os._exit(128 + received[0])
        received.append(signum)
        log.warning(
            "%s received: stopping work, saving a checkpoint and closing",
            signal.Signals(signum).name,
        )
        QTimer.singleShot(0, window.close)

    for name in CLOSE_SIGNALS:
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:  # nohup stays
            signal.signal(sig, handle)
    parent = window if isinstance(window, QObject) else None
    timer = QTimer(parent)
    timer.timeout.connect(lambda: None)  # lets Python run pending signal handlers
    timer.start(WAKE_MS)
    return timer


__all__ = ["close_on_signals"]
