"""Report figures drawn with matplotlib (Agg, no GUI, imported lazily); each returns PNG bytes.

Figures are made with the object API (``matplotlib.figure.Figure``), so nothing touches
pyplot's global state and report writing is safe from a worker thread.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

_DPI = 100
_COLORS = ("#1f5f8b", "#c2571a", "#3c8d2f", "#8e44ad")


def _figure(width: float = 6.4, height: float = 3.2) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    return fig, fig.add_subplot(1, 1, 1)


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=_DPI, metadata={"Software": None})
    return buf.getvalue()


def smooth(values: Sequence[float], *, weight: float | None = None) -> np.ndarray:
    """Exponential moving average with bias correction (as TensorBoard's smoothing)."""
    v = np.asarray(values, dtype=np.float64)
    if v.size == 0:
        return v
    w = weight if weight is not None else min(0.95, max(0.0, 1.0 - 10.0 / max(v.size, 1)))
    out = np.empty_like(v)
    acc, norm = 0.0, 0.0
    for i, x in enumerate(v):
        acc = w * acc + (1 - w) * x
        norm = w * norm + (1 - w)
        out[i] = acc / norm
    return out


def curves(
    x: Sequence[float],
    series: dict[str, Sequence[float]],
    *,
    xlabel: str = "step",
    ylabel: str = "",
    smoothed: bool = True,
    ylim: tuple[float, float] | None = None,
) -> bytes:
    """Raw curves (light) with their smoothed versions (solid), one colour per series."""
    fig, ax = _figure()
    for k, (name, values) in enumerate(series.items()):
        color = _COLORS[k % len(_COLORS)]
        if smoothed and len(values) > 2:
            ax.plot(x, values, color=color, alpha=0.3, linewidth=0.8)
            ax.plot(x, smooth(values), color=color, linewidth=1.6, label=f"{name} (smoothed)")
        else:
            ax.plot(x, values, color=color, linewidth=1.4, marker="." if len(x) < 30 else None,
                    label=name)  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


def quality_curve(steps: Sequence[float], swd: Sequence[float], kept_step: int | None) -> bytes:
    """SWD per probe, the kept generator's step marked."""
    fig, ax = _figure()
    ax.plot(steps, swd, color=_COLORS[0], marker="o", markersize=3, linewidth=1.4, label="SWD")
    if kept_step is not None and kept_step in list(steps):
        i = list(steps).index(kept_step)
        ax.plot([steps[i]], [swd[i]], marker="*", markersize=16, color=_COLORS[1],
                linestyle="none", label=f"kept: step {kept_step}")  # fmt: skip
        ax.axvline(steps[i], color=_COLORS[1], alpha=0.4, linestyle="--")
    ax.set_xlabel("step")
    ax.set_ylabel("SWD ×1e3 (lower is better)")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


def histogram(
    groups: dict[str, Sequence[float]],
    *,
    xlabel: str,
    threshold: float | None = None,
    threshold_label: str = "threshold",
    bins: int = 30,
) -> bytes:
    """Overlaid histograms (e.g. kept vs rejected), an optional threshold line."""
    fig, ax = _figure(5.6, 3.0)
    finite = [
        np.asarray(v, dtype=float)[np.isfinite(np.asarray(v, dtype=float))] for v in groups.values()
    ]
    allv = np.concatenate([v for v in finite if v.size] or [np.zeros(1)])
    lo, hi = float(allv.min()), float(allv.max())
    if threshold is not None:
        lo, hi = min(lo, threshold), max(hi, threshold)
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    for k, (name, values) in enumerate(zip(groups, finite, strict=True)):
        if values.size:
            ax.hist(values, bins=edges, alpha=0.6, color=_COLORS[k % len(_COLORS)],
                    label=f"{name} ({values.size})")  # fmt: skip
    if threshold is not None:
        ax.axvline(threshold, color="#b00020", linestyle="--", linewidth=1.5,
                   label=f"{threshold_label} ({threshold:.3g})")  # fmt: skip
    ax.set_xlabel(xlabel)
    ax.set_ylabel("samples")
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _png(fig)


def bars(labels: Sequence[str], values: Sequence[float], *, xlabel: str) -> bytes:
    fig, ax = _figure(5.6, 0.5 + 0.35 * max(1, len(labels)))
    y = np.arange(len(labels))
    ax.barh(y, values, color=_COLORS[0])
    ax.set_yticks(y, labels)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    for yi, v in zip(y, values, strict=True):
        ax.text(v, yi, f" {v:g}", va="center", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def image_sheet(
    images: Sequence[np.ndarray],
    titles: Sequence[str],
    *,
    cols: int = 6,
    tile_in: float = 1.25,
    suptitle: str = "",
) -> bytes:
    """A contact sheet: uint8 (or [0, 1]) grayscale images with a small title each."""
    n = max(1, len(images))
    cols = max(1, min(cols, n))
    rows = (n + cols - 1) // cols
    from matplotlib.figure import Figure

    fig = Figure(figsize=(cols * tile_in, rows * (tile_in + 0.25) + (0.3 if suptitle else 0)),
                 dpi=_DPI, layout="constrained")  # fmt: skip
    axes = fig.subplots(rows, cols, squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < len(images):
            img = np.asarray(images[k])
            vmax = 255 if img.dtype == np.uint8 else 1.0
            ax.imshow(img, cmap="gray", vmin=0, vmax=vmax, interpolation="nearest")
            ax.set_title(titles[k], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    return _png(fig)


def intervals(
    labels: Sequence[str],
    means: Sequence[float],
    lows: Sequence[float],
    highs: Sequence[float],
    *,
    xlabel: str,
    colors: Sequence[str] | None = None,
) -> bytes:
    """A forest plot: one row per label, the mean as a dot and its interval as a bar, with the
    zero line (no difference) marked."""
    fig, ax = _figure(6.4, 0.8 + 0.42 * max(1, len(labels)))
    y = np.arange(len(labels))
    for k, (m, lo, hi) in enumerate(zip(means, lows, highs, strict=True)):
        color = colors[k] if colors else _COLORS[0]
        if np.isfinite(lo) and np.isfinite(hi):
            ax.plot([lo, hi], [k, k], color=color, linewidth=3, solid_capstyle="butt")
        ax.plot([m], [k], marker="o", color=color, markersize=7)
        ax.annotate(f"{m:+.3f} [{lo:+.3f}, {hi:+.3f}]", (m, k), xytext=(0, 7),
                    textcoords="offset points", ha="center", fontsize=7)  # fmt: skip
    ax.axvline(0.0, color="#5b6670", linestyle="--", linewidth=1)
    ax.set_yticks(y, labels)
    ax.set_ylim(len(labels) - 0.4, -0.7)
    ax.set_xlabel(xlabel)
    ax.grid(alpha=0.3, axis="x")
    return _png(fig)


def learning_curve(
    fractions: Sequence[float],
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    ylabel: str,
) -> bytes:
    """Mean ± sd (error bars) against the share of real patients used, one line per arm."""
    fig, ax = _figure(6.4, 3.4)
    for k, (name, (means, sds)) in enumerate(series.items()):
        ax.errorbar(fractions, means, yerr=sds, marker="o", capsize=3, linewidth=1.4,
                    color=_COLORS[k % len(_COLORS)] if k < len(_COLORS) else None,
                    label=name)  # fmt: skip
    ax.set_xlabel("share of each fold's training patients used")
    ax.set_ylabel(ylabel)
    ax.set_xticks(list(fractions))
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    return _png(fig)
