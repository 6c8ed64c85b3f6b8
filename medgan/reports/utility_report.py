"""The utility report: does adding synthetic slices help a downstream model on new patients?

Read from a result JSON written by ``medgan utility --out`` (``format: "medgan-utility"``):
the verdict in words with its 95 % bootstrap interval, the protocol (task, folds, seeds,
ratios, arms, budgets, the synthetic source), mean ± sd per arm, the paired intervals, the
controls and whether they behaved, and the learning curve when several fractions ran. The
JSON holds counts, settings and scores only (patients as fold-local numbers), so the report
does too.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from medgan.reports import figures
from medgan.reports.common import ReportError
from medgan.reports.html import Figure, Section, esc, notice, render_page

FORMAT = "medgan-utility"  # as medgan.utility.records.FORMAT (a layer above the reports)
BASELINE = "real+classic"
_CONTROLS = (("shuffled", "Shuffled labels"), ("extra_real", "Extra real patients"))


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The result document, or a :class:`ReportError` saying why it is not one."""
    p = Path(path)
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(
            f"Cannot read {p}: {exc}.",
            advice="Give the JSON written by `medgan utility --out` or the Utility page's Save.",
        ) from exc
    if not is_result(doc):
        raise ReportError(
            f'{p} is not a utility result (no "format": "{FORMAT}").',
            advice="Give the JSON written by `medgan utility --out`, a model file or an export "
            "folder.",
        )
    return doc


def is_result(doc: Any) -> bool:
    return isinstance(doc, dict) and doc.get("format") == FORMAT


def _num(value: Any) -> float:
    return float(value) if isinstance(value, (int, float)) else math.nan


def _fmt(value: Any, digits: int = 3) -> str:
    v = _num(value)
    return "—" if math.isnan(v) else f"{v:.{digits}f}"


def _signed(value: Any) -> str:
    v = _num(value)
    return "—" if math.isnan(v) else f"{v:+.3f}"


def _arm_order(doc: dict[str, Any], arms: Any) -> list[str]:
    cfg = doc.get("config") or {}
    ratios = [float(r) for r in cfg.get("ratios") or []]
    order = ["real", BASELINE] + [f"synthetic@{r:g}" for r in ratios] + ["shuffled", "extra_real"]

    def rank(arm: str) -> tuple[int, str]:
        base = arm if arm in order else arm.split("@")[0]
        return (order.index(arm) if arm in order else order.index(base) if base in order
                else len(order), arm)  # fmt: skip

    return sorted(arms, key=rank)


def _arm_color(arm: str) -> str:
    if arm in ("real", BASELINE):
        return "#8c8c8c"
    if arm.startswith("shuffled"):
        return "#c44e52"
    return "#55a868" if arm == "extra_real" else "#4c72b0"


def _fractions(doc: dict[str, Any]) -> list[str]:
    return sorted((doc.get("summary") or {}), key=float)


def _main_fraction(doc: dict[str, Any]) -> str:
    fr = (doc.get("config") or {}).get("fractions") or []
    return f"{float(fr[0]):g}" if fr else (_fractions(doc) or ["1"])[0]


def _metrics(doc: dict[str, Any]) -> list[str]:
    primary = str(doc.get("primary_metric") or "")
    found = sorted({m for arms in (doc.get("summary") or {}).values() for a in arms.values()
                    for m in a})  # fmt: skip
    return ([primary] if primary in found else []) + [m for m in found if m != primary]


def verdict_section(doc: dict[str, Any]) -> Section:
    s = Section("verdict", "Verdict")
    primary = str(doc.get("primary_metric") or "")
    s.add(f"<p><b>{esc(doc.get('verdict', 'no verdict'))}</b></p>")
    s.text(str(doc.get("verdict_text") or "No verdict was recorded."))
    s.note(f"The interval is a 95 % percentile bootstrap of the mean paired difference "
           f"({primary.upper() or 'primary metric'}) against {BASELINE} over the same folds and "
           "seeds: above zero the synthetic slices help, below zero they hurt, across zero there "
           "is no measurable effect.")  # fmt: skip
    if not doc.get("trustworthy", True):
        s.add(notice("UNTRUSTWORTHY: the controls misbehaved (see Controls), so this verdict "
                     "cannot be trusted.", warn=True))  # fmt: skip
    return s


