"""SIGTERM / SIGHUP close the app like its close box: training stops, saves, the window closes."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtWidgets import QVBoxLayout, QWidget

from tests.ui.fake_engine import FakeTrainer, fake_factory
from ui.os_signals import close_on_signals
from ui.pages.train_page import TrainPage
from ui.state import AppState

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


class _Window(QWidget):
    """Stands in for MainWindow: its closeEvent shuts the Train page down."""

    def __init__(self, page: TrainPage) -> None:
        super().__init__()
        self.page = page
        self.closed = False
        QVBoxLayout(self).addWidget(page)

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.page.shutdown(10000)
        self.closed = True
        super().closeEvent(event)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_stops_training_saves_a_checkpoint_and_closes(qtbot, tmp_path, sig):
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    state = AppState()
    state.set_training_set(np.zeros((12, 32, 32), np.float32), {"modality": "CT"})
    page = TrainPage(state)
    page.runs_dir = tmp_path / "runs"
    page.settings.set_resolution(32)
    page.settings.steps.setValue(100000)
    page.trainer_factory = fake_factory(step_s=0.004)
    window = _Window(page)
    qtbot.addWidget(window)  # not shown: showing would start the device probe
    try:
        signal.signal(sig, signal.SIG_DFL)  # as a terminal leaves it (nohup would ignore SIGHUP)
        close_on_signals(window)
        assert page.start_training()
        qtbot.waitUntil(lambda: page.metrics_seen >= 2, timeout=5000)
        signal.raise_signal(sig)
        qtbot.waitUntil(lambda: window.closed, timeout=10000)
        result = FakeTrainer.instances[-1].result
        assert result is not None and result.status == "cancelled"
        assert Path(result.checkpoint_path).exists() and not page.is_training()
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
