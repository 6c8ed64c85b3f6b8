"""Export page: files written from the curated decisions, real slices and synthetic identity,
"Open folder", and every refusal (exists, bad destination, disk full) shown with advice,
cancel leaving nothing behind."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import numpy as np
import pytest

from tests.ui.fake_engine import scored_set
from ui.pages.export_page import ExportPage
from ui.state import AppState
from ui.widgets import error_dialog


@pytest.fixture(scope="module")
def data():
    return scored_set(n=30, m=16, copies=2)


@pytest.fixture
def page(qtbot, data):
    from medgan.curate.filters import apply_filters

    generated, scores, train = data
    state = AppState()
    state.set_training_set(train, {"modality": "CT"})
    state.set_generated(generated, scores, apply_filters(scores))
    p = ExportPage(state)
    qtbot.addWidget(p)
    yield p
    p.shutdown()
    error_dialog.close_all()


def _export(qtbot, page: ExportPage, dest: Path, fmt: str = "png") -> None:
    page.format_combo.setCurrentIndex(page.format_combo.findData(fmt))
    page.destination.setText(str(dest))
    assert page.start_export()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=60000)


def test_nothing_to_export_disables_the_button(qtbot):
    p = ExportPage(AppState())
    qtbot.addWidget(p)
    assert not p.export_button.isEnabled() and not p.open_button.isEnabled()
    assert "Generate page" in p.summary_label.text()
    assert not p.start_export()


def test_png_export_writes_kept_slices_and_manifest_then_open_folder(qtbot, page, tmp_path,
                                                                     monkeypatch):
    decisions = page.state.decisions
    assert f"{decisions.n_kept} of 30" in page.summary_label.text()
    dest = tmp_path / "out"
    _export(qtbot, page, dest)
    assert page.outcome == "done"
    pngs = sorted(dest.glob("*.png"))
    assert len(pngs) == decisions.n_kept > 0
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["memorization"]["checked"] is True
    assert manifest["filters"]["memorization_guard"] == "on"
    assert (dest / "manifest.csv").exists() and (dest / "README.md").exists()
    assert page.progress.value() == 1000 and page.open_button.isEnabled()
    assert page.destination.text() != str(dest)  # a fresh name for the next export
    opened = []
    monkeypatch.setattr("ui.pages.export_page.QDesktopServices.openUrl",
                        lambda url: opened.append(url.toLocalFile()) or True)
    page.open_button.click()
    assert opened == [str(dest)]


def test_dicom_with_real_slices_and_synthetic_identity(qtbot, page, tmp_path, stall_probe):
    import pydicom

    page.include_real.setChecked(True)
    page.format_combo.setCurrentIndex(page.format_combo.findData("dicom"))
    assert page.patient_name.isEnabled() and not page.bit_mode.isEnabled()
    page.patient_name.setText("SYNTH^TEST")
    page.patient_id.setText("SYN-42")
    dest = tmp_path / "dcm"
    from ui.jobs import warm_up_export

    warm_up_export()  # the page does this in a worker when first shown, not mid-job

    stall_probe.start()
    _export(qtbot, page, dest, "dicom")
    stall_probe.assert_responsive(100)
    files = sorted(dest.glob("*.dcm"))
    n_real = len(page.state.training_images)
    assert len(files) == page.state.decisions.n_kept + n_real
    ds = pydicom.dcmread(files[0])
    assert str(ds.PatientName) == "SYNTH^TEST" and ds.PatientID == "SYN-42"
    kinds = json.loads((dest / "manifest.json").read_text())["counts"]
    assert kinds["real_exported"] == n_real


def test_existing_destination_is_refused_and_left_unchanged(qtbot, page, tmp_path):
    dest = tmp_path / "taken"
    dest.mkdir()
    (dest / "keep.txt").write_text("mine")
    page.destination.setText(str(dest))
    assert not page.start_export()
    dialogs = error_dialog.shown_dialogs()
    assert dialogs and "already exists" in dialogs[-1].text()
    assert "overwrite" in dialogs[-1].informativeText()
    assert sorted(p.name for p in dest.iterdir()) == ["keep.txt"]
    assert page.export_button.isEnabled() and page.outcome == "failed"


def test_destination_under_a_file_is_refused(qtbot, page, tmp_path):
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    page.destination.setText(str(blocker / "export"))
    started = page.start_export()
    if started:
        qtbot.waitUntil(lambda: not page.is_busy(), timeout=30000)
    assert page.outcome == "failed" and error_dialog.shown_dialogs()
    assert not (blocker / "export").exists()


def test_disk_full_during_export_is_explained(qtbot, page, tmp_path, monkeypatch):
    import PIL.Image

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(PIL.Image.Image, "save", full_disk)  # the PNG writer's last step
    dest = tmp_path / "full"
    _export(qtbot, page, dest)
    assert page.outcome == "failed"
    dialog = error_dialog.shown_dialogs()[-1]
    assert "space" in (dialog.text() + dialog.informativeText()).lower()
    assert not dest.exists()
    assert [p.name for p in tmp_path.iterdir()] == [], "no partial temporary folder is left"
    assert page.export_button.isEnabled() and not page.cancel_button.isEnabled()


def test_cancel_leaves_nothing_behind(qtbot, page, tmp_path, monkeypatch):
    import medgan.export as export_pkg

    real_export = export_pkg.export_set

    def slow_export(*args, progress=None, **kwargs):
        def slow_progress(done, total):
            import time

            time.sleep(0.25)
            if progress is not None:
                progress(done, total)

        return real_export(*args, progress=slow_progress, **{**kwargs, "batch_size": 1})

    monkeypatch.setattr(export_pkg, "export_set", slow_export)
    dest = tmp_path / "cancelled"
    page.destination.setText(str(dest))
    assert page.start_export()
    assert page.cancel_button.isEnabled() and not page.export_button.isEnabled()
    qtbot.waitUntil(lambda: page.progress.value() > 0, timeout=10000)
    page.cancel()
    qtbot.waitUntil(lambda: not page.is_busy(), timeout=30000)
    assert page.outcome == "cancelled"
    assert not dest.exists()
    assert page.export_button.isEnabled() and not page.open_button.isEnabled()
    assert np.all(np.isfinite(page.state.generated.images))  # the set itself is untouched


def test_unscored_set_exports_everything_and_says_it_was_not_checked(qtbot, data, tmp_path):
    generated, _, _ = data
    state = AppState()
    state.set_generated(generated, None, None)  # e.g. a model opened without a training set
    p = ExportPage(state)
    qtbot.addWidget(p)
    assert "not scored" in p.summary_label.text()
    assert not p.include_real.isEnabled()
    dest = tmp_path / "npy"
    _export(qtbot, p, dest, "npy")
    assert np.load(dest / "images.npy").shape[0] == len(generated.images)
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["memorization"]["checked"] is False
