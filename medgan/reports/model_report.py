"""The model report: what a model file was trained on (de-identified), with which settings,
how training went and what its samples look like.

Reads only the model file (and its ``.history.json`` sidecar when the file holds no history).
A file without a history still gets a report from its metadata, with a note of what is missing.
"""

from __future__ import annotations

import base64
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from medgan.export.adapters import file_sha256
from medgan.models.modelfile import ModelMetadata, read_metadata
from medgan.reports import figures
from medgan.reports.html import Figure, Section, notice, render_page
from medgan.train.listeners.history import TrainingHistory, sidecar_path

log = logging.getLogger(__name__)

_SUMMARY_FIELDS = (
    ("modality", "Modality"),
    ("n_series", "Series"),
    ("n_patients", "Patients"),
    ("n_train_patients", "Patients in training"),
    ("n_holdout_patients", "Patients held out"),
    ("n_slices_selected", "Slices selected"),
    ("n_train", "Slices trained on"),
    ("n_holdout", "Slices held out"),
    ("n_dropped_empty", "Nearly empty slices dropped"),
    ("resolution", "Model resolution (pixels)"),
    ("window_mode", "Window chosen by"),
)
_PRIVATE_SETTING_KEYS = ("dir", "path", "file")  # local paths may name a patient's folder


def load_history(
    path: str | os.PathLike[str], meta: ModelMetadata
) -> tuple[TrainingHistory | None, str]:
    """The history stored in the file, else in its sidecar; and where it came from."""
    hist = TrainingHistory.from_dict(meta.history)
    if hist is not None:
        return hist, "model file"
    side = sidecar_path(path)
    if side.is_file():
        hist = TrainingHistory.load_json(side)
        if hist is not None:
            return hist, side.name
    return None, ""


def _flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key in sorted(data):
        value = data[key]
        name = f"{prefix}{key}"
        if any(p in key for p in _PRIVATE_SETTING_KEYS):
            continue
        if isinstance(value, dict):
            out += _flatten(value, name + ".")
        elif isinstance(value, (list, tuple)):
            out.append((name, ", ".join(str(v) for v in value)))
        else:
            out.append((name, value))
    return out


def _spacing(value: Any) -> str:
    if not value:
        return ""
    if isinstance(value[0], (list, tuple)):
        uniq = sorted({tuple(round(float(x), 4) for x in v) for v in value})
        return "; ".join(" × ".join(f"{x:g}" for x in v) for v in uniq) + " mm"
    return " × ".join(f"{float(x):g}" for x in value) + " mm"


def data_section(meta: ModelMetadata) -> Section:
    """The de-identified training-data summary: counts, sizes, window; classes when present."""
    s = Section("data", "Training data (de-identified)")
    summary = meta.training_summary or {}
    if not summary:
        return s.note("The model file holds no training-data summary.")
    rows: list[tuple[str, Any]] = [
        (label, summary[k]) for k, label in _SUMMARY_FIELDS if k in summary
    ]
    win = summary.get("window") or {}
    if isinstance(win, dict) and "center" in win:
        rows.append(("Window (center / width)", f"{win['center']:g} / {win['width']:g}"))
    elif meta.window:
        rows.append(("Window (center / width)", f"{meta.window[0]:g} / {meta.window[1]:g}"))
    sizes = summary.get("source_sizes")
    if isinstance(sizes, dict):
        rows.append(
            ("Source image sizes", ", ".join(f"{k}: {v}" for k, v in sorted(sizes.items())))
        )
    for key, label in (
        ("source_pixel_spacing_mm", "Source pixel spacing"),
        ("slice_spacing_mm", "Slice spacing"),
        ("model_pixel_spacing_mm", "Pixel spacing at model size"),
    ):
        if summary.get(key):
            rows.append((label, _spacing(summary[key])))
    s.kv(rows)
    labelled = {
        k: v for k, v in summary.items() if any(w in k for w in ("class", "label", "segment"))
    }
    for key, value in sorted(labelled.items()):
        if isinstance(value, dict):
            s.add(f"<h3>{key.replace('_', ' ').capitalize()}</h3>")
            s.table(("name", "count"), sorted(value.items(), key=lambda kv: str(kv[0])))
        elif isinstance(value, (list, tuple)):
            s.kv([(key.replace("_", " "), ", ".join(str(v) for v in value))])
    if not labelled:
        s.note("No classes or segments: the model was trained on unlabelled slices.")
    return s


