"""The shared application model that every page observes.

``AppState`` holds plain values only (records, numpy arrays, strings) and announces changes
through signals; pages never talk to each other directly. It lives in the UI thread: workers
hand their results to a page, and the page stores them here.

Example::

    state = AppState()
    state.scan_changed.connect(tree.show_scan)
    state.set_scan(result)
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union

import numpy as np
from PySide6.QtCore import QObject, Signal

if TYPE_CHECKING:  # the window opens before the data stack is imported (tests check it)
    from medgan.curate.filters import Decisions
    from medgan.curate.score import ScoreTable
    from medgan.dataset.training_set import TrainingSet
    from medgan.dicom.records import ScanResult, SeriesRecord
    from medgan.generate.sampling import GeneratedSet

log = logging.getLogger(__name__)

SliceRange = tuple[int, int]  # [start, stop) indices into a series' sorted images
# A built training set, or bare float32 (N, R, R) images in [-1, 1] (tests, screenshots).
TrainingData = Union["TrainingSet", np.ndarray]


@dataclass(frozen=True)
class TaskInfo:
    """One running job as the status bar shows it."""

    key: str
    text: str
    progress: float  # 0..1, or -1 when the amount of work is unknown


class AppState(QObject):
    """Shared model: scan → selection → training set → model → generated set.

    Signals:
        scan_changed(object): the new ``ScanResult`` or None.
        selection_changed(): selected series or slice ranges changed.
        training_set_changed(object): the new ``TrainingData`` (or None).
        model_changed(str): path of the current model file ("" when none).
        generated_changed(): generated images, scores or decisions changed.
        task_changed(str, float): current task text ("" when idle) and progress (0..1, -1 busy).
        device_changed(str): human description of the compute device.
    """

    scan_changed = Signal(object)
    selection_changed = Signal()
    training_set_changed = Signal(object)
    model_changed = Signal(str)
    generated_changed = Signal()
    task_changed = Signal(str, float)
    device_changed = Signal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._scan: ScanResult | None = None
        self._selected: list[SeriesRecord] = []
        self._ranges: dict[str, SliceRange] = {}
        self._training_set: TrainingData | None = None
        self._training_images: np.ndarray | None = None
        self._training_keys: np.ndarray | None = None
        self._training_summary: dict[str, Any] = {}
        self._model_path = ""
        self._generated: GeneratedSet | None = None
        self._scores: ScoreTable | None = None
        self._decisions: Decisions | None = None
        self._tasks: dict[str, TaskInfo] = {}
        self._device = ""

    # -- scan -------------------------------------------------------------------------------
    @property
    def scan(self) -> ScanResult | None:
        """The current scan, or None."""
        return self._scan

    def set_scan(self, scan: ScanResult | None) -> None:
        """Replace the scan; clears the selection (it referred to the old series)."""
        self._scan = scan
        self._selected = []
        self._ranges = {}
        self.scan_changed.emit(scan)
        self.selection_changed.emit()

    # -- selection --------------------------------------------------------------------------
    @property
    def selected_series(self) -> list[SeriesRecord]:
        """Series chosen for training, in tree order."""
        return list(self._selected)

    @property
    def slice_ranges(self) -> dict[str, SliceRange]:
        """Per series UID, the [start, stop) range of sorted slices to use."""
        return dict(self._ranges)

    def set_selection(self, series: list[SeriesRecord],
                      ranges: dict[str, SliceRange] | None = None) -> None:
        """Set the chosen series and (optionally) their slice ranges."""
        self._selected = list(series)
        uids = {s.series_uid for s in self._selected}
        given = ranges or {}
        self._ranges = {
            uid: (int(r[0]), int(r[1])) for uid, r in {**self._ranges, **given}.items() if uid in uids
        }
        self.selection_changed.emit()

    def selected_slice_count(self) -> int:
        """Number of slices the selection covers (ranges applied)."""
        total = 0
        for s in self._selected:
            start, stop = self._ranges.get(s.series_uid, (0, s.n_images))
            total += max(0, min(stop, s.n_images) - max(0, start))
        return total

    # -- training set -----------------------------------------------------------------------
    @property
    def training_set(self) -> TrainingData | None:
        """The ``TrainingSet`` (or the bare images it was given as, or None)."""
        return self._training_set

    @property
    def training_images(self) -> np.ndarray | None:
        """float32 (N, R, R) in [-1, 1], or None."""
        return self._training_images

    @property
    def training_patient_keys(self) -> np.ndarray | None:
        """Hashed patient key per training image (None for bare images)."""
        return self._training_keys

    @property
    def training_summary(self) -> dict[str, Any]:
        """De-identified summary of the training set (counts, resolution, window...)."""
        return dict(self._training_summary)

    def set_training_set(self, training_set: TrainingData | None,
                         summary: dict[str, Any] | None = None) -> None:
        """Store a training set: a ``TrainingSet`` or bare float32 (N, R, R) images."""
        images: np.ndarray | None = None
        keys: np.ndarray | None = None
        info: dict[str, Any] = {}
        if isinstance(training_set, np.ndarray):
            images = training_set
        elif training_set is not None:
            images, keys, info = training_set.images, training_set.patient_keys, training_set.summary()
        if images is not None:
            images = np.asarray(images, dtype=np.float32)
            info = {"n_images": int(images.shape[0]), "resolution": int(images.shape[-1]), **info}
        self._training_set = training_set
        self._training_images = images
        self._training_keys = keys
        self._training_summary = {**info, **(summary or {})}
        self.training_set_changed.emit(training_set)

    # -- model ------------------------------------------------------------------------------
    @property
    def model_path(self) -> str:
        """Path of the current model file ("" when none)."""
        return self._model_path

    def set_model_path(self, path: str | os.PathLike[str] | None) -> None:
        self._model_path = str(path or "")
        self.model_changed.emit(self._model_path)

    # -- generated set ----------------------------------------------------------------------
    @property
    def generated(self) -> GeneratedSet | None:
        """The generated set (or None)."""
        return self._generated

    @property
    def scores(self) -> ScoreTable | None:
        """The scores for ``generated`` (None when there was nothing to score against)."""
        return self._scores

    @property
    def decisions(self) -> Decisions | None:
        """Keep/reject decisions for ``generated`` (or None)."""
        return self._decisions

    def set_generated(self, generated: GeneratedSet | None, scores: ScoreTable | None = None,
                      decisions: Decisions | None = None) -> None:
        """Replace the generated set; scores and decisions belong to it."""
        self._generated = generated
        self._scores = scores
        self._decisions = decisions
        self.generated_changed.emit()

    def set_scores(self, scores: ScoreTable | None) -> None:
        self._scores = scores
        self.generated_changed.emit()

    def set_decisions(self, decisions: Decisions | None) -> None:
        self._decisions = decisions
        self.generated_changed.emit()

    # -- tasks ------------------------------------------------------------------------------
    @property
    def task_text(self) -> str:
        task = self.current_task()
        return task.text if task else ""

    @property
    def task_progress(self) -> float:
        task = self.current_task()
        return task.progress if task else 0.0

    def current_task(self) -> TaskInfo | None:
        """The most recently started task still running."""
        return next(reversed(self._tasks.values()), None)

    def tasks(self) -> list[TaskInfo]:
        return list(self._tasks.values())

    def set_task(self, text: str, progress: float = -1.0, *, key: str = "task") -> None:
        """Start or update the task ``key`` (several jobs may run at once)."""
        self._tasks[key] = TaskInfo(key, text, float(progress))
        self._emit_task()

    def clear_task(self, key: str = "task") -> None:
        if self._tasks.pop(key, None) is not None:
            self._emit_task()

    def _emit_task(self) -> None:
        task = self.current_task()
        if task is None:
            self.task_changed.emit("", 0.0)
        else:
            self.task_changed.emit(task.text, task.progress)

    # -- device -----------------------------------------------------------------------------
    @property
    def device(self) -> str:
        """e.g. "CPU (2 cores, 24 GiB)" or "cuda:0 NVIDIA H100 (80 GiB)"; "" until probed."""
        return self._device

    def set_device(self, text: str) -> None:
        self._device = text
        self.device_changed.emit(text)
