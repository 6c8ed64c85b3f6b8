"""The main window: workflow pages (Data → Train → Generate → Export), status bar, log dock,
menus, drag-and-drop of folders, settings remembered between runs, and a clean shutdown.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSettings, Qt, QTimer
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QKeySequence,
    QShowEvent,
)
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMessageBox,
    QSplitter,
    QStackedWidget,
    QWidget,
)

from ui.about import about_html
from ui.log_handler import log_handler
from ui.pages.base import Page, PageSpec, UnavailablePage, build_page
from ui.state import AppState
from ui.warmup import (  # noqa: F401 - warm_up* re-exported for callers of ui.main_window
    describe_device,
    freeze_long_lived_objects,
    warm_up,
    warm_up_data_stack,
)
from ui.widgets.error_dialog import show_error
from ui.widgets.log_panel import LogPanel
from ui.widgets.status_bar import AppStatusBar
from ui.workers import FunctionWorker, WorkerHandle, registry, start_worker

if TYPE_CHECKING:
    from ui.pages.data_page import DataPage

log = logging.getLogger(__name__)

TITLE = "MedGAN Studio"
MAX_RECENT = 8


# Page modules load when the window builds the page (they pull in pyqtgraph), right after the
# window shows: these factories import them.
def _data_page(state: AppState, parent: QWidget) -> Page:
    from ui.pages.data_page import DataPage

    return DataPage(state, parent)


def _train_page(state: AppState, parent: QWidget) -> Page:
    from ui.pages.train_page import TrainPage

    return TrainPage(state, parent)


def _generate_page(state: AppState, parent: QWidget) -> Page:
    from ui.pages.generate_page import GeneratePage

    return GeneratePage(state, parent)


def _export_page(state: AppState, parent: QWidget) -> Page:
    from ui.pages.export_page import ExportPage

    return ExportPage(state, parent)


def _utility_page(state: AppState, parent: QWidget) -> Page:
    from ui.pages.utility_page import UtilityPage

    return UtilityPage(state, parent)


PAGES: tuple[PageSpec, ...] = (
    PageSpec("data", "1  Data", _data_page),
    PageSpec("train", "2  Train", _train_page),
    PageSpec("generate", "3  Generate", _generate_page),
    PageSpec("export", "4  Export", _export_page),
    PageSpec("utility", "5  Utility", _utility_page),  # "Does it help?"
)
PAGE_KEYS: tuple[str, ...] = tuple(spec.key for spec in PAGES)

WARM_UP_DELAY_MS = 1500
UI_SWITCH_INTERVAL_S = 0.001


class MainWindow(QMainWindow):
    """Workflow shell around the pages; owns the status bar, the log dock and the menus."""

    def __init__(self, state: AppState | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state or AppState(self)
        self.setWindowTitle(TITLE)
        self.setObjectName("MainWindow")
        self.setAcceptDrops(True)
        screen = self.screen().availableGeometry() if self.screen() else None
        if screen is not None and screen.width() > 0:  # first launch: fit a small screen too
            self.resize(min(1400, int(screen.width() * 0.92)), min(900, int(screen.height() * 0.9)))
        else:
            self.resize(1400, 900)
        self.settings = QSettings()
        # Workers run Python too; handing the interpreter lock over every 1 ms instead of 5 ms
        # bounds how long the UI thread waits for it when several workers are busy.
        sys.setswitchinterval(UI_SWITCH_INTERVAL_S)
        self._closing = False
        self._demo_handle: WorkerHandle | None = None
        self._warm_handle: WorkerHandle | None = None
        self._stack_handle: WorkerHandle | None = None
        self.device_info: dict[str, Any] = {}

        self.nav = QListWidget(self)
        self.nav.setObjectName("WorkflowNav")
        self.nav.setFixedWidth(150)
        self.stack = QStackedWidget(self)
        # Pages are built right after the window shows (they pull in pyqtgraph), so the
        # window appears fast; ``page(key)`` builds one on demand.
        self._pages: dict[str, Page] = {}
        for spec in PAGES:
            holder = QLabel("Loading…", self.stack)
            holder.setAlignment(Qt.AlignmentFlag.AlignCenter)
            self.stack.addWidget(holder)
            QListWidgetItem(spec.label, self.nav)
        self._page_timer = QTimer(self)
        self._page_timer.setSingleShot(True)
        self._page_timer.timeout.connect(self._build_next_page)
        self._ready = False  # the data stack is imported (warm-up stage 1 done)
        self._when_ready: list[Callable[[], object]] = []
        self.nav.currentRowChanged.connect(self.stack.setCurrentIndex)
        self.nav.currentRowChanged.connect(lambda row: self._on_page_changed(row))
        splitter = QSplitter(self)
        splitter.addWidget(self.nav)
        splitter.addWidget(self.stack)
        splitter.setStretchFactor(1, 1)
        splitter.setChildrenCollapsible(False)
        self.setCentralWidget(splitter)

        self._build_log_dock()
        self._build_status_bar()
        self._build_menus()
        self.state.model_changed.connect(lambda _p: self._update_title())
        self.state.scan_changed.connect(lambda _s: self._update_title())
        self._restore_settings()
        self._warm_timer = QTimer(self)
        self._warm_timer.setSingleShot(True)
        self._warm_timer.timeout.connect(self.probe_device)
        self._warm_up_enabled = os.environ.get("MEDGAN_NO_WARMUP", "") in ("", "0")
        self._stack_warm = not self._warm_up_enabled

    # -- construction -----------------------------------------------------------------------
    def _build_log_dock(self) -> None:
        self.log_panel = LogPanel(self)
        self.log_panel.attach(log_handler())
        self.log_dock = QDockWidget("Log", self)
        self.log_dock.setObjectName("LogDock")
        self.log_dock.setWidget(self.log_panel)
        self.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, self.log_dock)
        self.log_dock.hide()

    def _build_status_bar(self) -> None:
        self.status = AppStatusBar(self.state, self)
        self.setStatusBar(self.status)
        # shortcuts kept for callers and tests
        self.device_label = self.status.device_label
        self.memory_label = self.status.memory_label
        self.task_label = self.status.task_label
        self.task_bar = self.status.task_bar

    def _action(self, text: str, slot: Callable[[], object],
                shortcut: QKeySequence | QKeySequence.StandardKey | str | None = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_menus(self) -> None:
        menu = self.menuBar()
        file_menu = menu.addMenu("&File")
        self.open_folder_action = self._action(
            "Open DICOM folder…", self.choose_folder, QKeySequence.StandardKey.Open,
            "Scan a folder of DICOM files (subfolders included)")
        self.open_demo_action = self._action("Open demo study", self.open_demo_study, "Ctrl+D",
                                             "Open the built-in synthetic head-CT study")
        self.open_model_action = self._action("Open model…", self.choose_model, "Ctrl+M",
                                              "Load a trained model file (.safetensors)")
        file_menu.addAction(self.open_folder_action)
        file_menu.addAction(self.open_demo_action)
        file_menu.addAction(self.open_model_action)
        self.open_pacs_action = self._action("Open from PACS…", self.open_from_pacs, "Ctrl+Shift+O",
                                             "Search a PACS and retrieve series (DIMSE or DICOMweb)")
        file_menu.addAction(self.open_pacs_action)
        self.recent_menu = file_menu.addMenu("Recent folders")
        file_menu.addSeparator()
        self.quit_action = self._action("Quit", self.close, QKeySequence.StandardKey.Quit)
        file_menu.addAction(self.quit_action)

        view_menu = menu.addMenu("&View")
        for row, spec in enumerate(PAGES):
            view_menu.addAction(self._action(f"{spec.name} page",
                                             partial(self.nav.setCurrentRow, row), f"Ctrl+{row + 1}"))
        view_menu.addSeparator()
        toggle = self.log_dock.toggleViewAction()
        toggle.setShortcut(QKeySequence("Ctrl+L"))
        view_menu.addAction(toggle)

        help_menu = menu.addMenu("&Help")
        help_menu.addAction(self._action("About MedGAN Studio", self.show_about, "F1"))
        self._refresh_recent_menu()

    # -- pages ------------------------------------------------------------------------------
    @property
    def pages(self) -> dict[str, Page]:
        """Every page, by key (builds those not built yet)."""
        for key in PAGE_KEYS:
            self.page(key)
        return dict(self._pages)

    def built_pages(self) -> list[str]:
        """Keys of the pages built so far (start-up builds them one per event-loop turn)."""
        return list(self._pages)

    def all_pages_built(self) -> bool:
        """True once every page in ``PAGES`` is built."""
        return len(self._pages) == len(PAGES)

    def page(self, key: str) -> Page:
        """The page ``key`` ("data", "train", "generate", "export"), built on first use."""
        if key in self._pages:
            return self._pages[key]
        row = PAGE_KEYS.index(key)
        page = build_page(PAGES[row], self.state, self.stack)
        page.setObjectName(f"{key.capitalize()}Page")
        old = self.stack.widget(row)  # the "Loading…" holder
        self.stack.insertWidget(row, page)
        if old is not None:
            self.stack.removeWidget(old)
            old.deleteLater()
        self._pages[key] = page
        self.stack.setCurrentIndex(max(0, self.nav.currentRow()))
        page.scan_finished.connect(self._on_scan_finished)
        page.demo_requested.connect(self.open_demo_study)
        if len(self._pages) == len(PAGES):
            QTimer.singleShot(0, self._maybe_ready)
        return page

    def data_page(self) -> DataPage | None:
        """The Data page, or None when it could not be built (the log says why)."""
        page = self.page("data")
        if isinstance(page, UnavailablePage):
            return None
        from ui.pages.data_page import DataPage  # already imported: the page was built

        return page if isinstance(page, DataPage) else None

    def _build_next_page(self) -> None:
        """Build one missing page per event-loop turn, the visible one first."""
        order = [self.current_page_name(), *PAGE_KEYS]
        missing = [k for k in order if k not in self._pages]
        if missing:
            self.page(missing[0])
        if len(missing) > 1:
            self._page_timer.start(0)
        else:
            freeze_long_lived_objects()
            self._maybe_ready()

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        self._start_up(page_delay_ms=30)  # let the shell paint first

    def _start_up(self, page_delay_ms: int = 0) -> None:
        """Build the missing pages and import the data libraries (once)."""
        if self._closing:
            return
        if len(self._pages) < len(PAGES) and not self._page_timer.isActive():
            self._page_timer.start(page_delay_ms)
        if not self._stack_warm and self._stack_handle is None:
            self._stack_handle = start_worker(
                FunctionWorker(warm_up_data_stack, name="warm-up-data", progress_kw=None,
                               cancel_kw=None), self, on_finished=self._on_stack_ready)

    def _on_stack_ready(self) -> None:
        self._stack_handle = None
        self._stack_warm = True
        self._maybe_ready()
        if not self._closing:
            self._warm_timer.start(WARM_UP_DELAY_MS)

    def _maybe_ready(self) -> None:
        """Once pages are built and the data libraries imported, run what was waiting."""
        if self._ready or not self._stack_warm or len(self._pages) < len(PAGES):
            return
        self._ready = True
        pending, self._when_ready = self._when_ready, []
        for action in pending:
            action()

    def run_when_ready(self, action: Callable[[], object]) -> None:
        """Run ``action`` now, or once the pages are built and the data libraries imported
        (about a second after start), so a job never competes with start-up work."""
        if self._ready:
            action()
        else:
            self._when_ready.append(action)
            self._start_up()  # also when the window is not shown (scripts, tests)

    # -- settings ---------------------------------------------------------------------------
    def _restore_settings(self) -> None:
        geometry = self.settings.value("window/geometry")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        win_state = self.settings.value("window/state")
        if isinstance(win_state, QByteArray):
            self.restoreState(win_state)
        page = self.settings.value("window/page", "data")
        self.nav.setCurrentRow(PAGE_KEYS.index(page) if page in PAGE_KEYS else 0)

    def _save_settings(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState())
        self.settings.setValue("window/page", self.current_page_name())
        self.settings.sync()

    def recent_folders(self) -> list[str]:
        value = self.settings.value("recent_folders", [])
        if isinstance(value, str):
            return [value]
        return [str(v) for v in value] if isinstance(value, (list, tuple)) else []

    def add_recent_folder(self, folder: str) -> None:
        folders = [f for f in self.recent_folders() if f != folder]
        folders.insert(0, folder)
        self.settings.setValue("recent_folders", folders[:MAX_RECENT])
        self._refresh_recent_menu()

    def _refresh_recent_menu(self) -> None:
        self.recent_menu.clear()
        folders = self.recent_folders()
        for folder in folders:
            self.recent_menu.addAction(self._action(folder, partial(self.open_folder, folder)))
        if folders:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction(self._action("Clear list", self._clear_recent))
        self.recent_menu.setEnabled(bool(folders))

    def _clear_recent(self) -> None:
        self.settings.setValue("recent_folders", [])
        self._refresh_recent_menu()

    # -- navigation -------------------------------------------------------------------------
    def current_page_name(self) -> str:
        row = max(0, self.nav.currentRow())
        return PAGE_KEYS[row]

    def show_page(self, key: str) -> Page:
        page = self.page(key)
        self.nav.setCurrentRow(PAGE_KEYS.index(key))
        return page

    def _on_page_changed(self, row: int) -> None:
        if not self.isVisible():
            return
        self.page(PAGE_KEYS[row]).on_shown()

    def _update_title(self) -> None:
        parts = [TITLE]
        scan = self.state.scan
        if scan is not None:
            parts.append(Path(scan.root).name or scan.root)
        if self.state.model_path:
            parts.append(Path(self.state.model_path).name)
        self.setWindowTitle(" — ".join(parts))

    # -- opening things ---------------------------------------------------------------------
    def choose_folder(self) -> None:
        start = (self.recent_folders() or [str(Path.home())])[0]
        folder = QFileDialog.getExistingDirectory(self, "Open DICOM folder", start)
        if folder:
            self.open_folder(folder)

    def open_folder(self, folder: str | Path) -> None:
        """Scan ``folder`` on the Data page (in the background)."""
        if not self._ready:
            self.run_when_ready(lambda: self.open_folder(folder))
            return
        self.show_page("data")
        data = self.data_page()
        if data is None:
            show_error(self, "The Data page is not available.", "See the log panel for details.")
            return
        data.scan_folder(str(folder))

    def _on_scan_finished(self, root: str, ok: bool) -> None:
        if ok and root and root != self._demo_root():
            self.add_recent_folder(root)

    def _demo_root(self) -> str:
        return str(self.settings.value("demo/root", ""))

    def open_demo_study(self) -> None:
        """Open the demo study, writing it first (in a worker, with progress) if needed."""
        if not self._ready:
            self.run_when_ready(self.open_demo_study)
            return
        if self._demo_handle is not None:
            return
        try:
            from medgan.demo.study import ensure_demo_study
        except ImportError:
            show_error(self, "The demo study is not available in this installation.",
                       "Open a DICOM folder instead (File → Open DICOM folder…).")
            return
        worker = FunctionWorker(ensure_demo_study, name="demo-study")
        self.state.set_task("Preparing the demo study…", -1.0, key="demo")
        self._demo_handle = start_worker(
            worker, self,
            on_progress=lambda f, _m: self.state.set_task("Preparing the demo study…", f, key="demo"),
            on_result=self._on_demo_ready,
            on_failed=lambda m, a: show_error(self, f"The demo study could not be written: {m}", a),
            on_finished=self._on_demo_finished)

    def _on_demo_ready(self, path: object) -> None:
        self.settings.setValue("demo/root", str(path))
        if not self._closing:
            self.open_folder(str(path))

    def _on_demo_finished(self) -> None:
        self.state.clear_task("demo")
        self._demo_handle = None

    def open_from_pacs(self) -> QWidget:
        """File → Open from PACS…: retrieved series open on the Data page like a folder."""
        from ui.widgets.pacs_dialog import PacsDialog

        dialog = PacsDialog(self)

        def opened(folder: str) -> None:
            dialog.accept()
            self.open_folder(folder)

        dialog.series_ready.connect(opened)
        dialog.open()
        return dialog

    def choose_model(self) -> None:
        start = str(self.settings.value("last_model_dir", str(Path.home())))
        path, _ = QFileDialog.getOpenFileName(self, "Open model", start,
                                              "MedGAN model (*.safetensors);;All files (*)")
        if path:
            self.open_model(path)

    def open_model(self, path: str) -> None:
        self.settings.setValue("last_model_dir", str(Path(path).parent))
        self.state.set_model_path(path)
        log.info("Model selected: %s", Path(path).name)
        self.show_page("generate")

    # -- drag and drop ----------------------------------------------------------------------
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:  # noqa: N802 - Qt override
        if self._dropped_path(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dropEvent(self, event: QDropEvent) -> None:  # noqa: N802 - Qt override
        path = self._dropped_path(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        if path.is_dir():
            self.open_folder(str(path))
        elif path.suffix == ".safetensors":
            self.open_model(str(path))
        else:
            self.open_folder(str(path.parent))

    @staticmethod
    def _dropped_path(event: QDragEnterEvent | QDropEvent) -> Path | None:
        urls = event.mimeData().urls() if event.mimeData().hasUrls() else []
        for url in urls:
            if url.isLocalFile():
                path = Path(url.toLocalFile())
                if path.exists():
                    return path
        return None

    # -- status bar -------------------------------------------------------------------------
    def probe_device(self) -> None:
        """Import torch/MONAI in a worker and show the device (torch never loads at start-up)."""
        if self._warm_handle is not None or self._closing or self.device_info:
            return
        self._warm_handle = start_worker(
            FunctionWorker(warm_up, name="warm-up", progress_kw=None, cancel_kw=None), self,
            on_result=self._on_device_info, on_finished=self._on_warm_up_finished)

    def _on_device_info(self, info: dict[str, Any]) -> None:
        self.device_info = info
        self.state.set_device(describe_device(info))

    def _on_warm_up_finished(self) -> None:
        self._warm_handle = None

    # -- about ------------------------------------------------------------------------------
    def about_text(self) -> str:
        return about_html(self.state.device, self.device_info)

    def show_about(self) -> None:
        box = QMessageBox(self)
        box.setObjectName("AboutDialog")
        box.setWindowTitle("About MedGAN Studio")
        box.setTextFormat(Qt.TextFormat.RichText)
        box.setText(self.about_text())
        box.setIconPixmap(self.windowIcon().pixmap(64, 64))
        box.open()

    # -- shutdown ---------------------------------------------------------------------------
    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        """Stop every job cleanly (training saves a checkpoint), then close."""
        self._closing = True
        self._save_settings()
        self.status.stop()
        for key in ("train", "generate", "export", "data"):
            page = self._pages.get(key)
            if page is None:
                continue
            try:
                page.shutdown()
            except Exception:  # noqa: BLE001 - keep closing
                log.exception("The %s page did not shut down cleanly", key)
        self._warm_timer.stop()
        self._page_timer.stop()
        self._when_ready.clear()
        if not registry().shutdown(timeout_ms=30000):
            log.error("Some background jobs did not stop in time")
        super().closeEvent(event)
