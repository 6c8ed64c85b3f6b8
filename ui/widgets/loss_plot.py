"""Live training curves: G/D losses and D(x)/D(G(z)), raw and EMA-smoothed, and the sample
quality probes (SWD, lower is better, the best one marked), drawn with pyqtgraph.

Points are appended to growable numpy buffers (amortised O(1)); redraws are coalesced by a
timer so that even a burst of events costs one ``setData`` per curve per frame.
"""

from __future__ import annotations

import logging

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import (
    QCheckBox,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

log = logging.getLogger(__name__)

SERIES = ("g_loss", "d_loss", "d_real", "d_fake")
_COLORS = {"g_loss": "#1f77b4", "d_loss": "#d62728", "d_real": "#2ca02c", "d_fake": "#ff7f0e"}
_LABELS = {"g_loss": "G loss", "d_loss": "D loss", "d_real": "D(x)", "d_fake": "D(G(z))"}


def ema(values: np.ndarray, smoothing: float) -> np.ndarray:
    """Debiased exponential moving average (as TensorBoard draws it); smoothing in [0, 1)."""
    out = np.empty(len(values), dtype=np.float64)
    acc = 0.0
    weight = 0.0
    for i, v in enumerate(values):
        if np.isfinite(v):  # a NaN/inf step must not poison the whole smoothed curve
            acc = smoothing * acc + (1.0 - smoothing) * float(v)
        weight = smoothing * weight + (1.0 - smoothing)
        out[i] = acc / weight if weight > 0 else float(v)
    return out


class _Buffer:
    """Growable column store for step + metric values, with an incremental EMA."""

    def __init__(self, capacity: int = 1024) -> None:
        self.size = 0
        self.steps = np.zeros(capacity, dtype=np.float64)
        self.raw = {k: np.zeros(capacity, dtype=np.float64) for k in SERIES}
        self.smooth = {k: np.zeros(capacity, dtype=np.float64) for k in SERIES}
        self._acc = dict.fromkeys(SERIES, 0.0)
        self._weight = 0.0

    def _grow(self) -> None:
        cap = len(self.steps) * 2
        self.steps = np.resize(self.steps, cap)
        for d in (self.raw, self.smooth):
            for k in d:
                d[k] = np.resize(d[k], cap)

    def append(self, step: float, values: dict[str, float], smoothing: float) -> None:
        if self.size == len(self.steps):
            self._grow()
        i = self.size
        self.steps[i] = step
        self._weight = smoothing * self._weight + (1.0 - smoothing)
        for k in SERIES:
            v = float(values[k])
            self.raw[k][i] = v
            if np.isfinite(v):
                self._acc[k] = smoothing * self._acc[k] + (1.0 - smoothing) * v
            self.smooth[k][i] = self._acc[k] / self._weight if self._weight > 0 else v
        self.size += 1

    def recompute_smooth(self, smoothing: float) -> None:
        for k in SERIES:
            self.smooth[k][: self.size] = ema(self.raw[k][: self.size], smoothing)
        # Keep the running state consistent for further appends.
        self._weight = 1.0 - smoothing**self.size if self.size else 0.0
        for k in SERIES:
            self._acc[k] = self.smooth[k][self.size - 1] * self._weight if self.size else 0.0


def _cache_static_parts(item: pg.PlotItem) -> None:
    """Render axes, title and legend to cached pixmaps.

    pyqtgraph replays each axis' text drawing on every repaint (~10 ms per axis); with a
    device-coordinate cache Qt repaints them only when they change, so appending points
    redraws little more than the curves.
    """
    mode = QGraphicsItem.CacheMode.DeviceCoordinateCache
    for name in ("left", "bottom", "right", "top"):
        item.getAxis(name).setCacheMode(mode)
    item.titleLabel.setCacheMode(mode)
    if item.legend is not None:
        item.legend.setCacheMode(mode)


class LossPlot(QWidget):
    """Stacked plots: losses (G, D), discriminator outputs (D(x), D(G(z))), sample quality."""

    def __init__(self, parent: QWidget | None = None, *, refresh_ms: int = 100) -> None:
        super().__init__(parent)
        self._smoothing = 0.9
        self._buf = _Buffer()
        self._dirty = False

        self.loss_widget = pg.PlotWidget()
        self.prob_widget = pg.PlotWidget()
        self.quality_widget = pg.PlotWidget()
        for w, title in (
            (self.loss_widget, "Losses"),
            (self.prob_widget, "Discriminator"),
            (self.quality_widget, "Sample quality: SWD to training slices (lower is better)"),
        ):
            w.setBackground("w")
            w.showGrid(x=True, y=True, alpha=0.25)
            w.setTitle(title, color="#333", size="9pt")
            w.addLegend(offset=(-10, 10))
            item = w.getPlotItem()
            item.setClipToView(True)
            item.setDownsampling(auto=True, mode="peak")
            item.setLabel("bottom", "step")
            item.getAxis("left").setWidth(52)  # fixed: tick text must not re-layout the plot
            _cache_static_parts(item)
        self.prob_widget.setYRange(0.0, 1.0)
        self.prob_widget.setXLink(self.loss_widget)
        self.quality_widget.setXLink(self.loss_widget)
        self._quality = np.zeros((0, 2), dtype=np.float64)  # (step, swd) of regular probes
        self._quality_curve = self.quality_widget.plot(
            pen=pg.mkPen("#6a3d9a", width=2), symbol="o", symbolSize=5, name="SWD"
        )
        self._best_marker = self.quality_widget.plot(
            pen=None, symbol="star", symbolSize=14, symbolBrush="#e6ab02", name="best (kept)"
        )
        # Ranges move in steps (not on every point), so the axes rarely need re-rendering.
        self.loss_widget.disableAutoRange()
        self.prob_widget.disableAutoRange()
        self.quality_widget.disableAutoRange()
        self._x_total: int | None = None
        self._x_max = 0.0
        self._y_range: tuple[float, float] | None = None
        self.loss_widget.setXRange(0, 100, padding=0)

        self._raw_curves: dict[str, pg.PlotDataItem] = {}
        self._smooth_curves: dict[str, pg.PlotDataItem] = {}
        for k in SERIES:
            target = self.loss_widget if k in ("g_loss", "d_loss") else self.prob_widget
            color = pg.mkColor(_COLORS[k])
            faint = pg.mkColor(color)
            faint.setAlpha(70)
            self._raw_curves[k] = target.plot(pen=pg.mkPen(faint, width=1))
            self._smooth_curves[k] = target.plot(pen=pg.mkPen(color, width=2), name=_LABELS[k])

        self.raw_box = QCheckBox("Raw")
        self.raw_box.setChecked(True)
        self.smooth_box = QCheckBox("Smoothed")
        self.smooth_box.setChecked(True)
        self.smooth_slider = QSlider(Qt.Orientation.Horizontal)
        self.smooth_slider.setRange(0, 99)
        self.smooth_slider.setValue(int(self._smoothing * 100))
        self.smooth_slider.setToolTip("EMA smoothing factor")
        self.smooth_slider.setMaximumWidth(140)
        self.raw_box.toggled.connect(self._update_visibility)
        self.smooth_box.toggled.connect(self._update_visibility)
        self.smooth_slider.valueChanged.connect(self._on_smoothing_changed)

        controls = QHBoxLayout()
        controls.addWidget(self.raw_box)
        controls.addWidget(self.smooth_box)
        controls.addWidget(QLabel("Smoothing"))
        controls.addWidget(self.smooth_slider)
        controls.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addWidget(self.loss_widget, 3)
        layout.addWidget(self.prob_widget, 2)
        layout.addWidget(self.quality_widget, 2)

        self._timer = QTimer(self)
        self._timer.setInterval(refresh_ms)
        self._timer.timeout.connect(self.flush)
        self._timer.start()

    # ----------------------------------------------------------------- data
    @property
    def n_points(self) -> int:
        return self._buf.size

    def series(self, name: str, *, smoothed: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """(steps, values) for one series, copies; ``name`` in :data:`SERIES`."""
        n = self._buf.size
        src = self._buf.smooth if smoothed else self._buf.raw
        return self._buf.steps[:n].copy(), src[name][:n].copy()

    def append(self, step: int, g_loss: float, d_loss: float, d_real: float, d_fake: float) -> None:
        """Add one point to every curve; the redraw happens on the next refresh tick."""
        values = {"g_loss": g_loss, "d_loss": d_loss, "d_real": d_real, "d_fake": d_fake}
        self._buf.append(float(step), values, self._smoothing)
        self._dirty = True

    def append_metrics(self, metrics: object) -> None:
        """Add a :class:`medgan.train.events.StepMetrics` (duck-typed)."""
        self.append(
            metrics.step,  # type: ignore[attr-defined]
            metrics.g_loss,  # type: ignore[attr-defined]
            metrics.d_loss,  # type: ignore[attr-defined]
            metrics.d_real,  # type: ignore[attr-defined]
            metrics.d_fake,  # type: ignore[attr-defined]
        )

    def append_quality(self, step: int, swd: float, best_step: int, best_swd: float) -> None:
        """Add a quality probe and move the best-marker (few points: drawn at once)."""
        if np.isfinite(swd):
            self._quality = np.vstack([self._quality, [float(step), float(swd)]])
            self._quality_curve.setData(self._quality[:, 0], self._quality[:, 1])
        if np.isfinite(best_swd):
            self._best_marker.setData([float(best_step)], [float(best_swd)])
        if len(self._quality):
            hi = float(self._quality[:, 1].max())
            self.quality_widget.setYRange(0.0, hi * 1.1 + 1.0, padding=0)

    @property
    def quality_points(self) -> np.ndarray:
        """(step, SWD) rows of the quality probes drawn so far (a copy)."""
        return self._quality.copy()

    def clear(self) -> None:
        self._quality = np.zeros((0, 2), dtype=np.float64)
        self._quality_curve.setData([], [])
        self._best_marker.setData([], [])
        self._buf = _Buffer()
        self._x_max = 0.0
        self._y_range = None
        self._dirty = True
        self.flush()

    def set_total_steps(self, total: int | None) -> None:
        """Fix the x axis to the run's length when it is known (else it grows in jumps)."""
        self._x_total = int(total) if total else None
        self._x_max = 0.0
        self._update_ranges()

    def _update_ranges(self) -> None:
        n = self._buf.size
        last = float(self._buf.steps[n - 1]) if n else 0.0
        x_max = float(self._x_total) if self._x_total else max(100.0, last * 1.5)
        if self._x_total is None and self._x_max and last <= self._x_max:
            x_max = self._x_max
        if x_max != self._x_max:
            self._x_max = x_max
            self.loss_widget.setXRange(0.0, x_max, padding=0)
        if not n:
            return
        vals = np.concatenate([self._buf.raw["g_loss"][:n], self._buf.raw["d_loss"][:n]])
        vals = vals[np.isfinite(vals)]
        if not vals.size:
            return
        lo, hi = float(vals.min()), float(vals.max())
        span = max(hi - lo, 1e-3)
        cur = self._y_range
        if cur is None or lo < cur[0] or hi > cur[1] or (cur[1] - cur[0]) > 4 * span:
            self._y_range = (lo - 0.25 * span, hi + 0.25 * span)
            self.loss_widget.setYRange(*self._y_range, padding=0)

    def flush(self) -> None:
        """Push buffered points to the curves (no-op when nothing changed)."""
        if not self._dirty:
            return
        self._dirty = False
        n = self._buf.size
        x = self._buf.steps[:n]
        self._update_ranges()
        for k in SERIES:
            self._raw_curves[k].setData(x, self._buf.raw[k][:n])
            self._smooth_curves[k].setData(x, self._buf.smooth[k][:n])

    def curve_point_count(self, name: str, *, smoothed: bool = True) -> int:
        """How many points a drawn curve currently holds (for tests and screenshots)."""
        curve = (self._smooth_curves if smoothed else self._raw_curves)[name]
        xs = curve.xData
        return 0 if xs is None else len(xs)

    # ----------------------------------------------------------- controls
    def _update_visibility(self) -> None:
        for k in SERIES:
            self._raw_curves[k].setVisible(self.raw_box.isChecked())
            self._smooth_curves[k].setVisible(self.smooth_box.isChecked())

    def _on_smoothing_changed(self, value: int) -> None:
        self._smoothing = value / 100.0
        self._buf.recompute_smooth(self._smoothing)
        self._dirty = True
