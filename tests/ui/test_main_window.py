"""Main window: workflow pages, status bar, log panel, menus, drag-and-drop, settings,
the demo study in the background, error dialogs instead of crashes, clean shutdown, fast start."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import QMimeData, QPointF, Qt, QUrl
from PySide6.QtGui import QDropEvent

from ui.main_window import PAGES, MainWindow, describe_device, warm_up_data_stack
from ui.pages import data_page as data_page_module
from ui.state import AppState
from ui.widgets.error_dialog import close_all, shown_dialogs
from ui.workers import FunctionWorker, start_worker

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def make_window(qtbot, monkeypatch):
    monkeypatch.setenv("MEDGAN_NO_WARMUP", "1")  # the warm-up has its own test
    windows: list[MainWindow] = []

    def make() -> MainWindow:
        window = MainWindow(AppState())
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
    close_all()


def drop_folder(window: MainWindow, folder: Path) -> None:
    mime = QMimeData()
    mime.setUrls([QUrl.fromLocalFile(str(folder))])
    event = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime,
                       Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    window.dropEvent(event)


def test_shell_pages_shortcuts_status_and_log(qtbot, make_window) -> None:
    window = make_window()
    assert "MedGAN Studio" in window.windowTitle()
    assert list(window.pages) == ["data", "train", "generate", "export", "utility"]
    assert type(window.pages["data"]).__name__ == "DataPage"
    for key, cls in (("train", "TrainPage"), ("generate", "GeneratePage"), ("export", "ExportPage")):
        assert type(window.pages[key]).__name__ in (cls, "UnavailablePage")
    # keyboard shortcuts switch pages
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=3000)
    qtbot.keyClick(window, Qt.Key.Key_3, Qt.KeyboardModifier.ControlModifier)
    assert window.current_page_name() == "generate"
    qtbot.keyClick(window, Qt.Key.Key_1, Qt.KeyboardModifier.ControlModifier)
    assert window.stack.currentWidget() is window.pages["data"]
    # the status bar follows the shared task state
    window.state.set_task("Training: step 10 / 100", 0.1, key="t")
    assert window.task_label.text() == "Training: step 10 / 100"
    assert window.task_bar.isVisibleTo(window) and window.task_bar.value() == 100
    window.state.clear_task("t")
    assert window.task_label.text() == "Ready" and not window.task_bar.isVisibleTo(window)
    # records logged in a worker thread reach the log panel, drawn in the UI thread
    def noisy(*, progress, cancel):
        logging.getLogger("medgan.fake").warning("hello from the worker")
        return 1

    handle = start_worker(FunctionWorker(noisy))
    with qtbot.waitSignal(handle.finished, timeout=5000):
        pass
    qtbot.waitUntil(lambda: "hello from the worker" in window.log_panel.text(), timeout=3000)
    # about: versions and device
    window.state.set_device(describe_device({"device": "cuda", "name": "NVIDIA Test", "memory_gb": 8.0}))
    about = window.about_text()
    assert "NVIDIA Test" in about and "PySide6" in about and "Python" in about
    assert window.device_label.text() == "GPU: NVIDIA Test (8.0 GiB)"
    assert {a.text() for a in window.menuBar().actions()} >= {"&File", "&Help"}


def test_pages_share_the_page_base_and_hear_when_shown(qtbot, make_window, monkeypatch) -> None:
    from ui.pages.base import Page

    window = make_window()
    assert all(isinstance(page, Page) for page in window.pages.values())
    assert window.built_pages() == ["data", "train", "generate", "export", "utility"]
    shown: list[str] = []
    train = window.pages["train"]
    monkeypatch.setattr(train, "on_shown", lambda: shown.append("train"))
    window.show_page("train")
    assert shown == ["train"] and window.stack.currentWidget() is train


def test_a_page_that_fails_to_build_does_not_take_the_window_down(qtbot, make_window,
                                                                   monkeypatch, tmp_path) -> None:
    import ui.main_window as main_window
    from ui.pages.base import PageSpec, UnavailablePage

    def broken(state, parent):
        raise RuntimeError("the data page exploded")

    specs = tuple(PageSpec(s.key, s.label, broken) if s.key == "data" else s
                  for s in main_window.PAGES)
    monkeypatch.setattr(main_window, "PAGES", specs)
    window = make_window()
    assert isinstance(window.page("data"), UnavailablePage) and window.data_page() is None
    assert type(window.page("train")).__name__ == "TrainPage"  # the others still build
    qtbot.waitUntil(lambda: window._ready, timeout=10000)
    window.open_folder(tmp_path)
    dialogs = shown_dialogs()
    assert dialogs and "Data page is not available" in dialogs[-1].text()
    assert "the data page exploded" in window.log_panel.text()


def test_drop_folder_scans_and_settings_survive_restart(qtbot, make_window, dicom_folder) -> None:
    window = make_window()
    data = window.pages["data"]
    with qtbot.waitSignal(data.scan_finished, timeout=30000):
        drop_folder(window, dicom_folder)
    qtbot.waitUntil(lambda: not data.is_scanning(), timeout=5000)
    assert window.state.scan is not None and len(window.state.scan.series) == 3
    assert dicom_folder.name in window.windowTitle()
    assert window.recent_folders()[0] == str(dicom_folder)
    window.show_page("export")
    window.close()
    again = make_window()
    assert again.current_page_name() == "export"
    recent = [a.text() for a in again.recent_menu.actions()]
    assert str(dicom_folder) in recent
    again.close()


def test_demo_study_is_written_in_background_then_opened(qtbot, make_window, tmp_path,
                                                          monkeypatch, stall_probe) -> None:
    import medgan.demo.study as demo

    calls: list[bool] = []

    def small_demo(cache_dir=None, *, progress=None, cancel=None):
        calls.append(progress is not None and cancel is not None)
        return demo.write_demo_study(tmp_path / "demo", n_patients=2, slices_per_patient=6,
                                     size=64, progress=progress, cancel=cancel)

    monkeypatch.setattr(demo, "ensure_demo_study", small_demo)
    window = make_window()
    warm_up_data_stack()  # what the window does right after it shows (disabled in these tests)
    assert len(window.pages) == len(PAGES)  # jobs wait for the pages, built right after the window shows
    tasks: list[str] = []
    window.state.task_changed.connect(lambda text, _p: tasks.append(text))
    stall_probe.start()
    window.page("data").demo_button.click()  # same as File → Open demo study
    qtbot.waitUntil(lambda: window.state.scan is not None, timeout=60000)
    qtbot.waitUntil(lambda: not window.pages["data"].is_scanning(), timeout=5000)
    stall_probe.assert_responsive(100)
    assert calls == [True]
    assert any("demo" in t for t in tasks) and any("Scanning" in t for t in tasks)
    assert len({s.patient_id for s in window.state.scan.series}) == 2
    assert str(tmp_path / "demo") not in window.recent_folders()  # the demo is not "recent"


def test_uncaught_exception_shows_dialog_and_is_logged(qtbot, make_window) -> None:
    from ui.app import _excepthook

    window = make_window()
    try:
        raise RuntimeError("kaboom in a slot")
    except RuntimeError as exc:
        _excepthook(type(exc), exc, exc.__traceback__)
    dialogs = shown_dialogs()
    assert dialogs and "kaboom in a slot" in dialogs[-1].text()
    assert "kaboom in a slot" in dialogs[-1].detailedText()
    assert "Unexpected error" in window.log_panel.text()
    assert window.isVisible()  # still alive


def test_closing_during_a_job_stops_it_and_calls_page_shutdown(qtbot, make_window, tmp_path,
                                                                monkeypatch) -> None:
    def endless_scan(root, *, progress=None, cancel=None):
        from medgan.core.errors import Cancelled

        while not cancel.is_set():
            time.sleep(0.01)
        raise Cancelled()

    monkeypatch.setattr(data_page_module, "run_scan", endless_scan)
    window = make_window()
    shutdowns: list[str] = []
    for key in ("train", "generate", "export"):
        page = window.pages[key]
        original = getattr(page, "shutdown", None)

        def record(*args, _key=key, _orig=original, **kwargs):
            shutdowns.append(_key)
            if _orig is not None:
                return _orig(*args, **kwargs)
            return None

        page.shutdown = record
    window.open_folder(tmp_path)
    qtbot.waitUntil(lambda: window.pages["data"].is_scanning(), timeout=3000)
    t0 = time.monotonic()
    window.close()
    assert time.monotonic() - t0 < 5.0
    assert "train" in shutdowns
    from tests.ui.conftest import running_qthreads

    assert not running_qthreads()


def test_warm_up_reports_the_device(qtbot, monkeypatch) -> None:
    monkeypatch.setenv("MEDGAN_NO_WARMUP", "1")
    window = MainWindow(AppState())
    qtbot.addWidget(window)
    with qtbot.waitSignal(window.state.device_changed, timeout=120000) as blocker:
        window.probe_device()
    assert blocker.args[0].startswith(("CPU", "GPU"))
    qtbot.waitUntil(lambda: window._warm_handle is None, timeout=5000)
    assert window.device_info.get("torch")
    window.close()


def test_window_appears_fast_without_torch() -> None:
    """Launch → window on screen in < 3 s, with torch and MONAI not imported yet."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "main.py", "--startup-check"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        shown_line = proc.stdout.readline()
        shown_after = time.perf_counter() - started
        ready_line = proc.stdout.readline()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    shown, ready = json.loads(shown_line), json.loads(ready_line)
    assert proc.returncode == 0, proc.stderr.read()
    assert shown["event"] == "shown" and "MedGAN Studio" in shown["title"]
    assert shown["heavy_modules"] == [], "torch/MONAI must not load before the window shows"
    assert ready["pages"] == sorted(spec.key for spec in PAGES)
    assert shown_after < 3.0, f"launch to window took {shown_after:.2f} s"


