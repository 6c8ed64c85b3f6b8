"""``export_set``: write kept synthetic slices (and optionally real ones) atomically, with a
manifest and README, reporting progress and honouring cancel."""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from medgan import __version__
from medgan.core.errors import Cancelled, ExportError
from medgan.dicom.window import Window, to_modality
from medgan.export.atomic import AtomicFolder
from medgan.export.base import SYNTHETIC_NOTICE, SliceRecord, WriterContext, make_writer
from medgan.export.config import ExportConfig
from medgan.export.items import Provenance, SliceSet
from medgan.export.labelled.checks import check_labelled, label_tables
from medgan.export.manifest import (
    MANIFEST_VERSION,
    ManifestRow,
    readme_text,
    write_csv,
    write_json,
)
from medgan.export.values import Encoding

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], Any]
STACK_FORMATS = ("npy", "npz", "nifti-stack")


@dataclass
class ExportResult:
    """What an export wrote. ``files`` are relative to ``path``, in manifest order."""

    path: Path
    format: str
    n_synthetic: int
    n_real: int
    n_rejected: int
    files: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)


def _records(
    sset: SliceSet, start: int, window: Window | None, batch_size: int
) -> Iterator[list[SliceRecord]]:
    kept = sset.kept
    for lo in range(0, len(kept), batch_size):
        chosen = kept[lo : lo + batch_size]
        if sset.modality is not None:
            modality = sset.modality[chosen]
        else:  # converted per batch: no second full-size copy of a large set
            modality = to_modality(sset.images[chosen], window)
        batch = []
        for offset, i in enumerate(chosen):
            batch.append(
                SliceRecord(
                    number=start + lo + offset,
                    kind=sset.kind,
                    seed=None if sset.seeds is None else int(sset.seeds[i]),
                    index=None if sset.indices is None else int(sset.indices[i]),
                    normalized=sset.images[i],
                    modality=modality[offset],
                    scores={k: float(v[i]) for k, v in sset.scores.items()},
                    label=_label_of(sset, i),
                    mask=_mask_of(sset, i),
                )
            )
        yield batch


def _label_of(sset: SliceSet, i: int) -> int | None:
    if sset.labels is None or sset.labels[i] < 0:
        return None
    return int(sset.labels[i])


def _mask_of(sset: SliceSet, i: int) -> np.ndarray | None:
    if sset.masks is None or sset.mask_present is None or not sset.mask_present[i]:
        return None
    return sset.masks[i]


def _row(
    record: SliceRecord,
    file: str,
    sset: SliceSet,
    i: int,
    stacked: bool,
    mask_file: str = "",
    class_names: tuple[str, ...] = (),
) -> ManifestRow:
    label = None if record.label is None else class_names[record.label]
    return ManifestRow(
        label=label,
        mask_file=mask_file,
        file=file,
        kind=record.kind,
        seed=record.seed,
        index=record.index,
        stack_index=record.number if stacked else None,
        decision="kept",
        reasons="" if sset.reasons is None else sset.reasons[i],
        memorization_override=bool(sset.override is not None and sset.override[i]),
        scores=record.scores,
    )


