"""Labels the user sets in the app, per series or per slice range, in a workspace JSON file.

The file lives in the user's workspace (``<config>/labels/<folder hash>.json``), never in the
DICOM folder, which may be read-only. Entries name a series UID and an optional range of
indices into its sorted images (``first``..``last``, inclusive); later entries win. It can be
exported as, and imported from, the CSV of :mod:`medgan.dicom.labels.csv_file`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from medgan.core.errors import DataError
from medgan.core.fileio import atomic_write_json
from medgan.core.privacy import config_dir
from medgan.dicom.labels.records import LabelProblem, LabelSet
from medgan.dicom.records import SeriesRecord

FORMAT = "medgan-labels"
VERSION = 1


@dataclass(frozen=True)
class LabelEntry:
    series_uid: str
    label: str
    first: int | None = None  # None: the whole series
    last: int | None = None  # inclusive


@dataclass
class UserLabels:
    """The user's label entries for one scanned folder."""

    entries: list[LabelEntry] = field(default_factory=list)

    def set_series(self, series_uid: str, label: str) -> None:
        self.entries = [e for e in self.entries if e.series_uid != series_uid]
        self.entries.append(LabelEntry(series_uid, label))

    def set_range(self, series_uid: str, first: int, last: int, label: str) -> None:
        lo, hi = sorted((int(first), int(last)))
        self.entries.append(LabelEntry(series_uid, label, lo, hi))

    def clear(self, series_uid: str) -> None:
        self.entries = [e for e in self.entries if e.series_uid != series_uid]

    def to_label_set(
        self, series: Sequence[SeriesRecord], *, source: str = "user labels"
    ) -> LabelSet:
        """Resolve the entries against the scan; entries for unknown series are problems."""
        by_uid = {s.series_uid: s for s in series}
        out = LabelSet(sources=[source])
        for e in self.entries:
            s = by_uid.get(e.series_uid)
            if s is None:
                out.problems.append(
                    LabelProblem(source, f"label {e.label!r} names a series not in this scan")
                )
                continue
            lo = 0 if e.first is None else max(0, e.first)
            hi = s.n_images - 1 if e.last is None else min(s.n_images - 1, e.last)
            for i in range(lo, hi + 1):
                out.set_label(e.series_uid, i, e.label)
        return out

    @classmethod
    def from_label_set(cls, labels: LabelSet) -> UserLabels:
        """One entry per run of consecutive slices with the same label (e.g. an imported CSV)."""
        out = cls()
        for uid, per_slice in labels.labels.items():
            run: list[int] = []
            for i in sorted(per_slice):
                if run and (i != run[-1] + 1 or per_slice[i] != per_slice[run[0]]):
                    out.set_range(uid, run[0], run[-1], per_slice[run[0]])
                    run = []
                run.append(i)
            if run:
                out.set_range(uid, run[0], run[-1], per_slice[run[0]])
        return out


def user_label_path(
    root: str | os.PathLike[str], workspace: str | os.PathLike[str] | None = None
) -> Path:
    """Where the user's labels for the folder ``root`` live (outside that folder)."""
    digest = hashlib.sha256(os.path.abspath(os.fspath(root)).encode()).hexdigest()[:16]
    base = Path(workspace) if workspace is not None else config_dir() / "labels"
    return base / f"{digest}.json"


def load_user_labels(path: str | os.PathLike[str]) -> UserLabels:
    """Read a label file; a missing file is an empty one."""
    p = Path(path)
    if not p.exists():
        return UserLabels()
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError("not a MedGAN label file")
        return UserLabels([LabelEntry(**e) for e in doc.get("entries", [])])
    except (OSError, ValueError, TypeError, AttributeError) as exc:
        raise DataError(
            f"Cannot read the label file {p}: {exc}.",
            advice="Delete it to start again, or restore it from a CSV export.",
        ) from exc


def save_user_labels(path: str | os.PathLike[str], labels: UserLabels) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(
        path,
        {"format": FORMAT, "version": VERSION, "entries": [asdict(e) for e in labels.entries]},
        indent=1,
    )