def protocol_section(doc: dict[str, Any]) -> Section:
    cfg, data = doc.get("config") or {}, doc.get("data") or {}
    s = Section("protocol", "Task and protocol")
    groups = cfg.get("groups") or {}
    s.kv_columns([
        ("Task", doc.get("task", cfg.get("task"))),
        ("Classes" if doc.get("task") == "classify" else "Segments",
         ", ".join(map(str, doc.get("classes") or [])) or None),
        ("This class vs the rest", cfg.get("vs_rest")),
        ("Merged classes", "; ".join(f"{k} = {' + '.join(v)}" for k, v in groups.items()) or None),
        ("Folds (by patient)", cfg.get("folds")),
        ("Seeds per fold", cfg.get("seeds")),
        ("Ratios (synthetic per real slice)", ", ".join(f"{float(r):g}"
                                                       for r in cfg.get("ratios") or [])),
        ("Real patients used (fractions)", ", ".join(f"{float(f):g}"
                                                    for f in cfg.get("fractions") or [])),
        ("Arms", ", ".join(_arm_order(doc, _all_arms(doc)))),
        ("Controls", "yes" if cfg.get("controls") else "no"),
        ("Steps per run (every arm)", cfg.get("steps")),
        ("Batch size", cfg.get("batch_size")),
        ("Learning rate", cfg.get("lr")),
        ("Bootstrap resamples", cfg.get("bootstrap")),
        ("Split seed", cfg.get("split_seed")),
        ("Primary metric", doc.get("primary_metric")),
        ("Device", doc.get("device")),
        ("Time (s)", doc.get("elapsed_s")),
        ("Status", doc.get("status")),
        ("Runs", len(doc.get("runs") or [])),
    ])  # fmt: skip
    s.add("<h3>Real data</h3>")
    per_class = data.get("slices_per_class") or {}
    s.kv([
        ("Slices", data.get("n_slices")),
        ("Patients", data.get("n_patients")),
        ("Resolution", data.get("resolution")),
        ("Slices per class", ", ".join(f"{k}: {v}" for k, v in per_class.items()) or None),
        ("Segments", ", ".join(map(str, data.get("segments") or [])) or None),
    ])  # fmt: skip
    folds = data.get("folds") or []
    if folds:
        s.table(("fold", "training patients", "test patients"),
                [(f.get("fold"), f.get("n_train_patients"), f.get("n_test_patients"))
                 for f in folds])  # fmt: skip
    s.add("<h3>Synthetic source</h3>")
    s.kv(_flat(doc.get("synthetic") or {}))
    return s


