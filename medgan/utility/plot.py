"""The result as a figure: mean ± sd per arm (bars with error bars), one panel per metric,
with the paired 95 % interval against real + classic written above each bar (matplotlib,
Agg, imported lazily)."""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

from medgan.utility.records import UtilityResult


def figure_png(
    result: UtilityResult, metrics: Sequence[str] | None = None, *, dpi: int = 100
) -> bytes:
    """PNG bytes of the result figure at the first learning-curve fraction."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    if metrics is None:
        metrics = ("auc", "balanced_accuracy") if result.config.task == "classify" \
            else ("dice", "hd95")  # fmt: skip
    fraction = f"{result.config.fractions[0]:g}"
    arms = result.summary.get(fraction, {})
    fig = Figure(figsize=(4.2 * len(metrics), 3.6), dpi=dpi, layout="constrained")
    for i, metric in enumerate(metrics):
        ax = fig.add_subplot(1, len(metrics), i + 1)
        order = result.config.arms()
        names = sorted((a for a in arms if metric in arms[a]),
                       key=lambda a: order.index(a) if a in order else len(order))  # fmt: skip
        means = [arms[a][metric]["mean"] for a in names]
        sds = [arms[a][metric]["sd"] for a in names]
        colors = ["#8c8c8c" if a in ("real", "real+classic") else
                  "#c44e52" if a.startswith("shuffled") else
                  "#55a868" if a == "extra_real" else "#4c72b0" for a in names]  # fmt: skip
        ax.bar(range(len(names)), means, yerr=sds, color=colors, capsize=4)
        for j, arm in enumerate(names):
            c = next((c for c in result.comparisons if c.arm == arm and c.metric == metric
                      and f"{c.fraction:g}" == fraction), None)  # fmt: skip
            if c is not None:
                ax.annotate(f"{c.mean_diff:+.3f}\n[{c.ci_low:+.3f}, {c.ci_high:+.3f}]",
                            (j, means[j] + sds[j]), ha="center", va="bottom", fontsize=7)  # fmt: skip
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(f"{metric} (mean ± sd)", fontsize=9)
        if metric in ("auc", "balanced_accuracy", "dice"):
            ax.set_ylim(0, 1.15)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def write_figure(result: UtilityResult, path: str | Path) -> Path:
    """Write :func:`figure_png` atomically."""
    from medgan.core.fileio import atomic_path

    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(figure_png(result))
    return path
