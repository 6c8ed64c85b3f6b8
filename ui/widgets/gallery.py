"""A gallery of generated slices that stays fast with thousands of images.

Model/view: :class:`GalleryModel` holds the images, per-image scores and keep/reject state, and
renders thumbnails lazily (only for rows the view paints) into a bounded LRU cache.
Sorting and filtering are numpy operations on an index array, so reordering 10,000 items is
a single model reset rather than 10,000 Python comparisons.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QSize,
    Qt,
    Signal,
)
from PySide6.QtGui import QColor, QImage, QKeyEvent, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QListView,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QWidget,
)

from ui.widgets.mask_overlay import colour_lut
from ui.widgets.sample_grid import gray_qimage, to_uint8

log = logging.getLogger(__name__)

SourceIndexRole = Qt.ItemDataRole.UserRole + 1
KeptRole = Qt.ItemDataRole.UserRole + 2
ManualRole = Qt.ItemDataRole.UserRole + 3
LockedRole = Qt.ItemDataRole.UserRole + 4
CaptionRole = Qt.ItemDataRole.UserRole + 5

ACCEPT, REJECT, UNDECIDED = 1, 0, -1

_Index = QModelIndex | QPersistentModelIndex


class GalleryModel(QAbstractListModel):
    """Generated images with scores and decisions; rows are a sorted/filtered view of them."""

    decisions_changed = Signal()

    def __init__(self, parent: Any = None, *, thumb_size: int = 96, cache_size: int = 3000) -> None:
        super().__init__(parent)
        self.thumb_size = thumb_size
        self.cache_size = cache_size
        self.images = np.zeros((0, 1, 1), dtype=np.float32)
        self.scores: dict[str, np.ndarray] = {}
        self.auto_kept = np.zeros(0, dtype=bool)
        self.manual = np.zeros(0, dtype=np.int8)
        self.locked = np.zeros(0, dtype=bool)  # memorized: accepting needs an explicit override
        self.allow_locked = False
        self.caption_key: str | None = None
        self.order = np.zeros(0, dtype=np.int64)
        self._cache: OrderedDict[int, QPixmap] = OrderedDict()
        self.renders = 0  # thumbnails rendered so far (tests check laziness)
        # Labelled sets: intended class per image, masks, and whether masks are drawn.
        self.labels: np.ndarray | None = None
        self.class_names: tuple[str, ...] = ()
        self.masks: np.ndarray | None = None
        self.n_segments = 0
        self.show_masks = True
        self.mask_opacity = 0.45

    # -------------------------------------------------------------- content
    def set_images(
        self,
        images: np.ndarray,
        scores: dict[str, np.ndarray] | None = None,
        *,
        auto_kept: np.ndarray | None = None,
        locked: np.ndarray | None = None,
    ) -> None:
        """Replace everything; (N, H, W) float32 in [-1, 1]. Manual decisions are reset."""
        self.beginResetModel()
        self.images = np.asarray(images, dtype=np.float32)
        n = len(self.images)
        self.scores = {k: np.asarray(v, dtype=np.float64) for k, v in (scores or {}).items()}
        self.auto_kept = (
            np.ones(n, dtype=bool) if auto_kept is None else np.asarray(auto_kept, bool)
        )
        self.locked = np.zeros(n, dtype=bool) if locked is None else np.asarray(locked, bool)
        self.manual = np.full(n, UNDECIDED, dtype=np.int8)
        self.order = np.arange(n, dtype=np.int64)
        self._cache.clear()
        self.endResetModel()
        self.decisions_changed.emit()

    def set_labels(
        self,
        labels: np.ndarray | None,
        class_names: Sequence[str] = (),
        masks: np.ndarray | None = None,
        n_segments: int = 0,
    ) -> None:
        """Intended class per image (index into ``class_names``) and masks (uint8, value k =
        segment k), for captions, tooltips, the class filter and the mask overlay."""
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        self.class_names = tuple(class_names)
        self.masks = None if masks is None else np.asarray(masks, dtype=np.uint8)
        top = int(self.masks.max()) if self.masks is not None and self.masks.size else 0
        self.n_segments = max(int(n_segments), top)
        self._cache.clear()
        self._emit_all_changed()

    def set_show_masks(self, on: bool) -> None:
        """Draw (or hide) the masks over the thumbnails."""
        if bool(on) != self.show_masks:
            self.show_masks = bool(on)
            self._cache.clear()
            self._emit_all_changed()

    def class_of(self, src: int) -> str | None:
        if self.labels is None or not 0 <= int(self.labels[src]) < len(self.class_names):
            return None
        return self.class_names[int(self.labels[src])]

    def sources_of_class(self, k: int | None) -> np.ndarray:
        """Boolean mask of the images of class ``k`` (all when ``k`` is None or unlabelled)."""
        n = len(self.images)
        if k is None or self.labels is None:
            return np.ones(n, dtype=bool)
        return self.labels == int(k)

    def set_auto(self, auto_kept: np.ndarray, locked: np.ndarray | None = None) -> None:
        """Update the filter decisions (manual overrides stay)."""
        self.auto_kept = np.asarray(auto_kept, dtype=bool)
        if locked is not None:
            self.locked = np.asarray(locked, dtype=bool)
        self._emit_all_changed()
        self.decisions_changed.emit()

    def set_order(self, order: Sequence[int] | np.ndarray) -> None:
        """Show only these source indices, in this order."""
        self.beginResetModel()
        self.order = np.asarray(order, dtype=np.int64)
        self.endResetModel()

    @property
    def n_images(self) -> int:
        return len(self.images)

    def kept(self) -> np.ndarray:
        """Effective decision per source image: the user's choice, else the filters'."""
        eff = np.where(self.manual == UNDECIDED, self.auto_kept, self.manual == ACCEPT)
        if not self.allow_locked:
            eff = eff & ~self.locked
        return eff.astype(bool)

    def is_kept(self, src: int) -> bool:
        """Effective decision for one image (same rule as :meth:`kept`)."""
        m = int(self.manual[src])
        keep = bool(self.auto_kept[src]) if m == UNDECIDED else m == ACCEPT
        return keep and (self.allow_locked or not bool(self.locked[src]))

    def counts(self) -> tuple[int, int]:
        k = int(self.kept().sum())
        return k, self.n_images - k

    def set_decision(self, sources: Sequence[int], value: int) -> int:
        """Accept (1), reject (0) or reset (-1) source images; returns how many were refused.

        Accepting a memorized (locked) image is refused unless ``allow_locked`` is set.
        """
        idx = np.asarray(list(sources), dtype=np.int64)
        if idx.size == 0:
            return 0
        refused = 0
        if value == ACCEPT and not self.allow_locked:
            blocked = self.locked[idx]
            refused = int(blocked.sum())
            idx = idx[~blocked]
        self.manual[idx] = value
        self._emit_rows_changed(idx)
        self.decisions_changed.emit()
        return refused

    def toggle(self, sources: Sequence[int]) -> int:
        """Flip the effective decision of each image; returns how many accepts were refused."""
        eff = self.kept()
        src = list(sources)
        to_accept = [s for s in src if not eff[s]]
        to_reject = [s for s in src if eff[s]]
        if to_reject:
            self.set_decision(to_reject, REJECT)
        return self.set_decision(to_accept, ACCEPT) if to_accept else 0

    def source_index(self, row: int) -> int:
        return int(self.order[row])

    def row_of(self, source: int) -> int | None:
        hits = np.nonzero(self.order == source)[0]
        return int(hits[0]) if hits.size else None

    # ------------------------------------------------------------ Qt model
    def rowCount(self, parent: _Index = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self.order)

    def data(self, index: _Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.row() >= len(self.order):
            return None
        src = int(self.order[index.row()])
        if role == Qt.ItemDataRole.DecorationRole:
            return self.thumbnail(src)
        if role == SourceIndexRole:
            return src
        if role == KeptRole:
            return self.is_kept(src)
        if role == ManualRole:
            return int(self.manual[src])
        if role == LockedRole:
            return bool(self.locked[src])
        if role == CaptionRole:
            name = self.class_of(src)
            tag = f" {name[:10]}" if name else ""
            if self.caption_key and self.caption_key in self.scores:
                return f"#{src}{tag}  {self.scores[self.caption_key][src]:.2f}"
            return f"#{src}{tag}"
        if role == Qt.ItemDataRole.ToolTipRole:
            lines = [f"Image #{src}"]
            if self.class_of(src) is not None:
                lines.append(f"Class: {self.class_of(src)}")
            lines += [f"{k}: {v[src]:.4g}" for k, v in self.scores.items()]
            if self.locked[src]:
                lines.append("Too close to a training slice (memorization guard)")
            return "\n".join(lines)
        return None

    def flags(self, index: _Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable

    # ---------------------------------------------------------- thumbnails
    def thumbnail(self, src: int) -> QPixmap:
        """The cached thumbnail of one source image, rendered on first use."""
        pix = self._cache.get(src)
        if pix is not None:
            self._cache.move_to_end(src)
            return pix
        gray = to_uint8(self.images[src])
        mask = self.masks[src] if self.show_masks and self.masks is not None else None
        img = overlay_qimage(gray, mask, self.n_segments, self.mask_opacity)
        pix = QPixmap.fromImage(
            img.scaled(
                self.thumb_size,
                self.thumb_size,
                Qt.AspectRatioMode.KeepAspectRatio,
                Qt.TransformationMode.SmoothTransformation,
            )
        )
        self.renders += 1
        self._cache[src] = pix
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return pix

    @property
    def cached(self) -> int:
        return len(self._cache)

    def _emit_rows_changed(self, sources: np.ndarray) -> None:
        if not len(self.order) or not len(sources):
            return
        rows = np.nonzero(np.isin(self.order, sources))[0]
        if rows.size:
            self.dataChanged.emit(self.index(int(rows.min())), self.index(int(rows.max())))

    def _emit_all_changed(self) -> None:
        if len(self.order):
            self.dataChanged.emit(self.index(0), self.index(len(self.order) - 1))


def overlay_rgb(gray: np.ndarray, mask: np.ndarray, n_segments: int, alpha: float) -> np.ndarray:
    """(H, W, 3) uint8: the grey image with each segment blended in its colour."""
    lut = colour_lut(max(n_segments, int(mask.max())), 1.0)
    rgb = np.repeat(gray[:, :, None], 3, axis=2).astype(np.float32)
    on = mask > 0
    rgb[on] = (1 - alpha) * rgb[on] + alpha * lut[mask[on], :3].astype(np.float32)
    return np.ascontiguousarray(np.rint(rgb).astype(np.uint8))


def overlay_qimage(
    gray: np.ndarray, mask: np.ndarray | None, n_segments: int, alpha: float
) -> QImage:
    """A grey QImage, or an RGB one with the mask drawn over it when it has any segment."""
    if mask is None or not mask.any():
        return gray_qimage(gray)
    rgb = overlay_rgb(gray, mask, n_segments, alpha)
    h, w, _ = rgb.shape
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


class GalleryDelegate(QStyledItemDelegate):
    """Paints a thumbnail with a green (kept) or red (rejected) frame and a caption."""

    KEPT = QColor("#2e9d4a")
    REJECTED = QColor("#c62828")
    LOCKED = QColor("#8e24aa")

    def __init__(self, thumb_size: int, parent: Any = None) -> None:
        super().__init__(parent)
        self.thumb_size = thumb_size

    def sizeHint(self, option: QStyleOptionViewItem, index: _Index) -> QSize:  # noqa: N802
        return QSize(self.thumb_size + 12, self.thumb_size + 26)

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: _Index) -> None:
        rect: QRect = option.rect
        painter.save()
        if option.state & QStyle.StateFlag.State_Selected:
            painter.fillRect(rect, option.palette.highlight())
        pix = index.data(Qt.ItemDataRole.DecorationRole)
        kept = bool(index.data(KeptRole))
        manual = int(index.data(ManualRole))
        locked = bool(index.data(LockedRole))
        box = QRect(rect.x() + 6, rect.y() + 4, self.thumb_size, self.thumb_size)
        if isinstance(pix, QPixmap) and not pix.isNull():
            x = box.x() + (box.width() - pix.width()) // 2
            y = box.y() + (box.height() - pix.height()) // 2
            painter.drawPixmap(x, y, pix)
        color = self.LOCKED if locked and not kept else (self.KEPT if kept else self.REJECTED)
        pen = QPen(color, 4 if manual != UNDECIDED else 2)
        if not kept:
            pen.setStyle(Qt.PenStyle.DashLine if manual == UNDECIDED else Qt.PenStyle.SolidLine)
        painter.setPen(pen)
        painter.drawRect(box.adjusted(-2, -2, 1, 1))
        painter.setPen(option.palette.text().color())
        text_rect = QRect(rect.x(), box.bottom() + 3, rect.width(), 18)
        caption = str(index.data(CaptionRole) or "")
        mark = "✓" if kept else "✗"
        painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter, f"{mark} {caption}")
        painter.restore()


class GalleryView(QListView):
    """Grid of thumbnails. A accepts, R rejects, Space toggles the selection; double-click toggles."""

    refused = Signal(int)  # how many accepts the memorization guard refused

    def __init__(self, model: GalleryModel, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setModel(model)
        self.setItemDelegate(GalleryDelegate(model.thumb_size, self))
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setUniformItemSizes(True)  # the view then asks only visible rows for data
        self.setLayoutMode(QListView.LayoutMode.Batched)
        self.setBatchSize(500)
        self.setSpacing(2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.doubleClicked.connect(lambda idx: self._apply("toggle", [idx]))

    def gallery_model(self) -> GalleryModel:
        model = self.model()
        assert isinstance(model, GalleryModel)
        return model

    def selected_sources(self) -> list[int]:
        rows = sorted(i.row() for i in self.selectionModel().selectedIndexes())
        if not rows and self.currentIndex().isValid():
            rows = [self.currentIndex().row()]
        model = self.gallery_model()
        return [model.source_index(r) for r in rows]

    def apply_to_selection(self, action: str) -> None:
        """``accept``, ``reject`` or ``toggle`` the selected (or current) images."""
        model = self.gallery_model()
        sources = self.selected_sources()
        if not sources:
            return
        if action == "toggle":
            refused = model.toggle(sources)
        else:
            refused = model.set_decision(sources, ACCEPT if action == "accept" else REJECT)
        if refused:
            self.refused.emit(refused)

    def _apply(self, action: str, indexes: list[QModelIndex]) -> None:
        model = self.gallery_model()
        refused = model.toggle([model.source_index(i.row()) for i in indexes if i.isValid()])
        if refused:
            self.refused.emit(refused)

    def keyPressEvent(self, event: QKeyEvent) -> None:  # noqa: N802 - Qt override
        key = event.key()
        if key == Qt.Key.Key_A and not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            self.apply_to_selection("accept")
        elif key == Qt.Key.Key_R:
            self.apply_to_selection("reject")
        elif key == Qt.Key.Key_Space:
            self.apply_to_selection("toggle")
        else:
            super().keyPressEvent(event)
