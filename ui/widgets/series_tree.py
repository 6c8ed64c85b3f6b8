"""Patient / Study / Series tree with a checkbox per trainable series.

Patient names appear here (the user needs them to find their data) and nowhere else: they are
never logged. Untrainable series are shown greyed out with the reason, and cannot be checked.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtGui import QBrush, QColor, QIcon, QPixmap
from PySide6.QtWidgets import QHeaderView, QTreeWidget, QTreeWidgetItem, QWidget

COLUMNS = (
    "Patient / Study / Series", "Modality", "Images", "Trainable", "Description", "Size", "Labels",
)  # fmt: skip
COL_NAME, COL_MODALITY, COL_IMAGES, COL_TRAINABLE, COL_DESC, COL_SIZE, COL_LABELS = range(
    len(COLUMNS)
)
MASK_ROLE = Qt.ItemDataRole.UserRole + 2  # path of a SEG/RTSTRUCT row under its series
_WIDTHS = {COL_NAME: 270, COL_MODALITY: 70, COL_IMAGES: 60, COL_TRAINABLE: 90, COL_DESC: 170}
UID_ROLE = Qt.ItemDataRole.UserRole + 1
THUMB_SIZE = 48


def series_title(series: Any) -> str:
    number = f"#{series.series_number} " if series.series_number is not None else ""
    return f"{number}{series.description or series.modality or 'Series'}"


class SeriesTree(QTreeWidget):
    """Shows a ``ScanResult``; emits the UIDs of checked series and the current series."""

    checked_changed = Signal(list)  # series UIDs, in tree order
    current_series_changed = Signal(str)  # series UID ("" for patient/study rows)
    label_series_requested = Signal(str)  # series UID: the user wants to label the series
    label_slices_requested = Signal(str)  # ... the slices around the viewed one
    clear_labels_requested = Signal(str)
    import_labels_requested = Signal()
    export_labels_requested = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("SeriesTree")
        self.setColumnCount(len(COLUMNS))
        self.setHeaderLabels(list(COLUMNS))
        self.setAlternatingRowColors(True)
        self.setIconSize(QSize(THUMB_SIZE, THUMB_SIZE))
        self.setUniformRowHeights(False)
        header = self.header()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        for col, width in _WIDTHS.items():
            header.resizeSection(col, width)
        header.setStretchLastSection(True)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._series: dict[str, Any] = {}
        self._updating = False
        self.itemChanged.connect(self._on_item_changed)
        self.currentItemChanged.connect(self._on_current_changed)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._context_menu)
        self._scan: Any = None

    def show_scan(self, scan: Any) -> None:
        """Fill the tree from a ``ScanResult`` (or clear it for None)."""
        self._updating = True
        try:
            self.clear()
            self._items.clear()
            self._series.clear()
            self._scan = scan
            if scan is None:
                return
            for patient in scan.patients():
                p_item = QTreeWidgetItem(self, [patient.patient_name or "(no name)"])
                p_item.setToolTip(COL_NAME, f"Patient ID: {patient.patient_id or '(none)'}")
                n_series = 0
                for study in patient.studies:
                    title = study.description or "Study"
                    if study.date:
                        title += f"  ({study.date})"
                    st_item = QTreeWidgetItem(p_item, [title])
                    for series in study.series:
                        self._add_series(st_item, series)
                        n_series += 1
                    st_item.setText(COL_IMAGES, str(sum(s.n_images for s in study.series)))
                p_item.setText(COL_DESC, f"{n_series} series")
                p_item.setText(
                    COL_IMAGES, str(sum(s.n_images for st in patient.studies for s in st.series))
                )
            self.expandAll()
        finally:
            self._updating = False
        self.checked_changed.emit(self.checked_uids())

    def _add_series(self, parent: QTreeWidgetItem, series: Any) -> None:
        size = f"{series.cols} × {series.rows}" if series.rows else "?"
        if series.spacing:
            size += (
                f"  ({series.spacing[0]:.2g}×{series.spacing[1]:.2g}×{series.spacing[2]:.2g} mm)"
            )
        trainable = "yes" if series.trainable else f"no: {series.reason or 'not trainable'}"
        texts = {
            COL_NAME: series_title(series),
            COL_MODALITY: series.modality,
            COL_DESC: series.description,
            COL_IMAGES: str(series.n_images),
            COL_SIZE: size,
            COL_TRAINABLE: trainable,
            COL_LABELS: "",
        }
        item = QTreeWidgetItem(parent, [texts[c] for c in range(len(COLUMNS))])
        item.setData(COL_NAME, UID_ROLE, series.series_uid)
        tip = trainable if not series.warnings else trainable + "\n" + "\n".join(series.warnings)
        for col in range(len(COLUMNS)):
            item.setToolTip(col, tip)
        flags = item.flags() | Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled
        if series.trainable:
            item.setFlags(flags | Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(COL_NAME, Qt.CheckState.Unchecked)
        else:
            item.setFlags(flags & ~Qt.ItemFlag.ItemIsUserCheckable)
            grey = QBrush(QColor("#7b8494"))
            for col in range(len(COLUMNS)):
                item.setForeground(col, grey)
        if series.warnings:
            item.setForeground(COL_TRAINABLE, QBrush(QColor("#ebcb8b")))
        self._items[series.series_uid] = item
        self._series[series.series_uid] = series

    # -- queries ----------------------------------------------------------------------------
    def series_uids(self) -> list[str]:
        return list(self._items)

    def item_for(self, uid: str) -> QTreeWidgetItem:
        return self._items[uid]

    def checked_uids(self) -> list[str]:
        return [
            uid
            for uid, item in self._items.items()
            if item.checkState(COL_NAME) == Qt.CheckState.Checked
        ]

    def current_series_uid(self) -> str:
        item = self.currentItem()
        return str(item.data(COL_NAME, UID_ROLE) or "") if item is not None else ""

    # -- changes ----------------------------------------------------------------------------
    def set_checked(self, uid: str, checked: bool) -> None:
        item = self._items[uid]
        if item.flags() & Qt.ItemFlag.ItemIsUserCheckable:
            item.setCheckState(
                COL_NAME, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked
            )

    def check_all_trainable(self, checked: bool = True) -> None:
        self._updating = True
        try:
            for uid in self._items:
                self.set_checked(uid, checked)
        finally:
            self._updating = False
        self.checked_changed.emit(self.checked_uids())

    def select_series(self, uid: str) -> None:
        self.setCurrentItem(self._items[uid])

    def set_thumbnail(self, uid: str, pixmap: QPixmap) -> None:
        item = self._items.get(uid)
        if item is not None:
            item.setIcon(COL_NAME, QIcon(pixmap))

    def _on_item_changed(self, item: QTreeWidgetItem, column: int) -> None:
        if column == COL_NAME and not self._updating and item.data(COL_NAME, UID_ROLE):
            self.checked_changed.emit(self.checked_uids())

    def _on_current_changed(self, current: QTreeWidgetItem | None, _previous: Any) -> None:
        uid = str(current.data(COL_NAME, UID_ROLE) or "") if current is not None else ""
        self.current_series_changed.emit(uid)

    # -- labels -----------------------------------------------------------------------------
    def set_labels(self, labels: Any) -> None:
        """Label counts per series, and each SEG/RTSTRUCT/NIfTI under the series it masks."""
        self._updating = True
        try:
            for uid, item in self._items.items():
                for k in reversed(range(item.childCount())):
                    child = item.child(k)
                    if child is not None and child.data(COL_NAME, MASK_ROLE):
                        item.removeChild(child)
                counts = labels.label_counts(uid) if labels is not None else {}
                text = ", ".join(f"{name} {n}" for name, n in sorted(counts.items()))
                item.setText(COL_LABELS, text)
                item.setToolTip(COL_LABELS, text or "no labels")
                shown: set[str] = set()
                for m in labels.masks.get(uid, []) if labels is not None else []:
                    per = ", ".join(f"{k} {v}" for k, v in sorted(m.areas().items()))
                    self._add_mask_row(item, uid, m.source, m.kind, f"{len(m.masks)} slices: {per}")
                    shown.add(m.source)
                for obj in self._scan.label_objects_for(uid) if self._scan is not None else []:
                    if obj.path not in shown:
                        self._add_mask_row(item, uid, obj.path, obj.kind, "not matched (see Problems)")
        finally:
            self._updating = False

    def _add_mask_row(self, parent: QTreeWidgetItem, uid: str, path: str, kind: str, what: str) -> None:
        import os

        child = QTreeWidgetItem(parent, [os.path.basename(path), kind])
        child.setText(COL_LABELS, what)
        child.setText(COL_DESC, f"{kind} masks")
        child.setToolTip(COL_NAME, path)
        child.setData(COL_NAME, UID_ROLE, uid)  # clicking it shows the series
        child.setData(COL_NAME, MASK_ROLE, path)
        child.setFlags(Qt.ItemFlag.ItemIsSelectable | Qt.ItemFlag.ItemIsEnabled)

    def _context_menu(self, pos: Any) -> None:
        from PySide6.QtWidgets import QMenu

        item = self.itemAt(pos)
        uid = str(item.data(COL_NAME, UID_ROLE) or "") if item is not None else ""
        menu = QMenu(self)
        if uid:
            menu.addAction("Label this series…", lambda: self.label_series_requested.emit(uid))
            menu.addAction("Label slices of the viewed range…",
                           lambda: self.label_slices_requested.emit(uid))  # fmt: skip
            menu.addAction("Clear my labels of this series", lambda: self.clear_labels_requested.emit(uid))
            menu.addSeparator()
        menu.addAction("Import labels CSV…", self.import_labels_requested.emit)
        menu.addAction("Export labels CSV…", self.export_labels_requested.emit)
        menu.exec(self.viewport().mapToGlobal(pos))
