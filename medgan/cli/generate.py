"""``medgan generate``: sample a model, score and filter the samples, export them.

Flow (each step a :mod:`medgan.workflows` job, shared with the GUI): check the destination →
with ``--data``: rebuild the training slices with the model's settings and window → generate
(seeded) and score every sample against them (realism, memorization guard, duplicates,
intensity) → curate → export atomically with a manifest.

Memorization guard without training data: the guard needs the slices the model learned from,
which a model file deliberately does not contain. Without ``--data`` the command therefore
refuses to export, unless ``--allow-memorized`` is given; then it exports unchecked samples
(realism still comes from the model's discriminator) and the manifest and README say that
the guard did not run.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Any

from medgan.cli._stages import stage_bars
from medgan.cli.labels import add_label_arguments
from medgan.core.errors import ExportError
from medgan.curate.filters import FilterConfig
from medgan.dicom.window import Window
from medgan.export import ExportConfig, check_destination
from medgan.export.config import ALL_FORMATS, NEEDS_LABELS, NEEDS_MASKS
from medgan.models.modelfile import read_metadata
from medgan.workflows.curation import CurateRequest, curate
from medgan.workflows.dataset import TrainingSetRequest, build_training_set, config_for_model
from medgan.workflows.exporting import ExportRequest, export_curated
from medgan.workflows.generation import GenerateRequest, generate_and_score

log = logging.getLogger(__name__)

FORMAT_CHOICES = ALL_FORMATS  # labelled ones: imagefolder|pairs-png|pairs-nifti|nnunet|monai


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "generate",
        help="generate, score, filter and export synthetic slices",
        description=(
            "Generate N synthetic slices from a model file, score them (realism, memorization, "
            "duplicates), keep the good ones and export them with a manifest. The memorization "
            "guard needs the training data (--data); without it the export is refused unless "
            "--allow-memorized is given."
        ),
    )
    p.add_argument("--model", required=True, help="model file (.safetensors)")
    p.add_argument("-n", type=int, default=None,
                   help="number of slices to generate (a conditional model splits them evenly "
                        "over its classes, or by --class-share)")  # fmt: skip
    p.add_argument("--per-class", default=None, metavar="CLASS=N,...",
                   help="class-conditional models: slices per class, e.g. "
                        "haemorrhage=500,normal=500 (class names as in the labels)")  # fmt: skip
    p.add_argument("--class-share", default=None, metavar="CLASS=W,...",
                   help="class-conditional models: split -n by these weights, e.g. "
                        "lesion=1,normal=3")  # fmt: skip
    p.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    p.add_argument("--out", required=True, help="export folder to create (must not exist)")
    p.add_argument("--format", choices=FORMAT_CHOICES, default="png",
                   help="export format; labelled sets also: imagefolder (class folders), "
                        "pairs-png, pairs-nifti, nnunet, monai (image + mask), dicom (+ a SEG "
                        "per image with masks)")  # fmt: skip
    p.add_argument("--keep-top", type=int, default=None, metavar="K",
                   help="keep only the K most realistic slices")  # fmt: skip
    p.add_argument("--min-realism", type=float, default=None, metavar="X",
                   help="drop slices with realism below X (0..1)")  # fmt: skip
    p.add_argument("--allow-memorized", action="store_true",
                   help="export slices even if they are near-copies of training slices "
                        "(or unchecked, without --data); recorded in the manifest")  # fmt: skip
    p.add_argument("--no-dedupe", action="store_true", help="keep near-duplicate samples")
    p.add_argument("--keep-top-per-class", type=int, default=None, metavar="K",
                   help="labelled sets: keep the K most realistic slices of each class")  # fmt: skip
    p.add_argument("--min-label-fidelity", type=float, default=None, metavar="P",
                   help="labelled sets: drop slices whose intended class a classifier trained "
                        "on the real labelled slices gives a probability below P (0..1)")  # fmt: skip
    p.add_argument("--keep-implausible-masks", action="store_true",
                   help="sets with masks: keep masks outside the body or of unusual size")  # fmt: skip
    p.add_argument("--data", help="DICOM folder the model was trained on (for the guard)")
    p.add_argument("--series", nargs="+", default=None, metavar="UID",
                   help="series of --data to use (default: all trainable series)")  # fmt: skip
    p.add_argument("--include-real", action="store_true",
                   help="also export the preprocessed real training slices (needs --data)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out folder (atomically, once complete)")  # fmt: skip
    p.add_argument("--batch", type=int, default=64, help="generation batch size")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--bit-mode", choices=("modality", "windowed"), default="modality",
                   help="16-bit PNG/TIFF values: modality units + offset, or windowed")  # fmt: skip
    p.add_argument("--offset", type=int, default=32768,
                   help="offset added to modality units in 16-bit files (default 32768)")  # fmt: skip
    p.add_argument("--window", default=None, metavar="C,W",
                   help="window center,width for 8-bit PNG (default: the model's window)")  # fmt: skip
    p.add_argument("--patient-name", default="SYNTHETIC^MEDGAN", help="DICOM patient name")
    p.add_argument("--patient-id", default="SYNTH0001", help="DICOM patient ID")
    add_label_arguments(p)  # labels/masks of --data, for labelled models
    p.set_defaults(func=run)


def _parse_window(text: str | None) -> Window | None:
    if not text:
        return None
    try:
        center, width = (float(v) for v in text.split(","))
        return Window(center, width)
    except ValueError as exc:
        raise ExportError(
            f"Cannot read window {text!r}.", advice="Write it as center,width (width > 0)."
        ) from exc


def parse_class_values(text: str, what: str, kind: type = int) -> dict[str, Any]:
    """``"a=500,b=500"`` → ``{"a": 500, "b": 500}`` (class names may hold spaces)."""
    out: dict[str, Any] = {}
    for part in (p for p in text.split(",") if p.strip()):
        name, sep, value = part.rpartition("=")
        try:
            if not sep or not name.strip():
                raise ValueError(part)
            number = kind(value.strip())
        except ValueError as exc:
            raise ExportError(
                f"Cannot read {what} {part.strip()!r}.",
                advice=f"Write {what} as CLASS=NUMBER pairs separated by commas, e.g. "
                "lesion=200,normal=200.",
            ) from exc
        if number < 0:
            raise ExportError(f"{what} must not be negative ({part.strip()}).")
        out[name.strip()] = number
    if not out:
        raise ExportError(f"{what} is empty.", advice="For example lesion=200,normal=200.")
    return out


def _class_request(args: argparse.Namespace) -> dict[str, Any]:
    """``per_class`` / ``class_proportions`` for the request, and the total count in ``n``."""
    if args.per_class and (args.class_share or args.n is not None):
        raise ExportError(
            "--per-class gives the count of every class; leave out -n and --class-share."
        )
    if args.per_class:
        per = parse_class_values(args.per_class, "--per-class")
        if sum(per.values()) < 1:
            raise ExportError("--per-class asks for no slices at all.")
        return {"per_class": per, "n": sum(per.values())}
    if args.n is None:
        raise ExportError(
            "Say how many slices to generate.",
            advice="Give -n N, or --per-class CLASS=N,... for a class-conditional model.",
        )
    if args.class_share:
        return {
            "class_proportions": parse_class_values(args.class_share, "--class-share", float),
            "n": args.n,
        }
    return {"n": args.n}


def _check_args(args: argparse.Namespace) -> None:
    args.classes = _class_request(args)
    args.n = args.classes["n"]
    if args.n < 1:
        raise ExportError("-n must be at least 1.")
    if args.batch < 1:
        raise ExportError("--batch must be at least 1.")
    if args.include_real and not args.data:
        raise ExportError(
            "--include-real needs the training data.", advice="Add --data DIR (and --series)."
        )
    if args.series and not args.data:
        raise ExportError("--series selects series of --data; add --data DIR.")
    if not args.data and not args.allow_memorized:
        raise ExportError(
            "Without the training data the memorization guard cannot check whether a sample "
            "is a near-copy of a patient's slice, so nothing was exported.",
            advice="Add --data DIR (the DICOM folder the model was trained on), or pass "
                   "--allow-memorized to export unchecked samples (recorded in the manifest).",
        )  # fmt: skip


def _check_labelled_format(args: argparse.Namespace, meta: Any) -> None:
    """Refuse a labelled format for a model that draws no classes / masks (before any work)."""
    if args.format in NEEDS_LABELS and not getattr(meta, "classes", None):
        raise ExportError(
            f"--format {args.format} needs a class per slice, but this model draws no classes.",
            advice="Use a model trained with labels (recipe conditional), or an unlabelled "
            "format such as png.",
        )
    labelled = bool(getattr(meta, "classes", None))
    for flag, value in (("--keep-top-per-class", args.keep_top_per_class),
                        ("--min-label-fidelity", args.min_label_fidelity)):  # fmt: skip
        if value is not None and not labelled:
            raise ExportError(
                f"{flag} needs a labelled set, but this model draws no classes.",
                advice="Use a model trained with labels, or --keep-top / --min-realism.",
            )
    if args.min_label_fidelity is not None and not args.data:
        raise ExportError(
            "--min-label-fidelity needs the labelled training data to train its classifier.",
            advice="Add --data DIR (with its labels), or leave out --min-label-fidelity.",
        )
    if args.format in NEEDS_MASKS and not getattr(meta, "segments", None):
        raise ExportError(
            f"--format {args.format} needs a mask per slice, but this model draws no masks.",
            advice="Use a model trained on images with masks (recipe paired), or choose "
            "imagefolder, png, nifti or dicom.",
        )


def _reference(args: argparse.Namespace, meta: Any, bars: Any) -> dict[str, Any]:
    """The training slices of --data (with their labels and masks for a labelled model)."""
    config = config_for_model(meta, holdout=False)
    if not (getattr(meta, "classes", None) or getattr(meta, "segments", None)):
        built = build_training_set(
            TrainingSetRequest(config=config, folder=args.data, series_uids=args.series),
            progress=bars,
        )
        for note in built.notes:
            print(note, file=sys.stderr)
        ts = built.training_set
        return {"reference_images": ts.images, "reference_keys": ts.patient_keys}
    from medgan.dataset.training_set import build_training_set as build_labelled
    from medgan.dicom.index import scan_folder
    from medgan.dicom.labels import load_labels
    from medgan.workflows.dataset import select_series

    scan = scan_folder(args.data)
    series, notes = select_series(scan, args.series)
    for note in notes:
        print(note, file=sys.stderr)
    labels = load_labels(
        scan, csv_files=args.labels, mask_files=args.masks,
        auto=not args.no_auto_labels, min_area=args.min_area,
    )  # fmt: skip
    for problem in labels.problems[:20]:
        print(f"label problem: {problem.text()}", file=sys.stderr)
    ts = build_labelled(series, config, labels=labels)
    return {
        "reference_images": ts.images, "reference_keys": ts.patient_keys,
        "reference_labels": ts.labels, "reference_masks": ts.masks,
        "reference_mask_known": ts.mask_known, "class_names": ts.class_names,
        "segment_names": ts.segment_names,
    }  # fmt: skip


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    meta = read_metadata(args.model)
    _check_labelled_format(args, meta)
    config = ExportConfig(
        format=args.format, destination=args.out, overwrite=args.overwrite,
        include_real=args.include_real, patient_name=args.patient_name,
        patient_id=args.patient_id, bit_mode=args.bit_mode, offset=args.offset,
        window=_parse_window(args.window),
    )  # fmt: skip
    check_destination(args.out, overwrite=args.overwrite)  # fail before the slow work
    bars = stage_bars()

    reference = _reference(args, meta, bars) if args.data else {}
    generation = generate_and_score(
        GenerateRequest(
            model_path=args.model, seed=args.seed, batch_size=args.batch,
            device=args.device, **reference, **args.classes,
        ),
        progress=bars,
    )  # fmt: skip
    curated = curate(
        CurateRequest(
            n=args.n, scores=generation.scores, realism=generation.realism,
            filters=FilterConfig(
                min_realism=args.min_realism, keep_top_k=args.keep_top,
                dedupe=not args.no_dedupe, allow_memorized=args.allow_memorized,
                per_class_keep_top=args.keep_top_per_class,
                min_label_fidelity=args.min_label_fidelity,
                drop_implausible_masks=not args.keep_implausible_masks,
            ),
        )
    )  # fmt: skip
    decisions = curated.decisions
    result = export_curated(
        ExportRequest(generation=generation, decisions=decisions, config=config), progress=bars
    )
    rejected = ", ".join(f"{v} {k}" for k, v in decisions.counts.items() if v) or "none"
    print(
        f"Exported {result.n_synthetic} of {args.n} synthetic slices"
        + (f" and {result.n_real} real slices" if result.n_real else "")
        + f" as {args.format} to {result.path} (rejected: {rejected})."
    )
    if generation.scores is None:
        print(
            "Warning: the memorization guard did not run (no --data); the manifest says so.",
            file=sys.stderr,
        )
    elif decisions.overridden.any():
        print(
            f"Warning: {int(decisions.overridden.sum())} slice(s) close to a training slice were "
            "kept because of --allow-memorized (marked in the manifest).",
            file=sys.stderr,
        )
    return 0


__all__ = ["register", "run"]