def overview_section(path: Path, meta: ModelMetadata, hist: TrainingHistory | None) -> Section:
    q = meta.quality or {}
    rows = [
        ("Model file", path.name),
        ("SHA-256", file_sha256(path)),
        ("Recipe", meta.recipe),
        ("Resolution", f"{meta.resolution}×{meta.resolution}"),
        ("Modality", meta.modality or "—"),
        ("Generator held (step)", meta.step),
        ("Steps trained", q.get("trained_steps", hist.final_step if hist else None)),
        ("Run ended", hist.status if hist else None),
        ("Created (UTC)", meta.created),
    ]
    if q.get("selected_swd") is not None:
        rows.append(("Quality of the held generator (SWD ×1e3)", q["selected_swd"]))
    return Section("overview", "Overview").kv(rows)


def settings_section(meta: ModelMetadata) -> Section:
    s = Section("settings", "Recipe and settings")
    rows = _flatten(meta.train_config)
    known = {k for k, _ in rows}
    basics = [("recipe", meta.recipe), ("z_dim", meta.z_dim), ("channels", meta.channels),
              ("seed", meta.seed)]  # fmt: skip
    rows = [(k, v) for k, v in basics if k not in known] + rows
    rows += [(f"model.{k}", v) for k, v in sorted(meta.model_kwargs.items()) if k not in known]
    if not meta.train_config:
        s.note("The model file records no training settings.")
    return s.kv_columns(rows, 2)


def environment_section(meta: ModelMetadata, hist: TrainingHistory | None) -> Section:
    return Section("environment", "Device and versions").kv(
        [
            ("Device", hist.device if hist and hist.device else "not recorded"),
            ("MedGAN Studio", meta.medgan_version),
            ("PyTorch", meta.torch_version or "not recorded"),
            ("Model format version", meta.format_version),
        ]
    )


def _missing(section: Section, what: str) -> Section:
    return section.note(
        f"Not available: the model file holds no training history, so {what} cannot be shown "
        "(it was written by an older version or another tool)."
    )


def training_sections(hist: TrainingHistory | None) -> list[Section]:
    """Losses, D(x)/D(G(z)), augmentation probability, time and throughput."""
    losses = Section("losses", "Losses")
    disc = Section("discriminator", "Discriminator outputs D(x) and D(G(z))")
    aug = Section("augmentation", "Augmentation probability")
    timing = Section("timing", "Time and throughput")
    if hist is None or hist.n_rows == 0:
        return [
            _missing(losses, "the loss curves"),
            _missing(disc, "D(x) and D(G(z))"),
            _missing(aug, "the augmentation probability"),
            _missing(timing, "time and throughput"),
        ]
    m = hist.metrics
    x = m["step"]
    losses.figures([Figure(figures.curves(x, {"generator": m["g_loss"], "discriminator": m["d_loss"]},
                                          ylabel="loss"), "Generator and discriminator losses: raw "
                           "(light) and smoothed (exponential moving average).")])  # fmt: skip
    disc.figures([Figure(figures.curves(x, {"D(x) real": m["d_real"], "D(G(z)) fake": m["d_fake"]},
                                        ylabel="probability", ylim=(0.0, 1.0)),
                         "Mean discriminator output on real and generated slices (0.5 = cannot "
                         "tell them apart).")])  # fmt: skip
    if any(v > 0 for v in m["aug_p"]):
        aug.figures([Figure(figures.curves(x, {"p": m["aug_p"]}, ylabel="probability",
                                           smoothed=False),
                            "Adaptive augmentation probability over training.")])  # fmt: skip
    else:
        aug.note("Augmentation stayed off (probability 0 throughout).")
    steps_done = hist.final_step - hist.start_step
    elapsed = hist.elapsed_s or (m["elapsed_s"][-1] if m["elapsed_s"] else 0.0)
    ips = np.asarray(m["img_per_s"], dtype=float)
    timing.kv(
        [
            ("Training time", f"{elapsed:.1f} s ({elapsed / 60:.1f} min)"),
            ("Steps in this run", f"{steps_done} (from step {hist.start_step} to {hist.final_step})"),
            ("Steps per second", f"{steps_done / elapsed:.2f}" if elapsed > 0 else "—"),
            ("Images per second (median)", f"{float(np.median(ips)):.1f}" if ips.size else "—"),
            ("Training slices", hist.n_images),
            ("Budget", f"{hist.total_steps} steps" if hist.total_steps else
             (f"{hist.time_limit_s / 60:.1f} min" if hist.time_limit_s else "—")),
        ]
    )  # fmt: skip
    if len(x) > 2:
        timing.figures([Figure(figures.curves(x, {"images/s": m["img_per_s"]}, ylabel="images per second"),
                               "Throughput over training.")])  # fmt: skip
    return [losses, disc, aug, timing]


