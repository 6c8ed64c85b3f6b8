"""Export page: format, destination and options → an atomic export in a worker, with progress,
cancel, clear errors (exists, read-only, disk full) and "Open folder" when done."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

from PySide6.QtCore import QStandardPaths, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ui.jobs import export_job, warm_up_export
from ui.pages.base import Page
from ui.state import AppState
from ui.widgets.error_dialog import show_error
from ui.workers import FunctionWorker, WorkerHandle, describe_error, start_worker

log = logging.getLogger(__name__)

TASK_KEY = "export"


def export_report_job(
    folder: str, model_path: str | None, real_images: Any = None, show_real_pairs: bool = False
) -> str:
    """Write the export's HTML report (in a worker); real slices only when asked for."""
    from medgan.reports import write_report

    real = None
    if show_real_pairs and real_images is not None and model_path:
        from medgan.models.modelfile import read_metadata
        from ui.train_worker import resize_images

        real = resize_images(real_images, read_metadata(model_path).resolution)
    written = write_report(
        folder, model=model_path or None, real_images=real, show_real_pairs=real is not None
    )
    return str(written)
FORMAT_LABELS: dict[str, str] = {
    "png": "PNG, 8-bit (windowed)",
    "png16": "PNG, 16-bit",
    "tiff": "TIFF, 16-bit",
    "npy": "NumPy stack (.npy)",
    "npz": "NumPy archive with scores (.npz)",
    "nifti": "NIfTI, one file per slice",
    "nifti-stack": "NIfTI, one stack",
    "dicom": "DICOM (Secondary Capture, .dcm; + a SEG per image with masks)",
    "imagefolder": "Class folders (<class>/<file>.png, ImageFolder)",
    "pairs-png": "Image + mask pairs, PNG",
    "pairs-nifti": "Image + mask pairs, NIfTI",
    "nnunet": "nnU-Net v2 raw data set (imagesTr, labelsTr, dataset.json)",
    "monai": "MONAI datalist (NIfTI pairs + datalist.json)",
}


def labelled_export_job(
    generated: Any,
    scores: Any,
    decisions: Any,
    model_path: str,
    config: Any,
    *,
    training_set: Any = None,
    real_images: Any = None,
    reference: Any = None,
    progress: Any = None,
    cancel: Any = None,
) -> Any:
    """Export a labelled set (worker): like ``ui.jobs.export_job``, with the real slices'
    classes (in the generated set's class table) and masks when they are included."""
    from medgan.curate.reference import remap_labels
    from medgan.workflows.exporting import ExportRequest, export_curated
    from medgan.workflows.generation import GenerationResult
    from medgan.workflows.progress import overall_fraction

    real = real_images if config.include_real else None
    labels = masks = known = None
    if real is not None and len(getattr(training_set, "images", ())) == len(real):
        labels = remap_labels(getattr(training_set, "labels", None),
                              tuple(getattr(training_set, "class_names", ())),
                              tuple(generated.class_names))  # fmt: skip
        masks = getattr(training_set, "masks", None)
        known = getattr(training_set, "mask_known", None)
    generation = GenerationResult(generated, scores, reference, model_path)
    request = ExportRequest(generation, decisions, config, real_images=real, real_labels=labels,
                            real_masks=masks, real_mask_known=known)  # fmt: skip
    return export_curated(
        request, progress=overall_fraction(progress, {"export": 1.0}) if progress else None,
        cancel=cancel,
    )


_CAUSES = {
    "memorized": "too close to a training slice",
    "duplicate": "near-duplicates",
    "low_realism": "below the realism threshold",
    "top_k": "outside the top-k",
    "empty": "empty",
    "out_of_range": "out of range",
    "min_distance": "below the distance threshold",
    "user": "rejected by you",
    "memorized_mask": "mask copies a training mask",
    "implausible_mask": "implausible mask",
    "low_fidelity": "below the label-fidelity threshold",
    "class_top_k": "outside the per-class top-k",
}


def default_export_root() -> Path:
    docs = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation)
    return Path(docs or Path.home()) / "MedGAN exports"