@pytest.mark.slow
def test_real_training_keeps_the_loop_responsive_and_close_saves_a_checkpoint(
        qtbot, make_window, tmp_path, stall_probe) -> None:
    """The real trainer on a tiny set: the loop never stalls ≥ 100 ms while it trains, and
    closing the window mid-run stops it, saves a checkpoint and leaves no thread running."""
    import numpy as np

    from tests.ui.conftest import running_qthreads
    from ui.main_window import warm_up

    warm_up()  # the window does this after it shows (disabled in these tests)
    window = make_window()
    assert len(window.pages) == len(PAGES)  # built right after the window shows, before any job
    rng = np.random.default_rng(0)
    images = np.clip(rng.normal(0, 0.5, (24, 64, 64)), -1, 1).astype(np.float32)
    window.state.set_training_set(images, {"modality": "CT", "n_patients": 3})
    train = window.show_page("train")
    train.runs_dir = tmp_path / "runs"
    train.settings.set_resolution(64)
    train.settings.steps.setValue(100000)
    train.settings.batch.setValue(4)
    train.config_overrides = {"sample_every": 5, "checkpoint_every": 100000}
    stall_probe.start()
    assert train.start_training()
    qtbot.waitUntil(lambda: train.metrics_seen >= 3 and train.samples_seen >= 1, timeout=120000)
    stall_probe.assert_responsive(100)
    assert train.is_training()
    window.close()
    assert not running_qthreads()
    checkpoints = list((tmp_path / "runs").rglob("*.safetensors")) + list((tmp_path / "runs").rglob("*.ckpt*"))
    assert checkpoints, f"no checkpoint saved on close: {list((tmp_path / 'runs').rglob('*'))}"


