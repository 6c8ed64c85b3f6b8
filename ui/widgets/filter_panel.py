"""Filter controls of the Generate page: realism, distance to the training set, duplicates,
top-k and the memorization guard's explicit override → a ``medgan.curate.filters.FilterConfig``."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QSpinBox,
    QWidget,
)


def _with_label(slider: QSlider, label: QLabel) -> QHBoxLayout:
    row = QHBoxLayout()
    row.addWidget(slider, 1)
    label.setMinimumWidth(70)
    row.addWidget(label)
    return row


class FilterPanel(QGroupBox):
    """Sliders and switches for the automatic filters; ``changed`` fires on every edit."""

    changed = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Filters", parent)
        self.distance_max = 1.0  # the slider's 100 %, set from the observed distances
        self.min_realism = QSlider(Qt.Orientation.Horizontal)
        self.min_realism.setRange(0, 100)
        self.min_realism.setToolTip(
            "Reject slices the discriminator finds less realistic than this"
        )
        self.min_realism_label = QLabel()
        self.min_distance = QSlider(Qt.Orientation.Horizontal)
        self.min_distance.setRange(0, 100)
        self.min_distance.setToolTip(
            "Reject slices closer than this to their nearest training slice (on top of the "
            "calibrated memorization guard)"
        )
        self.min_distance_label = QLabel()
        self.dedupe = QCheckBox("Remove near-duplicates")
        self.dedupe.setChecked(True)
        self.dup_threshold = QDoubleSpinBox()
        self.dup_threshold.setDecimals(4)
        self.dup_threshold.setRange(0.0, 2.0)
        self.dup_threshold.setSingleStep(0.005)
        self.dup_threshold.setSpecialValueText("calibrated")
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 100_000)
        self.top_k.setSpecialValueText("all")
        self.allow_memorized = QCheckBox("Allow slices too close to a training slice (override)")
        self.allow_memorized.setToolTip(
            "The memorization guard rejects slices that are near-copies of a patient's slice. "
            "Overriding it is recorded in the export's manifest."
        )
        form = QFormLayout(self)
        form.addRow("Min realism", _with_label(self.min_realism, self.min_realism_label))
        form.addRow(
            "Min distance to training", _with_label(self.min_distance, self.min_distance_label)
        )
        dup = QHBoxLayout()
        dup.addWidget(self.dedupe)
        dup.addWidget(QLabel("threshold"))
        dup.addWidget(self.dup_threshold)
        form.addRow("Duplicates", dup)
        form.addRow("Keep top", self.top_k)
        # Labelled sets only (shown by set_labelled).
        self.min_fidelity = QSlider(Qt.Orientation.Horizontal)
        self.min_fidelity.setRange(0, 100)
        self.min_fidelity.setToolTip(
            "Reject slices that a classifier trained on the real labelled slices does not "
            "recognise as their intended class (probability below this)"
        )
        self.min_fidelity_label = QLabel()
        self.top_per_class = QSpinBox()
        self.top_per_class.setRange(0, 100_000)
        self.top_per_class.setSpecialValueText("all")
        self.top_per_class.setToolTip("Keep only the K most realistic slices of each class")
        self.drop_bad_masks = QCheckBox("Reject implausible masks")
        self.drop_bad_masks.setChecked(True)
        self.drop_bad_masks.setToolTip(
            "Masks outside the body, or with an area or number of pieces outside the range of "
            "the real masks"
        )
        self._fidelity_row = _with_label(self.min_fidelity, self.min_fidelity_label)
        form.addRow("Min label fidelity", self._fidelity_row)
        form.addRow("Keep top per class", self.top_per_class)
        form.addRow(self.drop_bad_masks)
        self._form = form
        self.labelled = False
        self.has_masks = False
        self.has_fidelity = False
        form.addRow(self.allow_memorized)
        for slider in (self.min_realism, self.min_distance):
            slider.valueChanged.connect(self._edited)
        self.dup_threshold.valueChanged.connect(self._edited)
        self.top_k.valueChanged.connect(self._edited)
        self.dedupe.toggled.connect(self._edited)
        self.allow_memorized.toggled.connect(self._edited)
        self.min_fidelity.valueChanged.connect(self._edited)
        self.top_per_class.valueChanged.connect(self._edited)
        self.drop_bad_masks.toggled.connect(self._edited)
        self.set_labelled(False)
        self._update_labels()

    def set_labelled(self, labelled: bool, *, masks: bool = False, fidelity: bool = False) -> None:
        """Show the per-class filters for a labelled set (fidelity only when it was scored,
        the mask filter only for sets with masks)."""
        self.labelled, self.has_masks = bool(labelled), bool(masks)
        self.has_fidelity = bool(labelled and fidelity)
        rows: tuple[tuple[Any, bool], ...] = ((self._fidelity_row, self.has_fidelity),
            (self.top_per_class, self.labelled), (self.drop_bad_masks, self.has_masks),
        )  # fmt: skip
        for row, show in rows:
            self._form.setRowVisible(row, show)

    def set_distance_scale(self, distance_max: float) -> None:
        """Map the distance slider's 100 % to the largest observed distance."""
        self.distance_max = float(distance_max) if distance_max > 0 else 1.0
        self._update_labels()

    def min_distance_value(self) -> float | None:
        v = self.min_distance.value()
        return v / 100.0 * self.distance_max if v else None

    def filter_config(self) -> Any:
        from medgan.curate.filters import FilterConfig

        realism = self.min_realism.value() / 100.0
        return FilterConfig(
            min_realism=realism or None,
            dedupe=self.dedupe.isChecked(),
            dedupe_threshold=self.dup_threshold.value() or None,
            keep_top_k=self.top_k.value() or None,
            allow_memorized=self.allow_memorized.isChecked(),
            min_label_fidelity=(self.min_fidelity.value() / 100.0 or None)
            if self.has_fidelity
            else None,
            per_class_keep_top=(self.top_per_class.value() or None) if self.labelled else None,
            drop_implausible_masks=self.drop_bad_masks.isChecked(),
        )

    def _edited(self) -> None:
        self._update_labels()
        self.changed.emit()

    def _update_labels(self) -> None:
        r = self.min_realism.value()
        self.min_realism_label.setText(f"{r / 100:.2f}" if r else "off")
        d = self.min_distance_value()
        self.min_distance_label.setText(f"{d:.3f}" if d else "off")
        f = self.min_fidelity.value()
        self.min_fidelity_label.setText(f"{f / 100:.2f}" if f else "off")
