"""``medgan evaluate``: model file + DICOM folder → generated samples → quality metrics as JSON.

A thin caller of :func:`medgan.workflows.evaluation.evaluate`. The real slices are prepared exactly as for training (the model's resolution, window and
training-set settings), so the metrics compare like with like. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from medgan.cli._stages import stage_bars
from medgan.core.fileio import atomic_write_text, json_default
from medgan.workflows.evaluation import EvaluateRequest, evaluate

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="measure a model's samples against its training slices (SWD, diversity, memorization)",
        description=(
            "Generate samples from a model file and compare them with the slices of a DICOM "
            "folder: sliced Wasserstein distance on Laplacian pyramids, SSIM / MS-SSIM diversity, "
            "intensity-histogram distance and the nearest-neighbour memorization rate. "
            "No weights are downloaded."
        ),
    )
    p.add_argument("--model", required=True, metavar="MODEL", help="model file (.safetensors)")
    p.add_argument("--data", required=True, metavar="DIR", help="DICOM folder of the real slices")
    p.add_argument("--series", nargs="+", metavar="UID",
                   help="series instance UIDs (or unique prefixes); default: all trainable "
                   "series of the most common modality")  # fmt: skip
    p.add_argument("--n", "-n", type=int, default=1000, metavar="N",
                   help="samples to generate (default 1000)")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="seed of samples and metrics (default 0)")
    p.add_argument("--pairs", type=int, default=500, metavar="P",
                   help="random pairs for SSIM diversity (default 500)")  # fmt: skip
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--json", metavar="FILE", help="write the report here (default: stdout only)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    request = EvaluateRequest(
        model_path=args.model, folder=args.data,
        series_uids=tuple(args.series) if args.series else None, n=args.n, seed=args.seed,
        n_pairs=args.pairs, device=args.device,
    )  # fmt: skip
    bars = stage_bars(
        {"prepare": ("Preparing slices", "slices"), "generate": ("Generating", "samples")}
    )
    result = evaluate(request, progress=bars)
    for note in result.notes:
        print(note, file=sys.stderr)
    print(
        f"Real slices: {result.n_real} from {result.n_patients} patient(s) at "
        f"{result.resolution}x{result.resolution}.",
        file=sys.stderr,
    )
    report = result.report
    text = json.dumps(report, indent=2, allow_nan=False, default=json_default)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, text + "\n")
        print(f"Report written to {args.json}", file=sys.stderr)
    print(_summary(report), file=sys.stderr)
    if not args.json:
        print(text)
    return 0


def _summary(report: dict[str, Any]) -> str:
    ms = report.get("ms_ssim")
    real_ms = report.get("real_ms_ssim")
    lines = [
        f"SWD (x1e3, lower is better): {report['swd']:.2f}  per level: "
        + ", ".join(f"{k}px {v:.1f}" for k, v in report["swd_per_level"].items())
        + (f"  (real vs real: {report['real_swd']:.2f})" if report.get("real_swd") else ""),
        f"Diversity SSIM (lower = more diverse): samples {report['diversity_ssim']:.3f}, "
        f"real {report['real_diversity_ssim']:.3f}",
    ]
    if ms is not None and real_ms is not None:
        lines.append(f"MS-SSIM ({report['ms_ssim_scales']} scales): samples {ms:.3f}, "
                     f"real {real_ms:.3f}")  # fmt: skip
    lines += [
        f"Histogram distance (W1, [-1,1] scale): {report['histogram_distance']:.4f}",
        f"Memorization rate: {100 * report['memorization_rate']:.1f}% of "
        f"{report['n_synthetic']} samples",
    ]
    if "holdout" in report:
        h = report["holdout"]
        lines.append(f"SWD against {h['n_real']} held-out slices: {h['swd']:.2f} "
                     f"(training vs held-out: {h['real_swd']:.2f})")  # fmt: skip
    lines += _structure_lines(report)
    return "\n".join(lines)


def _structure_lines(report: dict[str, Any]) -> list[str]:
    """Per-level SWD with its floors, C2ST and the structure verdict (docs/evaluation.md)."""
    out = []
    lv = report.get("swd_levels")
    if lv:
        out.append("SWD per level, same sizes (samples / real floor / structure-erased): " + ", ".join(
            f"{k}px {v:.1f}/{lv['real_floor'][k]:.1f}/{lv['structure_erased'][k]:.1f}"
            for k, v in lv["samples"].items()))  # fmt: skip
    c, e = report.get("c2st"), report.get("c2st_erased_reference")
    if c and e:
        out.append(f"Classifier test AUC (0.5 = indistinguishable): {c['auc']:.3f} "
                   f"[{c['low']:.3f}, {c['high']:.3f}]; structure-erased real slices "
                   f"{e['auc']:.3f} [{e['low']:.3f}, {e['high']:.3f}]")  # fmt: skip
    st = report.get("structure")
    if st and ("swd_ok" in st or "c2st_ok" in st):
        verdict = "yes" if st["shows_structure"] else "no (outline-level: a blob generator does as well)"
        out.append(f"Shows internal structure: {verdict}")
    return out
