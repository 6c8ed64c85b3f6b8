"""Application start-up: QApplication, global excepthook, style, command-line options.

Nothing heavy is imported here: torch and MONAI load only when a job needs them, so the window
appears fast. ``main()`` is the ``medgan-studio`` entry point and what ``python main.py`` runs.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import threading
import time
import traceback
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtGui import QIcon
from PySide6.QtWidgets import QApplication

from ui.log_handler import log_handler, remove_log_handler
from ui.main_thread_gc import install_main_thread_collector
from ui.widgets.error_dialog import show_error
from ui.widgets.log_panel import QtLogHandler

if TYPE_CHECKING:  # imported in main(), once the QApplication exists
    from ui.main_window import MainWindow
    from ui.state import AppState

log = logging.getLogger(__name__)

RESOURCES = Path(__file__).resolve().parent.parent / "resources"
ORGANIZATION = "MedGAN Studio"
APPLICATION = "MedGAN Studio"

_in_hook = False


def resource_path(name: str) -> Path:
    """Path of a file in ``resources/``."""
    return RESOURCES / name


def load_stylesheet() -> str:
    path = resource_path("style.qss")
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        log.warning("Stylesheet %s not found; using the default look", path.name)
        return ""


def app_icon() -> QIcon:
    for name in ("icon.svg", "icon.png"):
        path = resource_path(name)
        if path.exists():
            return QIcon(str(path))
    return QIcon()


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """Log an uncaught exception and show it, instead of letting the app die."""
    global _in_hook
    if issubclass(exc_type, KeyboardInterrupt):
        QApplication.quit()
        return
    details = "".join(traceback.format_exception(exc_type, exc, tb))
    log.error("Unexpected error:\n%s", details)
    app = QApplication.instance()
    if _in_hook or app is None or threading.current_thread() is not threading.main_thread():
        return
    _in_hook = True
    try:
        show_error(
            QApplication.activeWindow(),
            f"Something went wrong: {exc_type.__name__}: {exc}",
            "Your data and settings are safe. The details are in the log panel; "
            "if this keeps happening, please report them.",
            details=details,
        )
    finally:
        _in_hook = False


def _thread_excepthook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    details = "".join(traceback.format_exception(args.exc_type, args.exc_value, args.exc_traceback))
    log.error("Unexpected error in a background thread:\n%s", details)


def install_excepthooks() -> None:
    sys.excepthook = _excepthook
    threading.excepthook = _thread_excepthook


def create_app(argv: list[str] | None = None) -> QApplication:
    """The QApplication, configured (style, icon, names, logging, excepthooks)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication([sys.argv[0], *(argv or [])])
    assert isinstance(app, QApplication)
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationDisplayName(APPLICATION)
    app.setWindowIcon(app_icon())
    app.setStyleSheet(load_stylesheet())
    logging.captureWarnings(True)
    log_handler()
    if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, QtLogHandler)
               for h in logging.getLogger().handlers):
        stream = logging.StreamHandler()
        stream.setLevel(logging.WARNING)
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        logging.getLogger().addHandler(stream)
    install_excepthooks()
    install_main_thread_collector(app)
    return app


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="medgan-studio", description="MedGAN Studio desktop app")
    parser.add_argument("folder", nargs="?", help="DICOM folder to open")
    parser.add_argument("--demo", action="store_true", help="open the built-in demo study")
    parser.add_argument("--quit-when-idle", action="store_true",
                        help="smoke test: open, wait until every background job is done, print a "
                             "JSON summary (series found, errors logged) and quit")
    parser.add_argument("--startup-check", action="store_true",
                        help="print start-up timing as JSON once the window shows, then quit")
    return parser.parse_args(argv)


class _ErrorCounter(logging.Handler):
    """Counts ERROR records (the smoke test reports them)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def _quit_when_idle(window: MainWindow, state: AppState, started: float) -> None:
    """Close the window once the opened study is scanned and no worker is running."""
    from ui.workers import registry

    errors = _ErrorCounter()
    logging.getLogger().addHandler(errors)

    def check() -> None:
        busy = registry().running()
        if state.scan is None or busy or not window.all_pages_built():
            QTimer.singleShot(200, check)
            return
        print(json.dumps({"event": "idle", "seconds": round(time.perf_counter() - started, 2),
                          "series": len(state.scan.series), "errors_logged": errors.count}),
              flush=True)
        logging.getLogger().removeHandler(errors)
        window.close()

    QTimer.singleShot(500, check)


def main(argv: list[str] | None = None) -> int:
    """Start MedGAN Studio; returns the exit code."""
    started = time.perf_counter()
    args = parse_args(sys.argv[1:] if argv is None else argv)
    app = create_app()
    from ui.main_window import MainWindow  # after QApplication, so widgets can be built
    from ui.state import AppState

    state = AppState()
    window = MainWindow(state)
    window.show()
    from ui.os_signals import close_on_signals

    close_on_signals(window)  # SIGTERM/SIGHUP: stop training (checkpoint), close cleanly
    if args.startup_check:
        app.processEvents()  # expose and first paint
        shown = time.perf_counter() - started
        heavy_at_show = sorted(m for m in ("torch", "monai") if m in sys.modules)
        print(json.dumps({"event": "shown", "shown_s": round(shown, 3), "heavy_modules": heavy_at_show,
                          "title": window.windowTitle()}), flush=True)

        def report() -> None:
            if not window.all_pages_built():
                QTimer.singleShot(10, report)
                return
            print(json.dumps({"event": "ready", "heavy_modules": heavy_at_show,
                              "pages_ready_s": round(time.perf_counter() - started, 3),
                              "title": window.windowTitle(), "pages": sorted(window.built_pages())}),
                  flush=True)
            window.close()

        QTimer.singleShot(0, report)
    elif args.demo:
        QTimer.singleShot(0, window.open_demo_study)
    elif args.folder:
        QTimer.singleShot(0, lambda: window.open_folder(args.folder))
    if args.quit_when_idle:
        _quit_when_idle(window, state, started)
    code = app.exec()
    remove_log_handler()
    return int(code)
