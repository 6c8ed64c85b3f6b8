"""Edit one PACS server profile: DICOMweb or DIMSE settings, and its password or token.

The secret goes to the operating system's keyring through the workflow; when no keyring is
usable the dialog says so and, only if the user agrees, keeps it in memory for this session
(:data:`SESSION_SECRETS`), never in a settings file.
"""

from __future__ import annotations

import logging

from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QMessageBox,
    QSpinBox,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from medgan.core.errors import MedganError
from medgan.pacs.profiles import DicomWebSettings, DimseSettings, Profile
from medgan.pacs.secrets import keyring_problem
from medgan.workflows.pacs import add_profile

log = logging.getLogger(__name__)

#: Secrets the user chose to keep for this session only (no usable keyring).
SESSION_SECRETS: dict[str, str] = {}


def session_secret(name: str) -> str | None:
    return SESSION_SECRETS.get(name)


class ProfileEditor(QDialog):
    """A form for one profile; ``saved_profile`` holds the result once accepted."""

    def __init__(self, profile: Profile | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PacsProfileEditor")
        self.setWindowTitle("PACS server profile")
        self.saved_profile: Profile | None = None
        self.ask_session_only = self._ask_session_only  # tests replace it
        self.name = QLineEdit(profile.name if profile else "")
        self.kind = QComboBox()
        self.kind.addItem("DICOMweb (QIDO-RS / WADO-RS / STOW-RS)", "dicomweb")
        self.kind.addItem("DIMSE (C-FIND / C-GET / C-MOVE / C-STORE)", "dimse")
        self.stack = QStackedWidget()
        self.stack.addWidget(self._web_form(profile.dicomweb if profile else DicomWebSettings()))
        self.stack.addWidget(self._dimse_form(profile.dimse if profile else DimseSettings()))
        self.kind.currentIndexChanged.connect(self.stack.setCurrentIndex)
        self.kind.currentIndexChanged.connect(lambda _i: self._update())
        if profile is not None:
            self.kind.setCurrentIndex(self.kind.findData(profile.kind))
        self.workers = QSpinBox()
        self.workers.setRange(1, 16)
        self.workers.setValue(profile.workers if profile else 4)
        self.workers.setToolTip("Parallel associations or HTTP sessions for retrieves")
        self.error_label = QLabel("")
        self.error_label.setObjectName("ProfileError")
        self.error_label.setWordWrap(True)
        top = QFormLayout()
        top.addRow("Name", self.name)
        top.addRow("Protocol", self.kind)
        top.addRow("Parallel transfers", self.workers)
        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.save)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.stack)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)
        self._update()

    def _web_form(self, s: DicomWebSettings) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.url = QLineEdit(s.url)
        self.url.setPlaceholderText("https://pacs.example.org/dicom-web")
        self.qido = QLineEdit(s.qido_prefix)
        self.wado = QLineEdit(s.wado_prefix)
        self.stow = QLineEdit(s.stow_prefix)
        self.auth = QComboBox()
        for label, key in (
            ("None", "none"),
            ("Basic (user + password)", "basic"),
            ("Bearer token", "bearer"),
        ):
            self.auth.addItem(label, key)
        self.auth.setCurrentIndex(self.auth.findData(s.auth))
        self.auth.currentIndexChanged.connect(lambda _i: self._update())
        self.username = QLineEdit(s.username)
        self.secret = QLineEdit()
        self.secret.setEchoMode(QLineEdit.EchoMode.Password)
        self.secret.setPlaceholderText("unchanged" if s.auth != "none" else "")
        self.verify = QCheckBox("Verify the server's TLS certificate")
        self.verify.setChecked(s.verify_tls)
        self.ca_bundle = QLineEdit(s.ca_bundle)
        self.ca_bundle.setPlaceholderText("PEM file of trusted CAs (empty: the system's)")
        form.addRow("Base URL", self.url)
        form.addRow("QIDO prefix", self.qido)
        form.addRow("WADO prefix", self.wado)
        form.addRow("STOW prefix", self.stow)
        form.addRow("Authentication", self.auth)
        form.addRow("User name", self.username)
        form.addRow("Password / token", self.secret)
        form.addRow(self.verify)
        form.addRow("CA bundle", self.ca_bundle)
        return w

    def _dimse_form(self, s: DimseSettings) -> QWidget:
        w = QWidget()
        form = QFormLayout(w)
        self.host = QLineEdit(s.host)
        self.port = QSpinBox()
        self.port.setRange(1, 65535)
        self.port.setValue(s.port)
        self.called = QLineEdit(s.called_aet)
        self.calling = QLineEdit(s.calling_aet)
        self.tls = QCheckBox("TLS")
        self.tls.setChecked(s.tls)
        self.dimse_ca = QLineEdit(s.ca_bundle)
        self.retrieve = QComboBox()
        self.retrieve.addItem("C-GET", "get")
        self.retrieve.addItem("C-MOVE to our storage SCP", "move")
        self.retrieve.setCurrentIndex(self.retrieve.findData(s.retrieve))
        self.move_port = QSpinBox()
        self.move_port.setRange(1, 65535)
        self.move_port.setValue(s.move_port)
        form.addRow("Host", self.host)
        form.addRow("Port", self.port)
        form.addRow("Called AE title (server)", self.called)
        form.addRow("Calling AE title (us)", self.calling)
        form.addRow(self.tls)
        form.addRow("CA bundle", self.dimse_ca)
        form.addRow("Retrieve by", self.retrieve)
        form.addRow("Our C-MOVE port", self.move_port)
        return w

    def _update(self) -> None:
        needs = self.kind.currentData() == "dicomweb" and self.auth.currentData() != "none"
        self.secret.setEnabled(needs)
        self.username.setEnabled(self.auth.currentData() == "basic")

    def profile(self) -> Profile:
        """The profile the form describes (raises :class:`MedganError` when invalid)."""
        if self.kind.currentData() == "dicomweb":
            return Profile(
                name=self.name.text().strip(),
                kind="dicomweb",
                workers=self.workers.value(),
                dicomweb=DicomWebSettings(
                    url=self.url.text().strip(),
                    qido_prefix=self.qido.text().strip(),
                    wado_prefix=self.wado.text().strip(),
                    stow_prefix=self.stow.text().strip(),
                    auth=str(self.auth.currentData()),
                    username=self.username.text().strip(),
                    verify_tls=self.verify.isChecked(),
                    ca_bundle=self.ca_bundle.text().strip(),
                ),
            )
        return Profile(
            name=self.name.text().strip(),
            kind="dimse",
            workers=self.workers.value(),
            dimse=DimseSettings(
                host=self.host.text().strip(),
                port=self.port.value(),
                called_aet=self.called.text().strip(),
                calling_aet=self.calling.text().strip(),
                tls=self.tls.isChecked(),
                ca_bundle=self.dimse_ca.text().strip(),
                retrieve=str(self.retrieve.currentData()),
                move_port=self.move_port.value(),
            ),
        )

    def _ask_session_only(self, problem: str) -> bool:
        answer = QMessageBox.question(
            self,
            "No keyring",
            f"{problem}\n\nKeep the password in memory for this session only (it is not saved)?",
        )
        return answer == QMessageBox.StandardButton.Yes

    def save(self) -> bool:
        """Validate, store the secret (keyring, or this session only if agreed), save."""
        try:
            profile = self.profile()
            secret = self.secret.text() or None
            if profile.needs_secret and secret and keyring_problem():
                if not self.ask_session_only(keyring_problem() or ""):
                    self.error_label.setText(keyring_problem() or "")
                    return False
                SESSION_SECRETS[profile.name] = secret
                _save_without_secret(profile)
            elif profile.needs_secret and not secret:
                _save_without_secret(profile)  # keeps the secret already stored
            else:
                add_profile(profile, secret)
        except MedganError as exc:
            self.error_label.setText(str(exc))
            return False
        self.secret.clear()
        self.saved_profile = profile
        log.info("PACS profile '%s' saved", profile.name)
        self.accept()
        return True


def _save_without_secret(profile: Profile) -> None:
    from medgan.pacs.profiles import save_profile

    save_profile(profile)
