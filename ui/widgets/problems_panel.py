"""Problems panel: every file the scan refused or skipped, with the reason, and the counts."""

from __future__ import annotations

import os
from typing import Any

from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


class ProblemsPanel(QWidget):
    """A table of (file, kind, why) for a ``ScanResult``, paths shown relative to its root."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.table = QTableWidget(0, 3, self)
        self.table.setObjectName("ProblemsTable")
        self.table.setHorizontalHeaderLabels(["File", "Kind", "Why"])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        header.resizeSection(0, 320)
        header.resizeSection(1, 150)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.label = QLabel("", self)
        self.label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)
        layout.addWidget(self.table, 1)

    def show_scan(self, scan: Any) -> int:
        """Fill from ``scan`` (None clears); returns the number of rows."""
        self.table.setRowCount(0)
        if scan is None:
            self.label.setText("")
            return 0
        rows = [(p, "refused") for p in scan.problems]
        rows += [(p, "no image (skipped)") for p in scan.skipped_non_image]
        self.table.setRowCount(len(rows))
        for r, (problem, kind) in enumerate(rows):
            try:
                shown = os.path.relpath(problem.path, scan.root)
            except ValueError:  # another drive (Windows)
                shown = problem.path
            for c, text in enumerate((shown, kind, problem.reason)):
                item = QTableWidgetItem(text)
                item.setToolTip(problem.path if c == 0 else text)
                self.table.setItem(r, c, item)
        self.label.setText(
            f"{len(scan.problems)} DICOM files could not be used, {len(scan.skipped_non_image)} "
            f"objects carry no image, {scan.skipped_non_dicom} files are not DICOM and were skipped."
        )
        return len(rows)
