"""``medgan generate``: sample a model, score and filter the samples, export them.

Flow: check the destination → load the model → generate (seeded) → with ``--data``: rebuild
the training slices with the model's window and score every sample against them (realism,
memorization guard, duplicates, intensity) → filter → export atomically with a manifest.

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

import numpy as np

from medgan.core.errors import DataError, ExportError

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


def _parse_window(text: str | None) -> tuple[float, float] | None:
    if not text:
        return None
    try:
        center, width = (float(v) for v in text.split(","))
    except ValueError as exc:
        raise ExportError(
            f"Cannot read window {text!r}.", advice="Write it as center,width."
        ) from exc
    return center, width


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


def _training_slices(args: argparse.Namespace, metadata: Any) -> Any:
    """Rebuild the training slices from --data with the model's resolution and window."""
    from medgan.cli.progress import CountProgress
    from medgan.dataset.training_set import TrainingSetConfig, build_training_set
    from medgan.dicom.index import scan_folder

    scan = scan_folder(args.data, progress=CountProgress("Scanning", unit="files"))
    if args.series:
        chosen = []
        for uid in args.series:
            try:
                chosen.append(scan.series_by_uid(uid))
            except KeyError:
                raise DataError(
                    f"Series {uid} is not in {args.data}.",
                    advice="Run 'medgan scan' to list the series UIDs.",
                ) from None
    else:
        chosen = [s for s in scan.series if s.trainable]
    if not chosen:
        raise DataError(f"No trainable series in {args.data}.")
    summary = getattr(metadata, "training_summary", {}) or {}
    trained_cfg = dict(summary.get("config") or {})
    kwargs: dict[str, Any] = {"resolution": int(metadata.resolution), "holdout_fraction": 0.0}
    for key in ("foreground_level", "min_foreground"):
        if key in trained_cfg:
            kwargs[key] = trained_cfg[key]
    if metadata.window is not None:
        kwargs["window_center"], kwargs["window_width"] = metadata.window
    else:
        log.warning("The model file records no window; the training slices use an automatic one.")
    config = TrainingSetConfig(**kwargs)
    return build_training_set(chosen, config, progress=CountProgress("Preparing", unit="slices"))


def _filters_without_data(realism: np.ndarray, args: argparse.Namespace) -> Any:
    """Keep mask and reasons from realism only (no training data: no guard, no NN scores)."""
    n = len(realism)
    keep = np.ones(n, bool)
    reasons = ["" for _ in range(n)]
    score = np.nan_to_num(realism.astype(np.float64), nan=-np.inf)
    if args.min_realism is not None:
        for i in np.flatnonzero(score < args.min_realism):
            keep[i] = False
            reasons[i] = f"discriminator realism {score[i]:.3f} < minimum {args.min_realism:.3f}"
    if args.keep_top is not None:
        survivors = np.flatnonzero(keep)
        order = survivors[np.argsort(-score[survivors], kind="stable")]
        for rank, i in enumerate(order[args.keep_top :], start=args.keep_top + 1):
            keep[i] = False
            reasons[i] = f"not in the top {args.keep_top} by discriminator realism (rank {rank})"
    settings = {
        "config": {"min_realism": args.min_realism, "keep_top_k": args.keep_top,
                   "allow_memorized": True},
        "memorization_guard": "not run (no training data; --allow-memorized)",
        "n_total": n, "n_kept": int(keep.sum()),
    }  # fmt: skip
    return keep, reasons, settings


