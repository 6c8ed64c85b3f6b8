"""File → Open from PACS…: profiles, test connection, search, results, retrieve with progress.

Every network call runs in a worker thread (:mod:`ui.workers`); the retrieve shows progress
with an ETA and can be cancelled (what arrived is kept for a resume). When a retrieve
finishes, :attr:`PacsDialog.series_ready` carries the cache folder to open on the Data page.
Patient names and IDs appear here, in the results table, and nowhere else.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from medgan.core.errors import MedganError
from medgan.pacs.profiles import Profile, delete_profile, load_profiles
from medgan.pacs.records import FindPage, FindQuery, Hit, RetrieveOutcome, SeriesRef
from medgan.pacs.secrets import delete_secret
from medgan.workflows import pacs as flows
from ui.widgets.job_dialog import JobDialog
from ui.widgets.pacs_profile_editor import ProfileEditor, session_secret
from ui.workers import FunctionWorker, WorkerHandle, start_worker

log = logging.getLogger(__name__)

PAGE_SIZE = 50
COLUMNS = (
    "Patient",
    "Patient ID",
    "Date",
    "Accession",
    "Modality",
    "Description",
    "Series",
    "Images",
)


def format_eta(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:
        return "?"
    s = int(round(seconds))
    return f"{s}s" if s < 60 else f"{s // 60}m{s % 60:02d}s"


def retrieve_job(
    profile: Profile,
    refs: list[SeriesRef],
    secret: str | None,
    *,
    progress: Callable[..., Any],
    cancel: threading.Event,
) -> RetrieveOutcome:
    """The worker's job: retrieve, reporting ``(done, total, "n/N files, ETA …")``."""
    started = time.monotonic()

    def report(_stage: str, done: int, total: int) -> None:
        elapsed = time.monotonic() - started
        eta = elapsed * (total - done) / done if done else None
        progress(done, total, f"{done}/{total} files, ETA {format_eta(eta)}")

    return flows.retrieve(
        flows.RetrieveRequest(profile, refs, secret=secret), progress=report, cancel=cancel
    )


def series_of(profile: Profile, hits: list[Hit], secret: str | None) -> list[SeriesRef]:
    """The series to retrieve for the selected rows (every series of a selected study)."""
    refs: list[SeriesRef] = []
    for hit in hits:
        if hit.level == "series":
            refs.append(SeriesRef(hit.study_uid, hit.series_uid))
            continue
        offset = 0
        while True:
            page = flows.search(
                profile,
                FindQuery(level="series", study_uid=hit.study_uid, offset=offset, limit=200),
                secret=secret,
            )
            refs += [SeriesRef(hit.study_uid, h.series_uid) for h in page.hits]
            offset += len(page.hits)
            if not page.has_more or not page.hits:
                break
    return refs


def _retrieve_selected(
    profile: Profile,
    hits: list[Hit],
    secret: str | None,
    *,
    progress: Callable[..., Any],
    cancel: threading.Event,
) -> RetrieveOutcome:
    return retrieve_job(
        profile, series_of(profile, hits, secret), secret, progress=progress, cancel=cancel
    )


