"""The export report: what was filtered and why, how the scores spread, what was kept and
rejected, the manifest's summary and every file's checksum.

Read from the export folder (``manifest.json`` and the exported files). With the model that
made it, rejected samples are redrawn from their (seed, index); near-copies of a patient's
slice stay hidden. The closest synthetic/real pairs show patients' pixels: only with
``show_real_pairs`` (and the training slices), and the report says so at the top.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from medgan.export.adapters import file_sha256
from medgan.reports import figures
from medgan.reports.common import REPORT_NAMES, ReportError
from medgan.reports.export_images import ExportReader
from medgan.reports.html import Figure, Section, notice, render_page

log = logging.getLogger(__name__)

MAX_SHEET = 24  # samples per contact sheet
N_PAIRS = 6
_HIDDEN = "hidden: near-copy"


def read_manifest(folder: Path) -> dict[str, Any]:
    try:
        doc = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ReportError(
            f"Cannot read {folder / 'manifest.json'}: {exc}.",
            advice="The export folder is incomplete or damaged; export again.",
        ) from exc
    if not isinstance(doc, dict) or "medgan_export" not in doc:
        raise ReportError(f"{folder / 'manifest.json'} is not a MedGAN Studio manifest.")
    return doc


def _memorized(row: dict[str, Any]) -> bool:
    scores = row.get("scores") or {}
    return bool(
        (scores.get("memorized") or 0) >= 0.5 or "memoriz" in str(row.get("reasons", "")).lower()
    )


def _score(rows: list[dict[str, Any]], name: str) -> list[float]:
    out = []
    for row in rows:
        v = (row.get("scores") or {}).get(name)
        if isinstance(v, (int, float)):
            out.append(float(v))
    return out


def summary_section(doc: dict[str, Any]) -> Section:
    model, export, counts = doc.get("model") or {}, doc.get("export") or {}, doc.get("counts") or {}
    memo = doc.get("memorization") or {}
    gen = ((model.get("extra") or {}).get("generation")) or {}
    s = Section("summary", "Manifest summary")
    s.kv(
        [
            ("Created (UTC)", doc.get("created_utc")),
            ("MedGAN Studio", (doc.get("app") or {}).get("version")),
            ("Model file", model.get("model_name")),
            ("Model SHA-256", model.get("model_sha256")),
            ("Recipe", model.get("recipe")),
            ("Resolution", model.get("resolution")),
            ("Modality", model.get("modality")),
            ("Model step", model.get("model_step")),
            ("Generation seed", gen.get("seed", model.get("seed"))),
            ("Samples generated", counts.get("synthetic_generated")),
            ("Synthetic slices exported", counts.get("synthetic_exported")),
            ("Synthetic slices rejected", counts.get("synthetic_rejected")),
            ("Real slices exported", counts.get("real_exported")),
            ("Format", export.get("format")),
            ("Values", export.get("values")),
        ]
    )
    s.add("<h3>Memorization guard</h3>")
    s.kv(
        [
            ("Checked against the training slices", "yes" if memo.get("checked") else "NO"),
            ("Near-copies found", memo.get("n_memorized")),
            ("Kept by explicit override", memo.get("n_overridden")),
            ("Training slices compared", memo.get("n_training_slices")),
        ]
    )
    return s


def filters_section(doc: dict[str, Any]) -> Section:
    filters = doc.get("filters") or {}
    s = Section("filters", "Filters")
    config = filters.get("config") or {}
    if config:
        s.kv(sorted(config.items()))
    rejected_by = {
        k: int(v)
        for k, v in (filters.get("rejected_by") or {}).items()
        if isinstance(v, (int, float))
    }
    total = filters.get("n_total", (doc.get("counts") or {}).get("synthetic_generated"))
    kept = filters.get("n_kept", (doc.get("counts") or {}).get("synthetic_exported"))
    s.text(f"{kept} of {total} generated samples were kept.")
    if rejected_by:
        s.table(("filter", "samples removed"), sorted(rejected_by.items(), key=lambda kv: -kv[1]))
        s.figures([Figure(figures.bars(list(rejected_by), list(rejected_by.values()),
                                       xlabel="samples removed"),
                          "Samples each filter removed (a sample counts once, for the first "
                          "filter that rejected it).")])  # fmt: skip
    else:
        s.note("The manifest records no per-filter counts.")
    return s


def scores_section(
    doc: dict[str, Any], kept: list[dict[str, Any]], rejected: list[dict[str, Any]]
) -> Section:
    s = Section("scores", "Score distributions")
    calib = ((doc.get("filters") or {}).get("scoring") or {}).get("memorization") or {}
    names = sorted({k for row in kept + rejected for k in (row.get("scores") or {})})
    if not names:
        return s.note("No scores are recorded: the samples were exported unchecked.")
    plots = [
        ("realism", "realism (discriminator, 0..1, higher = more realistic)", None, ""),
        ("nn_pixel_distance", "distance to the nearest training slice (RMS, [-1, 1] scale)",
         calib.get("pixel_threshold"), "memorization threshold"),
        ("nn_robust_distance", "robust distance to the nearest training slice",
         calib.get("robust_threshold"), "memorization threshold"),
    ]  # fmt: skip
    plots += [(n, n.replace("_", " "), None, "") for n in names if "label" in n or "fidelity" in n]
    figs = []
    for name, label, threshold, tlabel in plots:
        if name not in names:
            continue
        png = figures.histogram({"kept": _score(kept, name), "rejected": _score(rejected, name)},
                                xlabel=label, threshold=threshold, threshold_label=tlabel)  # fmt: skip
        figs.append(Figure(png, f"{label}: kept and rejected samples"
                           + (f"; dashed line: {tlabel}" if threshold is not None else "")))  # fmt: skip
    s.figures(figs)
    if not any("label" in n or "fidelity" in n for n in names):
        s.note("No label-fidelity score: the model is unconditional.")
    return s


_REASON_WORDS = (
    ("memoriz", "memorized"), ("duplicate", "duplicate"), ("empty", "empty"),
    ("range", "out of range"), ("top", "top-k"), ("realism", "low realism"),
)  # fmt: skip


def _reason_word(row: dict[str, Any]) -> str:
    text = str(row.get("reasons", "")).lower()
    return next((word for key, word in _REASON_WORDS if key in text), "rejected")


def _tile_title(row: dict[str, Any]) -> str:
    r = (row.get("scores") or {}).get("realism")
    return f"#{row.get('index')}" + (f" r={r:.2f}" if isinstance(r, (int, float)) else "")


def contact_section(
    folder: Path,
    doc: dict[str, Any],
    kept: list[dict[str, Any]],
    rejected: list[dict[str, Any]],
    generator: Any,
    *,
    show_real: bool,
) -> Section:
    s = Section("contact", "Contact sheet: kept and rejected samples")
    reader = ExportReader(folder, doc)
    chosen = kept[:MAX_SHEET]
    images, titles = [], []
    for row in chosen:
        img = reader.read(row)
        if img is not None:
            images.append(img)
            titles.append(_tile_title(row))
    if images:
        s.figures([Figure(figures.image_sheet(images, titles, cols=8),
                          f"Kept: {len(images)} of {len(kept)} exported synthetic slices, read "
                          "back from the export's files (index and realism).")])  # fmt: skip
    else:
        s.note("The exported slices could not be read back for the contact sheet.")
    if not rejected:
        return s.note("No sample was rejected.")
    if generator is None:
        return s.note("Rejected samples are not written to an export; give the model that made it "
                      "(--model, or the Report button after an export) to redraw them here.")  # fmt: skip
    rows = rejected[:MAX_SHEET]
    redrawn = _redraw(generator, rows)
    rej_imgs, rej_titles = [], []
    for row, img in zip(rows, redrawn, strict=True):
        if _memorized(row) and not show_real:
            rej_imgs.append(np.full_like(img, 128))
            rej_titles.append(_HIDDEN)
        else:
            rej_imgs.append(img)
            rej_titles.append(f"{_tile_title(row)}\n{_reason_word(row)}")
    s.figures([Figure(figures.image_sheet(rej_imgs, rej_titles, cols=8),
                      f"Rejected: {len(rows)} of {len(rejected)}, redrawn from the model by seed "
                      "and index. Near-copies of a training slice are hidden (grey), since they "
                      "may show a patient's anatomy.")])  # fmt: skip
    return s


def _draw(generator: Any, rows: list[dict[str, Any]]) -> np.ndarray:
    """Samples by (seed, index), float32 in [-1, 1], in one pass of the loaded generator (the
    noise depends only on (seed, index), as in :func:`medgan.generate.sampling.generate`)."""
    import torch

    from medgan.generate.sampling import sample_noise

    if not rows:
        return np.zeros((0, generator.resolution, generator.resolution), np.float32)
    z = np.concatenate(
        [sample_noise(int(r.get("seed") or 0), np.array([int(r.get("index") or 0)]), generator.z_dim)
         for r in rows]
    )  # fmt: skip
    with torch.inference_mode():
        out = generator.module(torch.from_numpy(z).to(generator.device)).float()[:, 0]
    return out.clamp(-1.0, 1.0).cpu().numpy()


def _redraw(generator: Any, rows: list[dict[str, Any]]) -> list[np.ndarray]:
    return [_u8(im) for im in _draw(generator, rows)]


def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip((np.asarray(image, dtype=np.float32) + 1.0) * 127.5 + 0.5, 0, 255).astype(
        np.uint8
    )


def pairs_section(
    rows: list[dict[str, Any]], generator: Any, real_images: np.ndarray | None, *, show: bool
) -> Section:
    s = Section("pairs", "Closest synthetic / real pairs")
    if not show:
        return s.note("Not shown: the closest pairs show patients' slices, so they appear only "
                      "when asked for explicitly (--show-real-pairs, or the option on the Export "
                      "page). The distances are in the score histograms above.")  # fmt: skip
    if generator is None or real_images is None or len(real_images) == 0:
        return s.note("Not available: the model and the training slices are needed to show pairs.")
    ranked = sorted((r for r in rows if _score([r], "nn_pixel_distance")),
                    key=lambda r: _score([r], "nn_pixel_distance")[0])[:N_PAIRS]  # fmt: skip
    if not ranked:
        return s.note("No sample has a recorded distance to the training slices.")
    real = np.asarray(real_images, dtype=np.float32)
    flat = real.reshape(len(real), -1)
    images, titles = [], []
    for row, syn in zip(ranked, _draw(generator, ranked), strict=True):
        if syn.shape != real.shape[1:]:
            return s.note("The training slices do not have the model's resolution; pairs skipped.")
        d = np.sqrt(np.mean((flat - syn.reshape(1, -1)) ** 2, axis=1))
        j = int(np.argmin(d))
        images += [_u8(syn), _u8(real[j])]
        titles += [
            f"synthetic #{row.get('index')} ({row.get('decision')})",
            f"real slice, d={d[j]:.3f}",
        ]
    s.figures([Figure(figures.image_sheet(images, titles, cols=4, tile_in=1.6),
                      "The synthetic samples closest to a training slice (left) and that slice "
                      "(right), RMS distance on the [-1, 1] scale. These are patients' pixels.")])  # fmt: skip
    return s


def checksums_section(folder: Path, skip: set[str]) -> Section:
    s = Section("checksums", "Checksums")
    rows = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        rel = path.relative_to(folder).as_posix()
        if rel in skip or any(part.startswith(".") for part in path.relative_to(folder).parts):
            continue
        rows.append((rel, path.stat().st_size, file_sha256(path)))
    s.text(f"SHA-256 of the {len(rows)} files in the export (this report excluded).")
    return s.add(
        '<table class="mono"><thead><tr><th>file</th><th>bytes</th><th>SHA-256</th></tr></thead><tbody>'
        + "".join(f'<tr><td>{f}</td><td class="num">{n}</td><td>{h}</td></tr>' for f, n, h in rows)
        + "</tbody></table>"
    )


def export_report_html(
    folder: str | os.PathLike[str],
    *,
    model: str | os.PathLike[str] | None = None,
    real_images: np.ndarray | None = None,
    show_real_pairs: bool = False,
) -> str:
    """Build the export report page.

    Args:
        folder: the export folder (with ``manifest.json``).
        model: the model file that made the export (checked by SHA-256); redraws rejected
            samples and the samples of the closest pairs.
        real_images: the training slices (N, R, R) in [-1, 1], for the closest pairs.
        show_real_pairs: show the closest synthetic/real pairs (patients' pixels).
    """
    root = Path(folder)
    doc = read_manifest(root)
    files = [r for r in doc.get("files") or [] if r.get("kind") == "synthetic"]
    rejected = [r for r in doc.get("rejected") or [] if r.get("kind", "synthetic") == "synthetic"]
    generator = None
    if model is not None:
        expected = (doc.get("model") or {}).get("model_sha256")
        if expected and file_sha256(model) != expected:
            raise ReportError(
                f"{Path(model).name} is not the model that made this export (SHA-256 differs).",
                advice="Give the model file named in the export's manifest, or leave out --model.",
            )
        from medgan.generate.sampling import load_generator

        generator = load_generator(model, device="cpu")
    shown = bool(show_real_pairs and generator is not None and real_images is not None)
    notices = [notice("Synthetic images for research only; not patient images, not for diagnosis.")]
    if shown:
        notices.append(notice("This report SHOWS REAL PATIENT SLICES (the closest synthetic/real "
                              "pairs, asked for explicitly). Handle it under your data-governance "
                              "rules.", warn=True))  # fmt: skip
    else:
        notices.append(notice("No real patient slice is shown in this report (closest "
                              "synthetic/real pairs are off by default)."))  # fmt: skip
    if (doc.get("counts") or {}).get("real_exported"):
        notices.append(notice("The export also holds preprocessed real training slices; they are "
                              "listed in the checksums but not shown.", warn=True))  # fmt: skip
    if not (doc.get("memorization") or {}).get("checked"):
        notices.append(notice("The memorization guard did NOT run for this export: some samples "
                              "could be near-copies of training slices.", warn=True))  # fmt: skip
    sections = [
        summary_section(doc),
        filters_section(doc),
        scores_section(doc, files, rejected),
        contact_section(root, doc, files, rejected, generator, show_real=shown),
        pairs_section(files + rejected, generator, real_images, show=shown),
        checksums_section(root, {REPORT_NAMES["export"]}),
    ]
    model_info = doc.get("model") or {}
    return render_page(
        f"Export report — {root.name}",
        f"{(doc.get('counts') or {}).get('synthetic_exported', 0)} synthetic slices as "
        f"{(doc.get('export') or {}).get('format', '?')} from {model_info.get('recipe', '?')} "
        f"model {model_info.get('model_name', '')}",
        sections,
        notices=notices,
        kind="export",
    )
