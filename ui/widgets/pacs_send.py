"""Export page → Send to PACS…: push a synthetic DICOM export by C-STORE or STOW-RS.

The send runs in a worker with progress and cancel; every file the server refused is listed
with its reason. Only files marked SYNTHETIC are sent (checked by :mod:`medgan.pacs.send`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from medgan.core.errors import MedganError
from medgan.pacs.profiles import Profile, load_profiles
from medgan.pacs.records import SendOutcome
from medgan.workflows import pacs as flows
from ui.widgets.job_dialog import JobDialog
from ui.widgets.pacs_profile_editor import ProfileEditor, session_secret
from ui.workers import FunctionWorker, WorkerHandle, start_worker

log = logging.getLogger(__name__)


def send_job(
    profile: Profile,
    folder: str,
    secret: str | None,
    *,
    progress: Callable[..., Any],
    cancel: threading.Event,
) -> SendOutcome:
    return flows.send_export(
        flows.SendRequest(profile, folder, secret=secret),
        progress=lambda _s, done, total: progress(done, total, f"{done}/{total} files"),
        cancel=cancel,
    )


class SendDialog(JobDialog):
    """Choose a server and send the export folder to it."""

    def __init__(self, folder: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PacsSendDialog")
        self.setWindowTitle("Send to PACS")
        self.folder = folder
        self.last_outcome: SendOutcome | None = None
        self._profiles: dict[str, Profile] = {}
        self.profile_combo = QComboBox()
        self.new_button = QPushButton("New server…")
        self.new_button.clicked.connect(self._new_profile)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status_label = QLabel(f"Send the synthetic DICOM files of {folder}.")
        self.status_label.setObjectName("PacsSendStatus")
        self.status_label.setWordWrap(True)
        self.failures = QListWidget()
        self.failures.setObjectName("PacsSendFailures")
        top = QHBoxLayout()
        top.addWidget(QLabel("Server"))
        top.addWidget(self.profile_combo, 1)
        top.addWidget(self.new_button)
        buttons = QHBoxLayout()
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.cancel_button)
        buttons.addStretch(1)
        buttons.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.status_label)
        layout.addWidget(self.progress)
        layout.addWidget(QLabel("Files the server refused:"))
        layout.addWidget(self.failures, 1)
        layout.addLayout(buttons)
        self.reload_profiles()

    def reload_profiles(self, select: str | None = None) -> None:
        try:
            self._profiles = load_profiles()
        except MedganError as exc:
            self._profiles = {}
            self.status_label.setText(str(exc))
        self.profile_combo.clear()
        for name, p in self._profiles.items():
            self.profile_combo.addItem(f"{name} — {p.server}", name)
        if select:
            self.profile_combo.setCurrentIndex(max(0, self.profile_combo.findData(select)))
        self._update_buttons()

    def _new_profile(self) -> None:
        editor = ProfileEditor(None, self)
        editor.accepted.connect(
            lambda: self.reload_profiles(
                editor.saved_profile.name if editor.saved_profile else None
            )
        )
        editor.open()

    def current_profile(self) -> Profile | None:
        name = self.profile_combo.currentData()
        return self._profiles.get(name) if name else None

    def send(self) -> WorkerHandle | None:
        p = self.current_profile()
        if p is None or self.is_busy():
            return None
        self.failures.clear()
        self.progress.setValue(0)
        self.status_label.setText(f"Sending to {p.server}…")
        worker = FunctionWorker(send_job, p, self.folder, session_secret(p.name), name="pacs-send")
        self.handle = start_worker(
            worker,
            self,
            on_progress=self._on_progress,
            on_result=self._sent,
            on_failed=lambda m, a: self.status_label.setText(f"{m} {a}".strip()),
            on_cancelled=lambda: self.status_label.setText("Send cancelled."),
            on_finished=self._update_buttons,
        )
        self._update_buttons()
        return self.handle

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    def _on_progress(self, fraction: float, _message: str) -> None:
        if fraction >= 0:
            self.progress.setValue(int(fraction * 1000))

    def _sent(self, outcome: SendOutcome) -> None:
        self.last_outcome = outcome
        self.progress.setValue(1000)
        self.status_label.setText(f"{outcome.sent} files sent, {len(outcome.failed)} refused.")
        for name, reason in outcome.failed:
            self.failures.addItem(f"{name}: {reason}")

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        self.send_button.setEnabled(not busy and self.current_profile() is not None)
        self.cancel_button.setEnabled(busy)
        self.profile_combo.setEnabled(not busy)
        self.new_button.setEnabled(not busy)

