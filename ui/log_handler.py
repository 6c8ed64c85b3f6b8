"""The one process-wide logging handler that feeds the log panel."""

from __future__ import annotations

import logging

from ui.widgets.log_panel import QtLogHandler

_log_handler: QtLogHandler | None = None


def log_handler() -> QtLogHandler:
    """The process-wide handler feeding the log panel (installed on the root logger)."""
    global _log_handler
    if _log_handler is None:
        _log_handler = QtLogHandler(logging.INFO)
        root = logging.getLogger()
        root.addHandler(_log_handler)
        if root.level > logging.INFO or root.level == logging.NOTSET:
            root.setLevel(logging.INFO)
    return _log_handler


def remove_log_handler() -> None:
    global _log_handler
    if _log_handler is not None:
        logging.getLogger().removeHandler(_log_handler)
        _log_handler = None