class PacsDialog(JobDialog):
    """Search a server and retrieve series into the private cache."""

    series_ready = Signal(str)  # the folder to open

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("PacsDialog")
        self.setWindowTitle("Open from PACS")
        self.resize(980, 620)
        self.hits: list[Hit] = []
        self.page_offset = 0
        self.has_more = False
        self.last_outcome: RetrieveOutcome | None = None
        self._profiles: dict[str, Profile] = {}
        self._build()
        self.reload_profiles()

    # -- layout ---------------------------------------------------------------------------
    def _build(self) -> None:
        self.profile_combo = QComboBox()
        self.profile_combo.currentIndexChanged.connect(lambda _i: self._update_buttons())
        self.new_button = QPushButton("New…")
        self.new_button.clicked.connect(lambda: self.edit_profile(None))
        self.edit_button = QPushButton("Edit…")
        self.edit_button.clicked.connect(lambda: self.edit_profile(self.current_profile()))
        self.delete_button = QPushButton("Delete")
        self.delete_button.clicked.connect(self.delete_current)
        self.test_button = QPushButton("Test connection")
        self.test_button.clicked.connect(self.test_connection)
        top = QHBoxLayout()
        top.addWidget(QLabel("Server"))
        top.addWidget(self.profile_combo, 1)
        for b in (self.new_button, self.edit_button, self.delete_button, self.test_button):
            top.addWidget(b)

        search = QGroupBox("Search")
        form = QFormLayout(search)
        self.level = QComboBox()
        self.level.addItem("Studies", "study")
        self.level.addItem("Series", "series")
        self.patient_id = QLineEdit()
        self.patient_name = QLineEdit()
        self.patient_name.setPlaceholderText("part of the name")
        self.accession = QLineEdit()
        self.date_from = QLineEdit()
        self.date_from.setPlaceholderText("YYYYMMDD")
        self.date_to = QLineEdit()
        self.date_to.setPlaceholderText("YYYYMMDD")
        self.modality = QLineEdit()
        self.modality.setPlaceholderText("CT, MR…")
        self.description = QLineEdit()
        self.description.setPlaceholderText(
            "part of the description (case-sensitive on most servers)"
        )
        dates = QHBoxLayout()
        dates.addWidget(self.date_from)
        dates.addWidget(QLabel("to"))
        dates.addWidget(self.date_to)
        form.addRow("Level", self.level)
        form.addRow("Patient ID", self.patient_id)
        form.addRow("Patient name", self.patient_name)
        form.addRow("Accession number", self.accession)
        form.addRow("Study date", dates)
        form.addRow("Modality", self.modality)
        form.addRow("Description", self.description)
        for edit in (
            self.patient_id,
            self.patient_name,
            self.accession,
            self.date_from,
            self.date_to,
            self.modality,
            self.description,
        ):
            edit.returnPressed.connect(lambda: self.search(0))
        self.search_button = QPushButton("Search")
        self.search_button.setDefault(True)
        self.search_button.clicked.connect(lambda: self.search(0))
        self.prev_button = QPushButton("◀ Previous")
        self.prev_button.clicked.connect(lambda: self.search(max(0, self.page_offset - PAGE_SIZE)))
        self.next_button = QPushButton("Next ▶")
        self.next_button.clicked.connect(lambda: self.search(self.page_offset + PAGE_SIZE))

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("PacsResults")
        self.table.setHorizontalHeaderLabels(list(COLUMNS))
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.horizontalHeader().setSectionResizeMode(5, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        self.table.itemDoubleClicked.connect(lambda _item: self.show_series_of_selected())
        self.count_label = QLabel("")

        self.series_button = QPushButton("Show series")
        self.series_button.clicked.connect(self.show_series_of_selected)
        self.retrieve_button = QPushButton("Retrieve and open")
        self.retrieve_button.clicked.connect(self.retrieve)
        self.cancel_button = QPushButton("Cancel retrieve")
        self.cancel_button.clicked.connect(self.cancel)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.close)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status_label = QLabel("")
        self.status_label.setObjectName("PacsStatus")
        self.status_label.setWordWrap(True)

        paging = QHBoxLayout()
        paging.addWidget(self.search_button)
        paging.addWidget(self.prev_button)
        paging.addWidget(self.next_button)
        paging.addWidget(self.count_label, 1)
        actions = QHBoxLayout()
        actions.addWidget(self.series_button)
        actions.addWidget(self.retrieve_button)
        actions.addWidget(self.cancel_button)
        actions.addStretch(1)
        actions.addWidget(self.close_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(search)
        layout.addLayout(paging)
        layout.addWidget(self.table, 1)
        layout.addLayout(actions)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)

    # -- profiles -------------------------------------------------------------------------
    def reload_profiles(self, select: str | None = None) -> None:
        try:
            self._profiles = load_profiles()
        except MedganError as exc:
            self._profiles = {}
            self._say(str(exc))
        current = select or self.profile_combo.currentData()
        self.profile_combo.blockSignals(True)
        self.profile_combo.clear()
        for name, p in self._profiles.items():
            self.profile_combo.addItem(f"{name} — {p.server}", name)
        index = self.profile_combo.findData(current) if current else 0
        self.profile_combo.setCurrentIndex(max(0, index))
        self.profile_combo.blockSignals(False)
        if not self._profiles:
            self._say("No server yet: add one with New….")
        self._update_buttons()

    def current_profile(self) -> Profile | None:
        name = self.profile_combo.currentData()
        return self._profiles.get(name) if name else None

    def _secret(self) -> str | None:
        p = self.current_profile()
        return session_secret(p.name) if p else None

    def edit_profile(self, profile: Profile | None) -> ProfileEditor:
        editor = ProfileEditor(profile, self)
        editor.accepted.connect(
            lambda: self.reload_profiles(
                editor.saved_profile.name if editor.saved_profile else None
            )
        )
        editor.open()
        return editor

    def delete_current(self) -> None:
        p = self.current_profile()
        if p is None:
            return
        answer = QMessageBox.question(self, "Delete profile", f"Delete the profile {p.server}?")
        if answer == QMessageBox.StandardButton.Yes:
            delete_secret(p.name)
            delete_profile(p.name)
            self.reload_profiles()

    # -- jobs -----------------------------------------------------------------------------
    def _start(
        self,
        worker: FunctionWorker,
        on_result: Callable[[Any], Any],
        busy_text: str,
        **callbacks: Any,
    ) -> WorkerHandle | None:
        if self.is_busy():
            return None
        self._say(busy_text)
        self.handle = start_worker(
            worker,
            self,
            on_result=on_result,
            on_failed=self._failed,
            on_finished=self._finished,
            **callbacks,
        )
        self._update_buttons()
        return self.handle

    def test_connection(self) -> WorkerHandle | None:
        p = self.current_profile()
        if p is None:
            return None
        worker = FunctionWorker(
            flows.check_connection,
            p,
            secret=self._secret(),
            name="pacs-echo",
            progress_kw=None,
            cancel_kw=None,
        )
        return self._start(worker, lambda msg: self._say(str(msg)), f"Testing {p.server}…")

    def query(self, offset: int = 0) -> FindQuery:
        return FindQuery(
            level=str(self.level.currentData()),
            patient_id=self.patient_id.text(),
            patient_name=self.patient_name.text(),
            accession=self.accession.text(),
            date_from=self.date_from.text().strip(),
            date_to=self.date_to.text().strip(),
            modality=self.modality.text(),
            description=self.description.text(),
            offset=offset,
            limit=PAGE_SIZE,
        )

    def search(self, offset: int = 0, query: FindQuery | None = None) -> WorkerHandle | None:
        p = self.current_profile()
        if p is None:
            return None
        try:
            q = query or self.query(offset)
        except MedganError as exc:
            self._say(str(exc))
            return None
        worker = FunctionWorker(
            flows.search,
            p,
            q,
            secret=self._secret(),
            name="pacs-find",
            progress_kw=None,
            cancel_kw=None,
        )
        return self._start(worker, self.show_page, f"Searching {p.server}…")

    def show_series_of_selected(self) -> WorkerHandle | None:
        rows = self.selected_hits()
        if len(rows) != 1 or rows[0].level != "study":
            return None
        self.level.setCurrentIndex(self.level.findData("series"))
        return self.search(
            0, FindQuery(level="series", study_uid=rows[0].study_uid, limit=PAGE_SIZE)
        )

    def show_page(self, page: FindPage) -> None:
        self.hits = list(page.hits)
        self.page_offset = page.offset
        self.has_more = page.has_more
        self.table.setRowCount(len(self.hits))
        for row, h in enumerate(self.hits):
            values = (
                h.patient_name.replace("^", " ").strip(),
                h.patient_id,
                h.study_date,
                h.accession,
                h.modality.replace("\\", ", "),
                h.description,
                "" if h.n_series is None else str(h.n_series),
                "" if h.n_instances is None else str(h.n_instances),
            )
            for col, text in enumerate(values):
                item = QTableWidgetItem(text)
                if col >= 6:
                    item.setTextAlignment(
                        Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter
                    )
                self.table.setItem(row, col, item)
        level = "studies" if page.hits and page.hits[0].level == "study" else "series"
        first = page.offset + 1 if page.hits else 0
        more = ", more on the next page" if page.has_more else ""
        self.count_label.setText(f"{level} {first}–{page.offset + len(page.hits)}{more}")
        self._say(f"{len(page.hits)} found.")
        self._update_buttons()

    def selected_hits(self) -> list[Hit]:
        rows = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.hits[r] for r in rows if r < len(self.hits)]

    def retrieve(self) -> WorkerHandle | None:
        p = self.current_profile()
        hits = self.selected_hits()
        if p is None or not hits:
            return None
        worker = FunctionWorker(_retrieve_selected, p, hits, self._secret(), name="pacs-retrieve")
        self.progress.setValue(0)
        return self._start(
            worker,
            self._retrieved,
            f"Retrieving from {p.server}…",
            on_progress=self._on_progress,
            on_cancelled=self._cancelled,
        )

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self._say("Cancelling…")

    # -- results --------------------------------------------------------------------------
    def _on_progress(self, fraction: float, message: str) -> None:
        if fraction >= 0:
            self.progress.setValue(int(fraction * 1000))
        if message:
            self._say(f"Retrieving: {message}")

    def _retrieved(self, outcome: RetrieveOutcome) -> None:
        self.last_outcome = outcome
        self.progress.setValue(1000)
        self._say(
            f"{len(outcome.folders)} series ready ({outcome.fetched} files fetched, "
            f"{outcome.reused} already cached)."
        )
        if outcome.folders:
            self.series_ready.emit(outcome.folder)

    def _cancelled(self) -> None:
        self._say("Retrieve cancelled; the files received are kept, retrieve again to resume.")

    def _failed(self, message: str, advice: str) -> None:
        self._say(f"{message} {advice}".strip())

    def _finished(self) -> None:
        self._update_buttons()

    def _say(self, text: str) -> None:
        self.status_label.setText(text)

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        has_profile = self.current_profile() is not None
        selected = self.selected_hits() if self.hits else []
        for b in (self.test_button, self.search_button, self.edit_button, self.delete_button):
            b.setEnabled(has_profile and not busy)
        self.new_button.setEnabled(not busy)
        self.profile_combo.setEnabled(not busy)
        self.prev_button.setEnabled(not busy and self.page_offset > 0)
        self.next_button.setEnabled(not busy and self.has_more)
        self.series_button.setEnabled(
            not busy and len(selected) == 1 and selected[0].level == "study"
        )
        self.retrieve_button.setEnabled(not busy and bool(selected))
        self.cancel_button.setEnabled(busy)

