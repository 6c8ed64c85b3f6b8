"""``medgan utility``: does adding synthetic slices help a downstream model on new patients?

Prints the table (mean ± sd per arm), the paired differences against real + classic
augmentation with their 95 % intervals, the verdict and the controls, and writes the JSON
document with ``--out``. ``--checkpoint DIR`` saves every finished run so that the same
command resumes after an interruption.
"""

from __future__ import annotations

import argparse
import sys
import threading
from typing import Any

from medgan.cli.labels import add_label_arguments
from medgan.cli.progress import format_duration
from medgan.core.errors import DataError
from medgan.core.fileio import atomic_write_json
from medgan.utility.records import RunResult, UtilityConfig, UtilityResult
from medgan.workflows.utility import GanBudget, UtilityRequest, run_utility


def _floats(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected numbers like 0.5,1,2, not {text!r}") from exc


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "utility",
        help="does adding synthetic slices help a classifier/segmenter on held-out patients?",
        description=__doc__,
    )
    p.add_argument("--data", required=True, metavar="DIR", help="labelled DICOM folder")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--synthetic", metavar="EXPORT_DIR", help="a labelled export folder")
    src.add_argument("--model", action="append", metavar="CLASS=FILE",
                     help="a conditional/paired model file, or one unconditional model per class "
                     "(CLASS=FILE, repeat)")  # fmt: skip
    src.add_argument("--train-gan", action="store_true",
                     help="train one 'default' GAN per class on each fold's training patients")
    p.add_argument("--synthetic-model", metavar="MODEL",
                   help="with --synthetic: the model that made the export (its recorded "
                   "training patients are never tested on)")  # fmt: skip
    p.add_argument("--gan-steps", type=int, default=400, metavar="N",
                   help="steps per GAN with --train-gan (default 400)")  # fmt: skip
    p.add_argument("--gan-minutes", type=float, metavar="M", help="... or minutes per GAN")
    p.add_argument("--gan-recipe", choices=("default", "conditional"), default="default",
                   help="--train-gan: one default GAN per class, or one conditional GAN")  # fmt: skip
    p.add_argument("--task", choices=("classify", "segment"), default="classify")
    p.add_argument("--ratios", type=_floats, default=(1.0,), metavar="R,R",
                   help="synthetic slices per real slice, one arm each (default 1)")  # fmt: skip
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--folds", type=int, default=3)
    p.add_argument("--learning-curve", type=_floats, default=(0.5,), metavar="F,F",
                   help="shares of each fold's training patients used as real data "
                   "(default 0.5; the rest feed the extra-real control)")  # fmt: skip
    p.add_argument("--steps", type=int, default=150, help="optimiser steps per run (all arms)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--no-controls", action="store_true", help="skip the two controls")
    p.add_argument("--group", action="append", default=[], metavar="NAME=A,B",
                   help="merge classes A, B into NAME (repeat)")  # fmt: skip
    p.add_argument("--vs-rest", metavar="CLASS", help="two classes: CLASS against the others")
    p.add_argument("--res", type=int, default=64, choices=(64, 128, 256))
    p.add_argument("--window", default="file", help="file | auto | preset:<name> | C,W")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--checkpoint", metavar="DIR", help="save finished runs here; resume from it")
    p.add_argument("--allow-unchecked", action="store_true",
                   help="use a synthetic set whose training patients are unknown")  # fmt: skip
    p.add_argument("--out", metavar="FILE.json", help="write the result as JSON")
    p.add_argument("--plot", metavar="FILE.png", help="write the plot (mean ± sd per arm) as PNG")
    add_label_arguments(p)
    p.set_defaults(func=run)


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        if "=" not in item:
            raise DataError(f"{what} {item!r} is not NAME=VALUE.", advice=f"Write {what} A=B.")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def config_from_args(args: argparse.Namespace) -> UtilityConfig:
    groups = {k: tuple(x.strip() for x in v.split(",")) for k, v in _pairs(args.group, "--group").items()}
    return UtilityConfig(
        task=args.task, ratios=args.ratios, seeds=args.seeds, folds=args.folds,
        fractions=args.learning_curve, steps=args.steps, batch_size=args.batch,
        controls=not args.no_controls, groups=groups, vs_rest=args.vs_rest, device=args.device,
    )  # fmt: skip