class ExportPage(Page):
    """The Export step; reads the generated set, scores and decisions from AppState."""

    export_finished = Signal(str)  # the export folder

    def __init__(self, state: AppState, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.handle: WorkerHandle | None = None
        self.last_export: Path | None = None
        self.last_result: Any = None
        self.error_box: Any = None
        self.outcome = ""  # "done", "failed" or "cancelled" for the last export
        self._warmed = False
        self._build()
        state.generated_changed.connect(self._refresh)
        state.training_set_changed.connect(lambda *_: self._refresh())
        self._refresh()

    def _build(self) -> None:
        from medgan.export import ALL_FORMATS

        self.summary_label = QLabel()
        self.summary_label.setWordWrap(True)
        self.format_combo = QComboBox()
        for key in ALL_FORMATS:
            self.format_combo.addItem(FORMAT_LABELS.get(key, key), key)
        self.format_combo.currentIndexChanged.connect(self._update_options)
        self.destination = QLineEdit(str(default_export_root() / time.strftime("export-%Y%m%d-%H%M%S")))
        self.destination.setToolTip("A new folder to create (it must not exist, unless you allow overwriting)")
        self.browse_button = QPushButton("Browse…")
        self.browse_button.clicked.connect(self._browse)
        dest = QHBoxLayout()
        dest.addWidget(self.destination, 1)
        dest.addWidget(self.browse_button)

        self.include_real = QCheckBox("Include the real training slices (same preprocessing, de-identified)")
        self.patient_name = QLineEdit("SYNTHETIC^MEDGAN")
        self.patient_id = QLineEdit("SYNTH0001")
        self.bit_mode = QComboBox()
        self.bit_mode.addItem("Modality units + offset (e.g. HU + 32768)", "modality")
        self.bit_mode.addItem("Windowed to 0…65535", "windowed")
        self.overwrite = QCheckBox("Replace the destination if it exists (only once the new export is complete)")

        options = QGroupBox("Export")
        form = QFormLayout(options)
        form.addRow("Format", self.format_combo)
        form.addRow("Destination", dest)
        form.addRow("16-bit values", self.bit_mode)
        form.addRow("Synthetic patient name", self.patient_name)
        form.addRow("Synthetic patient ID", self.patient_id)
        form.addRow(self.include_real)
        form.addRow(self.overwrite)

        self.export_button = QPushButton("Export")
        self.export_button.clicked.connect(self.start_export)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        self.open_button = QPushButton("Open folder")
        self.open_button.clicked.connect(self.open_folder)
        self.report_button = QPushButton("Report…")
        self.report_button.setToolTip(
            "Write a self-contained HTML report of the export (report.html inside it) and open it "
            "in your browser"
        )
        self.report_button.clicked.connect(self.write_export_report)
        self.send_button = QPushButton("Send to PACS…")
        self.send_button.setToolTip("Send this DICOM export to a PACS (C-STORE or STOW-RS)")
        self.send_button.clicked.connect(self.send_to_pacs)
        self.report_real_pairs = QCheckBox("Report shows the closest real slices")
        self.report_real_pairs.setToolTip(
            "Off by default: the closest synthetic/real pairs show patients' slices."
        )
        self.open_url: Any = QDesktopServices.openUrl  # tests replace it
        self.last_report: Path | None = None
        self._reporting = False
        self.progress = QProgressBar()
        self.progress.setRange(0, 1000)
        self.status_label = QLabel("")
        self.status_label.setWordWrap(True)
        buttons = QHBoxLayout()
        buttons.addWidget(self.export_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.open_button)
        buttons.addWidget(self.report_button)
        buttons.addWidget(self.send_button)
        buttons.addWidget(self.report_real_pairs)
        buttons.addStretch(1)

        layout = QVBoxLayout(self)
        layout.addWidget(self.summary_label)
        layout.addWidget(options)
        layout.addLayout(buttons)
        layout.addWidget(self.progress)
        layout.addWidget(self.status_label)
        layout.addStretch(1)
        self._update_options()
        self._update_buttons()

    def showEvent(self, event: Any) -> None:  # noqa: N802 - Qt override
        super().showEvent(event)
        if not self._warmed:
            self._warmed = True
            start_worker(FunctionWorker(warm_up_export, name="export-warm-up", progress_kw=None,
                                        cancel_kw=None), self)

    # ------------------------------------------------------------------ state
    def _refresh(self) -> None:
        generated = self.state.generated
        decisions = self.state.decisions
        if generated is None:
            text = "Nothing to export yet: generate images on the Generate page."
        else:
            n = len(generated.images)
            if decisions is not None:
                kept = int(decisions.keep.sum())
                text = f"{kept} of {n} generated slices will be exported ({n - kept} rejected"
                causes = [f"{count} {_CAUSES.get(code, code)}" for code, count in
                          sorted(decisions.counts.items(), key=lambda kv: -kv[1])
                          if count and code in _CAUSES]
                text += (": " + ", ".join(causes) + ")." if causes else ").")
                if decisions.config.allow_memorized:
                    text += (" The memorization guard is OVERRIDDEN: slices too close to a "
                             "patient's slice may be exported; the manifest records it.")
                else:
                    text += " No exported slice is a near-copy of a training slice (guard on)."
            else:
                text = f"All {n} generated slices will be exported."
                if self.state.scores is None:
                    text += " They were not scored: no check against the training set was made."
        self.summary_label.setText(text)
        has_real = self.state.training_images is not None
        self.include_real.setEnabled(has_real)
        if not has_real:
            self.include_real.setChecked(False)
        self._offer_formats(generated)
        self._update_buttons()

    def _offer_formats(self, generated: Any) -> None:
        """Labelled formats only for sets with classes (class folders) or masks (pairs)."""
        from medgan.export.config import NEEDS_LABELS, NEEDS_MASKS

        labelled = getattr(generated, "labels", None) is not None
        masked = getattr(generated, "masks", None) is not None
        model: Any = self.format_combo.model()
        for i in range(self.format_combo.count()):
            key = self.format_combo.itemData(i)
            ok = (key not in NEEDS_LABELS or labelled) and (key not in NEEDS_MASKS or masked)
            item = model.item(i)
            item.setEnabled(ok)
            item.setToolTip("" if ok else "Needs a set generated with classes" if key in
                            NEEDS_LABELS else "Needs a set generated with masks")  # fmt: skip
        if not model.item(self.format_combo.currentIndex()).isEnabled():
            self.format_combo.setCurrentIndex(0)

    def _update_options(self) -> None:
        fmt = self.format_combo.currentData()
        self.bit_mode.setEnabled(fmt in ("png16", "tiff"))
        self.patient_name.setEnabled(fmt == "dicom")
        self.patient_id.setEnabled(fmt == "dicom")

    def _update_buttons(self) -> None:
        busy = self.is_busy()
        n_kept = self._n_kept()
        self.export_button.setEnabled(not busy and n_kept > 0)
        self.cancel_button.setEnabled(busy)
        self.open_button.setEnabled(not busy and self.last_export is not None and self.last_export.is_dir())
        done = not busy and self.last_export is not None and self.last_export.is_dir()
        self.report_button.setEnabled(done and not self._reporting)
        self.send_button.setEnabled(done and getattr(self.last_result, "format", "") == "dicom")
        for w in (self.format_combo, self.destination, self.browse_button, self.include_real,
                  self.overwrite, self.patient_name, self.patient_id, self.bit_mode):
            w.setEnabled(not busy and (w is not self.include_real or self.state.training_images is not None))
        if not busy:
            self._update_options()

    def _n_kept(self) -> int:
        generated = self.state.generated
        if generated is None:
            return 0
        decisions = self.state.decisions
        return int(decisions.keep.sum()) if decisions is not None else len(generated.images)

    def is_busy(self) -> bool:
        return self.handle is not None and not self.handle.done

    # ---------------------------------------------------------------- actions
    def _browse(self) -> None:
        parent = QFileDialog.getExistingDirectory(self, "Folder in which to create the export",
                                                  str(Path(self.destination.text()).parent))
        if parent:
            self.destination.setText(str(Path(parent) / Path(self.destination.text()).name))

    def export_config(self) -> Any:
        from medgan.export import ExportConfig

        return ExportConfig(
            format=self.format_combo.currentData(),
            destination=self.destination.text().strip(),
            overwrite=self.overwrite.isChecked(),
            include_real=self.include_real.isChecked(),
            patient_name=self.patient_name.text().strip(),
            patient_id=self.patient_id.text().strip(),
            bit_mode=self.bit_mode.currentData(),
        )

    def start_export(self) -> bool:
        """Check the settings and destination now, then export in a worker."""
        if self.is_busy() or self._n_kept() == 0:
            return False
        try:
            from medgan.export import check_destination

            config = self.export_config()
            check_destination(config.destination, overwrite=config.overwrite)
        except Exception as exc:  # noqa: BLE001 - every refusal is explained, nothing written
            message, advice = describe_error(exc)
            self._fail(message, advice)
            return False
        generated = self.state.generated
        reference = self.state.training_images if self.state.scores is not None else None
        if getattr(generated, "labels", None) is not None or getattr(generated, "masks", None) is not None:
            worker = FunctionWorker(
                labelled_export_job, generated, self.state.scores, self.state.decisions,
                self.state.model_path, config, training_set=self.state.training_set,
                real_images=self.state.training_images if config.include_real else None,
                reference=reference, name="export",
            )  # fmt: skip
        else:
            worker = FunctionWorker(
                export_job,
                generated,
                self.state.scores,
                self.state.decisions,
                self.state.model_path,
                config,
                real_images=self.state.training_images if config.include_real else None,
                reference=reference,
                name="export",
            )
        self.outcome = ""
        self.last_export = None
        self.progress.setValue(0)
        self.status_label.setText(f"Exporting to {config.destination}…")
        self.state.set_task("Exporting", 0.0, key=TASK_KEY)
        self.handle = start_worker(
            worker, self,
            on_progress=self._on_progress,
            on_result=self._on_result,
            on_failed=self._fail,
            on_cancelled=self._on_cancelled,
            on_finished=self._on_finished,
        )
        self._update_buttons()
        return True

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.status_label.setText("Cancelling…")

    def shutdown(self, timeout_ms: int = 10000) -> bool:
        if self.handle is None or not self.handle.is_running():
            return True
        self.handle.cancel()
        return self.handle.wait(timeout_ms)

    def open_folder(self) -> bool:
        if self.last_export is None:
            return False
        return QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.last_export)))

    def send_to_pacs(self) -> QWidget | None:
        """Open the Send to PACS dialog for the last (DICOM) export."""
        if self.last_export is None:
            return None
        from ui.widgets.pacs_send import SendDialog

        dialog = SendDialog(str(self.last_export), self)
        dialog.open()
        return dialog

    def write_export_report(self) -> WorkerHandle | None:
        """Write the last export's HTML report in a worker and open it in the browser."""
        if self.last_export is None or self._reporting:
            return None
        show = self.report_real_pairs.isChecked()
        worker = FunctionWorker(
            export_report_job, str(self.last_export), self.state.model_path,
            self.state.training_images if show else None, show,
            name="export-report", progress_kw=None, cancel_kw=None,
        )  # fmt: skip
        self._reporting = True
        self.status_label.setText("Writing the export report…")

        def done(written: str) -> None:
            self.last_report = Path(written)
            self.status_label.setText(f"Report written to {written}")
            self.open_url(QUrl.fromLocalFile(written))

        def failed(message: str, advice: str) -> None:
            self.error_box = show_error(self, f"The report could not be written.\n\n{message}",
                                        advice, title="Export")  # fmt: skip

        def finished() -> None:
            self._reporting = False
            self._update_buttons()

        self._update_buttons()
        return start_worker(worker, self, on_result=done, on_failed=failed, on_finished=finished)

    # ---------------------------------------------------------------- results
    def _on_progress(self, fraction: float, _message: str) -> None:
        if fraction >= 0:
            self.progress.setValue(int(fraction * 1000))
            self.state.set_task("Exporting", fraction, key=TASK_KEY)

    def _on_result(self, result: Any) -> None:
        self.outcome = "done"
        self.last_result = result
        self.last_export = Path(result.path)
        self.progress.setValue(1000)
        real = f" and {result.n_real} real" if result.n_real else ""
        self.status_label.setText(
            f"Exported {result.n_synthetic} synthetic{real} slices as {result.format} to "
            f"{result.path} (with manifest.csv, manifest.json and README.md)."
        )
        # A fresh default name, so that exporting again never collides with this one.
        if not self.overwrite.isChecked():
            self.destination.setText(str(Path(result.path).parent / time.strftime("export-%Y%m%d-%H%M%S")))
        self.export_finished.emit(str(result.path))

    def _on_cancelled(self) -> None:
        self.outcome = "cancelled"
        self.progress.setValue(0)
        self.status_label.setText("Export cancelled; nothing was written.")

    def _fail(self, message: str, advice: str) -> None:
        self.outcome = "failed"
        self.status_label.setText(f"Export failed: {message}")
        self.error_box = show_error(self, f"The export could not be written.\n\n{message}", advice,
                                    title="Export")

    def _on_finished(self) -> None:
        self.state.clear_task(TASK_KEY)
        self._update_buttons()
