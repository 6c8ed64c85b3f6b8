"""Generate page: sample from a model, score, filter, and curate image by image.

Generation and scoring run in a worker; the gallery (model/view, lazy thumbnails) stays fast
with thousands of images. Filters (realism, distance to the training set, duplicates, top-k,
memorization guard) set the automatic decision; the user accepts or rejects single images
with a click, A / R / Space. The combined decisions are written to ``AppState`` for export.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QModelIndex, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from medgan.curate.decisions import sort_order
from medgan.dicom.window import Window
from medgan.workflows.curation import CurateRequest, CurateResult, curate
from medgan.workflows.generation import GenerationResult
from ui.jobs import generate_and_score
from ui.pages.base import Page
from ui.state import AppState
from ui.widgets.class_counts import ClassCounts
from ui.widgets.compare_view import CompareView
from ui.widgets.error_dialog import show_error
from ui.widgets.filter_panel import FilterPanel
from ui.widgets.gallery import ACCEPT, REJECT, UNDECIDED, GalleryModel, GalleryView, SourceIndexRole
from ui.workers import FunctionWorker, WorkerHandle, start_worker

log = logging.getLogger(__name__)

TASK_KEY = "generate"
SORT_KEYS = (
    ("index", "Generation order"),
    ("realism", "Realism (best first)"),
    ("nn_robust_distance", "Distance to training (closest first)"),
    ("memorization_risk", "Memorization risk (highest first)"),
    ("label_fidelity", "Label fidelity (lowest first)"),
)
SHOW_MODES = (("all", "All"), ("kept", "Kept"), ("rejected", "Rejected"))


class GeneratePage(Page):
    """The Generate step: N, seed, batch → gallery with scores, filters and decisions."""

    generated = Signal()  # a new set is shown

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.handle: WorkerHandle | None = None
        self.result: GenerationResult | None = None
        self.auto_decisions: Any = None
        self.error_box: Any = None
        self._build()
        self._filter_timer = QTimer(self, singleShot=True, interval=120)
        self._filter_timer.timeout.connect(self.apply_filters)
        self._publish_timer = QTimer(self, singleShot=True, interval=80)
        self._publish_timer.timeout.connect(self.publish_decisions)
        state.model_changed.connect(self._on_model_changed)
        state.generated_changed.connect(self._on_state_generated)
        self._on_model_changed(state.model_path)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.model_label = QLabel()
        self.model_label.setWordWrap(True)
        self.open_model_button = QPushButton("Open model…")
        self.open_model_button.clicked.connect(self._choose_model)
        self.count = QSpinBox()
        self.count.setRange(1, 100_000)
        self.count.setValue(256)
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.batch = QSpinBox()
        self.batch.setRange(1, 4096)
        self.batch.setValue(64)
        self.generate_button = QPushButton("Generate")
        self.generate_button.clicked.connect(self.start_generation)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)

        top = QHBoxLayout()
        top.addWidget(self.open_model_button)
        top.addWidget(self.model_label, 1)
        for label, w in (("N", self.count), ("Seed", self.seed), ("Batch", self.batch)):
            top.addWidget(QLabel(label))
            top.addWidget(w)
        self.per_class = ClassCounts()  # shown for class-conditional models
        top.addWidget(self.per_class)
        top.addWidget(self.generate_button)
        top.addWidget(self.cancel_button)
        top.addWidget(self.progress)

        # Filters --------------------------------------------------------------
        filters = FilterPanel()
        self.filters = filters
        filters.changed.connect(self._filter_timer_start)
        # Short names used by tests and the screenshot script.
        self.min_realism, self.min_distance = filters.min_realism, filters.min_distance
        self.dedupe, self.dup_threshold = filters.dedupe, filters.dup_threshold
        self.top_k, self.allow_memorized = filters.top_k, filters.allow_memorized

        # Gallery ----------------------------------------------------------------
        self.gallery_model = GalleryModel(self)
        self.gallery_model.caption_key = "realism"
        self.gallery = GalleryView(self.gallery_model)
        self.gallery.refused.connect(self._on_refused)
        self.gallery.selectionModel().currentChanged.connect(self._on_current_changed)
        self.gallery.clicked.connect(lambda idx: self.show_image(idx.data(SourceIndexRole)))
        self.gallery_model.decisions_changed.connect(self._decisions_changed)
        self.sort_combo = QComboBox()
        for key, label in SORT_KEYS:
            self.sort_combo.addItem(label, key)
        self.show_combo = QComboBox()
        for key, label in SHOW_MODES:
            self.show_combo.addItem(label, key)
        self.class_combo = QComboBox()  # labelled sets: show one class
        self.class_combo.setObjectName("ClassFilter")
        self.mask_toggle = QCheckBox("Masks")
        self.mask_toggle.setObjectName("GalleryMaskToggle")
        self.mask_toggle.setChecked(True)
        self.mask_toggle.toggled.connect(self.gallery_model.set_show_masks)
        self.sort_combo.currentIndexChanged.connect(self.refresh_view)
        self.show_combo.currentIndexChanged.connect(self.refresh_view)
        self.class_combo.currentIndexChanged.connect(self.refresh_view)
        self.counts_label = QLabel("Nothing generated yet.")
        self.accept_button = QPushButton("Accept (A)")
        self.reject_button = QPushButton("Reject (R)")
        self.reset_button = QPushButton("Back to filter decision")
        self.accept_button.clicked.connect(lambda: self.gallery.apply_to_selection("accept"))
        self.reject_button.clicked.connect(lambda: self.gallery.apply_to_selection("reject"))
        self.reset_button.clicked.connect(self._reset_selection)
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Sort"))
        bar.addWidget(self.sort_combo)
        bar.addWidget(QLabel("Show"))
        bar.addWidget(self.show_combo)
        self.class_label = QLabel("Class")
        bar.addWidget(self.class_label)
        bar.addWidget(self.class_combo)
        bar.addWidget(self.mask_toggle)
        for hidden in (self.class_label, self.class_combo, self.mask_toggle):
            hidden.setVisible(False)  # shown for labelled sets
        bar.addStretch(1)
        bar.addWidget(self.accept_button)
        bar.addWidget(self.reject_button)
        bar.addWidget(self.reset_button)
        gallery_box = QWidget()
        gv = QVBoxLayout(gallery_box)
        gv.setContentsMargins(0, 0, 0, 0)
        gv.addLayout(bar)
        gv.addWidget(self.gallery, 1)
        gv.addWidget(self.counts_label)

        self.compare = CompareView()
        self.compare.clear()
        self.score_label = QLabel()
        self.score_label.setWordWrap(True)
        self.score_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        right = QWidget()
        rv = QVBoxLayout(right)
        rv.setContentsMargins(0, 0, 0, 0)
        rv.addWidget(filters)
        rv.addWidget(self.compare, 1)
        rv.addWidget(self.score_label)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(gallery_box)
        split.addWidget(right)
        split.setStretchFactor(0, 3)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(split, 1)
        self._update_buttons()

    # ------------------------------------------------------------------ model
    def _on_model_changed(self, path: str) -> None:
        self.model_label.setText(f"Model: {Path(path).name}" if path else "No model: train one or open a model file.")
        classes: list[str] = []
        if path:
            try:
                from medgan.models.modelfile import read_metadata

                meta = read_metadata(path)
                classes = list(meta.classes) if meta.n_classes > 1 else []
            except Exception:  # noqa: BLE001 - an unreadable model is reported on Generate
                classes = []
        self.per_class.set_classes(classes)
        self.count.setEnabled(not classes)  # a conditional model draws the per-class counts
        self._update_buttons()

    def _choose_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open model", "", "MedGAN model (*.safetensors)")
        if path:
            self.state.set_model_path(path)

    # -------------------------------------------------------------- generation
    def start_generation(self) -> bool:
        """Generate and score in a worker; False when there is no model or a job is running."""
        if self.is_busy() or not self.state.model_path:
            return False
        keys = self.state.training_patient_keys
        per_class = self.per_class.counts()
        extra: dict[str, Any] = {"per_class": per_class} if per_class else {}
        if per_class and not any(per_class.values()):
            self._on_failed("Nothing to generate.", "Give at least one class a count above 0.")
            return False
        worker = FunctionWorker(
            generate_and_score,
            self.state.model_path,
            sum(per_class.values()) if per_class else int(self.count.value()),
            **extra,
            seed=int(self.seed.value()),
            batch_size=int(self.batch.value()),
            training_images=self.state.training_images,
            patient_keys=keys,
            training_set=self.state.training_set,
            name="generate",
        )
        self.progress.setValue(0)
        self.state.set_task("Generating and scoring", 0.0, key=TASK_KEY)
        self.handle = start_worker(
            worker,
            self,
            on_progress=self._on_progress,
            on_result=self.show_result,
            on_failed=self._on_failed,
            on_cancelled=lambda: self.counts_label.setText("Generation cancelled."),
            on_finished=self._on_finished,
        )
        self._update_buttons()
        return True

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    def is_busy(self) -> bool:
        return self.handle is not None and not self.handle.done

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        if self.handle is None or not self.handle.is_running():
            return True
        self.handle.cancel()
        return self.handle.wait(timeout_ms)

    def _on_progress(self, fraction: float, message: str) -> None:
        if fraction >= 0:
            self.progress.setValue(int(fraction * 1000))
            self.state.set_task("Generating and scoring", fraction, key=TASK_KEY)

    def _on_failed(self, message: str, advice: str) -> None:
        self.error_box = show_error(self, f"Generation failed.\n\n{message}", advice, title="Generate")

    def _on_finished(self) -> None:
        self.state.clear_task(TASK_KEY)
        self._update_buttons()

    # ------------------------------------------------------------ showing data
    def show_result(self, result: GenerationResult) -> None:
        """Show a generated set with its scores (also the way to inject data for screenshots)."""
        self.result = result
        self.auto_decisions = None
        images = result.generated.images
        scores = result.scores
        columns: dict[str, np.ndarray] = {}
        if scores is not None:
            for key in ("realism", "memorization_risk", "nn_robust_distance", "nn_pixel_distance",
                        "label_fidelity"):
                if key in scores.columns:
                    columns[key] = scores[key]
            self._configure_sliders(scores)
        self.gallery_model.set_images(images, columns)
        self._show_labels(result)
        self.progress.setValue(1000)
        self.state.set_generated(result.generated, scores, None)
        if scores is not None:
            self.apply_filters()
        else:
            self.auto_decisions = None
            self.publish_decisions()
        self.refresh_view()
        if len(images):
            self.gallery.setCurrentIndex(self.gallery_model.index(0))
            self.show_image(self.gallery_model.source_index(0))
        self.generated.emit()

    def load_generated(self, generated: Any, scores: Any = None, reference: np.ndarray | None = None,
                       model_path: str = "") -> None:
        """Inject a ``GeneratedSet`` (+ ``ScoreTable`` and the training slices it refers to)."""
        self.show_result(GenerationResult(generated, scores, reference, model_path))

    def _on_state_generated(self) -> None:
        generated = self.state.generated
        if generated is None or (self.result is not None and self.result.generated is generated):
            return
        self.show_result(GenerationResult(generated, self.state.scores, self.state.training_images,
                                          self.state.model_path))

    def _show_labels(self, result: GenerationResult) -> None:
        """Class filter, mask overlay and per-class filters for a labelled set (else hidden)."""
        gen = result.generated
        labels, masks = getattr(gen, "labels", None), getattr(gen, "masks", None)
        names = tuple(getattr(gen, "class_names", ()))
        self.gallery_model.set_labels(labels, names, masks, len(getattr(gen, "segment_names", ())))
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        self.class_combo.addItem("All classes", None)
        if labels is not None:
            counts = np.bincount(np.asarray(labels), minlength=len(names))
            for k, name in enumerate(names):
                self.class_combo.addItem(f"{name} ({int(counts[k])})", k)
        self.class_combo.blockSignals(False)
        for w in (self.class_combo, self.class_label):
            w.setVisible(labels is not None)
        self.mask_toggle.setVisible(masks is not None)
        columns = result.scores.columns if result.scores is not None else {}
        self.filters.set_labelled(labels is not None and result.scores is not None,
                                  masks=masks is not None and "mask_plausible" in columns,
                                  fidelity="label_fidelity" in columns and bool(np.isfinite(
                                      np.asarray(columns["label_fidelity"], float)).any()))  # fmt: skip

    def _configure_sliders(self, scores: Any) -> None:
        """Scale the distance slider to the observed distances; dup threshold to calibration."""
        dist = np.asarray(scores["nn_robust_distance"], dtype=np.float64)
        finite = dist[np.isfinite(dist)]
        self.filters.set_distance_scale(float(finite.max()) if finite.size else 1.0)

    # ---------------------------------------------------------------- filters
    def filter_config(self) -> Any:
        return self.filters.filter_config()

    def min_distance_value(self) -> float | None:
        return self.filters.min_distance_value()

    def _filter_timer_start(self) -> None:
        self._filter_timer.start()

    def apply_filters(self) -> None:
        """Re-run the automatic filters; manual decisions are kept."""
        scores = self.result.scores if self.result is not None else None
        if scores is None:
            return
        curated = self._curate()
        self.auto_decisions = curated.auto
        self.gallery_model.allow_locked = self.allow_memorized.isChecked()
        self.gallery_model.set_auto(curated.auto.keep & curated.far_enough, locked=curated.auto.memorized)
        if self.show_combo.currentData() != "all":
            self.refresh_view()

    def refresh_view(self) -> None:
        """Apply the sort and show settings to the gallery."""
        n = self.gallery_model.n_images
        scores = self.result.scores if self.result is not None else None
        key = self.sort_combo.currentData()
        order = sort_order(scores, key, n)
        if key == "label_fidelity" and scores is not None and key in scores.columns:
            values = np.nan_to_num(np.asarray(scores[key], np.float64), nan=np.inf)
            order = np.argsort(values, kind="stable").astype(np.int64)  # doubtful first
        order = order[self.gallery_model.sources_of_class(self.class_combo.currentData())[order]]
        mode = self.show_combo.currentData()
        if mode != "all":
            kept = self.gallery_model.kept()
            order = order[kept[order] if mode == "kept" else ~kept[order]]
        self.gallery_model.set_order(order)

    def _decisions_changed(self) -> None:
        self._update_counts()
        self._publish_timer.start()

    def publish_decisions(self) -> None:
        """Write the combined decisions to AppState (the Export page reads them)."""
        if self.result is None:
            return
        if self.auto_decisions is None:
            self.state.set_decisions(None)
            return
        curated = self._curate(manual=self.gallery_model.manual, auto=self.auto_decisions)
        self.state.set_decisions(curated.decisions)

    def _curate(self, manual: np.ndarray | None = None, auto: Any = None) -> CurateResult:
        """The filters, the distance filter and the user's choices (the shared workflow)."""
        assert self.result is not None
        return curate(CurateRequest(
            n=len(self.result.generated.images), scores=self.result.scores,
            filters=self.filter_config(), min_distance=self.min_distance_value(),
            manual=manual, auto=auto,
        ))

    def current_decisions(self) -> Any:
        """Publish now (skipping the debounce) and return what AppState holds."""
        self._publish_timer.stop()
        self.publish_decisions()
        return self.state.decisions

    def _reset_selection(self) -> None:
        self.gallery_model.set_decision(self.gallery.selected_sources(), UNDECIDED)

    def _on_refused(self, count: int) -> None:
        self.counts_label.setText(
            f"{count} image(s) not accepted: too close to a training slice. Tick the override "
            "to allow them (recorded in the manifest)."
        )

    # ---------------------------------------------------------------- details
    def _on_current_changed(self, current: QModelIndex, _previous: QModelIndex) -> None:
        if current.isValid():
            self.show_image(current.data(SourceIndexRole))

    def show_image(self, src: int | None) -> None:
        """Enlarge image ``src`` next to its nearest real training slice."""
        if src is None or self.result is None:
            return
        generated = self.result.generated
        scores = self.result.scores
        window = Window.coerce(getattr(generated, "window", None))
        to_units = (lambda x: x) if window is None else window.to_modality
        levels = (-1.0, 1.0) if window is None else (window.low, window.high)
        real = real_mask = None
        right = "Nearest real training slice"
        lines = [f"Image #{src} (seed {generated.seed}, index {int(generated.indices[src])})"]
        name = self.gallery_model.class_of(src)
        if name is not None:
            lines.append(f"Class: {name}")
        masks = getattr(generated, "masks", None)
        if scores is not None and self.result.reference is not None:
            j = int(scores["nn_robust_index"][src])
            if 0 <= j < len(self.result.reference):
                real = to_units(self.result.reference[j])
                ref_masks = self.result.reference_masks
                real_mask = ref_masks[j] if ref_masks is not None and j < len(ref_masks) else None
                right = (f"Nearest training slice #{j} (distance "
                         f"{float(scores['nn_robust_distance'][src]):.4f})")
        if scores is not None:
            for key in ("realism", "memorization_risk", "nn_pixel_distance", "nn_robust_distance",
                        "duplicate_group", "foreground_fraction", "label_fidelity",
                        "mask_inside_body", "mask_best_dice"):
                if key in scores.columns:
                    lines.append(f"{key}: {float(scores[key][src]):.4g}")
            if "mask_reason" in scores.columns and scores["mask_reason"][src]:
                lines.append(str(scores["mask_reason"][src]))
            if bool(scores["memorized"][src]):
                lines.append("⚠ Too close to a training slice (memorization guard)")
        if self.auto_decisions is not None and self.auto_decisions.reasons[src]:
            lines.append(f"Filter: {self.auto_decisions.reasons[src]}")
        manual = int(self.gallery_model.manual[src])
        if manual != UNDECIDED:
            lines.append("Your decision: " + ("accepted" if manual == ACCEPT else "rejected"))
        self.compare.set_pair(to_units(generated.images[src]), real, left_text=f"Synthetic #{src}",
                              right_text=right, levels=levels,
                              mask=None if masks is None else masks[src], real_mask=real_mask,
                              n_segments=len(getattr(generated, "segment_names", ())))
        self.score_label.setText("\n".join(lines))

    # ------------------------------------------------------------------ labels
    def _update_counts(self) -> None:
        n = self.gallery_model.n_images
        if not n:
            self.counts_label.setText("Nothing generated yet.")
            return
        kept, rejected = self.gallery_model.counts()
        manual = int(np.count_nonzero(self.gallery_model.manual != UNDECIDED))
        memorized = int(self.gallery_model.locked.sum())
        text = f"Kept {kept} · Rejected {rejected} of {n}"
        if memorized:
            text += f" · {memorized} too close to training"
        if manual:
            text += f" · {manual} decided by you"
        if self.result is not None and self.result.scores is None:
            text += " · not scored (no training set loaded): memorization not checked"
        self.counts_label.setText(text)

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        self.generate_button.setEnabled(not busy and bool(self.state.model_path))
        self.cancel_button.setEnabled(busy)
        self.open_model_button.setEnabled(not busy)


__all__ = ["GeneratePage", "ACCEPT", "REJECT"]
