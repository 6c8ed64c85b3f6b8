"""The whole workflow in the main window on a small generated study, with the real engine:
open folder → tree filled → select series → build training set → train a few steps (plots
and samples update, the UI never stalls) → save model → generate → filter → export → files.
And: closing the window during training stops it cleanly, saves a checkpoint, leaves no thread.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ui.main_window import MainWindow, warm_up, warm_up_data_stack
from ui.state import AppState
from ui.train_worker import warm_up_training
from ui.widgets.error_dialog import close_all, shown_dialogs

pytestmark = pytest.mark.slow


@pytest.fixture
def window(qtbot, monkeypatch, tmp_path):
    monkeypatch.setenv("MEDGAN_NO_WARMUP", "1")
    warm_up_data_stack()
    warm_up()  # what the app does right after launch: torch is imported before any job
    warm_up_training()
    w = MainWindow(AppState())
    qtbot.addWidget(w)
    w.show()
    train = w.page("train")
    train.runs_dir = tmp_path / "runs"
    yield w
    w.close()
    close_all()


def _training_set(qtbot, window: MainWindow, folder: Path) -> None:
    state = window.state
    window.open_folder(folder)
    qtbot.waitUntil(lambda: state.scan is not None, timeout=60000)
    data = window.page("data")
    qtbot.waitUntil(lambda: not data.is_scanning(), timeout=60000)
    assert data.tree.series_uids(), "the Patient/Study/Series tree is filled"
    ct = [s for s in state.scan.series if s.modality == "CT" and s.trainable]
    for s in ct:
        data.tree.set_checked(s.series_uid, True)
    assert state.selected_series
    data.resolution_box.setCurrentIndex(data.resolution_box.findData(64))
    with qtbot.waitSignal(state.training_set_changed, timeout=120000):
        data.build_training_set()
    qtbot.waitUntil(lambda: state.training_images is not None, timeout=60000)
    assert state.training_images.shape[1:] == (64, 64)  # the Train page resizes to its 32²


def _configure_short_run(train, steps: int) -> None:
    train.settings.recipe.setCurrentIndex(train.settings.recipe.findData("dcgan"))
    train.settings.set_resolution(32)
    train.settings.steps.setValue(steps)
    train.settings.batch.setValue(4)
    train.config_overrides = {"sample_every": 1, "checkpoint_every": 1000, "n_samples": 4,
                              "width": 8}


def test_open_train_generate_filter_export(qtbot, window, dicom_folder, tmp_path, stall_probe):
    state = window.state
    _training_set(qtbot, window, dicom_folder)

    train = window.show_page("train")
    _configure_short_run(train, steps=3)
    assert train.start_button.isEnabled()
    stall_probe.start()
    with qtbot.waitSignal(train.run_ended, timeout=180000) as ended:
        assert train.start_training()
    qtbot.waitUntil(lambda: not train.is_training(), timeout=30000)
    stall_probe.assert_responsive(100)
    assert ended.args == ["finished"], train.status_label.text()
    train.loss_plot.flush()
    assert train.loss_plot.n_points >= 1 and train.loss_plot.curve_point_count("d_loss") >= 1
    assert np.isfinite(train.loss_plot.series("g_loss")[1]).all()
    assert train.sample_grid.mosaic is not None and train.samples_seen >= 1
    assert train.checkpoints and Path(train.checkpoints[-1]).exists()

    model = tmp_path / "model.safetensors"
    with qtbot.waitSignal(train.model_saved, timeout=60000):
        train.save_model_to(str(model))
    assert state.model_path == str(model)
    model_bytes = model.read_bytes()
    for marker in (b"Marker^Alice", b"PID-ALICE", b"Marker^Bob", str(dicom_folder).encode()):
        assert marker not in model_bytes  # the model file holds no identity and no local path

    # continue the same run from its last checkpoint
    train.checkpoint_list.setCurrentRow(train.checkpoint_list.count() - 1)
    train.resume_button.click()
    assert "resumes from" in train.finetune_label.text()
    train.settings.steps.setValue(5)
    with qtbot.waitSignal(train.run_ended, timeout=180000) as resumed:
        assert train.start_training()
    qtbot.waitUntil(lambda: not train.is_training(), timeout=30000)
    assert resumed.args == ["finished"], train.status_label.text()
    assert train.started_event.start_step == 3 and train.last_result.step == 5

    gen = window.show_page("generate")
    gen.count.setValue(16)
    gen.batch.setValue(8)
    with qtbot.waitSignal(gen.generated, timeout=120000):
        assert gen.start_generation()
    qtbot.waitUntil(lambda: not gen.is_busy(), timeout=30000)
    assert gen.gallery_model.rowCount() == 16 and state.scores is not None
    guarded = gen.current_decisions()
    assert not np.any(guarded.keep & guarded.memorized)  # the guard is on by default
    # A 3-step model on a handful of slices draws near-blank images that the guard may flag;
    # the explicit override lets them through and is recorded in the manifest.
    gen.allow_memorized.setChecked(True)
    gen.top_k.setValue(5)
    gen.apply_filters()
    decisions = gen.current_decisions()
    assert 0 < decisions.n_kept <= 5, (decisions.counts, decisions.reasons[:3])
    assert decisions.config.allow_memorized

    export = window.show_page("export")
    dest = tmp_path / "export"
    export.format_combo.setCurrentIndex(export.format_combo.findData("png"))
    export.destination.setText(str(dest))
    with qtbot.waitSignal(export.export_finished, timeout=120000):
        assert export.start_export()
    qtbot.waitUntil(lambda: not export.is_busy(), timeout=30000)
    pngs = sorted(dest.glob("*.png"))
    assert len(pngs) == decisions.n_kept
    manifest = json.loads((dest / "manifest.json").read_text())
    assert manifest["counts"]["synthetic_exported"] == decisions.n_kept
    assert manifest["filters"]["memorization_guard"] == "overridden"
    assert export.open_button.isEnabled()
    assert not shown_dialogs()


def test_closing_the_window_during_training_saves_and_stops(qtbot, window, dicom_folder):
    _training_set(qtbot, window, dicom_folder)
    train = window.show_page("train")
    _configure_short_run(train, steps=100000)
    train.start_training()
    qtbot.waitUntil(lambda: train.metrics_seen >= 1, timeout=120000)
    handle = train.handle
    window.close()
    assert not handle.is_running()
    result = train.worker.trainer.result if hasattr(train.worker.trainer, "result") else None
    status = getattr(result, "status", None) or getattr(train.last_result, "status", None)
    checkpoint_dirs = list(train.runs_dir.glob("run-*"))
    assert checkpoint_dirs, "a run folder was created"
    saved = [p for d in checkpoint_dirs for p in d.glob("*.safetensors")]
    assert saved, "stopping on close saves a checkpoint"
    assert status in (None, "cancelled")