def format_table(result: UtilityResult) -> str:
    """The table, the paired differences, the verdict and the controls, as text."""
    lines = []
    metrics = ["auc", "balanced_accuracy", "sensitivity", "specificity"] \
        if result.config.task == "classify" else ["dice", "hd95"]  # fmt: skip
    for fraction, arms in result.summary.items():
        lines.append(f"\nReal patients: {float(fraction):.0%} of each fold's training patients")
        lines.append(f"{'arm':<16}" + "".join(f"{m:>22}" for m in metrics))
        order = result.config.arms()
        for arm, values in sorted(arms.items(), key=lambda kv: order.index(kv[0])
                                  if kv[0] in order else len(order)):  # fmt: skip
            cells = []
            for m in metrics:
                v = values.get(m)
                cells.append(f"{v['mean']:.3f} ± {v['sd']:.3f} (n={v['n']})" if v else "-")
            lines.append(f"{arm:<16}" + "".join(f"{c:>22}" for c in cells))
        lines.append(f"\n{result.primary_metric} difference vs real+classic (paired, 95 % CI):")
        for c in result.comparisons:
            if c.metric == result.primary_metric and f"{c.fraction:g}" == fraction:
                lines.append(f"  {c.arm:<14} {c.mean_diff:+.3f}  [{c.ci_low:+.3f}, "
                             f"{c.ci_high:+.3f}]  {c.verdict}")  # fmt: skip
    lines.append(f"\nVerdict: {result.verdict_text}")
    ctrl = result.controls
    for name in ("shuffled", "extra_real"):
        if name in ctrl:
            c = ctrl[name]
            lines.append(f"Control {name}: {c['verdict']} (expected: {c['expected']})"
                         + ("" if c["ok"] else "  <- MISBEHAVED"))  # fmt: skip
    for note in ctrl.get("notes", []):
        lines.append(f"Note: {note}")
    for w in result.warnings:
        lines.append(f"Warning: {w}")
    lines.append(f"Trustworthy: {'yes' if result.trustworthy else 'NO'}; device {result.device}; "
                 f"{format_duration(result.elapsed_s)}")  # fmt: skip
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from medgan.cli._stages import stage_bars

    config = config_from_args(args)
    synthetic: Any = None
    if args.synthetic:
        from medgan.utility.export_folder import read_export_folder

        synthetic = read_export_folder(args.synthetic, resolution=args.res,
                                       model_file=args.synthetic_model)  # fmt: skip
    elif args.model:
        from medgan.utility.sources import LabelledModelSource, ModelFileSource

        if len(args.model) == 1 and "=" not in args.model[0]:  # one labelled model
            synthetic = LabelledModelSource(args.model[0], device=args.device)
        else:
            synthetic = ModelFileSource(_pairs(args.model, "--model"), device=args.device)
    if config.groups or config.vs_rest:
        rename = {m: g for g, ms in config.groups.items() for m in ms}
        if synthetic is not None and hasattr(synthetic, "rename"):
            synthetic.rename = rename
    request = UtilityRequest(
        config, folder=args.data, label_files=args.labels, mask_files=args.masks,
        resolution=args.res, window=args.window, synthetic=synthetic,
        gan=GanBudget(args.gan_steps, args.gan_minutes, recipe=args.gan_recipe)
        if args.train_gan else None,
        checkpoint_dir=args.checkpoint, allow_unchecked=args.allow_unchecked,
    )  # fmt: skip

    def on_run(r: RunResult, done: int, total: int, eta: float | None) -> None:
        m = r.metrics.get("auc" if config.task == "classify" else "dice")
        print(f"[{done}/{total}] {r.key.name()}: {m:.3f}  ETA {format_duration(eta)}",
              file=sys.stderr, flush=True)  # fmt: skip

    bars = stage_bars()

    def progress(name: str, done: int, total: int) -> None:
        if name != "runs":  # runs get one line each (on_run)
            bars(name, done, total)

    result = run_utility(request, progress=progress, cancel=threading.Event(), on_run=on_run)
    print(format_table(result))
    if args.out:
        atomic_write_json(args.out, result.to_dict(), indent=2)
        print(f"Result written to {args.out}", file=sys.stderr)
    if args.plot:
        from medgan.utility.plot import write_figure

        write_figure(result, args.plot)
        print(f"Plot written to {args.plot}", file=sys.stderr)
    return 0