def _flat(d: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for k, v in d.items():
        name = f"{prefix}{k}".replace("_", " ")
        if isinstance(v, dict):
            out += _flat(v, f"{prefix}{k} / ")
        elif isinstance(v, (list, tuple)):
            out.append((name, "; ".join(_brief(x) for x in v) or None))
        else:
            out.append((name, v))
    return out


def _brief(value: Any) -> str:
    """A list item in words: a dict as ``key value, ...`` (e.g. one per-fold GAN)."""
    if isinstance(value, dict):
        return ", ".join(f"{str(k).replace('_', ' ')} {v}" for k, v in value.items())
    return str(value)


def _plotted(doc: dict[str, Any], metrics: list[str]) -> list[str]:
    """The metrics drawn as figures: the primary one and one threshold-free companion."""
    extra = [m for m in ("balanced_accuracy", "hd95") if m in metrics and m != metrics[0]]
    return metrics[:1] + (extra or metrics[1:2])[:1]


def _all_arms(doc: dict[str, Any]) -> set[str]:
    return {a for arms in (doc.get("summary") or {}).values() for a in arms}


def table_section(doc: dict[str, Any]) -> Section:
    s = Section("table", "Mean ± sd per arm")
    summary, metrics = doc.get("summary") or {}, _metrics(doc)
    if not summary:
        return s.note("No run finished: there is nothing to summarise.")
    s.note("Over every fold and seed, on each fold's test patients (patients the downstream "
           "model never saw). n = runs.")  # fmt: skip
    for fraction in _fractions(doc):
        arms = summary[fraction]
        if len(summary) > 1:
            s.add(f"<h3>{esc(fraction)} of the training patients</h3>")
        rows = []
        for arm in _arm_order(doc, arms):
            cells: list[Any] = [arm]
            for m in metrics:
                st = arms[arm].get(m)
                cells.append(f"{_fmt(st['mean'])} ± {_fmt(st['sd'])}" if st else None)
            cells.append(max((int(st.get("n", 0)) for st in arms[arm].values()), default=0))
            rows.append(cells)
        s.table(["arm", *metrics, "n"], rows)
    return s


def _comparisons(doc: dict[str, Any], fraction: str, metric: str) -> list[dict[str, Any]]:
    rows = [c for c in doc.get("comparisons") or []
            if c.get("metric") == metric and f"{_num(c.get('fraction')):g}" == fraction]  # fmt: skip
    order = _arm_order(doc, [c["arm"] for c in rows])
    return sorted(rows, key=lambda c: order.index(c["arm"]))


def intervals_section(doc: dict[str, Any]) -> Section:
    s = Section("intervals", f"Paired differences against {BASELINE}")
    fraction, metrics = _main_fraction(doc), _metrics(doc)
    s.note("Each arm minus real + classic augmentation, per (fold, seed), with its 95 % "
           "bootstrap interval; for metrics where lower is better the sign is flipped, so "
           "above zero is always an improvement.")  # fmt: skip
    figs, rows = [], []
    for m in metrics:
        comps = _comparisons(doc, fraction, m)
        if not comps:
            continue
        if m in _plotted(doc, metrics):
            png = figures.intervals([c["arm"] for c in comps],
                                    [_num(c.get("mean_diff")) for c in comps],
                                    [_num(c.get("ci_low")) for c in comps],
                                    [_num(c.get("ci_high")) for c in comps],
                                    xlabel=f"{m}: difference to {BASELINE} (> 0 is better)",
                                    colors=[_arm_color(c["arm"]) for c in comps])  # fmt: skip
            figs.append(Figure(png, f"{m} at {fraction} of the training patients: mean paired "
                                    "difference (dot) and 95 % bootstrap interval (bar)."))  # fmt: skip
        rows += [(m, c["arm"], _signed(c.get("mean_diff")), _fmt(c.get("sd_diff")),
                  f"[{_signed(c.get('ci_low'))}, {_signed(c.get('ci_high'))}]",
                  c.get("n_pairs"), c.get("verdict")) for c in comps]  # fmt: skip
    if not rows:
        return s.note("No comparison: the baseline or every other arm is missing.")
    s.figures(figs)
    s.table(("metric", "arm", "mean difference", "sd", "95 % interval", "pairs", "verdict"), rows)
    return s


def controls_section(doc: dict[str, Any]) -> Section:
    s = Section("controls", "Controls")
    ctl, trusted = doc.get("controls") or {}, bool(doc.get("trustworthy", True))
    s.add(notice("The controls behaved: shuffled labels did not help and extra real patients "
                 "did not hurt." if trusted else "The controls MISBEHAVED: do not trust this result.",
                 warn=not trusted))  # fmt: skip
    rows = []
    for key, title in _CONTROLS:
        c = ctl.get(key)
        if c:
            rows.append((title, c.get("arm"), c.get("expected"), c.get("verdict"),
                         f"{_signed(c.get('mean_diff'))} [{_signed(c.get('ci_low'))}, "
                         f"{_signed(c.get('ci_high'))}]",
                         "yes" if c.get("ok") else "NO — misbehaved"))  # fmt: skip
    if rows:
        s.table(("control", "arm", "expected", "found", f"{ctl.get('metric', '')} difference "
                 "[95 %]", "behaved"), rows)  # fmt: skip
    else:
        s.note("No control ran.")
    for text in ctl.get("notes") or []:
        s.text(str(text))
    s.note("Shuffled labels: the same synthetic slices with their labels (or masks) permuted "
           "must not help. Extra real patients: real patients left over by the fraction, used "
           "like synthetic slices, are an upper reference that should help.")  # fmt: skip
    return s


def learning_section(doc: dict[str, Any]) -> Section | None:
    fractions = _fractions(doc)
    if len(fractions) < 2:
        return None
    s = Section("learning", "Learning curve")
    summary, figs = doc.get("summary") or {}, []
    for m in _plotted(doc, _metrics(doc)):
        series: dict[str, tuple[list[float], list[float]]] = {}
        for arm in _arm_order(doc, _all_arms(doc)):
            st = [summary[f].get(arm, {}).get(m) for f in fractions]
            if all(st):
                series[arm] = ([_num(x["mean"]) for x in st if x], [_num(x["sd"]) for x in st if x])
        if series:
            png = figures.learning_curve([float(f) for f in fractions], series, ylabel=m)
            figs.append(Figure(png, f"{m} (mean ± sd) against the share of real training "
                                    "patients used, per arm."))  # fmt: skip
    s.figures(figs)
    primary = str(doc.get("primary_metric") or "")
    rows = [(f, c["arm"], _signed(c.get("mean_diff")),
             f"[{_signed(c.get('ci_low'))}, {_signed(c.get('ci_high'))}]", c.get("verdict"))
            for f in fractions for c in _comparisons(doc, f, primary)]  # fmt: skip
    if rows:
        s.table(("fraction", "arm", f"{primary} difference", "95 % interval", "verdict"), rows)
    return s


def warnings_section(doc: dict[str, Any]) -> Section:
    s = Section("warnings", "Warnings")
    items = [str(w) for w in doc.get("warnings") or []]
    if not items:
        return s.note("None.")
    return s.add("<ul>" + "".join(f"<li>{esc(w)}</li>" for w in items) + "</ul>")


def utility_report_html(result: str | os.PathLike[str] | dict[str, Any]) -> str:
    """Build the utility report page from a result JSON file (or its parsed document)."""
    if isinstance(result, dict):
        if not is_result(result):
            raise ReportError("This is not a utility result document.")
        doc, name = result, "utility result"
    else:
        doc, name = read_result(result), Path(result).name
    notices = [notice("Scores of downstream models on held-out patients; no patient image, "
                      "name, ID, date or UID appears in this report.")]  # fmt: skip
    if not doc.get("trustworthy", True):
        notices.insert(0, notice("UNTRUSTWORTHY RESULT: the controls misbehaved, so the test "
                                 "cannot tell what helps. Do not report this verdict.",
                                 warn=True))  # fmt: skip
    if doc.get("status", "finished") != "finished":
        notices.append(notice(f"The run was {doc.get('status')}: only the runs that finished are "
                              "summarised.", warn=True))  # fmt: skip
    sections = [verdict_section(doc), protocol_section(doc), table_section(doc),
                intervals_section(doc), controls_section(doc)]  # fmt: skip
    learning = learning_section(doc)
    if learning is not None:
        sections.append(learning)
    sections.append(warnings_section(doc))
    return render_page(
        f"Utility report — {name}",
        f"Task {doc.get('task', '?')}: {doc.get('verdict', 'no verdict')} "
        f"({len(doc.get('runs') or [])} downstream runs)",
        sections,
        notices=notices,
        kind="utility",
    )


__all__ = ["read_result", "utility_report_html"]
