"""Non-blocking error dialog: the message, what to do about it, and details on demand.

It never blocks the event loop (``open()``, not ``exec()``), so workers keep running and tests
can find and close it. ``shown_dialogs()`` lists the ones currently open.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import QMessageBox, QWidget

log = logging.getLogger(__name__)

_open: list[QMessageBox] = []


def show_error(
    parent: QWidget | None,
    message: str,
    advice: str = "",
    *,
    title: str = "MedGAN Studio",
    details: str = "",
) -> QMessageBox:
    """Show ``message`` and ``advice`` in a window-modal box that does not block the caller."""
    box = QMessageBox(parent)
    box.setObjectName("ErrorDialog")
    box.setIcon(QMessageBox.Icon.Warning)
    box.setWindowTitle(title)
    box.setText(message)
    if advice:
        box.setInformativeText(advice)
    if details:
        box.setDetailedText(details)
    box.setStandardButtons(QMessageBox.StandardButton.Ok)
    _open.append(box)
    box.finished.connect(lambda _=0, b=box: _forget(b))
    box.open()
    return box


def _forget(box: QMessageBox) -> None:
    if box in _open:
        _open.remove(box)
    box.deleteLater()


def shown_dialogs() -> list[QMessageBox]:
    """Error dialogs currently open (for tests and the main window)."""
    return [b for b in _open if b.isVisible()]


def close_all() -> None:
    for box in list(_open):
        box.done(0)
