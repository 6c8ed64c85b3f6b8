"""The "Does it help?" page: would adding synthetic slices make a downstream model better on
new patients? Pick the task, the synthetic set, arms (ratios), budget; run it in a worker;
see mean ± sd per arm with the paired intervals, the verdict in words and the controls; save
the result as JSON and the plot as PNG, and write its HTML report ("Report…", opened in the
browser). The job is :func:`medgan.workflows.utility.run_utility`.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QPixmap
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from ui.pages.base import Page
from ui.state import AppState
from ui.workers import FunctionWorker, WorkerHandle, describe_error, start_worker

log = logging.getLogger(__name__)

SOURCES = ("Train one GAN per class (per fold)", "Labelled export folder", "Current model file")


def utility_job(request: Any, *, progress: Any = None, cancel: threading.Event | None = None,
                on_run: Any = None) -> Any:  # fmt: skip
    """Worker body: run the utility job and render its figure (plain values only)."""
    from medgan.utility.plot import figure_png
    from medgan.workflows.utility import run_utility

    result = run_utility(request, cancel=cancel, on_run=on_run,
                         progress=(lambda s, d, t: progress(d, t, s)) if progress else None)  # fmt: skip
    return result, figure_png(result)


def default_results_dir() -> Path:
    """Where the Report button saves a result that was not saved yet."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or Path.home() / ".medgan-studio") / "utility"


def utility_report_job(json_path: str) -> str:
    """Worker body: write the HTML report next to the saved result JSON; returns its path."""
    from medgan.reports import write_report

    return str(write_report(json_path))


def _floats(text: str) -> tuple[float, ...]:
    return tuple(float(v) for v in text.replace(" ", "").split(",") if v)


