"""``medgan evaluate``: model file + DICOM folder → generated samples → quality metrics as JSON.

The real slices are prepared exactly as for training (the model's resolution, window and
training-set settings), so the metrics compare like with like. Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from medgan.core.errors import DataError
from medgan.core.fileio import atomic_write_text, json_default

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
    from medgan.cli.progress import CountProgress
    from medgan.cli.train import select_series
    from medgan.dicom.index import scan_folder
    from medgan.export.adapters import file_sha256
    from medgan.generate.sampling import generate, load_generator
    from medgan.metrics.evaluation import EvaluationConfig, evaluate_sets
    from medgan.models.modelfile import load_model

    if args.n < 2:
        raise DataError("Evaluate needs at least 2 samples.", advice="Use -n 100 or more.")
    loaded = load_model(args.model)
    meta = loaded.metadata
    scan = scan_folder(args.data, progress=CountProgress("Scanning", unit="files"))
    series = select_series(scan, args.series)
    trainset = _real_slices(series, meta)
    print(
        f"Real slices: {len(trainset.images)} from "
        f"{len(set(trainset.patient_keys.tolist()))} patient(s) at {meta.resolution}x"
        f"{meta.resolution}.",
        file=sys.stderr,
    )
    generator = load_generator(loaded, device=args.device)
    samples = generate(generator, args.n, seed=args.seed, device=args.device,
                       progress=CountProgress("Generating", unit="samples"))  # fmt: skip
    stages = CountProgress("Evaluating", unit="stages")

    def on_stage(name: str, done: int, total: int) -> None:
        stages(done, total)

    report = evaluate_sets(
        samples.images, trainset.images, patient_keys=trainset.patient_keys,
        config=EvaluationConfig(seed=args.seed, n_pairs=args.pairs, device=args.device),
        progress=on_stage,
    )  # fmt: skip
    holdout = getattr(trainset, "holdout", None)
    if holdout is not None and len(holdout.images) >= 2:
        report["holdout"] = _holdout_metrics(samples.images, trainset.images, holdout.images, args)
    report = {
        "model": {
            "file": Path(args.model).name,
            "sha256": file_sha256(args.model),
            "recipe": meta.recipe,
            "resolution": meta.resolution,
            "step": meta.step,
        },
        "model_sha256": file_sha256(args.model),
        "sample_seed": args.seed,
        **report,
    }
    text = json.dumps(report, indent=2, allow_nan=False, default=json_default)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(args.json, text + "\n")
        print(f"Report written to {args.json}", file=sys.stderr)
    print(_summary(report), file=sys.stderr)
    if not args.json:
        print(text)
    return 0


def _real_slices(series: list[Any], meta: Any) -> Any:
    """The training set rebuilt with the model's settings and window."""
    from medgan.cli.progress import CountProgress
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set

    saved = dict((meta.train_config.get("extra") or {}).get("trainset") or {})
    saved.update(resolution=meta.resolution)
    if meta.window is not None:
        saved.update(window="explicit", window_center=meta.window[0], window_width=meta.window[1])
    config = TrainingSetConfig.from_dict(saved)
    return build_training_set(
        series, config, progress=CountProgress("Preparing slices", unit="slices")
    )


def _holdout_metrics(samples: Any, train: Any, held: Any, args: argparse.Namespace) -> dict:
    """SWD against patients the model never saw, with train-vs-held-out as the floor."""
    from medgan.metrics.swd import sliced_wasserstein

    def swd(a: Any, b: Any) -> float:
        return sliced_wasserstein(a, b, seed=args.seed, device=args.device).swd

    return {
        "n_real": int(len(held)),
        "swd": swd(samples, held),
        "real_swd": swd(train, held),
        "note": "held-out patients (never trained on); real_swd compares training with held-out",
    }


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
    return "\n".join(lines)


