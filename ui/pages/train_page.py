"""Train page: settings, Start / Pause / Stop, live progress, loss plots, samples, checkpoints.

Training runs in a :class:`~ui.train_worker.TrainWorker` on its own QThread; this page only
draws the events it forwards. Every way a run ends (finished, stopped, failed, window closed)
returns the buttons to a usable state; failures are shown with the engine's advice.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QStandardPaths, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QFileDialog,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from medgan.reports import write_report
from medgan.train import events as ev
from medgan.train.listeners import HistoryRecorder, fan_out
from medgan.train.listeners.history import sidecar_path
from medgan.workflows.training import selection_of, with_patients
from ui.jobs import probe_devices, save_trained_model
from ui.pages.base import Page
from ui.state import AppState
from ui.train_worker import TrainerFactory, TrainWorker
from ui.widgets.error_dialog import show_error
from ui.widgets.loss_plot import LossPlot
from ui.widgets.sample_grid import SampleGrid
from ui.widgets.train_settings import TrainSettings, make_train_config
from ui.widgets.train_status import (
    CheckpointList,
    metrics_text,
    quality_text,
    saved_step_text,
    started_text,
)
from ui.workers import FunctionWorker, WorkerHandle, start_worker

log = logging.getLogger(__name__)

TASK_KEY = "training"


def default_runs_dir() -> Path:
    """Where checkpoints of GUI runs go (one sub-folder per run)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".medgan-studio") / "runs"


