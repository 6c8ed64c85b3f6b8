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
from medgan.core.errors import ExportError
from medgan.curate.filters import FilterConfig
from medgan.dicom.window import Window
from medgan.export import ExportConfig, check_destination
from medgan.models.modelfile import read_metadata
from medgan.workflows.curation import CurateRequest, curate
from medgan.workflows.dataset import TrainingSetRequest, build_training_set, config_for_model
from medgan.workflows.exporting import ExportRequest, export_curated
from medgan.workflows.generation import GenerateRequest, generate_and_score

log = logging.getLogger(__name__)

FORMAT_CHOICES = ("png", "png16", "tiff", "npy", "npz", "nifti", "nifti-stack", "dicom")


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
    p.add_argument("-n", type=int, required=True, help="number of slices to generate")
    p.add_argument("--seed", type=int, default=0, help="generation seed (default 0)")
    p.add_argument("--out", required=True, help="export folder to create (must not exist)")
    p.add_argument("--format", choices=FORMAT_CHOICES, default="png", help="export format")
    p.add_argument("--keep-top", type=int, default=None, metavar="K",
                   help="keep only the K most realistic slices")  # fmt: skip
    p.add_argument("--min-realism", type=float, default=None, metavar="X",
                   help="drop slices with realism below X (0..1)")  # fmt: skip
    p.add_argument("--allow-memorized", action="store_true",
                   help="export slices even if they are near-copies of training slices "
                        "(or unchecked, without --data); recorded in the manifest")  # fmt: skip
    p.add_argument("--no-dedupe", action="store_true", help="keep near-duplicate samples")
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


def _check_args(args: argparse.Namespace) -> None:
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


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    config = ExportConfig(
        format=args.format, destination=args.out, overwrite=args.overwrite,
        include_real=args.include_real, patient_name=args.patient_name,
        patient_id=args.patient_id, bit_mode=args.bit_mode, offset=args.offset,
        window=_parse_window(args.window),
    )  # fmt: skip
    check_destination(args.out, overwrite=args.overwrite)  # fail before the slow work
    bars = stage_bars()

    reference = keys = None
    if args.data:
        built = build_training_set(
            TrainingSetRequest(
                config=config_for_model(read_metadata(args.model), holdout=False),
                folder=args.data, series_uids=args.series,
            ),
            progress=bars,
        )  # fmt: skip
        for note in built.notes:
            print(note, file=sys.stderr)
        reference, keys = built.training_set.images, built.training_set.patient_keys
    generation = generate_and_score(
        GenerateRequest(
            model_path=args.model, n=args.n, seed=args.seed, batch_size=args.batch,
            device=args.device, reference_images=reference, reference_keys=keys,
        ),
        progress=bars,
    )  # fmt: skip
    curated = curate(
        CurateRequest(
            n=args.n, scores=generation.scores, realism=generation.realism,
            filters=FilterConfig(
                min_realism=args.min_realism, keep_top_k=args.keep_top,
                dedupe=not args.no_dedupe, allow_memorized=args.allow_memorized,
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
