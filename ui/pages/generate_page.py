"""GeneratePage: the generate step of the workflow (being built out, see issue 5)."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class GeneratePage(QWidget):
    """The generate step of the workflow."""

    def __init__(self, state: object, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Generate"))

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop any running job and wait for it (called when the window closes)."""
