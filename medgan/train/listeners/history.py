"""A compact training history, recorded from trainer events, for the model file and reports.

Bounded whatever the run's length: at most ``max_points`` metrics rows (older rows are thinned
to every other one and the sampling stride doubles) and ``max_grids`` sample grids spread over
the run (small uint8 PNGs, base64). Nothing in it comes from DICOM headers: only numbers the
trainer computes and generator samples.

Example::

    history = HistoryRecorder()
    trainer = Trainer(config, images, on_event=fan_out(bar, history))
    trainer.run()
    metadata.history = history.history.to_dict()
"""

from __future__ import annotations

import base64
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medgan.core.fileio import atomic_write_json
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

HISTORY_VERSION = 1
METRIC_COLUMNS = (
    "step", "elapsed_s", "g_loss", "d_loss", "d_real", "d_fake", "aug_p", "img_per_s",
)  # fmt: skip
SIDECAR_SUFFIX = ".history.json"


@dataclass
class TrainingHistory:
    """What a run looked like: metrics columns, quality probes, sample grids, timing."""

    version: int = HISTORY_VERSION
    device: str = ""
    recipe: str = ""
    resolution: int = 0
    n_images: int = 0
    start_step: int = 0
    total_steps: int | None = None
    time_limit_s: float | None = None
    metrics: dict[str, list[float]] = field(default_factory=lambda: {c: [] for c in METRIC_COLUMNS})
    stride: int = 1  # metrics events per recorded row (doubles when thinned)
    quality: list[list[float]] = field(default_factory=list)  # [step, swd]
    best_step: int | None = None
    grids: list[dict[str, Any]] = field(default_factory=list)  # {"step", "png" (base64)}
    status: str = ""  # finished | cancelled | failed
    final_step: int = 0
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> TrainingHistory | None:
        """Parse a stored history; None when absent or not understood (a report says so)."""
        if not isinstance(data, dict) or not data:
            return None
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            hist = cls(**known)
        except TypeError:
            return None
        if not isinstance(hist.metrics, dict):
            hist.metrics = {c: [] for c in METRIC_COLUMNS}
        hist.metrics = {
            c: [float(v) for v in hist.metrics.get(c, []) if isinstance(v, (int, float))]
            for c in METRIC_COLUMNS
        }
        hist.quality = [[float(a), float(b)] for a, b in (q for q in hist.quality if len(q) == 2)]
        hist.grids = [g for g in hist.grids if isinstance(g, dict) and "png" in g and "step" in g]
        return hist

    @property
    def n_rows(self) -> int:
        return len(self.metrics.get("step", []))

    def save_json(self, path: str | os.PathLike[str]) -> Path:
        """Write as JSON atomically (the sidecar form: ``MODEL.history.json``)."""
        atomic_write_json(path, self.to_dict())
        return Path(path)

    @classmethod
    def load_json(cls, path: str | os.PathLike[str]) -> TrainingHistory | None:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return cls.from_dict(data)


def sidecar_path(model_path: str | os.PathLike[str]) -> Path:
    """``head.safetensors`` → ``head.history.json`` (next to the model)."""
    p = Path(model_path)
    return p.with_name(p.stem + SIDECAR_SUFFIX)


def grid_png_base64(images: np.ndarray, *, max_images: int = 16, max_tile: int = 64) -> str:
    """A sample grid as a small grayscale PNG, base64-encoded (for JSON)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(tile_uint8(images, max_images=max_images, max_tile=max_tile)).save(
        buf, format="PNG", optimize=True
    )
    return base64.b64encode(buf.getvalue()).decode("ascii")


class HistoryRecorder:
    """Trainer listener that fills a :class:`TrainingHistory` (``recorder.history``).

    Args:
        max_points: most metrics rows kept (thinned by two beyond).
        max_grids: most sample grids kept, spread over the run (first and latest kept).
        sidecar: if given, the history is also written there (atomically) when the run ends.
    """

    def __init__(
        self,
        *,
        max_points: int = 1000,
        max_grids: int = 6,
        sidecar: str | os.PathLike[str] | None = None,
    ) -> None:
        self.history = TrainingHistory()
        self.max_points = max(10, int(max_points))
        self.max_grids = max(2, int(max_grids))
        self.sidecar = Path(sidecar) if sidecar is not None else None
        self._seen = 0

    def __call__(self, event: TrainEvent) -> None:
        h = self.history
        if isinstance(event, TrainStarted):
            h.device, h.recipe, h.resolution = event.device, event.recipe, event.resolution
            h.n_images, h.start_step = event.n_images, event.start_step
            h.total_steps, h.time_limit_s = event.total_steps, event.time_limit_s
        elif isinstance(event, StepMetrics):
            self._metrics(event)
        elif isinstance(event, QualityMeasured):
            if not event.final or not h.quality or h.quality[-1][0] != event.step:
                h.quality.append([int(event.step), round(float(event.swd), 3)])
            h.best_step = int(event.best_step)
        elif isinstance(event, SampleGrid):
            self._grid(event)
        elif isinstance(event, (TrainFinished, TrainCancelled, TrainFailed)):
            h.status = {TrainFinished: "finished", TrainCancelled: "cancelled"}.get(
                type(event), "failed"
            )
            h.final_step = int(event.step)
            h.elapsed_s = round(float(getattr(event, "elapsed_s", h.elapsed_s) or 0.0), 3)
            if self.sidecar is not None:
                h.save_json(self.sidecar)

    def _metrics(self, event: StepMetrics) -> None:
        self._seen += 1
        h = self.history
        if (self._seen - 1) % h.stride and event.step != event.total_steps:
            return
        values = {
            "step": float(event.step), "elapsed_s": event.elapsed_s, "g_loss": event.g_loss,
            "d_loss": event.d_loss, "d_real": event.d_real, "d_fake": event.d_fake,
            "aug_p": event.aug_p, "img_per_s": event.img_per_s,
        }  # fmt: skip
        for col in METRIC_COLUMNS:
            h.metrics[col].append(round(float(values[col]), 5))
        if h.n_rows > self.max_points:
            h.metrics = {c: v[::2] for c, v in h.metrics.items()}
            h.stride *= 2

    def _grid(self, event: SampleGrid) -> None:
        grids = self.history.grids
        entry = {"step": int(event.step), "png": grid_png_base64(event.images)}
        if grids and grids[-1]["step"] == entry["step"]:
            grids[-1] = entry
            return
        grids.append(entry)
        if len(grids) > self.max_grids:
            # Drop the inner grid whose neighbours are closest: the rest stays evenly spread.
            gaps = [grids[i + 1]["step"] - grids[i - 1]["step"] for i in range(1, len(grids) - 1)]
            del grids[1 + int(np.argmin(gaps))]
