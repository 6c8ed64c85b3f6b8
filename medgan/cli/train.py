"""``medgan train``: DICOM folder → training set → trainer (with a progress bar) → model file.

Ctrl-C, SIGTERM and SIGHUP (what ``timeout``, batch schedulers, container stops and closed
terminals send; on Windows also the console's Ctrl-Break/close event) stop cleanly at the next
step: a checkpoint is saved, the model file is still written from the state reached, and the
exit status is 128 + the signal number (130 for Ctrl-C, 143 for SIGTERM, 129 for SIGHUP). A
second signal exits at once with the same status; the last complete checkpoint stays intact.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from medgan.cli.labels import add_label_arguments
from medgan.core.errors import MedganError
from medgan.workflows.dataset import select_series as workflow_select_series
from medgan.workflows.training import TrainOutcome, TrainRequest, train_and_save

log = logging.getLogger(__name__)

_DEFAULT_STEPS = 2000


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "train",
        help="train or fine-tune a GAN on DICOM slices and write a model file",
        description=(
            "Train a 2D GAN on the slices of a DICOM folder and write one .safetensors model "
            "file. Ctrl-C, SIGTERM and SIGHUP stop cleanly: a checkpoint is saved, the model is "
            "still written, and the exit status is 128 + the signal number (130, 143, 129). "
            "Checkpoints are written every 500 steps or 5 minutes, whichever comes first."
        ),
    )
    p.add_argument("--data", required=True, metavar="DIR", help="DICOM folder to learn from")
    p.add_argument(
        "--series",
        nargs="+",
        metavar="UID",
        help="series instance UIDs (or unique prefixes); default: all trainable "
        "series of the most common modality",
    )
    p.add_argument(
        "--out", required=True, metavar="MODEL", help="model file to write (.safetensors)"
    )
    p.add_argument(
        "--recipe",
        choices=("default", "dcgan", "conditional", "paired"),
        help="training recipe (default: 'default', or the --init model's); conditional: one "
        "class-conditional model for the --labels classes; paired: image + mask pairs from "
        "the --masks",
    )
    p.add_argument(
        "--class-pairs",
        action="store_true",
        help="conditional: also draw masks; paired: also condition on the classes",
    )
    p.add_argument(
        "--no-balance",
        action="store_true",
        help="conditional: draw real slices uniformly instead of class-balanced",
    )
    p.add_argument(
        "--width",
        type=int,
        metavar="W",
        help="network base width (default: the recipe's on a CPU, wider on a GPU)",
    )
    p.add_argument(
        "--res",
        type=int,
        choices=(64, 128, 256),
        help="image size (default: 64, or the --init model's)",
    )
    budget = p.add_mutually_exclusive_group()
    budget.add_argument(
        "--steps", type=int, metavar="N", help=f"training steps (default {_DEFAULT_STEPS})"
    )
    budget.add_argument("--minutes", type=float, metavar="M", help="train for this many minutes")
    p.add_argument("--batch", type=int, metavar="B", help="batch size (default: the recipe's)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--init", metavar="MODEL", help="fine-tune: start from this model file")
    p.add_argument(
        "--freeze-d",
        type=int,
        default=0,
        metavar="K",
        help="fine-tuning: freeze the first K discriminator blocks",
    )
    p.add_argument(
        "--lr-scale",
        type=float,
        metavar="X",
        help="fine-tuning: multiply the learning rates by X (default 0.5)",
    )
    p.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue a run from a checkpoint file or checkpoint folder",
    )
    p.add_argument(
        "--window",
        metavar="W",
        help="file | auto | preset:<name> | CENTER,WIDTH (default: the window stored in the "
        "files, else auto)",
    )
    p.add_argument(
        "--holdout",
        type=float,
        default=0.0,
        metavar="F",
        help="share of patients held out of training (default 0)",
    )
    p.add_argument(
        "--quality-every",
        type=int,
        metavar="N",
        help="measure sample quality (SWD against training slices) every N steps "
        "(default 50; 0 = never)",
    )
    p.add_argument(
        "--mode-seeking",
        type=float,
        metavar="W",
        help="weight of the mode-seeking term in the generator's loss (default 0 = off; 0.1 "
        "draws more kinds of slices on the demo but smears some image borders, "
        "docs/recipes.md)",
    )
    p.add_argument(
        "--paint-check",
        type=float,
        metavar="W",
        help="paired (mask first): weight of a segmenter's loss on the painted pairs, so lesions "
        "are painted where their masks are (default 0 = off; docs/recipes.md, \"Paint check\")",
    )
    p.add_argument(
        "--levels",
        type=int,
        metavar="N",
        help="default recipe: condition on each slice's level in its series, in N bins "
        "(2-10; default 0 = off; docs/recipes.md, \"Slice levels\")",
    )
    p.add_argument(
        "--keep-last",
        action="store_true",
        help="write the last step's generator, not the one with the best measured quality",
    )
    p.add_argument(
        "--checkpoint-dir",
        metavar="DIR",
        help="where checkpoints go (default: MODEL's name + '.checkpoints')",
    )
    p.add_argument(
        "--checkpoint-every",
        type=int,
        metavar="STEPS",
        help="save a checkpoint every STEPS steps (default 500) ...",
    )
    p.add_argument(
        "--checkpoint-minutes",
        type=float,
        metavar="M",
        help="... or every M minutes of training, whichever comes first (default 5; 0 = by "
        "steps only)",
    )
    p.add_argument(
        "--tensorboard",
        metavar="DIR",
        help="also log the run for TensorBoard in DIR (scalars, sample grids, settings; needs "
        "the 'tensorboard' package)",
    )
    p.add_argument("--metrics-csv", metavar="FILE", help="also write the metrics to a CSV file")
    add_label_arguments(p)  # --labels CSV / --masks SEG_OR_NIFTI (repeatable), or found
    p.set_defaults(func=run)


# --------------------------------------------------------------------------- series choice


def select_series(result: Any, wanted: list[str] | None) -> list[Any]:
    """Series named by UID (or unique prefix), else all trainable ones of the main modality
    (:func:`medgan.workflows.dataset.select_series`); its notes go to stderr."""
    chosen, notes = workflow_select_series(result, wanted)
    for note in notes:
        print(note, file=sys.stderr)
    return chosen


# --------------------------------------------------------------------------- run


STOP_SIGNALS: tuple[str, ...] = ("SIGINT", "SIGTERM", "SIGHUP", "SIGBREAK")
"""Signals that stop training cleanly (those this platform has; SIGBREAK is Windows')."""


class _StopOnSignals:
    """The first stop signal sets the stop flag (clean stop + checkpoint + model file); a
    second one exits at once. ``signum`` records the first, for the exit status."""

    def __init__(self, stop: threading.Event) -> None:
        self.stop = stop
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> _StopOnSignals:
        if threading.current_thread() is threading.main_thread():
            for name in STOP_SIGNALS:
                sig = getattr(signal, name, None)
                # an ignored signal stays ignored (e.g. SIGHUP under nohup)
                if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:
                    self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.stop.is_set():
            print(f"\n{name} again: exiting now.", file=sys.stderr, flush=True)
            os._exit(128 + (self.signum or signum))
        self.signum = signum
        self.stop.set()
        again = "Ctrl-C" if signum == signal.SIGINT else name
        print(
            f"\n{name}: stopping after this step and saving a checkpoint and the model "
            f"({again} again to exit at once)...",
            file=sys.stderr,
            flush=True,
        )

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)


