"""Trainer listener that writes a TensorBoard run: scalars, sample grids, hyper-parameters.

Uses ``torch.utils.tensorboard`` and needs the optional ``tensorboard`` package
(``pip install 'medgan-studio[tensorboard]'``). View with ``tensorboard --logdir DIR``.
Only numbers, generator samples and settings are written (no local paths, nothing from DICOM
headers).
"""

from __future__ import annotations

import importlib.util
import logging
import os
from pathlib import Path
from typing import Any

from medgan.core.errors import MedganError
from medgan.train.events import (
    QualityMeasured,
    SampleGrid,
    StepMetrics,
    TrainCancelled,
    TrainEvent,
    TrainFailed,
    TrainFinished,
    TrainStarted,
)
from medgan.train.listeners.grid import tile_uint8

log = logging.getLogger(__name__)

_SCALARS = {
    "g_loss": "loss/generator", "d_loss": "loss/discriminator", "d_real": "D/real (D(x))",
    "d_fake": "D/fake (D(G(z)))", "aug_p": "augment/p", "img_per_s": "speed/img_per_s",
}  # fmt: skip
_PRIVATE_KEYS = ("dir", "path", "file", "extra")  # local paths may name a patient's folder


def hparams_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Scalar settings TensorBoard's HParams tab can show (lists as text, paths left out)."""
    out: dict[str, Any] = {}
    for key, value in sorted(config.items()):
        if any(p in key for p in _PRIVATE_KEYS) or isinstance(value, dict):
            continue
        if value is None:
            out[key] = "none"
        elif isinstance(value, (bool, int, float, str)):
            out[key] = value
        elif isinstance(value, (list, tuple)):
            out[key] = ",".join(str(v) for v in value)
    return out


class TensorBoardWriter:
    """Write trainer events to a TensorBoard log folder.

    Args:
        log_dir: the run's folder (created).
        hparams: training settings (e.g. ``TrainConfig.to_dict()``), written when the run ends
            with the final quality as the metric.
    """

    def __init__(self, log_dir: str | os.PathLike[str], hparams: dict[str, Any] | None = None):
        if importlib.util.find_spec("tensorboard") is None:
            raise MedganError(
                "TensorBoard logging needs the 'tensorboard' package, which is not installed.",
                advice="Install it with `pip install tensorboard` (or the project's "
                "[tensorboard] extra), or leave out --tensorboard.",
            )
        self.log_dir = Path(log_dir)
        try:  # fail before training, not at the first event
            self.log_dir.mkdir(parents=True, exist_ok=True)
            if not os.access(self.log_dir, os.W_OK):
                raise PermissionError(13, "Permission denied")
        except OSError as exc:
            raise MedganError(
                f"Cannot write TensorBoard logs to {self.log_dir}: {exc.strerror or exc}.",
                advice="Choose a writable folder for --tensorboard.",
            ) from exc
        self.hparams = hparams_from_config(hparams or {})
        self._writer: Any = None
        self._last: dict[str, float] = {}

    def _open(self) -> Any:
        if self._writer is None:
            from torch.utils.tensorboard import SummaryWriter

            try:
                self._writer = SummaryWriter(log_dir=str(self.log_dir))
            except OSError as exc:
                raise MedganError(
                    f"Cannot write TensorBoard logs to {self.log_dir}: {exc.strerror or exc}.",
                    advice="Choose a writable folder for --tensorboard.",
                ) from exc
        return self._writer

    def __call__(self, event: TrainEvent) -> None:
        if isinstance(event, TrainStarted):
            w = self._open()
            w.add_text(
                "run",
                f"recipe {event.recipe}, {event.resolution}x{event.resolution}, "
                f"{event.n_images} training slices, device {event.device}",
                event.start_step,
            )
        elif isinstance(event, StepMetrics):
            w = self._open()
            for attr, tag in _SCALARS.items():
                w.add_scalar(tag, float(getattr(event, attr)), event.step)
            for key, value in event.extra.items():
                w.add_scalar(f"extra/{key}", float(value), event.step)
            self._last.update(g_loss=event.g_loss, d_loss=event.d_loss)
        elif isinstance(event, QualityMeasured):
            w = self._open()
            w.add_scalar("quality/swd", float(event.swd), event.step)
            w.add_scalar("quality/best_swd", float(event.best_swd), event.step)
            self._last.update(swd=event.swd, best_swd=event.best_swd)
        elif isinstance(event, SampleGrid):
            grid = tile_uint8(event.images, max_images=16, max_tile=256)
            self._open().add_image("samples", grid, event.step, dataformats="HW")
        elif isinstance(event, (TrainFinished, TrainCancelled, TrainFailed)):
            self._finish()

    def _finish(self) -> None:
        if self._writer is None:
            return
        metrics = {f"hparam/{k}": float(v) for k, v in self._last.items()}
        if self.hparams and metrics:
            self._writer.add_hparams(self.hparams, metrics, run_name=".")
        self.close()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
