"""Status bar: the current task with its progress, the process's memory, the compute device.

It observes :class:`ui.state.AppState` (``task_changed``, ``device_changed``) and polls the
process's memory every 2 s (cheap: one psutil call; GPU memory only once torch is loaded).
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QLabel, QProgressBar, QStatusBar, QWidget

from ui.state import AppState

MEMORY_POLL_MS = 2000


class AppStatusBar(QStatusBar):
    """Task label + progress bar on the left; memory and device on the right."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.device_label = QLabel(state.device or "Device: probing…", self)
        self.device_label.setObjectName("DeviceLabel")
        self.memory_label = QLabel("", self)
        self.memory_label.setObjectName("MemoryLabel")
        self.task_label = QLabel("Ready", self)
        self.task_label.setObjectName("TaskLabel")
        self.task_bar = QProgressBar(self)
        self.task_bar.setObjectName("TaskProgress")
        self.task_bar.setFixedWidth(220)
        self.task_bar.setRange(0, 1000)
        self.task_bar.hide()
        self.addWidget(self.task_label, 1)
        self.addWidget(self.task_bar)
        self.addPermanentWidget(self.memory_label)
        self.addPermanentWidget(self.device_label)
        state.task_changed.connect(self.show_task)
        state.device_changed.connect(self.device_label.setText)
        self.memory_timer = QTimer(self)
        self.memory_timer.timeout.connect(self.update_memory)
        self.memory_timer.start(MEMORY_POLL_MS)
        self.update_memory()

    def show_task(self, text: str, progress: float) -> None:
        """Show ``text`` with ``progress`` in 0..1 (-1: busy indicator); "" means idle."""
        if not text:
            self.task_label.setText("Ready")
            self.task_bar.hide()
            return
        self.task_label.setText(text)
        self.task_bar.show()
        if progress < 0:
            self.task_bar.setRange(0, 0)
        else:
            self.task_bar.setRange(0, 1000)
            self.task_bar.setValue(int(round(min(progress, 1.0) * 1000)))

    def update_memory(self) -> None:
        try:
            import psutil

            rss = psutil.Process().memory_info().rss / 2**30
        except Exception:  # noqa: BLE001 - optional information
            return
        text = f"RAM {rss:.1f} GiB"
        torch = sys.modules.get("torch")  # never imported here, only read when loaded
        if torch is not None:
            try:
                if torch.cuda.is_available() and torch.cuda.is_initialized():
                    text += f" · GPU {torch.cuda.memory_allocated() / 2**30:.1f} GiB"
            except Exception:  # noqa: BLE001
                pass
        self.memory_label.setText(text)

    def stop(self) -> None:
        self.memory_timer.stop()