def _train_config(
    args: argparse.Namespace,
    recipe: str,
    res: int,
    base: dict[str, Any] | None,
    init_meta: Any,
    ts_config: Any,
    checkpoint_dir: Path,
) -> Any:
    from medgan.train.config import TrainConfig

    overrides: dict[str, Any] = {
        "resolution": res,
        "seed": args.seed,
        "device": args.device,
        "checkpoint_dir": str(checkpoint_dir),
    }
    if args.steps is not None:
        overrides.update(steps=args.steps, minutes=None)
    elif args.minutes is not None:
        overrides.update(steps=None, minutes=args.minutes)
    elif base is None:
        overrides.update(steps=_DEFAULT_STEPS, minutes=None)
    if args.batch is not None:
        overrides["batch_size"] = args.batch
    if getattr(args, "checkpoint_every", None) is not None:
        overrides["checkpoint_every"] = args.checkpoint_every
    if getattr(args, "checkpoint_minutes", None) is not None:
        overrides["checkpoint_minutes"] = args.checkpoint_minutes or None
    if getattr(args, "quality_every", None) is not None:
        overrides["quality_every"] = args.quality_every
    if getattr(args, "mode_seeking", None) is not None:
        overrides["mode_seeking"] = args.mode_seeking
    if getattr(args, "paint_check", None) is not None:
        overrides["paint_check"] = args.paint_check
    if getattr(args, "levels", None) is not None:
        overrides["levels"] = args.levels
    if getattr(args, "keep_last", False):
        overrides["keep_best"] = False
    if getattr(args, "class_pairs", False):
        overrides["class_pairs"] = True
    if getattr(args, "no_balance", False):
        overrides["balanced_classes"] = False
    if getattr(args, "width", None) is not None:
        overrides["width"] = args.width
    if init_meta is not None:
        overrides.update(
            width=None, **init_meta.network_settings(), freeze_d_blocks=args.freeze_d
        )
        if args.lr_scale is not None:
            overrides["finetune_lr_scale"] = args.lr_scale
    overrides["extra"] = {"trainset": ts_config.to_dict()}
    if base is not None:  # resuming: the checkpoint's settings, with the new budget
        merged = dict(base)
        merged.update({k: v for k, v in overrides.items() if k not in ("resolution", "seed")})
        return TrainConfig.from_dict(merged)
    cfg = TrainConfig.for_recipe(recipe, **overrides)
    if cfg.width is None:  # CPU-sized, wider on a GPU (docs/recipes.md, "Capacity")
        from medgan.core.device import resolve_device
        from medgan.models import auto_width

        cfg = cfg.replace(width=auto_width(recipe, res, resolve_device(args.device).type))
    return cfg


