"""Pieces of the Train page that show a run's state: the checkpoint list and the wording of
progress lines (kept apart from the page so they are easy to test and reuse)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QGroupBox,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.jobs import format_duration


def metrics_text(m: Any) -> tuple[str, str, float]:
    """(status line, status-bar line, progress fraction or -1) for a ``StepMetrics``."""
    if m.total_steps:
        fraction = m.step / m.total_steps
    elif m.eta_s is not None and m.elapsed_s + m.eta_s > 0:
        fraction = m.elapsed_s / (m.elapsed_s + m.eta_s)
    else:
        fraction = -1.0
    eta = format_duration(m.eta_s) if m.eta_s is not None else "—"
    total = f"/{m.total_steps}" if m.total_steps else ""
    text = (
        f"Step {m.step}{total} · {m.img_per_s:,.0f} img/s · ETA {eta} · "
        f"G {m.g_loss:.3f} · D {m.d_loss:.3f} · D(x) {m.d_real:.2f} · D(G(z)) {m.d_fake:.2f}"
    )
    if m.aug_p:
        text += f" · aug p {m.aug_p:.2f}"
    return text, f"Training: step {m.step}{total}, ETA {eta}", min(1.0, fraction)


def started_text(e: Any) -> str:
    """One line describing a ``TrainStarted`` event."""
    budget = f"{e.total_steps} steps" if e.total_steps else format_duration(e.time_limit_s or 0)
    if e.start_step:
        budget += f", continuing from step {e.start_step}"
    return f"Training {e.recipe} at {e.resolution}² on {e.n_images} slices, {budget}, on {e.device}"


def quality_text(q: Any) -> str:
    """One line for a ``QualityMeasured`` event: the latest check and the best one."""
    when = "at the end" if q.final else f"at step {q.step}"
    text = f"Sample quality (SWD, lower is better): {q.swd:.0f} {when}"
    if q.best_step != q.step:
        text += f"; best {q.best_swd:.0f} at step {q.best_step}"
    return text


def saved_step_text(selection: dict[str, Any]) -> str:
    """ " (generator of step 150, the best quality check)" when a model holds an earlier step."""
    chosen, trained = selection.get("selected_step"), selection.get("trained_steps")
    if chosen is None or chosen == trained:
        return ""
    return f" (generator of step {chosen}, the best quality check of {trained} steps)"


class CheckpointList(QGroupBox):
    """Checkpoints of the current run; double-click or "Resume from selected" to continue one."""

    resume_requested = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Checkpoints", parent)
        self.list = QListWidget()
        self.list.setToolTip("Double-click a checkpoint to resume from it")
        self.list.itemDoubleClicked.connect(self._emit_item)
        self.resume_button = QPushButton("Resume from selected")
        self.resume_button.clicked.connect(lambda: self._emit_item(self.list.currentItem()))
        self.list.currentItemChanged.connect(lambda *_: self._update())
        layout = QVBoxLayout(self)
        layout.addWidget(self.list)
        layout.addWidget(self.resume_button)
        self._busy = False
        self._update()

    @property
    def paths(self) -> list[str]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def add(self, path: str, step: int) -> None:
        """List a checkpoint; entries whose file the trainer rotated away are dropped."""
        if path in self.paths:
            return
        item = QListWidgetItem(f"step {step} — {Path(path).name}")
        item.setData(Qt.ItemDataRole.UserRole, path)
        item.setToolTip(path)
        self.list.addItem(item)
        for i in reversed(range(self.list.count())):
            p = self.list.item(i).data(Qt.ItemDataRole.UserRole)
            if p != path and not os.path.exists(p):
                self.list.takeItem(i)

    def clear(self) -> None:
        self.list.clear()

    def set_busy(self, busy: bool) -> None:
        self._busy = busy
        self._update()

    def _emit_item(self, item: QListWidgetItem | None) -> None:
        if item is not None and not self._busy:
            self.resume_requested.emit(item.data(Qt.ItemDataRole.UserRole))

    def _update(self) -> None:
        self.resume_button.setEnabled(not self._busy and self.list.currentItem() is not None)
