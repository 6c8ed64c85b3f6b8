"""Workflow: DICOM series (or a folder) → training set, as the CLI and the GUI build it.

:func:`build_training_set` takes either the series the user ticked (GUI) or a folder plus
optional series UIDs (CLI), with per-series slice ranges. :func:`config_for_model` gives the
training-set settings a model file was trained with, so that ``generate`` and ``evaluate``
compare samples with the same slices the model learned from.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from medgan.core.errors import DataError
from medgan.dataset import training_set as _ts
from medgan.dataset.training_set import SliceRange, TrainingSet, TrainingSetConfig
from medgan.dicom.index import scan_folder
from medgan.dicom.records import ScanResult, SeriesRecord
from medgan.models.modelfile import ModelMetadata
from medgan.workflows.progress import StageProgress, stage

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainingSetRequest:
    """What to build from. Give ``series`` (already chosen) or ``folder`` (scanned first;
    ``series_uids`` picks series by UID or unique prefix, default: the trainable series of
    the main modality)."""

    config: TrainingSetConfig = field(default_factory=TrainingSetConfig)
    series: Sequence[SeriesRecord] = ()
    folder: str | None = None
    series_uids: Sequence[str] | None = None
    slice_ranges: Mapping[str, SliceRange] | None = None
    use_cache: bool = True


@dataclass
class TrainingSetResult:
    """The training set, the series it came from and notes for the user (never identifying)."""

    training_set: TrainingSet
    series: list[SeriesRecord]
    scan: ScanResult | None = None
    notes: list[str] = field(default_factory=list)


def select_series(
    scan: ScanResult, wanted: Sequence[str] | None
) -> tuple[list[SeriesRecord], list[str]]:
    """Series named by UID (or unique prefix), else all trainable ones of the main modality.

    Returns the series and notes (e.g. which modalities were left out).
    """
    if wanted:
        chosen = []
        for uid in wanted:
            matches = [s for s in scan.series if s.series_uid == uid] or [
                s for s in scan.series if s.series_uid.startswith(uid)
            ]
            if len(matches) != 1:
                raise DataError(
                    f"{'No' if not matches else 'More than one'} series matches {uid!r}.",
                    advice="Run `medgan scan DIR` to list the series UIDs.",
                )
            if not matches[0].trainable:
                raise DataError(f"Series {uid} cannot be trained on: {matches[0].reason}.")
            chosen.append(matches[0])
        return chosen, []
    trainable = [s for s in scan.series if s.trainable]
    if not trainable:
        reasons = sorted({s.reason or "not trainable" for s in scan.series})
        raise DataError(
            f"No trainable series in the folder ({len(scan.series)} series found"
            + (f": {'; '.join(reasons)}" if reasons else "")
            + ").",
            advice="Check the folder with `medgan scan DIR`.",
        )
    counts: Counter[str] = Counter()
    for s in trainable:
        counts[s.modality or "OT"] += s.n_images
    modality = counts.most_common(1)[0][0]
    chosen = [s for s in trainable if (s.modality or "OT") == modality]
    notes = []
    if len(chosen) < len(trainable):
        others = ", ".join(sorted(set(counts) - {modality}))
        notes.append(
            f"Using the {len(chosen)} {modality} series; leaving out {others} "
            "(one model per modality)."
        )
    return chosen, notes


def config_for_model(metadata: ModelMetadata, *, holdout: bool = True) -> TrainingSetConfig:
    """The training-set settings a model was trained with: its resolution and window, and the
    saved preprocessing (``train_config.extra.trainset``, else the training summary's config).

    ``holdout=False`` uses every patient (the memorization guard must see all of them).
    """
    extra = (metadata.train_config or {}).get("extra") or {}
    saved = dict(extra.get("trainset") or (metadata.training_summary or {}).get("config") or {})
    for key in ("window", "window_center", "window_width"):
        saved.pop(key, None)
    saved["resolution"] = int(metadata.resolution)
    if not holdout:
        saved["holdout_fraction"] = 0.0
    if metadata.window is not None:
        center, width = metadata.window
        saved.update(window_center=float(center), window_width=float(width))
    else:
        log.warning("The model file records no window; the training slices use the files' one.")
    return TrainingSetConfig.from_dict(saved)


def build_training_set(
    request: TrainingSetRequest,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
) -> TrainingSetResult:
    """Scan (when a folder is given), choose the series, decode, window and resize.

    Stages: ``scan`` (files) and ``prepare`` (slices).

    Raises:
        DataError: nothing to build from, unknown series, no usable slice.
        Cancelled: ``cancel`` was set.
    """
    scan = None
    notes: list[str] = []
    if request.series:
        series = list(request.series)
    elif request.folder:
        scan = scan_folder(request.folder, progress=stage(progress, "scan"), cancel=cancel)
        series, notes = select_series(scan, request.series_uids)
    else:
        raise DataError("No series chosen.", advice="Pick at least one series to learn from.")
    for note in notes:
        log.info(note)
    ts = _ts.build_training_set(
        series,
        request.config,
        slice_ranges=dict(request.slice_ranges) if request.slice_ranges else None,
        progress=stage(progress, "prepare"),
        cancel=cancel,
        use_cache=request.use_cache,
    )
    return TrainingSetResult(ts, series, scan, notes)