class TrainPage(Page):
    """The Train step. ``phase`` is one of idle, running, paused, stopping, finished."""

    run_ended = Signal(str)  # "finished", "cancelled" or "failed"
    model_saved = Signal(str)

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.trainer_factory: TrainerFactory | None = None  # tests inject a fake trainer
        self.runs_dir = default_runs_dir()
        self.config_overrides: dict[str, Any] = {}  # e.g. sample_every for tests and demos
        self.worker: TrainWorker | None = None
        self.handle: WorkerHandle | None = None
        self.phase = "idle"
        self.last_result: Any = None
        self.last_error: tuple[str, str] | None = None
        self.error_box: QMessageBox | None = None
        self.init_model: str | None = None
        self._init_arch: dict[str, Any] = {}  # z_dim/width of the model being fine-tuned
        self._run_summary: dict[str, Any] = {}
        self.resume_from: str | None = None
        self.metrics_seen = 0
        self.samples_seen = 0
        self.started_event: ev.TrainStarted | None = None
        self._run_started = 0.0
        self._devices_probed = False
        self.history = HistoryRecorder()  # the run's compact history (report sidecar)
        self.saved_model: str | None = None
        self.last_report: Path | None = None
        self.open_url: Any = QDesktopServices.openUrl  # tests replace it
        self._reporting = False
        self._build()
        self.state.training_set_changed.connect(self._on_training_set_changed)
        self._on_training_set_changed(self.state.training_set)

    # ------------------------------------------------------------------ layout
    def _build(self) -> None:
        self.settings = TrainSettings()
        self.finetune_button = QPushButton("Fine-tune from model…")
        self.finetune_button.setToolTip("Start from an existing model file instead of from scratch")
        self.finetune_label = QLabel("Training from scratch")
        self.finetune_label.setWordWrap(True)
        self.clear_init_button = QPushButton("From scratch")
        self.clear_init_button.setEnabled(False)
        self.finetune_button.clicked.connect(self._choose_init_model)
        self.clear_init_button.clicked.connect(lambda: self.set_init_model(None))

        settings_box = QGroupBox("Settings")
        sv = QVBoxLayout(settings_box)
        sv.addWidget(self.settings)
        ft = QHBoxLayout()
        ft.addWidget(self.finetune_button)
        ft.addWidget(self.clear_init_button)
        sv.addLayout(ft)
        sv.addWidget(self.finetune_label)

        self.data_label = QLabel()
        self.data_label.setWordWrap(True)
        self.start_button = QPushButton("Start")
        self.start_button.setShortcut("Ctrl+Return")
        self.pause_button = QPushButton("Pause")
        self.stop_button = QPushButton("Stop")
        self.save_button = QPushButton("Save model…")
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip(
            "Write a self-contained HTML report of the saved model and open it in your browser"
        )
        self.report_button.clicked.connect(self.write_model_report)
        self.start_button.clicked.connect(self.start_training)
        self.pause_button.clicked.connect(self.toggle_pause)
        self.stop_button.clicked.connect(self.stop_training)
        self.save_button.clicked.connect(self._choose_save_path)
        buttons = QHBoxLayout()
        for b in (
            self.start_button, self.pause_button, self.stop_button, self.save_button,
            self.report_button,
        ):  # fmt: skip
            buttons.addWidget(b)

        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.progress.setValue(0)
        self.progress.setFormat("%p%")
        self.status_label = QLabel("Not started")
        # Changing text must never resize the columns (that would re-layout the plots).
        self.status_label.setWordWrap(True)
        self.status_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.status_label.setMinimumHeight(self.status_label.fontMetrics().height() * 3)

        self.quality_label = QLabel("")
        self.quality_label.setWordWrap(True)
        self.quality_label.setToolTip(
            "Every few steps the generator's samples are compared with training slices (sliced "
            "Wasserstein distance, lower is better). With 'Keep best' on, the saved model holds "
            "the generator of the best such check."
        )
        self.last_quality: Any = None

        self.checkpoint_box = CheckpointList()
        self.checkpoint_box.resume_requested.connect(self.set_resume_from)
        self.checkpoint_list = self.checkpoint_box.list  # short names for tests and screenshots
        self.resume_button = self.checkpoint_box.resume_button

        left = QWidget()
        lv = QVBoxLayout(left)
        lv.addWidget(self.data_label)
        lv.addWidget(settings_box)
        lv.addLayout(buttons)
        lv.addWidget(self.progress)
        lv.addWidget(self.status_label)
        lv.addWidget(self.quality_label)
        lv.addWidget(self.checkpoint_box, 1)

        self.loss_plot = LossPlot()
        self.sample_grid = SampleGrid()
        right = QSplitter(Qt.Orientation.Vertical)
        right.addWidget(self.loss_plot)
        right.addWidget(self.sample_grid)
        right.setSizes([400, 300])

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(split)
        self._update_buttons()

    # --------------------------------------------------------------- data/devices
    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._devices_probed:
            self._devices_probed = True
            start_worker(
                FunctionWorker(
                    probe_devices, name="device-probe", progress_kw=None, cancel_kw=None
                ),
                self,
                on_result=self._on_devices,
            )

    def _on_devices(self, devices: list[dict[str, Any]]) -> None:
        self.settings.set_devices(devices)
        auto = next((d for d in devices if d["key"] == "auto"), None)
        if auto and not self.state.device:
            self.state.set_device(auto["label"])

    def _on_training_set_changed(self, training_set: Any) -> None:
        images = self.state.training_images
        if images is None:
            self.data_label.setText("No training set yet: choose series on the Data page.")
        else:
            n, r = int(images.shape[0]), int(images.shape[-1])
            self.data_label.setText(f"Training set: {n} slices at {r} × {r}.")
            self.settings.set_resolution(r)
        names = tuple(getattr(training_set, "class_names", ()) or ())
        labels = getattr(training_set, "labels", None)
        counts: dict[str, int] = {}
        if names and labels is not None:
            found = np.bincount(labels[labels >= 0], minlength=len(names))
            counts = {name: int(c) for name, c in zip(names, found, strict=False)}
        segments = tuple(getattr(training_set, "segment_names", ()) or ())
        if getattr(training_set, "masks", None) is None:
            segments = ()
        self.settings.set_classes(counts, segments)
        self._update_buttons()

    # ------------------------------------------------------------------ actions
    def set_init_model(self, path: str | None) -> None:
        """Fine-tune from ``path`` (a model file), or train from scratch when None.

        The model's recipe, resolution and network size are taken over; a file that cannot
        be read (corrupt, tampered, not a model) is refused with the reason.
        """
        self.init_model = None
        self._init_arch = {}
        self.resume_from = None
        if path:
            try:
                from medgan.models.modelfile import read_metadata

                meta = read_metadata(path)
            except Exception as exc:  # noqa: BLE001 - shown to the user, start stays possible
                from ui.workers import describe_error

                message, advice = describe_error(exc)
                self._show_error("This model cannot be used for fine-tuning.", message, advice)
            else:
                self.init_model = path
                self.settings.set_values({"recipe": meta.recipe, "resolution": meta.resolution})
                self._init_arch = meta.network_settings()
        self.finetune_label.setText(
            f"Fine-tuning from {Path(path).name}"
            if self.init_model and path
            else "Training from scratch"
        )
        self._update_buttons()

    def _choose_init_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Fine-tune from model", "", "MedGAN model (*.safetensors)"
        )
        if path:
            self.set_init_model(path)

    def set_resume_from(self, path: str | None) -> None:
        """Continue the run saved in checkpoint ``path`` on the next Start (same settings)."""
        if self.phase in ("running", "paused", "stopping"):
            return
        self.resume_from = path or None
        self.init_model = None
        self.finetune_label.setText(
            f"Next Start resumes from {Path(path).name}" if path else "Training from scratch"
        )
        self._update_buttons()

    def start_training(self) -> bool:
        """Start a run with the current settings; False (with a dialog) when it cannot."""
        if self.phase in ("running", "paused", "stopping"):
            return False
        images = self.state.training_images
        if images is None or len(images) == 0:
            self._show_error(
                "There is no training set.", "Choose series on the Data page first.", ""
            )
            return False
        values = self.settings.values()
        run_dir = self.runs_dir / time.strftime("run-%Y%m%d-%H%M%S")
        try:
            if self.resume_from:
                config = self._resume_config(values)
            else:
                arch = self._init_arch if self.init_model else {"width": self._auto_width(values)}
                config = make_train_config(
                    values, **{"checkpoint_dir": str(run_dir), **arch, **self.config_overrides}
                )
        except Exception as exc:  # noqa: BLE001 - bad settings must not crash the app
            from ui.workers import describe_error

            message, advice = describe_error(exc)
            self._show_error("These settings cannot be used.", message, advice)
            return False
        self.loss_plot.clear()
        self.sample_grid.clear()
        self.checkpoint_box.clear()
        self.metrics_seen = self.samples_seen = 0
        self.last_result = None
        self.last_error = None
        # the data this run learns from, with its hashed patients (for `medgan utility`)
        self._run_summary = with_patients(
            self.state.training_summary, self.state.training_patient_keys
        )
        self.history = HistoryRecorder()
        self.saved_model = None
        self.worker = TrainWorker(
            config,
            images,
            init_model=self.init_model,
            resume_from=self.resume_from,
            trainer_factory=self._factory_with_listeners(config, run_dir),
        )
        self._run_started = time.monotonic()
        self.phase = "running"
        self.progress.setValue(0)
        self.status_label.setText("Starting…")
        self.state.set_task("Training: starting", -1.0, key=TASK_KEY)
        self.handle = start_worker(
            self.worker,
            self,
            on_event=self._on_event,
            on_result=self._on_result,
            on_failed=self._on_failed,
            on_finished=self._on_finished,
        )
        self._update_buttons()
        return True

    def _factory_with_listeners(self, config: Any, run_dir: Path) -> TrainerFactory:
        """The trainer factory, with the history recorder (and, when asked, the TensorBoard and
        CSV writers) as plain listeners next to the page's: they run in the worker thread."""
        from medgan.train.listeners import CsvMetricsWriter, TensorBoardWriter

        base = self.trainer_factory
        extra: list[Any] = [self.history]
        if self.settings.log_run.isChecked():
            folder = Path(config.checkpoint_dir or run_dir)
            settings = {k: v for k, v in config.to_dict().items() if k != "checkpoint_dir"}
            extra += [
                TensorBoardWriter(folder / "tensorboard", hparams=settings),
                CsvMetricsWriter(folder / "metrics.csv"),
            ]

        labelled = self._labelled_inputs(config)
        levels = getattr(self.state.training_set, "levels", None)
        if getattr(config, "levels", 0) and levels is not None:
            labelled["slice_levels"] = levels  # each slice's level in its series

        def make(*args: Any, on_event: Any = None, **kwargs: Any) -> Any:
            for key, value in labelled.items():
                kwargs.setdefault(key, value)
            if base is None:
                from medgan.train.trainer import Trainer  # heavy: in the worker

                factory: Any = Trainer
            else:
                factory = base
            return factory(*args, on_event=fan_out(on_event, *extra), **kwargs)

        return make

    def _auto_width(self, values: dict[str, Any]) -> int:
        """The recipe's CPU-sized width, wider on a GPU (medgan.models.auto_width)."""
        from medgan.models import RECIPES, auto_width

        recipe = str(values.get("recipe") or "default")
        if recipe not in RECIPES:
            return 16
        device = str(values.get("device") or "auto")
        if device == "auto":
            device = str(getattr(self.settings, "_auto_device", "cpu"))
        return auto_width(recipe, int(values.get("resolution") or 64), device)

    def _labelled_inputs(self, config: Any) -> dict[str, Any]:
        """Labels and masks of the training set for a labelled recipe (the ticked classes
        only); {} for image-only recipes or a bare image set."""
        from medgan.models import RECIPES

        ts = self.state.training_set
        info = RECIPES.get(config.recipe)
        if not (info and info.labelled) or ts is None or isinstance(ts, np.ndarray):
            return {}
        out: dict[str, Any] = {}
        labels, names = getattr(ts, "labels", None), tuple(getattr(ts, "class_names", ()))
        keep = np.ones(len(ts.images), bool)
        if labels is not None and names:
            from medgan.train.labelled import select_classes

            keep, kept_labels, kept_names = select_classes(
                labels, names, self.settings.chosen_classes()
            )
            if not keep.all():
                # left-out classes: their slices become unlabelled (the trainer leaves them out)
                full = np.full(len(labels), -1, np.int64)
                full[keep] = kept_labels
                labels = full
            out.update(labels=labels, class_names=kept_names)
        if getattr(ts, "masks", None) is not None:
            out.update(
                masks=ts.masks, mask_known=ts.mask_known, segment_names=tuple(ts.segment_names)
            )
        return out

    def _resume_config(self, values: dict[str, Any]) -> Any:
        """The checkpoint's own settings (same run), with the new budget and device."""
        from medgan.train.trainer import read_checkpoint_config

        base = read_checkpoint_config(self.resume_from or "")
        changes: dict[str, Any] = {
            "steps": values["steps"],
            "minutes": values["minutes"],
            "device": values["device"],
            "checkpoint_every": values.get("checkpoint_every", base.checkpoint_every),
            "checkpoint_minutes": values.get("checkpoint_minutes", base.checkpoint_minutes),
            "checkpoint_dir": str(Path(self.resume_from or "").parent),
        }
        return base.replace(**{**changes, **self.config_overrides})

    def toggle_pause(self) -> None:
        if self.worker is None:
            return
        if self.phase == "running":
            self.worker.pause()
            self.phase = "paused"
            self.status_label.setText("Pausing…")
        elif self.phase == "paused":
            self.worker.resume()
            self.phase = "running"
            self.status_label.setText("Resuming…")
        self._update_buttons()

    def stop_training(self) -> None:
        """Ask the trainer to stop; it saves a checkpoint and the run ends as cancelled."""
        if self.worker is None or self.phase not in ("running", "paused"):
            return
        self.worker.cancel()
        self.phase = "stopping"
        self.status_label.setText("Stopping and saving a checkpoint…")
        self._update_buttons()

    def is_training(self) -> bool:
        return self.handle is not None and self.handle.is_running()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Stop training, let the trainer save its checkpoint, and wait for the thread."""
        if self.handle is None or not self.handle.is_running():
            return True
        log.info("Window closing: stopping training and saving a checkpoint")
        if self.worker is not None:
            self.worker.cancel()
        self.phase = "stopping"
        ok = self.handle.wait(timeout_ms)
        if not ok:
            log.error("Training did not stop within %d ms", timeout_ms)
        return ok

    # ----------------------------------------------------------------- events
    def load_history(self, events: list[Any]) -> None:
        """Replay trainer events (e.g. for screenshots or a finished run) without training."""
        for event in events:
            self._on_event(event)
        self.loss_plot.flush()
        if not self.is_training():
            self.state.clear_task(TASK_KEY)

    def _on_event(self, event: Any) -> None:
        if isinstance(event, ev.StepMetrics):
            self._on_metrics(event)
        elif isinstance(event, ev.SampleGrid):
            self.samples_seen += 1
            if getattr(event, "labels", None) is not None or getattr(event, "masks", None) is not None:
                self.sample_grid.set_labelled(event)  # a row per class, masks drawn over
            else:
                self.sample_grid.set_images(event.images, event.step)
        elif isinstance(event, ev.QualityMeasured):
            self.last_quality = event
            self.loss_plot.append_quality(event.step, event.swd, event.best_step, event.best_swd)
            self.quality_label.setText(quality_text(event))
        elif isinstance(event, ev.CheckpointSaved):
            self._add_checkpoint(event.path, event.step)
        elif isinstance(event, ev.TrainStarted):
            self.started_event = event
            self.status_label.setText(started_text(event))
            self.loss_plot.set_total_steps(event.total_steps)
        elif isinstance(event, ev.Paused):
            self.status_label.setText(f"Paused at step {event.step}")
            self.state.set_task(f"Training paused at step {event.step}", -1.0, key=TASK_KEY)
        elif isinstance(event, ev.Resumed):
            self.status_label.setText(f"Resumed at step {event.step}")
        elif isinstance(event, (ev.TrainFinished, ev.TrainCancelled)):
            if event.checkpoint_path:
                self._add_checkpoint(event.checkpoint_path, event.step)
        elif isinstance(event, ev.TrainFailed):
            self.last_error = (event.message, event.advice or "")
            if event.checkpoint_path:
                self._add_checkpoint(event.checkpoint_path, event.step)

    def _on_metrics(self, m: ev.StepMetrics) -> None:
        self.metrics_seen += 1
        self.loss_plot.append_metrics(m)
        text, task, fraction = metrics_text(m)
        if fraction >= 0:
            self.progress.setValue(int(fraction * 1000))
        if self.phase != "paused":
            self.status_label.setText(text)
            self.state.set_task(task, fraction, key=TASK_KEY)

    def _add_checkpoint(self, path: str, step: int) -> None:
        self.checkpoint_box.add(path, step)

    @property
    def checkpoints(self) -> list[str]:
        """Checkpoint files of the current run, oldest first."""
        return self.checkpoint_box.paths

    def _on_result(self, result: Any) -> None:
        self.last_result = result
        status = getattr(result, "status", "finished")
        message = getattr(result, "message", "") or ""
        step = getattr(result, "step", 0)
        if status == "failed":
            msg, advice = self.last_error or (message or "Training failed.", "")
            self.status_label.setText(f"Failed at step {step}: {msg}")
            self._show_error("Training failed.", msg, advice)
        elif status == "cancelled":
            self.status_label.setText(
                f"Stopped at step {step}. A checkpoint was saved; you can save the model."
            )
        else:
            self.progress.setValue(1000)
            self.status_label.setText(f"Finished {step} steps. Save the model to generate images.")
        self.run_ended.emit(status)

    def _on_failed(self, message: str, advice: str) -> None:
        self.last_error = (message, advice)
        self.status_label.setText(f"Failed: {message}")
        self._show_error("Training failed.", message, advice)
        self.run_ended.emit("failed")

    def _on_finished(self) -> None:
        self.phase = "finished" if self.last_result is not None else "idle"
        self.resume_from = None
        self.state.clear_task(TASK_KEY)
        self._update_buttons()

    # ------------------------------------------------------------------- saving
    def can_save(self) -> bool:
        """A run that finished or was stopped after at least one step can be saved."""
        return (
            self.phase == "finished"
            and self.worker is not None
            and self.worker.trainer is not None
            and getattr(self.last_result, "status", "") in ("finished", "cancelled")
            and int(getattr(self.last_result, "step", 0)) > 0
        )

    def _choose_save_path(self) -> None:
        path, _ = QFileDialog.getSaveFileName(
            self,
            "Save model",
            str(Path.home() / "model.safetensors"),
            "MedGAN model (*.safetensors)",
        )
        if path:
            self.save_model_to(path)

    def save_model_to(self, path: str) -> WorkerHandle | None:
        """Write the trained generator as a model file (in a worker); updates AppState."""
        if not self.can_save() or self.worker is None:
            return None
        worker = FunctionWorker(
            save_trained_model,
            self.worker,
            path,
            self._run_summary,
            name="save-model",
            progress_kw=None,
            cancel_kw=None,
        )
        self.save_button.setEnabled(False)
        self.status_label.setText("Saving the model…")

        selection = selection_of(self.worker.trainer, self.worker.result_step())

        def saved(written: str) -> None:
            self.status_label.setText(f"Model saved to {written}{saved_step_text(selection)}")
            self.saved_model = written
            if self.history.history.final_step:
                try:  # the training history, for the model's report
                    self.history.history.save_json(sidecar_path(written))
                except OSError as exc:
                    log.warning("Could not write the training history next to the model: %s", exc)
            self.state.set_model_path(written)
            self.model_saved.emit(written)

        def failed(message: str, advice: str) -> None:
            self._show_error("The model could not be saved.", message, advice)

        return start_worker(
            worker, self, on_result=saved, on_failed=failed, on_finished=self._update_buttons
        )

    def write_model_report(self) -> WorkerHandle | None:
        """Write the saved model's HTML report in a worker and open it in the browser."""
        if self.saved_model is None or self._reporting:
            return None
        worker = FunctionWorker(
            write_report, self.saved_model, name="model-report", progress_kw=None, cancel_kw=None
        )
        self._reporting = True
        self.status_label.setText("Writing the model report…")

        def done(written: Any) -> None:
            self.last_report = Path(written)
            self.status_label.setText(f"Report written to {written}")
            self.open_url(QUrl.fromLocalFile(str(written)))

        def failed(message: str, advice: str) -> None:
            self._show_error("The report could not be written.", message, advice)

        def finished() -> None:
            self._reporting = False
            self._update_buttons()

        self._update_buttons()
        return start_worker(worker, self, on_result=done, on_failed=failed, on_finished=finished)

    # -------------------------------------------------------------------- state
    def _update_buttons(self) -> None:
        busy = self.phase in ("running", "paused", "stopping")
        has_data = self.state.training_images is not None
        self.start_button.setEnabled(not busy and has_data)
        self.pause_button.setEnabled(self.phase in ("running", "paused"))
        self.pause_button.setText("Resume" if self.phase == "paused" else "Pause")
        self.stop_button.setEnabled(self.phase in ("running", "paused"))
        self.save_button.setEnabled(not busy and self.can_save())
        self.report_button.setEnabled(not busy and bool(self.saved_model) and not self._reporting)
        self.settings.setEnabled(not busy)
        self.finetune_button.setEnabled(not busy)
        self.clear_init_button.setEnabled(not busy and bool(self.init_model or self.resume_from))
        self.checkpoint_box.set_busy(busy)

    def _show_error(self, title: str, message: str, advice: str) -> None:
        """A non-blocking error dialog (the page stays usable; tests can read and close it)."""
        log.warning("%s %s", title, message)
        if self.error_box is not None and self.error_box.isVisible():
            self.error_box.done(0)
        text = f"{title}\n\n{message}" if message else title
        self.error_box = show_error(self, text, advice, title="Training")