def quality_section(meta: ModelMetadata, hist: TrainingHistory | None) -> Section:
    s = Section("quality", "Sample quality during training")
    q = meta.quality or {}
    points = q.get("history") or (hist.quality if hist else [])
    points = [p for p in points if isinstance(p, (list, tuple)) and len(p) == 2]
    if not points:
        return s.note(
            "No quality probes are recorded (probes were off, or the file predates them)."
        )
    steps = [int(p[0]) for p in points]
    swd = [float(p[1]) for p in points]
    kept = q.get("selected_step", meta.step)
    s.figures([Figure(figures.quality_curve(steps, swd, int(kept) if kept is not None else None),
                      "Sliced Wasserstein distance of the generator's samples to the training "
                      "slices at each probe; the star marks the generator the file holds.")])  # fmt: skip
    if q.get("keep_best") is not None:
        s.note("Keep-best was " + ("on: the file holds the best measured generator." if q["keep_best"]
                                   else "off: the file holds the last step's generator."))  # fmt: skip
    return s


def samples_section(path: Path, hist: TrainingHistory | None, *, fresh: int) -> Section:
    s = Section("samples", "Samples")
    figs: list[Figure] = []
    for grid in hist.grids if hist else []:
        try:
            png = base64.b64decode(grid["png"], validate=True)
        except (ValueError, TypeError):
            continue
        figs.append(
            Figure(png, f"Fixed-noise samples at step {grid['step']}", width=220, pixels=True)
        )
    if figs:
        s.add("<h3>During training</h3>").figures(figs)
    else:
        _missing(s, "sample grids from training")
    if fresh > 0:
        try:
            from medgan.generate.sampling import generate

            images = generate(path, fresh, seed=0, device="cpu").images
        except Exception as exc:  # noqa: BLE001 - the rest of the report is still useful
            log.warning("Could not draw samples for the report: %s", exc)
            s.note(f"Samples could not be drawn from the model file ({exc}).")
        else:
            u8 = [np.clip((im + 1) * 127.5 + 0.5, 0, 255).astype(np.uint8) for im in images]
            s.add("<h3>From the model file</h3>").figures(
                [Figure(figures.image_sheet(u8, [f"seed 0 #{i}" for i in range(len(u8))], cols=8),
                        f"{len(u8)} samples drawn now from the held generator (seed 0).")]
            )  # fmt: skip
    return s


def model_report_html(path: str | os.PathLike[str], *, fresh_samples: int = 16) -> str:
    """Build the model report page for a ``.safetensors`` model file."""
    p = Path(path)
    meta = read_metadata(p)
    hist, source = load_history(p, meta)
    notices = [
        notice("The images in this report are synthetic samples from the model; no patient image "
               "and no identifying information is shown.")
    ]  # fmt: skip
    if hist is None:
        notices.append(notice("This model file holds no training history (it was written by an "
                              "older version or another tool): losses, discriminator outputs, "
                              "augmentation, timing and training-time sample grids are missing.",
                              warn=True))  # fmt: skip
    elif source != "model file":
        notices.append(notice(f"The training history was read from {source} next to the model."))
    sections = [
        overview_section(p, meta, hist),
        data_section(meta),
        settings_section(meta),
        environment_section(meta, hist),
        *training_sections(hist),
        quality_section(meta, hist),
        samples_section(p, hist, fresh=fresh_samples),
    ]
    return render_page(
        f"Model report — {p.name}",
        f"{meta.recipe} recipe, {meta.resolution}×{meta.resolution} {meta.modality or ''} model, "
        f"generator of step {meta.step}",
        sections,
        notices=notices,
        kind="model",
    )
