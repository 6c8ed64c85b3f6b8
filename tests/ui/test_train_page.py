"""Train page: the run lifecycle (start, live plots, pause, stop, finish, save), failures shown
with advice and buttons returned to a usable state, and a clean shutdown."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from tests.ui.fake_engine import FakeTrainer, fake_factory
from ui.pages.train_page import TrainPage
from ui.state import AppState
from ui.widgets import error_dialog


@pytest.fixture
def page(qtbot, tmp_path):
    state = AppState()
    state.set_training_set(np.zeros((12, 32, 32), np.float32), {"modality": "CT", "n_patients": 2})
    p = TrainPage(state)
    qtbot.addWidget(p)
    p.runs_dir = tmp_path / "runs"
    p.settings.set_resolution(32)
    p.settings.steps.setValue(60)
    p.settings.batch.setValue(4)
    p.config_overrides = {"sample_every": 10, "checkpoint_every": 20}
    p.trainer_factory = fake_factory(step_s=0.004)
    yield p
    p.shutdown(10000)
    error_dialog.close_all()


def _wait_done(qtbot, page: TrainPage, timeout: int = 10000) -> None:
    qtbot.waitUntil(lambda: page.phase in ("finished", "idle") and not page.is_training(),
                    timeout=timeout)


def test_run_to_the_end_updates_plots_samples_checkpoints_and_saves(qtbot, page, tmp_path):
    assert page.start_button.isEnabled() and not page.save_button.isEnabled()
    with qtbot.waitSignal(page.run_ended, timeout=10000) as ended:
        assert page.start_training()
        assert not page.start_button.isEnabled() and page.stop_button.isEnabled()
        assert not page.settings.isEnabled()
    _wait_done(qtbot, page)
    assert ended.args == ["finished"]
    trainer = FakeTrainer.instances[-1]
    assert trainer.thread_name != threading.main_thread().name  # never on the UI thread
    page.loss_plot.flush()
    assert page.loss_plot.n_points >= 1
    assert page.loss_plot.curve_point_count("g_loss") == page.loss_plot.n_points
    steps, g = page.loss_plot.series("g_loss")
    assert steps[-1] == 60  # the last step always arrives (the throttle flushes)
    assert np.all(np.diff(steps) > 0)
    assert page.sample_grid.step is not None and page.sample_grid.mosaic is not None
    assert page.checkpoint_list.count() >= 1
    assert all(Path(p).exists() for p in page.checkpoints)
    assert page.progress.value() == 1000
    assert page.start_button.isEnabled() and page.save_button.isEnabled()
    assert not page.stop_button.isEnabled() and not page.pause_button.isEnabled()

    out = tmp_path / "model.safetensors"
    with qtbot.waitSignal(page.model_saved, timeout=10000) as saved:
        assert page.save_model_to(str(out)) is not None
    assert Path(saved.args[0]).exists()
    assert page.state.model_path == saved.args[0]
    from medgan.models.modelfile import read_metadata

    meta = read_metadata(saved.args[0])
    assert meta.recipe == "default" and meta.resolution == 32 and meta.step == 60
    assert meta.training_summary.get("modality") == "CT"
    assert "checkpoint_dir" not in meta.train_config  # no local paths in a portable model


def test_metrics_are_throttled_to_about_ten_per_second(qtbot, page):
    page.trainer_factory = fake_factory(step_s=0.0005)
    page.settings.steps.setValue(800)
    page.start_training()
    _wait_done(qtbot, page)
    elapsed = page.last_result and FakeTrainer.instances[-1]
    assert elapsed is not None
    # 800 steps emitted; the UI sees ≤ 10/s plus the final flushed step.
    assert page.metrics_seen < 60
    assert page.loss_plot.series("g_loss")[0][-1] == 800


def test_pause_resume_and_stop_saves_a_checkpoint(qtbot, page):
    page.settings.steps.setValue(100000)
    page.start_training()
    qtbot.waitUntil(lambda: page.metrics_seen >= 1, timeout=5000)
    page.toggle_pause()
    assert page.phase == "paused" and page.pause_button.text() == "Resume"
    qtbot.waitUntil(lambda: page.status_label.text().startswith("Paused at step"), timeout=5000)
    seen = page.metrics_seen
    qtbot.wait(300)
    assert page.metrics_seen <= seen + 1  # nothing moves while paused
    page.toggle_pause()
    assert page.phase == "running" and page.pause_button.text() == "Pause"
    qtbot.waitUntil(lambda: page.metrics_seen > seen + 1, timeout=5000)
    page.toggle_pause()  # stop while paused must still end the run
    with qtbot.waitSignal(page.run_ended, timeout=10000) as ended:
        page.stop_training()
        assert page.phase == "stopping" and not page.stop_button.isEnabled()
    _wait_done(qtbot, page)
    assert ended.args == ["cancelled"]
    assert page.last_result.status == "cancelled"
    assert page.checkpoints and Path(page.checkpoints[-1]).exists()
    assert page.start_button.isEnabled() and page.save_button.isEnabled()


@pytest.mark.parametrize("kind, text", [("nan", "NaN"), ("oom", "out of memory")])
def test_engine_failure_shows_advice_and_page_stays_usable(qtbot, page, kind, text):
    page.trainer_factory = fake_factory(step_s=0.002, fail_at=15, fail_kind=kind)
    with qtbot.waitSignal(page.run_ended, timeout=10000) as ended:
        page.start_training()
    _wait_done(qtbot, page)
    assert ended.args == ["failed"]
    dialogs = error_dialog.shown_dialogs()
    assert dialogs, "a failure must be shown in a dialog"
    shown = dialogs[-1].text() + dialogs[-1].informativeText()
    assert text in shown and "Lower" in shown  # the engine's advice reaches the user
    assert page.start_button.isEnabled() and not page.stop_button.isEnabled()
    assert not page.save_button.isEnabled()  # a failed run's weights are not offered
    assert page.settings.isEnabled()
    error_dialog.close_all()
    page.trainer_factory = fake_factory(step_s=0.001)
    page.settings.steps.setValue(5)
    with qtbot.waitSignal(page.run_ended, timeout=10000) as again:
        assert page.start_training()
    assert again.args == ["finished"]


def test_unexpected_exception_is_reported_and_buttons_recover(qtbot, page):
    page.trainer_factory = fake_factory(step_s=0.001, fail_at=3, fail_kind="bug")
    with qtbot.waitSignal(page.run_ended, timeout=10000) as ended:
        page.start_training()
    _wait_done(qtbot, page)
    assert ended.args == ["failed"]
    assert "boom" in error_dialog.shown_dialogs()[-1].text()
    assert page.start_button.isEnabled() and not page.pause_button.isEnabled()
    assert page.state.task_text == ""


def test_invalid_settings_are_refused_with_a_dialog(qtbot, page):
    page.config_overrides = {"lr_g": -1.0}
    assert not page.start_training()
    assert error_dialog.shown_dialogs()
    assert page.phase == "idle" and page.start_button.isEnabled()


def test_no_training_set_means_no_start(qtbot):
    state = AppState()
    p = TrainPage(state)
    qtbot.addWidget(p)
    assert not p.start_button.isEnabled()
    assert not p.start_training()
    assert "Data page" in p.data_label.text()
    assert error_dialog.shown_dialogs()
    error_dialog.close_all()


def test_shutdown_during_training_stops_saves_and_joins(qtbot, page):
    page.settings.steps.setValue(100000)
    page.start_training()
    qtbot.waitUntil(lambda: page.metrics_seen >= 2, timeout=5000)
    handle = page.handle
    assert page.shutdown(10000)
    assert not handle.is_running()
    trainer = FakeTrainer.instances[-1]
    assert trainer.result is not None and trainer.result.status == "cancelled"
    assert Path(trainer.result.checkpoint_path).exists()


def test_resolution_mismatch_resizes_the_training_set(qtbot, page):
    page.settings.set_resolution(64)
    page.settings.steps.setValue(3)
    with qtbot.waitSignal(page.run_ended, timeout=10000):
        page.start_training()
    assert FakeTrainer.instances[-1].images.shape == (12, 64, 64)


def test_fine_tune_takes_over_the_model_and_refuses_a_tampered_file(qtbot, page, tmp_path):
    from tests.ui.fake_engine import tiny_model_file

    model = tiny_model_file(tmp_path / "base.safetensors", recipe="dcgan", res=32)
    page.settings.recipe.setCurrentIndex(page.settings.recipe.findData("default"))
    page.settings.set_resolution(64)
    page.set_init_model(str(model))
    assert page.settings.values()["recipe"] == "dcgan"
    assert page.settings.values()["resolution"] == 32
    assert "Fine-tuning from base.safetensors" in page.finetune_label.text()
    page.settings.steps.setValue(3)
    with qtbot.waitSignal(page.run_ended, timeout=10000) as ended:
        page.start_training()
    assert ended.args == ["finished"]
    _wait_done(qtbot, page)  # run_ended comes before the worker's thread has finished
    trainer = FakeTrainer.instances[-1]
    assert trainer.config.width == 8  # the model's network size, so its weights fit
    assert isinstance(trainer.init_model, dict) and "generator" in trainer.init_model

    tampered = tmp_path / "evil.safetensors"
    tampered.write_bytes(b"\x80\x04\x95" + b"cos\nsystem\n(S'echo pwned'\ntR." * 3)
    page.set_init_model(str(tampered))
    assert page.init_model is None
    assert "Training from scratch" in page.finetune_label.text()
    assert error_dialog.shown_dialogs()
    assert page.start_button.isEnabled()


def test_saved_model_carries_no_identifying_summary_fields(qtbot, tmp_path):
    from medgan.models.modelfile import read_metadata

    state = AppState()
    state.set_training_set(np.zeros((6, 32, 32), np.float32), {
        "modality": "CT", "n_patients": 2, "window": {"center": 40.0, "width": 400.0},
        "patient_name": "Marker^Canary", "institution_name": "Canary Hospital",
        "source_folder": "/data/Marker^Canary", "study_date": "20240101",
        "description": "Marker^Canary head CT with contrast, long free text",
    })
    page = TrainPage(state)
    qtbot.addWidget(page)
    page.runs_dir = tmp_path / "runs"
    page.settings.set_resolution(32)
    page.settings.steps.setValue(2)
    page.trainer_factory = fake_factory(step_s=0.001)
    with qtbot.waitSignal(page.run_ended, timeout=10000):
        page.start_training()
    qtbot.waitUntil(lambda: page.save_button.isEnabled(), timeout=10000)
    with qtbot.waitSignal(page.model_saved, timeout=10000) as saved:
        page.save_model_to(str(tmp_path / "m.safetensors"))
    raw = Path(saved.args[0]).read_bytes()
    assert b"Canary" not in raw and b"20240101" not in raw and b"runs" not in raw
    meta = read_metadata(saved.args[0])
    assert meta.window == (40.0, 400.0) and meta.modality == "CT"
    assert meta.training_summary["n_patients"] == 2


def test_quality_probes_are_plotted_and_keep_best_reaches_the_config(qtbot, page):
    from medgan.train import events as ev
    from ui.widgets.train_settings import make_train_config

    page.load_history(
        [
            ev.QualityMeasured(step=50, swd=120.0, best_step=50, best_swd=120.0),
            ev.QualityMeasured(step=100, swd=60.0, best_step=100, best_swd=60.0),
            ev.QualityMeasured(step=150, swd=90.0, best_step=100, best_swd=60.0),
            ev.QualityMeasured(step=160, swd=95.0, best_step=100, best_swd=60.0, final=True),
        ]
    )
    points = page.loss_plot.quality_points
    assert points[:, 0].tolist() == [50, 100, 150, 160] and points[1, 1] == 60.0
    assert page.quality_label.text() == (
        "Sample quality (SWD, lower is better): 95 at the end; best 60 at step 100"
    )
    assert make_train_config(page.settings.values()).keep_best is True
    page.settings.keep_best.setChecked(False)
    assert make_train_config(page.settings.values()).keep_best is False
    page.settings.set_values({"keep_best": True})
    assert page.settings.keep_best.isChecked()


def test_saved_step_text_names_an_earlier_kept_generator():
    from ui.widgets.train_status import saved_step_text

    assert saved_step_text({"selected_step": 150, "trained_steps": 300}) == (
        " (generator of step 150, the best quality check of 300 steps)"
    )
    assert saved_step_text({"selected_step": 300, "trained_steps": 300}) == ""
    assert saved_step_text({}) == ""


def test_slice_levels_reach_the_config_for_the_default_recipe_only(qtbot, page):
    from ui.widgets.train_settings import make_train_config

    settings = page.settings
    settings.recipe.setCurrentIndex(settings.recipe.findData("default"))
    assert settings.levels.isEnabled() and make_train_config(settings.values()).levels == 0
    settings.set_values({"levels": 2})
    assert settings.levels.currentText() == "2 levels"
    assert make_train_config(settings.values()).levels == 2
    settings.recipe.setCurrentIndex(settings.recipe.findData("dcgan"))
    assert not settings.levels.isEnabled() and settings.values()["levels"] == 0
