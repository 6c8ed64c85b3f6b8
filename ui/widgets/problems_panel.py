"""Problems panel: every file the scan refused or skipped, with the reason, and the counts."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from PySide6.QtWidgets import (
    QHeaderView,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class _Row:
    path: str
    reason: str


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

    def show_scan(self, scan: Any, labels: Any = None) -> int:
        """Fill from ``scan`` (None clears) and a ``LabelSet``'s problems; returns the rows."""
        self.table.setRowCount(0)
        if scan is None:
            self.label.setText("")
            return 0
        rows = [(p, "refused") for p in scan.problems]
        rows += [(p, "no image (skipped)") for p in scan.skipped_non_image]
        rows += [(p, "used, check it") for p in getattr(scan, "notices", [])]
        for lp in labels.problems if labels is not None else []:
            where = f"row {lp.row}: " if lp.row is not None else ""
            rows.append((_Row(lp.source, where + lp.reason), "label not matched"))
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
        n_labels = len(labels.problems) if labels is not None else 0
        self.label.setText(
            f"{len(scan.problems)} DICOM files could not be used, {len(scan.skipped_non_image)} "
            f"objects carry no image, {scan.skipped_non_dicom} files are not DICOM and were skipped."
            + (f" {n_labels} label rows or masks could not be matched." if n_labels else "")
        )
        return len(rows)