@pytest.mark.slow
def test_generating_and_exporting_keep_the_loop_responsive(qtbot, make_window, tmp_path,
                                                           stall_probe) -> None:
    """Generate + score 64 images with a real (untrained) model, then export them: the event
    loop never stalls ≥ 100 ms and the files arrive."""
    import numpy as np

    from tests.ui.fake_engine import tiny_model_file
    from ui.main_window import warm_up

    warm_up()
    window = make_window()
    assert len(window.pages) == len(PAGES)
    rng = np.random.default_rng(1)
    window.state.set_training_set(np.clip(rng.normal(0, 0.5, (24, 32, 32)), -1, 1).astype(np.float32),
                                  {"modality": "CT", "n_patients": 2})
    window.open_model(str(tiny_model_file(tmp_path / "tiny.safetensors")))
    gen = window.show_page("generate")
    gen.count.setValue(64)
    gen.batch.setValue(16)
    stall_probe.start()
    with qtbot.waitSignal(gen.generated, timeout=120000):
        assert gen.start_generation()
    qtbot.waitUntil(lambda: not gen.is_busy(), timeout=30000)
    assert gen.gallery_model.rowCount() == 64
    gen.allow_memorized.setChecked(True)  # an untrained model's images may look alike
    gen.apply_filters()
    # the page publishes its decisions after a short debounce timer (late under load)
    qtbot.waitUntil(lambda: window.state.decisions is not None
                    and bool(window.state.decisions.keep.any()), timeout=10000)  # fmt: skip
    export = window.show_page("export")
    dest = tmp_path / "export"
    export.format_combo.setCurrentIndex(export.format_combo.findData("png"))
    export.destination.setText(str(dest))
    with qtbot.waitSignal(export.export_finished, timeout=120000):
        assert export.start_export()
    qtbot.waitUntil(lambda: not export.is_busy(), timeout=30000)
    stall_probe.assert_responsive(100)
    assert (dest / "manifest.json").exists()
    assert len(list(dest.glob("*.png"))) == gen.current_decisions().n_kept


def test_open_folder_works_before_the_window_is_shown(qtbot, tmp_path, monkeypatch, dicom_folder) -> None:
    monkeypatch.delenv("MEDGAN_NO_WARMUP", raising=False)  # the real start-up sequence
    window = MainWindow(AppState())
    qtbot.addWidget(window)
    window.open_folder(dicom_folder)  # queued until the pages and the data libraries are ready
    qtbot.waitUntil(lambda: window.state.scan is not None, timeout=60000)
    qtbot.waitUntil(lambda: not window.page("data").is_scanning(), timeout=10000)
    assert len(window.state.scan.series) == 3
    window.close()
