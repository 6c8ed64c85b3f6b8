"""``medgan report MODEL.safetensors | EXPORT_DIR | RESULT.json``: one self-contained HTML report.

For a model file: the de-identified data summary, settings, training curves, quality and
samples (written next to the model as ``MODEL.report.html``). For an export folder: filters,
score histograms, a contact sheet, the manifest's summary and checksums (``report.html``
inside the folder). Closest synthetic/real pairs show patients' pixels, so they appear only
with ``--show-real-pairs`` (which needs ``--model`` and ``--data``). For a utility result
(the JSON of ``medgan utility --out``): verdict and interval, protocol, table, intervals
plot, controls and learning curve (``RESULT.report.html`` next to it).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from medgan.core.errors import MedganError
from medgan.models.modelfile import read_metadata
from medgan.reports import report_kind, write_report


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML report for a model file, an export folder or a "
        "utility result",
        description=(
            "Write one HTML file (figures embedded, opens offline, prints to PDF) describing a "
            "model file, an export folder or a utility result (JSON of `medgan utility --out`). "
            "No patient identifiers appear in it; real slices "
            "appear only with --show-real-pairs."
        ),
    )
    p.add_argument(
        "target",
        metavar="TARGET",
        help="a .safetensors model, an export folder or a utility result .json",
    )
    p.add_argument(
        "--out",
        metavar="FILE",
        help="report file (default: next to the model or result / in the export)",
    )
    p.add_argument("--model", metavar="MODEL",
                   help="export report: the model that made it (shows rejected samples)")  # fmt: skip
    p.add_argument("--data", metavar="DIR",
                   help="export report: the training DICOM folder (for --show-real-pairs)")  # fmt: skip
    p.add_argument("--series", nargs="+", metavar="UID", help="series of --data to use")
    p.add_argument("--show-real-pairs", action="store_true",
                   help="export report: show the closest synthetic/real pairs side by side "
                        "(shows patients' pixels; off by default)")  # fmt: skip
    p.add_argument("--samples", type=int, default=16, metavar="N",
                   help="model report: samples to draw from the model (default 16; 0 = none)")  # fmt: skip
    p.set_defaults(func=run)


def _real_images(args: argparse.Namespace) -> Any:
    from medgan.workflows.dataset import TrainingSetRequest, build_training_set, config_for_model

    built = build_training_set(
        TrainingSetRequest(
            config=config_for_model(read_metadata(args.model), holdout=False),
            folder=args.data,
            series_uids=args.series,
        )
    )
    return built.training_set.images


def run(args: argparse.Namespace) -> int:
    kind = report_kind(args.target)
    options: dict[str, Any] = {}
    if kind == "utility":
        if args.show_real_pairs or args.data or args.model or args.series:
            raise MedganError(
                "--model, --data, --series and --show-real-pairs apply to export reports only.",
                advice="A utility report shows scores only; give just the result JSON.",
            )
    elif kind == "model":
        if args.show_real_pairs or args.data or args.model:
            raise MedganError(
                "--model, --data and --show-real-pairs apply to export reports only.",
                advice="A model report never shows real slices.",
            )
        options["fresh_samples"] = max(0, args.samples)
    else:
        if args.show_real_pairs and not (args.model and args.data):
            raise MedganError(
                "--show-real-pairs needs the model (--model) and the training data (--data).",
                advice="Add --model MODEL.safetensors --data DIR, or leave out --show-real-pairs.",
            )
        options.update(model=args.model, show_real_pairs=args.show_real_pairs)
        if args.show_real_pairs:
            options["real_images"] = _real_images(args)
    path = write_report(args.target, args.out, **options)
    print(f"Report written to {path}", file=sys.stderr)
    print(path)
    return 0


__all__ = ["register", "run"]
