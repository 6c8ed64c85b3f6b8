"""Trainer listener that appends metrics to a CSV file, one row per event, flushed each time
(so the file is readable while training runs and survives a crash)."""

from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import IO, Any

from medgan.core.errors import MedganError
from medgan.train.events import (
    QualityMeasured,
    StepMetrics,
    TrainCancelled,
    TrainEvent,
    TrainFailed,
    TrainFinished,
)

COLUMNS = (
    "step", "elapsed_s", "g_loss", "d_loss", "d_real", "d_fake", "aug_p", "img_per_s",
    "r1", "lr_g", "lr_d", "ada_r", "swd", "best_swd",
)  # fmt: skip


class CsvMetricsWriter:
    """Write ``StepMetrics`` rows (and ``swd`` rows from quality probes) to ``path``.

    The file is created (or replaced) at once, so an unwritable path fails before training;
    columns are fixed (:data:`COLUMNS`), empty where an event has no value. Closed when the
    run ends.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None
        self._writer: Any = None
        self._open()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = open(self.path, "w", newline="", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise MedganError(
                f"Cannot write the metrics CSV {self.path}: {exc.strerror or exc}.",
                advice="Choose a writable folder for --metrics-csv.",
            ) from exc
        self._writer = csv.writer(self._handle)
        self._writer.writerow(COLUMNS)

    def __call__(self, event: TrainEvent) -> None:
        if isinstance(event, StepMetrics):
            row: dict[str, Any] = {
                "step": event.step, "elapsed_s": f"{event.elapsed_s:.3f}",
                "g_loss": f"{event.g_loss:.6g}", "d_loss": f"{event.d_loss:.6g}",
                "d_real": f"{event.d_real:.6g}", "d_fake": f"{event.d_fake:.6g}",
                "aug_p": f"{event.aug_p:.6g}", "img_per_s": f"{event.img_per_s:.4g}",
            }  # fmt: skip
            for key in ("r1", "lr_g", "lr_d", "ada_r"):
                if key in event.extra:
                    row[key] = f"{float(event.extra[key]):.6g}"
            self._write(row)
        elif isinstance(event, QualityMeasured):
            self._write(
                {"step": event.step, "swd": f"{event.swd:.6g}", "best_swd": f"{event.best_swd:.6g}"}
            )
        elif isinstance(event, (TrainFinished, TrainCancelled, TrainFailed)):
            self.close()

    def _write(self, row: dict[str, Any]) -> None:
        if self._handle is None:
            self._open()
        self._writer.writerow([row.get(c, "") for c in COLUMNS])
        assert self._handle is not None
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None
