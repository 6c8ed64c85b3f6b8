"""Per-class sample counts for a class-conditional model (the Generate page's "Per class")."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QSpinBox, QWidget


class ClassCounts(QWidget):
    """One spin box per class of the model; hidden for models without classes."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self.boxes: dict[str, QSpinBox] = {}
        self.setVisible(False)

    def set_classes(self, names: list[str] | tuple[str, ...], each: int = 128) -> None:
        """Show ``names`` (the model's classes, in its order), ``each`` samples apiece."""
        while self._layout.count():
            item = self._layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self.boxes = {}
        if names:
            self._layout.addWidget(QLabel("Per class"))
        for name in names:
            box = QSpinBox()
            box.setRange(0, 100_000)
            box.setValue(each)
            box.setToolTip(f"Samples of class {name}")
            box.valueChanged.connect(self.changed)
            self._layout.addWidget(QLabel(name))
            self._layout.addWidget(box)
            self.boxes[name] = box
        self.setVisible(bool(names))

    def counts(self) -> dict[str, int]:
        """Class name → samples to draw ({} for a model without classes)."""
        return {name: int(box.value()) for name, box in self.boxes.items()}

    def total(self) -> int:
        return sum(self.counts().values())
