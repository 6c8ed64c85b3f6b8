"""Labels on the Data page: load every label source of a scan in a worker, merge the user's
own labels (a JSON file in the workspace, never in the DICOM folder), and push the result to
the tree (counts, mask rows), the viewer (overlay, badge) and the Problems tab.

The user labels a series or a slice range from the tree's context menu or the selection panel;
labels import from / export to CSV.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QFileDialog, QInputDialog, QWidget

from medgan.core.errors import MedganError
from medgan.dicom.labels import (
    LabelProblem,
    LabelSet,
    UserLabels,
    load_labels,
    load_user_labels,
    read_label_csv,
    save_user_labels,
    user_label_path,
    write_label_csv,
)
from medgan.dicom.labels.match import ImageLookup
from ui.widgets.error_dialog import show_error
from ui.workers import FunctionWorker, WorkerHandle, start_worker

log = logging.getLogger(__name__)


def run_labels(scan: Any, *, progress: Any = None, cancel: Any = None) -> LabelSet:
    """Every label source found for ``scan`` (module-level so tests can replace it)."""
    return load_labels(scan, progress=progress, cancel=cancel)


class LabelStore:
    """Labels from files plus the user's own, for one scan."""

    def __init__(self) -> None:
        self.scan: Any = None
        self.from_files: LabelSet | None = None
        self.user = UserLabels()
        self.path: Any = None
        self.notes: list[LabelProblem] = []

    def reset(self, scan: Any) -> None:
        self.scan, self.from_files, self.user, self.notes = scan, None, UserLabels(), []
        self.path = user_label_path(scan.root) if scan is not None else None
        if self.path is not None:
            try:
                self.user = load_user_labels(self.path)
            except MedganError as exc:
                self.notes.append(LabelProblem(str(self.path), exc.message))

    def combined(self) -> LabelSet | None:
        if self.scan is None:
            return None
        out = LabelSet()
        if self.from_files is not None:
            out.update(self.from_files)
        if self.user.entries:
            out.update(self.user.to_label_set(self.scan.series))
        out.problems.extend(self.notes)
        return out

    def save(self) -> None:
        if self.path is not None:
            save_user_labels(self.path, self.user)


class DataLabels(QObject):
    """Wires a :class:`LabelStore` to the Data page's tree, viewer and problems panel."""

    changed = Signal()  # the combined labels changed (a built training set is stale)

    def __init__(self, page: Any) -> None:
        super().__init__(page)
        self.page = page
        self.store = LabelStore()
        self.version = 0
        self._handle: WorkerHandle | None = None
        tree = page.tree
        tree.label_series_requested.connect(self.label_series)
        tree.label_slices_requested.connect(self.label_viewed_range)
        tree.clear_labels_requested.connect(self.clear_series)
        tree.import_labels_requested.connect(self.import_csv)
        tree.export_labels_requested.connect(self.export_csv)
        page.selection.label_ranges_requested.connect(self.label_chosen_ranges)

    # -- loading ----------------------------------------------------------------------------
    def load(self, scan: Any) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self.store.reset(scan)
        self.apply()
        if scan is None or not scan.series:
            return
        self._handle = start_worker(
            FunctionWorker(run_labels, scan, name="labels"), self.page,
            on_result=partial(self._loaded, scan),
            on_failed=lambda message, advice: show_error(self.page, message, advice, title="Labels"),
            on_finished=self._finished,
        )  # fmt: skip

    def _loaded(self, scan: Any, labels: LabelSet) -> None:
        if scan is self.store.scan:
            self.store.from_files = labels
            # Only labels or masks change what a training set holds; problems do not.
            self.apply(changed=bool(labels.labels or labels.masks))

    def _finished(self) -> None:
        self._handle = None

    def is_loading(self) -> bool:
        return self._handle is not None

    def shutdown(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def labels(self) -> LabelSet | None:
        return self.store.combined()

    def apply(self, *, changed: bool = True) -> None:
        """Show the combined labels everywhere; ``changed`` makes a built training set stale."""
        labels = self.store.combined()
        page = self.page
        page.tree.set_labels(labels)
        page.viewer.set_labels(labels)
        rows = page.problems.show_scan(self.store.scan, labels)
        page.tabs.setTabText(1, f"Problems ({rows})" if self.store.scan is not None else "Problems")
        if changed:
            self.version += 1
            self.changed.emit()

    # -- the user's labels ------------------------------------------------------------------
    def _ask(self, title: str) -> str | None:
        current = self.labels()
        known = sorted(current.class_table().names) if current is not None else []
        name, ok = QInputDialog.getItem(
            self.page, title, "Class label:", known or ["normal"], 0, True
        )
        name = str(name).strip()
        return name if ok and name else None

    def _commit(self) -> None:
        try:
            self.store.save()
        except OSError as exc:
            show_error(self.page, f"Could not save your labels: {exc}",
                       "Check that your settings folder is writable.")  # fmt: skip
        self.apply()

    def label_series(self, uid: str, name: str | None = None) -> None:
        name = name or self._ask("Label series")
        if name:
            self.store.user.set_series(uid, name)
            self._commit()

    def label_range(self, uid: str, first: int, last: int, name: str | None = None) -> None:
        name = name or self._ask("Label slices")
        if name:
            self.store.user.set_range(uid, first, last, name)
            self._commit()

    def label_viewed_range(self, uid: str) -> None:
        """The checked range of the series if it has one, else the viewed slice."""
        rng = self.page._ranges.get(uid)
        if rng is not None:
            self.label_range(uid, rng[0], rng[1] - 1)
        elif self.page.viewer.series is not None and self.page.viewer.series.series_uid == uid:
            i = self.page.viewer.index()
            self.label_range(uid, i, i)

    def label_chosen_ranges(self, name: str | None = None) -> None:
        ranges = dict(self.page._ranges)
        if not ranges:
            show_error(self.page, "No series chosen.", "Tick the series whose ranges to label.")
            return
        name = name or self._ask("Label the chosen slice ranges")
        if name:
            for uid, (start, stop) in ranges.items():
                self.store.user.set_range(uid, start, stop - 1, name)
            self._commit()

    def clear_series(self, uid: str) -> None:
        self.store.user.clear(uid)
        self._commit()

    def import_csv(self, path: str | None = None) -> None:
        scan = self.store.scan
        if scan is None:
            return
        path = path or QFileDialog.getOpenFileName(self.page, "Import labels", "", "CSV (*.csv)")[0]
        if not path:
            return
        try:
            imported = read_label_csv(path, ImageLookup(scan.series, scan.root))
        except MedganError as exc:
            show_error(self.page, exc.message, exc.advice or "")
            return
        self.store.user.entries.extend(UserLabels.from_label_set(imported).entries)
        self.store.notes.extend(imported.problems)
        self._commit()

    def export_csv(self, path: str | None = None) -> None:
        labels = self.labels()
        if labels is None:
            return
        parent: QWidget = self.page
        path = (
            path
            or QFileDialog.getSaveFileName(parent, "Export labels", "labels.csv", "CSV (*.csv)")[0]
        )
        if path:
            try:
                write_label_csv(path, labels, self.store.scan.series)
            except OSError as exc:
                show_error(self.page, f"Could not write {path}: {exc}", "Choose another folder.")