def run(args: argparse.Namespace) -> int:
    from medgan.cli.progress import CountProgress
    from medgan.export import (
        ExportConfig,
        SliceSet,
        check_destination,
        export_set,
        provenance_from_model,
        real_from_training,
        synthetic_from_engine,
    )
    from medgan.generate.sampling import generate, load_generator
    from medgan.models.modelfile import load_model

    _check_args(args)
    config = ExportConfig(
        format=args.format, destination=args.out, overwrite=args.overwrite,
        include_real=args.include_real, patient_name=args.patient_name,
        patient_id=args.patient_id, bit_mode=args.bit_mode, offset=args.offset,
        window=_parse_window(args.window),
    )  # fmt: skip
    check_destination(args.out, overwrite=args.overwrite)  # fail before the slow work

    loaded = load_model(args.model)
    meta = loaded.metadata
    generator = load_generator(loaded, device=args.device)
    generated = generate(
        generator, args.n, seed=args.seed, batch_size=args.batch, device=args.device,
        progress=CountProgress("Generating", unit="slices"),
    )  # fmt: skip
    provenance = provenance_from_model(
        args.model, meta, seed=args.seed,
        extra={"generation": {"n": args.n, "seed": args.seed, "start_index": 0}},
    )  # fmt: skip

    real: SliceSet | None = None
    if args.data:
        from medgan.curate.filters import FilterConfig, apply_filters
        from medgan.curate.score import score_samples

        training = _training_slices(args, meta)
        scores = score_samples(
            generated.images, training.images, training_patient_keys=training.patient_keys,
            discriminator=loaded if "discriminator" in loaded.state else None,
            device=args.device, progress=CountProgress("Scoring"),
        )  # fmt: skip
        decisions = apply_filters(scores, FilterConfig(
            min_realism=args.min_realism, keep_top_k=args.keep_top,
            dedupe=not args.no_dedupe, allow_memorized=args.allow_memorized,
        ))  # fmt: skip
        synthetic = synthetic_from_engine(generated, scores, decisions)
        filter_settings = {**decisions.to_dict(), "scoring": scores.calibration_dict()}
        memorization = {
            "checked": True,
            "override": bool(args.allow_memorized),
            "n_memorized": int(np.count_nonzero(decisions.memorized)),
            "n_overridden": int(np.count_nonzero(decisions.overridden)),
            "n_training_slices": int(len(training.images)),
        }
        if args.include_real:
            real = real_from_training(training.images)
        rejected_by = decisions.counts
    else:
        from medgan.curate.score import discriminator_realism

        if "discriminator" in loaded.state:
            logits = discriminator_realism(loaded, device=args.device)(generated.images)
            realism = (1.0 / (1.0 + np.exp(-logits.astype(np.float64)))).astype(np.float64)
        else:
            realism = np.full(args.n, np.nan)
            if args.min_realism is not None or args.keep_top is not None:
                raise ExportError(
                    "This model file holds no discriminator, so realism cannot be scored.",
                    advice="Add --data to score by distance, or drop --min-realism/--keep-top.",
                )
        keep, reasons, filter_settings = _filters_without_data(realism, args)
        synthetic = SliceSet(
            generated.images, modality=generated.modality,
            seeds=np.full(args.n, args.seed), indices=generated.indices,
            scores={"realism": realism}, keep=keep, reasons=reasons,
        )  # fmt: skip
        memorization = {"checked": False, "override": True,
                        "note": "no training data given; exported with --allow-memorized"}  # fmt: skip
        rejected_by = {"low_realism/top_k": int((~keep).sum())}

    n_kept = len(synthetic.kept)
    if n_kept == 0:
        detail = ", ".join(f"{k}: {v}" for k, v in rejected_by.items() if v)
        raise ExportError(
            f"None of the {args.n} generated slices passed the filters ({detail}); "
            "nothing was exported.",
            advice="Generate more slices, relax --min-realism/--keep-top, or train longer.",
        )
    result = export_set(
        synthetic, config, provenance, real=real, filter_settings=filter_settings,
        memorization=memorization, progress=CountProgress("Exporting", unit="slices"),
    )  # fmt: skip
    rejected = ", ".join(f"{v} {k}" for k, v in rejected_by.items() if v) or "none"
    print(
        f"Exported {result.n_synthetic} of {args.n} synthetic slices"
        + (f" and {result.n_real} real slices" if result.n_real else "")
        + f" as {args.format} to {result.path} (rejected: {rejected})."
    )
    if not memorization["checked"]:
        print(
            "Warning: the memorization guard did not run (no --data); the manifest says so.",
            file=sys.stderr,
        )
    elif memorization.get("n_overridden"):
        print(
            f"Warning: {memorization['n_overridden']} slice(s) close to a training slice were "
            "kept because of --allow-memorized (marked in the manifest).",
            file=sys.stderr,
        )
    return 0


__all__ = ["register", "run"]
