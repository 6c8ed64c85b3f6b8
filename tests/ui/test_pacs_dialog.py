"""GUI PACS against a real Orthanc: a profile made in the editor (secret in the keyring),
test connection, search, retrieve with progress → the Data page opens the cached series;
Export page → Send to PACS…; no usable keyring → a clear choice, never a plain-text secret.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail
from PySide6.QtCore import QItemSelectionModel

from medgan.pacs.profiles import profiles_path
from tests.orthanc import OrthancServer, memory_keyring, orthanc_missing, start_orthanc
from ui.main_window import MainWindow
from ui.state import AppState
from ui.widgets.pacs_dialog import PacsDialog
from ui.widgets.pacs_profile_editor import SESSION_SECRETS, ProfileEditor
from ui.widgets.pacs_send import SendDialog

needs_orthanc = pytest.mark.skipif(orthanc_missing() is not None, reason=orthanc_missing() or "")


@pytest.fixture(scope="module")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    from medgan.demo.study import write_demo_study

    server = start_orthanc(tmp_path_factory.mktemp("ui-orthanc"))
    try:
        demo = write_demo_study(
            tmp_path_factory.mktemp("ui-demo") / "demo", n_patients=2, slices_per_patient=5, size=48
        )
        server.upload(sorted(demo.rglob("IM*.dcm")))
        yield server
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MEDGAN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDGAN_PACS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MEDGAN_PACS_SECRET", raising=False)
    before = keyring.get_keyring()
    keyring.set_keyring(memory_keyring())
    yield
    keyring.set_keyring(before)
    SESSION_SECRETS.clear()


def _fill_web_profile(editor: ProfileEditor, server: OrthancServer, name: str = "orthanc") -> None:
    editor.name.setText(name)
    editor.kind.setCurrentIndex(editor.kind.findData("dicomweb"))
    editor.url.setText(server.dicomweb_url)
    editor.auth.setCurrentIndex(editor.auth.findData("basic"))
    editor.username.setText(server.user)
    editor.secret.setText(server.password)


def _select_row(table, row: int) -> None:  # type: ignore[no-untyped-def]
    """Select exactly ``row``. ``QTableView.selectRow`` honours the keyboard modifiers Qt
    believes are held, and a key event left by an earlier test can make it toggle instead."""
    flags = QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows
    table.selectionModel().select(table.model().index(row, 0), flags)


def _wait_idle(qtbot, dialog) -> None:  # type: ignore[no-untyped-def]
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=90000)


@needs_orthanc
def test_search_and_retrieve_open_the_series_on_the_data_page(qtbot, orthanc, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("MEDGAN_NO_WARMUP", "1")
    window = MainWindow(AppState())
    qtbot.addWidget(window)
    window.show()
    assert window.open_pacs_action.text() == "Open from PACS…"
    dialog = window.open_from_pacs()
    assert isinstance(dialog, PacsDialog) and not dialog.retrieve_button.isEnabled()
    editor = dialog.edit_profile(None)
    _fill_web_profile(editor, orthanc)
    assert editor.save()
    assert dialog.current_profile() is not None and dialog.current_profile().name == "orthanc"
    assert orthanc.password not in profiles_path().read_text()
    assert keyring.get_password("medgan-studio-pacs", "orthanc") == orthanc.password

    dialog.test_connection()
    _wait_idle(qtbot, dialog)
    assert "succeeded" in dialog.status_label.text()
    dialog.patient_name.setText("PATIENT02")
    dialog.search(0)
    _wait_idle(qtbot, dialog)
    assert dialog.table.rowCount() == 1
    assert dialog.table.item(0, 0).text() == "DEMO PATIENT02"  # names shown here only
    _select_row(dialog.table, 0)
    assert dialog.series_button.isEnabled() and dialog.retrieve_button.isEnabled()
    dialog.show_series_of_selected()
    _wait_idle(qtbot, dialog)
    ct_rows = [r for r in range(dialog.table.rowCount()) if dialog.table.item(r, 4).text() == "CT"]
    assert ct_rows and dialog.hits[ct_rows[0]].level == "series"
    _select_row(dialog.table, ct_rows[0])
    data = window.pages["data"]
    with qtbot.waitSignal(data.scan_finished, timeout=90000):
        dialog.retrieve()
    assert dialog.last_outcome is not None and dialog.last_outcome.fetched == 5
    assert dialog.progress.value() == 1000
    qtbot.waitUntil(lambda: not data.is_scanning(), timeout=5000)
    scan = window.state.scan
    assert scan is not None and len(scan.series) == 1 and scan.series[0].n_images == 5
    assert str(scan.root).startswith(os.environ["MEDGAN_PACS_CACHE"])
    window.close()


@needs_orthanc
def test_cancel_then_resume_from_the_dialog(qtbot, orthanc) -> None:  # type: ignore[no-untyped-def]
    dialog = PacsDialog()
    qtbot.addWidget(dialog)
    editor = dialog.edit_profile(None)
    _fill_web_profile(editor, orthanc)
    editor.workers.setValue(1)
    assert editor.save()
    dialog.level.setCurrentIndex(dialog.level.findData("series"))
    dialog.modality.setText("CT")
    dialog.search(0)
    _wait_idle(qtbot, dialog)
    assert dialog.table.rowCount() == 2
    dialog.table.selectAll()
    handle = dialog.retrieve()
    assert handle is not None and dialog.cancel_button.isEnabled()
    dialog.cancel()
    _wait_idle(qtbot, dialog)
    assert handle.worker.outcome in ("cancelled", "result")
    with qtbot.waitSignal(dialog.series_ready, timeout=90000) as ready:
        dialog.retrieve()
    _wait_idle(qtbot, dialog)
    assert dialog.last_outcome is not None
    assert dialog.last_outcome.fetched + dialog.last_outcome.reused == 10
    assert len(dialog.last_outcome.folders) == 2 and Path(ready.args[0]).is_dir()
    dialog.close()


@needs_orthanc
def test_no_keyring_is_said_clearly_and_the_secret_stays_in_memory(qtbot, orthanc) -> None:  # type: ignore[no-untyped-def]
    keyring.set_keyring(fail.Keyring())
    editor = ProfileEditor()
    qtbot.addWidget(editor)
    _fill_web_profile(editor, orthanc, "nokeyring")
    asked: list[str] = []
    editor.ask_session_only = lambda problem: asked.append(problem) or False  # type: ignore[method-assign]
    assert not editor.save()
    assert "No usable keyring" in asked[0] and "No usable keyring" in editor.error_label.text()
    assert not profiles_path().exists()
    editor.ask_session_only = lambda problem: True  # type: ignore[method-assign]
    assert editor.save()
    assert SESSION_SECRETS["nokeyring"] == orthanc.password
    assert orthanc.password not in profiles_path().read_text()
    dialog = PacsDialog()
    qtbot.addWidget(dialog)
    dialog.test_connection()
    _wait_idle(qtbot, dialog)
    assert "succeeded" in dialog.status_label.text()
    dialog.close()


@needs_orthanc
def test_send_dialog_sends_a_synthetic_export(qtbot, orthanc, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from medgan.export import ExportConfig, export_set
    from tests.core._export_data import provenance, synthetic

    folder = tmp_path / "export"
    export_set(
        synthetic(3),
        ExportConfig(format="dicom", destination=str(folder)),
        provenance(),
        durable=False,
    )
    editor = ProfileEditor()
    qtbot.addWidget(editor)
    _fill_web_profile(editor, orthanc, "send-target")
    assert editor.save()
    dialog = SendDialog(str(folder))
    qtbot.addWidget(dialog)
    assert dialog.send_button.isEnabled()
    dialog.send()
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=90000)
    assert dialog.last_outcome is not None and dialog.last_outcome.sent == 3
    assert "3 files sent, 0 refused" in dialog.status_label.text()
    dialog.close()


def test_export_page_offers_send_to_pacs_after_a_dicom_export(qtbot, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from medgan.curate.filters import apply_filters
    from tests.ui.fake_engine import scored_set
    from ui.pages.export_page import ExportPage

    generated, scores, train = scored_set(n=6, m=8, copies=1)
    state = AppState()
    state.set_training_set(train, {"modality": "CT"})
    state.set_generated(generated, scores, apply_filters(scores))
    page = ExportPage(state)
    qtbot.addWidget(page)
    assert not page.send_button.isEnabled()
    for fmt, enabled in (("png", False), ("dicom", True)):
        page.format_combo.setCurrentIndex(page.format_combo.findData(fmt))
        page.destination.setText(str(tmp_path / fmt))
        assert page.start_export()
        qtbot.waitUntil(lambda: not page.is_busy(), timeout=60000)
        assert page.send_button.isEnabled() is enabled
    dialog = page.send_to_pacs()
    assert isinstance(dialog, SendDialog) and dialog.folder == str(tmp_path / "dicom")
    dialog.close()
    page.shutdown()