class UtilityPage(Page):
    """Settings on the left, result (plot, verdict, controls) on the right."""

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.handle: WorkerHandle | None = None
        self.result: Any = None
        self.png: bytes = b""
        self.saved_json: Path | None = None  # where the current result was saved
        self.results_dir = default_results_dir()
        self.last_report: Path | None = None
        self.open_url: Any = QDesktopServices.openUrl  # tests replace it
        self._reporting = False
        self._started = 0.0
        self._eta: float | None = None
        self._build()
        state.training_set_changed.connect(lambda *_: self._refresh())
        self._refresh()

    # -- layout -----------------------------------------------------------------------------
    def _build(self) -> None:
        root = QHBoxLayout(self)
        left = QWidget()
        form = QFormLayout(left)
        title = QLabel("<h3>Does it help?</h3>Train a classifier or segmenter on real slices with "
                       "and without synthetic ones, and test it on patients it never saw.")
        title.setWordWrap(True)
        form.addRow(title)
        self.data_label = QLabel()
        self.data_label.setWordWrap(True)
        form.addRow(self.data_label)
        self.task = QComboBox()
        self.task.addItems(["classify", "segment"])
        form.addRow("Task", self.task)
        self.vs_rest = QComboBox()
        form.addRow("Two classes: this vs the rest", self.vs_rest)
        self.source = QComboBox()
        self.source.addItems(list(SOURCES))
        form.addRow("Synthetic slices", self.source)
        self.folder = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder)
        row.addWidget(browse)
        form.addRow("Export folder", row)
        self.gan_steps = QSpinBox()
        self.gan_steps.setRange(50, 100000)
        self.gan_steps.setValue(400)
        form.addRow("GAN steps per class", self.gan_steps)
        self.ratios = QLineEdit("1")
        form.addRow("Ratios (synthetic per real)", self.ratios)
        self.fractions = QLineEdit("0.5")
        form.addRow("Real patients used (learning curve)", self.fractions)
        self.seeds = QSpinBox()
        self.seeds.setRange(1, 20)
        self.seeds.setValue(3)
        form.addRow("Seeds", self.seeds)
        self.folds = QSpinBox()
        self.folds.setRange(2, 10)
        self.folds.setValue(3)
        form.addRow("Folds (by patient)", self.folds)
        self.steps = QSpinBox()
        self.steps.setRange(10, 100000)
        self.steps.setValue(150)
        form.addRow("Steps per run (budget)", self.steps)
        self.controls = QCheckBox("Run the controls (shuffled labels, extra real patients)")
        self.controls.setChecked(True)
        form.addRow(self.controls)
        self.unchecked = QCheckBox("Allow a synthetic set whose training patients are unknown")
        self.unchecked.setToolTip("Exports do not record them: test patients could have "
                                  "leaked into the synthetic set. The result says so.")
        form.addRow(self.unchecked)
        buttons = QHBoxLayout()
        self.run_button = QPushButton("Run")
        self.run_button.clicked.connect(self.start)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.save_button = QPushButton("Save result…")
        self.save_button.clicked.connect(self._save_dialog)
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip(
            "Write a self-contained HTML report of the result (next to its JSON; an unsaved "
            "result is saved first) and open it in your browser"
        )
        self.report_button.clicked.connect(self.write_utility_report)
        for b in (self.run_button, self.cancel_button, self.save_button, self.report_button):
            buttons.addWidget(b)
        form.addRow(buttons)
        self.progress = QProgressBar()
        form.addRow(self.progress)
        self.status = QLabel()
        self.status.setWordWrap(True)
        form.addRow(self.status)
        root.addWidget(left, 1)

        right = QWidget()
        col = QVBoxLayout(right)
        self.verdict = QLabel("No result yet.")
        self.verdict.setWordWrap(True)
        self.verdict.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        col.addWidget(self.verdict)
        self.plot = QLabel()
        self.plot.setAlignment(Qt.AlignmentFlag.AlignCenter)
        scroll = QScrollArea()
        scroll.setWidget(self.plot)
        scroll.setWidgetResizable(True)
        col.addWidget(scroll, 1)
        self.controls_label = QLabel()
        self.controls_label.setWordWrap(True)
        col.addWidget(self.controls_label)
        root.addWidget(right, 2)

    def _refresh(self) -> None:
        ts = self.state.training_set
        names = tuple(getattr(ts, "class_names", ()) or ())
        segs = tuple(getattr(ts, "segment_names", ()) or ())
        if ts is None or not hasattr(ts, "patient_keys"):
            self.data_label.setText("Build a training set with labels on the Data page first.")
        else:
            n_pat = len(set(ts.patient_keys.tolist()))
            self.data_label.setText(
                f"Real data: {len(getattr(ts, 'images', ()))} slices, {n_pat} patients; classes: "
                f"{', '.join(names) or 'none'}; segments: {', '.join(segs) or 'none'}."
            )
        current = self.vs_rest.currentText()
        self.vs_rest.clear()
        self.vs_rest.addItems(["(keep all classes)", *names])
        if current in names:
            self.vs_rest.setCurrentText(current)
        self._update_buttons()

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        ts = self.state.training_set
        self.run_button.setEnabled(not busy and ts is not None and hasattr(ts, "patient_keys"))
        self.cancel_button.setEnabled(busy)
        self.save_button.setEnabled(not busy and self.result is not None)
        self.report_button.setEnabled(
            not busy and self.result is not None and not self._reporting
        )

    def is_busy(self) -> bool:
        return self.handle is not None and self.handle.is_running()

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Labelled export folder")
        if folder:
            self.folder.setText(folder)
            self.source.setCurrentIndex(1)

    # -- the job ----------------------------------------------------------------------------
    def build_request(self) -> Any:
        """The request from the settings (raises MedganError with advice when they are bad)."""
        from medgan.core.errors import DataError
        from medgan.utility.records import UtilityConfig
        from medgan.workflows.utility import GanBudget, LabelledData, UtilityRequest

        ts = self.state.training_set
        if ts is None or not hasattr(ts, "patient_keys"):
            raise DataError("No training set.", advice="Build one with labels on the Data page.")
        try:
            ratios, fractions = _floats(self.ratios.text()), _floats(self.fractions.text())
        except ValueError as exc:
            raise DataError("Ratios and fractions are numbers separated by commas.",
                            advice="For example 0.5,1,2.") from exc  # fmt: skip
        vs = self.vs_rest.currentIndex()
        config = UtilityConfig(
            task=self.task.currentText(), ratios=ratios or (1.0,), seeds=self.seeds.value(),
            folds=self.folds.value(), fractions=fractions or (0.5,), steps=self.steps.value(),
            controls=self.controls.isChecked(),
            vs_rest=self.vs_rest.currentText() if vs > 0 else None,
        )  # fmt: skip
        data = LabelledData.from_training_set(ts)
        synthetic: Any = None
        gan = None
        if self.source.currentIndex() == 0:
            gan = GanBudget(steps=self.gan_steps.value())
        elif self.source.currentIndex() == 1:
            from medgan.utility.export_folder import read_export_folder

            synthetic = read_export_folder(self.folder.text(), window=data.window,
                                           resolution=int(data.images.shape[-1]))  # fmt: skip
        else:
            from medgan.utility.sources import LabelledModelSource

            if not self.state.model_path:
                raise DataError("No model file.", advice="Train or open one on the Train page.")
            synthetic = LabelledModelSource(self.state.model_path)
        return UtilityRequest(config, data=data, synthetic=synthetic, gan=gan,
                              allow_unchecked=self.unchecked.isChecked())

    def start(self, request: Any = None) -> bool:
        if self.is_busy():
            return False
        try:
            request = request if request is not None and not isinstance(request, bool) \
                else self.build_request()  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - every refusal is explained
            self._fail(*describe_error(exc))
            return False
        self._started = time.monotonic()
        self._eta = None

        def on_run(_r: Any, _done: int, _total: int, eta: float | None) -> None:
            self._eta = eta  # read by the UI thread on the next progress signal

        worker = FunctionWorker(utility_job, request, on_run=on_run, name="utility")
        self.progress.setValue(0)
        self.status.setText("Running…")
        self.handle = start_worker(
            worker, self, on_progress=self._on_progress, on_result=self._on_result,
            on_failed=self._fail, on_cancelled=self._on_cancelled, on_finished=self._update_buttons,
        )  # fmt: skip
        self._update_buttons()
        return True

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.status.setText("Cancelling…")

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        if self.handle is None or not self.handle.is_running():
            return True
        self.handle.cancel()
        return self.handle.wait(timeout_ms)

    def _on_progress(self, fraction: float, message: str) -> None:
        if fraction >= 0:
            self.progress.setValue(int(fraction * 100))
        eta = f", about {self._eta / 60:.1f} min left" if self._eta is not None else ""
        self.status.setText(f"{message or 'Running'}: {max(fraction, 0):.0%}{eta}")

    def _on_result(self, value: Any) -> None:
        self.result, self.png = value
        self.saved_json = None
        self.show_result(self.result, self.png)

    def show_result(self, result: Any, png: bytes) -> None:
        pix = QPixmap()
        pix.loadFromData(png, "PNG")
        self.plot.setPixmap(pix)
        flag = "" if result.trustworthy else "\n⚠ The controls misbehaved: do not trust this."
        self.verdict.setText(f"<b>{result.verdict}</b><br>{result.verdict_text}{flag}")
        lines = []
        for name, title in (("shuffled", "Shuffled labels"), ("extra_real", "Extra real patients")):
            c = result.controls.get(name)
            if c:
                lines.append(f"{title}: {c['verdict']} (expected {c['expected']})"
                             + ("" if c["ok"] else " — misbehaved"))  # fmt: skip
        lines += list(result.controls.get("notes", [])) + list(result.warnings)
        self.controls_label.setText("\n".join(lines))
        self.status.setText(f"Finished in {time.monotonic() - self._started:.0f} s.")
        self.progress.setValue(100)
        self._update_buttons()

    def _on_cancelled(self) -> None:
        self.status.setText("Cancelled. Finished runs are discarded unless a checkpoint folder is used.")

    def _fail(self, message: str, advice: str) -> None:
        self.status.setText(f"{message} {advice}".strip())
        log.error("Utility: %s %s", message, advice)
        self._update_buttons()

    # -- saving -----------------------------------------------------------------------------
    def _save_dialog(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save result", "utility.json", "JSON (*.json)")
        if path:
            self.save(path)

    def save(self, path: str | Path) -> tuple[Path, Path]:
        """Write the result JSON and the plot PNG next to it (``name.png``)."""
        from medgan.core.fileio import atomic_path, atomic_write_json

        json_path = Path(path)
        png_path = json_path.with_suffix(".png")
        atomic_write_json(json_path, self.result.to_dict(), indent=2)
        with atomic_path(png_path) as tmp:
            tmp.write_bytes(self.png)
        self.saved_json = json_path
        self.status.setText(f"Saved {json_path.name} and {png_path.name}.")
        return json_path, png_path

    def write_utility_report(self) -> WorkerHandle | None:
        """Write the result's HTML report in a worker and open it in the browser (an unsaved
        result is first saved into ``results_dir``)."""
        if self.result is None or self._reporting or self.is_busy():
            return None
        if self.saved_json is None or not self.saved_json.is_file():
            try:
                self.results_dir.mkdir(parents=True, exist_ok=True)
                self.save(self.results_dir / time.strftime("utility-%Y%m%d-%H%M%S.json"))
            except OSError as exc:
                self._fail(f"The result could not be saved for its report: {exc}.",
                           "Save it with “Save result…” to a writable folder first.")  # fmt: skip
                return None
        assert self.saved_json is not None
        worker = FunctionWorker(utility_report_job, str(self.saved_json), name="utility-report",
                                progress_kw=None, cancel_kw=None)  # fmt: skip
        self._reporting = True
        self.status.setText("Writing the utility report…")

        def done(written: str) -> None:
            self.last_report = Path(written)
            self.status.setText(f"Report written to {written}")
            self.open_url(QUrl.fromLocalFile(written))

        def failed(message: str, advice: str) -> None:
            self._fail(f"The report could not be written. {message}", advice)

        def finished() -> None:
            self._reporting = False
            self._update_buttons()

        self._update_buttons()
        return start_worker(worker, self, on_result=done, on_failed=failed, on_finished=finished)