def _rejected_rows(sset: SliceSet, class_names: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    if sset.keep is None:
        return []
    rows = []
    for i in np.flatnonzero(~sset.keep.astype(bool)):
        k = _label_of(sset, int(i))
        rows.append(
            ManifestRow(
                label=None if k is None or k >= len(class_names) else class_names[k],
                file="",
                kind=sset.kind,
                seed=None if sset.seeds is None else int(sset.seeds[i]),
                index=None if sset.indices is None else int(sset.indices[i]),
                decision="rejected",
                reasons="" if sset.reasons is None else sset.reasons[i],
                scores={k: float(v[i]) for k, v in sset.scores.items()},
            ).to_dict()
        )
    return rows


def export_set(
    synthetic: SliceSet,
    config: ExportConfig,
    provenance: Provenance,
    *,
    real: SliceSet | None = None,
    filter_settings: dict[str, Any] | None = None,
    memorization: dict[str, Any] | None = None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    batch_size: int = 64,
    durable: bool = True,
    class_names: tuple[str, ...] | list[str] = (),
    segment_names: tuple[str, ...] | list[str] = (),
) -> ExportResult:
    """Write an export folder at ``config.destination``, all or nothing.

    Args:
        synthetic: generated slices with scores and decisions (only kept ones are written).
        config: format, destination, overwrite, 16-bit mode, synthetic patient identity.
        provenance: model hash, recipe, seed, window and spacing (never patient data).
        real: preprocessed training slices, written when ``config.include_real`` is set.
        filter_settings: the filter configuration, recorded in the manifest.
        memorization: ``{"checked": bool, "override": bool, ...}`` for the manifest/README.
        progress: ``progress(done, total)`` after each batch.
        cancel: set it to stop; the partial export is removed and ``Cancelled`` raised.
        durable: fsync every file before the final rename.
        class_names / segment_names: the class table the sets' ``labels`` index into, and the
            segment table of their ``masks`` (value ``k`` = ``segment_names[k - 1]``).

    Raises:
        ExportError: destination exists (without overwrite), disk full, read-only, path too
            long; nothing is left behind.
        Cancelled: ``cancel`` was set.
    """
    if synthetic.kind != "synthetic":
        raise ExportError("The first argument of export_set must hold synthetic slices.")
    if config.include_real and real is None:
        raise ExportError(
            "Including real slices was requested but no training slices were given.",
            advice="Give the training data (--data) or turn off 'include real'.",
        )
    real_set = real if (config.include_real and real is not None) else None
    if real_set is not None and real_set.kind != "real":
        raise ExportError("Real slices must be marked kind='real'.")
    class_names, segment_names = tuple(class_names), tuple(segment_names)
    sets = [synthetic] + ([real_set] if real_set is not None else [])
    check_labelled(sets, config.format, class_names, segment_names)
    labelled = any(s.labels is not None or s.masks is not None for s in sets)
    n_syn = len(synthetic.kept)
    n_real = 0 if real_set is None else len(real_set.kept)
    total = n_syn + n_real
    window = config.window if config.window is not None else provenance.window
    encoding = Encoding(window=window, offset=config.offset, bit_mode=config.bit_mode)
    created = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    stacked = config.format in STACK_FORMATS
    memo = dict(memorization or {"checked": False, "override": False})
    overridden = (
        0
        if synthetic.override is None
        else int(np.count_nonzero(synthetic.override[synthetic.kept]))
    )
    memo.setdefault("n_overridden", overridden)
    log.info("Exporting %d synthetic and %d real slices as %s", n_syn, n_real, config.format)

    with AtomicFolder(config.destination, overwrite=config.overwrite, durable=durable) as tmp:
        ctx = WriterContext(
            folder=tmp,
            config=config,
            provenance=provenance,
            encoding=encoding,
            total=total,
            n_synthetic=n_syn,
            n_real=n_real,
            app_version=__version__,
            created_utc=created.isoformat().replace("+00:00", "Z"),
            class_names=class_names,
            segment_names=segment_names,
        )
        writer = make_writer(ctx)
        rows: list[ManifestRow] = []
        done = 0
        if progress is not None:
            progress(0, total)
        try:
            sources = [(synthetic, 0)] + ([(real_set, n_syn)] if real_set is not None else [])
            for sset, start in sources:
                kept = sset.kept
                for batch in _records(sset, start, window, batch_size):
                    if cancel is not None and cancel.is_set():
                        raise Cancelled("Export cancelled; nothing was written.")
                    names = writer.write_labelled(batch)
                    for record, (name, mask_name) in zip(batch, names, strict=True):
                        i = int(kept[record.number - start])
                        rows.append(_row(record, name, sset, i, stacked, mask_name, class_names))
                    done += len(batch)
                    if progress is not None:
                        progress(done, total)
            if cancel is not None and cancel.is_set():
                raise Cancelled("Export cancelled; nothing was written.")
            extra_files = writer.close()
        except BaseException:
            writer.abort()
            raise
        finally:
            writer.shutdown()
        document = {
            "medgan_export": MANIFEST_VERSION,
            "notice": SYNTHETIC_NOTICE,
            "app": {"name": "MedGAN Studio", "version": __version__},
            "created_utc": ctx.created_utc,
            "model": provenance.to_dict(),
            "recipe": provenance.recipe,
            "export": {**config.to_dict(), **ctx.details},
            "filters": filter_settings or {},
            "memorization": memo,
            "counts": {
                "synthetic_generated": len(synthetic),
                "synthetic_exported": n_syn,
                "synthetic_rejected": len(synthetic) - n_syn,
                "real_exported": n_real,
            },
            "files": [row.to_dict() for row in rows],
            "rejected": _rejected_rows(synthetic, class_names),
        }
        if labelled:
            document.update(label_tables(sets, class_names, segment_names, ctx.details))
        write_csv(tmp / "manifest.csv", rows, labelled=labelled)
        write_json(tmp / "manifest.json", document)
        (tmp / "README.md").write_text(readme_text(document), encoding="utf-8")

    dest = Path(config.destination).expanduser().absolute()
    masks = [row.mask_file for row in rows if row.mask_file]
    files = list(dict.fromkeys([row.file for row in rows] + masks + extra_files))
    return ExportResult(
        path=dest,
        format=config.format,
        n_synthetic=n_syn,
        n_real=n_real,
        n_rejected=len(synthetic) - n_syn,
        files=files,
        details=dict(ctx.details),
    )