def run(args: argparse.Namespace) -> int:
    from medgan.cli.progress import CountProgress, TrainProgress
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.dicom.index import scan_folder
    from medgan.models import RECIPES
    from medgan.models.modelfile import check_compatible, load_model

    out = Path(args.out)
    if out.suffix != ".safetensors":
        out = out.with_name(out.name + ".safetensors")
    checkpoint_dir = Path(args.checkpoint_dir or out.with_name(out.stem + ".checkpoints"))

    if args.init and args.resume:
        raise MedganError(
            "Use --init or --resume, not both.",
            advice="--resume continues a run; --init starts a new one from a model.",
        )
    base: dict[str, Any] | None = None
    resume_from: Path | None = None
    saved_trainset: dict[str, Any] | None = None
    if args.resume:
        from medgan.train.checkpoint import load_checkpoint

        ckpt = load_checkpoint(args.resume)
        base = dict(ckpt.meta.get("config") or {})
        saved_trainset = (base.get("extra") or {}).get("trainset")
        if args.recipe and base.get("recipe") and args.recipe != base["recipe"]:
            raise MedganError(
                f"The checkpoint is a {base['recipe']} run, not {args.recipe}.",
                advice="Leave out --recipe when resuming.",
            )
        if args.res and base.get("resolution") and args.res != base["resolution"]:
            raise MedganError(
                f"The checkpoint was trained at {base['resolution']}x{base['resolution']}, "
                f"not {args.res}x{args.res}.",
                advice="Leave out --res when resuming.",
            )
        print(f"Resuming from {ckpt.path} (step {ckpt.step}).", file=sys.stderr)
        resume_from = ckpt.path  # the newest complete one (damaged newer files are skipped)
        if not args.checkpoint_dir and ckpt.path is not None:
            checkpoint_dir = ckpt.path.parent

    loaded = None
    if args.init:
        loaded = load_model(args.init)
    recipe = args.recipe or (base or {}).get("recipe") or (loaded.recipe if loaded else "default")
    res = args.res or (base or {}).get("resolution") or (loaded.resolution if loaded else 64)
    if loaded is not None:
        check_compatible(loaded, recipe, res)

    if saved_trainset and args.window is None and args.holdout == 0.0:
        ts_config = TrainingSetConfig.from_dict({**saved_trainset, "resolution": res})
    else:
        ts_config = TrainingSetConfig.with_window(
            args.window or "file", resolution=res, holdout_fraction=args.holdout, seed=args.seed
        )

    scan = scan_folder(args.data, progress=CountProgress("Scanning", unit="files"))
    series = select_series(scan, args.series)
    from medgan.dicom.labels import load_labels

    labels = load_labels(
        scan, csv_files=args.labels, mask_files=args.masks,
        auto=not args.no_auto_labels, min_area=args.min_area,
    )  # fmt: skip
    for problem in labels.problems[:20]:
        print(f"label problem: {problem.text()}", file=sys.stderr)
    trainset = build_training_set(
        series, ts_config, progress=CountProgress("Preparing slices", unit="slices"),
        labels=labels,
    )  # fmt: skip
    info = trainset.summary()
    print(
        f"Training set: {info['n_train']} slices from {info['n_patients']} patient(s), "
        f"{info['n_dropped_empty']} nearly empty dropped, {info['n_holdout']} held out"
        f"{' (cached)' if trainset.from_cache else ''}.",
        file=sys.stderr,
    )
    if info.get("class_counts"):
        counts = ", ".join(f"{k} {v}" for k, v in info["class_counts"].items())
        print(f"Labels: {counts}; masks: {len(trainset.segment_names)} segment(s).", file=sys.stderr)
    config = _train_config(
        args, recipe, res, base, loaded.metadata if loaded else None, ts_config, checkpoint_dir
    )
    labelled: dict[str, Any] = {}
    if RECIPES[recipe].labelled:
        labelled = _labelled_inputs(trainset, config)
    request = TrainRequest(
        config,
        trainset.images,
        training_summary=info,
        out=out,
        init_model=loaded,
        resume_from=resume_from,
        patient_keys=tuple(str(k) for k in trainset.patient_keys),
        slice_levels=getattr(trainset, "levels", None),
        **labelled,
    )
    return _train_and_save(request, _listeners(args, config, TrainProgress(show_checkpoints=True)))


