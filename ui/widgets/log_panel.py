"""Log panel: shows the core's and the UI's log records, fed from any thread.

:class:`QtLogHandler` is a ``logging.Handler`` whose ``emit`` only formats the record and
emits a Qt signal, so records logged in worker threads reach the panel through a queued
connection and are drawn in the UI thread.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QColor, QTextCharFormat, QTextCursor
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

MAX_BLOCKS = 5000
LEVEL_COLOURS = {
    logging.DEBUG: "#8a8f98",
    logging.INFO: "#d8dee9",
    logging.WARNING: "#ebcb8b",
    logging.ERROR: "#ff7b72",
    logging.CRITICAL: "#ff7b72",
}


class _Bridge(QObject):
    record = Signal(int, str)  # level, formatted text


class QtLogHandler(logging.Handler):
    """Forwards log records to Qt as ``bridge.record(level, text)`` (thread-safe)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.bridge = _Bridge()
        self.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
            self.bridge.record.emit(record.levelno, text)
        except RuntimeError:  # the Qt side is gone (shutdown); drop the record
            pass
        except Exception:  # noqa: BLE001 - logging must never raise
            self.handleError(record)


class LogPanel(QWidget):
    """Read-only, colour-coded view of log records with a level filter."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("LogPanel")
        self.view = QPlainTextEdit(self)
        self.view.setReadOnly(True)
        self.view.setMaximumBlockCount(MAX_BLOCKS)
        self.view.setObjectName("LogView")
        self.level_box = QComboBox(self)
        for name in ("DEBUG", "INFO", "WARNING", "ERROR"):
            self.level_box.addItem(name, getattr(logging, name))
        self.level_box.setCurrentIndex(1)
        clear = QPushButton("Clear", self)
        clear.clicked.connect(self.view.clear)
        top = QHBoxLayout()
        top.addWidget(QLabel("Show:", self))
        top.addWidget(self.level_box)
        top.addStretch(1)
        top.addWidget(clear)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(top)
        layout.addWidget(self.view)
        self.records: list[tuple[int, str]] = []  # what the panel received (bounded)

    def attach(self, handler: QtLogHandler) -> None:
        handler.bridge.record.connect(self.append_record)

    @Slot(int, str)
    def append_record(self, level: int, text: str) -> None:
        self.records.append((level, text))
        if len(self.records) > MAX_BLOCKS:
            del self.records[: len(self.records) - MAX_BLOCKS]
        if level < int(self.level_box.currentData()):
            return
        fmt = QTextCharFormat()
        fmt.setForeground(QColor(LEVEL_COLOURS.get(level, "#d8dee9")))
        cursor = self.view.textCursor()
        cursor.movePosition(QTextCursor.MoveOperation.End)
        if not self.view.document().isEmpty():
            cursor.insertBlock()
        cursor.insertText(text, fmt)
        self.view.verticalScrollBar().setValue(self.view.verticalScrollBar().maximum())

    def text(self) -> str:
        return self.view.toPlainText()
