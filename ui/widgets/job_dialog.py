"""A dialog that runs one worker job at a time and never closes over a running one."""

from __future__ import annotations

from typing import Any

from PySide6.QtWidgets import QDialog, QWidget

from ui.workers import WorkerHandle


class JobDialog(QDialog):
    """Holds the running job's handle; closing or rejecting cancels it and waits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.handle: WorkerHandle | None = None

    def is_busy(self) -> bool:
        return self.handle is not None and not self.handle.done

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        """Cancel a running job and wait for its thread; True when it ended in time."""
        if self.handle is None:
            return True
        self.handle.cancel()
        return self.handle.wait(timeout_ms)

    def closeEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    def reject(self) -> None:
        self.shutdown()
        super().reject()