def _labelled_inputs(trainset: Any, config: Any) -> dict[str, Any]:
    """Labels and masks for a labelled recipe, checked now (a clear refusal before any network
    is built) and the slices left out said."""
    from medgan.train.labelled import prepare_labelled

    kwargs: dict[str, Any] = {
        "labels": trainset.labels,
        "class_names": tuple(trainset.class_names),
        "masks": trainset.masks,
        "mask_known": trainset.mask_known,
        "segment_names": tuple(trainset.segment_names),
    }
    data = prepare_labelled(
        config.recipe, trainset.images, class_pairs=config.class_pairs, **kwargs
    )
    for note in data.notices:
        print(f"Note: {note}", file=sys.stderr)
    table = data.table()
    if table["classes"]:
        pairs = zip(table["classes"], table["class_counts"], strict=True)
        counts = ", ".join(f"{k} {v}" for k, v in pairs)
        print(f"Training {config.recipe} on classes: {counts}.", file=sys.stderr)
    if table["segments"]:
        print(f"Masks drawn for: {', '.join(table['segments'])}.", file=sys.stderr)
    return kwargs


def _listeners(args: argparse.Namespace, config: Any, bar: Any) -> Any:
    """The progress bar plus the optional TensorBoard and CSV writers (plain listeners)."""
    from medgan.train.listeners import CsvMetricsWriter, TensorBoardWriter, fan_out

    extra: list[Any] = []
    if getattr(args, "tensorboard", None):
        settings = config.to_dict()
        settings.pop("checkpoint_dir", None)  # a local path
        extra.append(TensorBoardWriter(args.tensorboard, hparams=settings))
    if getattr(args, "metrics_csv", None):
        extra.append(CsvMetricsWriter(args.metrics_csv))
    return fan_out(bar, *extra) if extra else bar


def _describe_selection(selection: dict[str, Any]) -> str:
    """E.g. "generator of step 150, best SWD 58.2; trained 700 steps"."""
    chosen, trained = selection["selected_step"], selection["trained_steps"]
    swd = selection.get("selected_swd")
    text = f"generator of step {chosen}" + (f", SWD {swd:.1f}" if swd is not None else "")
    if chosen != trained:
        final = selection.get("final_swd")
        text += f"; the best measured, trained {trained} steps" + (
            f" (final SWD {final:.1f})" if final is not None else ""
        )
    return text


def _train_and_save(request: TrainRequest, bar: Any) -> int:
    stop = threading.Event()
    with _StopOnSignals(stop) as signals:
        outcome: TrainOutcome = train_and_save(request, on_event=bar, stop=stop)
    if outcome.status == "failed":
        where = (
            f" The last good checkpoint is {outcome.checkpoint_path}."
            if outcome.checkpoint_path
            else ""
        )
        print(
            f"medgan: training failed at step {outcome.step}: {outcome.message}{where}"
            + (f" {outcome.advice}" if outcome.advice else ""),
            file=sys.stderr,
        )
        return 1
    if outcome.checkpoint_failures:
        print(
            f"medgan: warning: {outcome.checkpoint_failures} checkpoint write(s) failed (see "
            f"above); the last complete checkpoint is {outcome.checkpoint_path or 'none'}.",
            file=sys.stderr,
        )
    if outcome.status == "cancelled":
        print(
            f"Stopped at step {outcome.step}. Model written to {outcome.model_path}; continue "
            f"with --resume {outcome.checkpoint_path or request.config.checkpoint_dir}.",
            file=sys.stderr,
        )
        return 128 + (signals.signum or signal.SIGINT)
    print(
        f"Model written to {outcome.model_path} ({_describe_selection(outcome.selection)}).",
        file=sys.stderr,
    )
    return 0
