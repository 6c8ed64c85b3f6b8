"""Plain values of the label sources: per-slice class labels, per-slice masks, problems.

Every source (CSV, the user's label file, DICOM SEG, RTSTRUCT, NIfTI) turns into these, keyed
by series UID and by the index of the image in the series' sorted order (``SeriesRecord.images``).
Fields may be added; none is removed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

NO_LABEL = "none"  # class of a slice that holds no segment (labels derived from masks)


@dataclass(frozen=True)
class LabelProblem:
    """A label row or mask that could not be used, with the file (and row) and the reason."""

    source: str
    reason: str
    row: int | None = None  # 1-based line number in a CSV file

    def text(self) -> str:
        where = f"{self.source}, row {self.row}" if self.row is not None else self.source
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class ClassTable:
    """Class names; a slice's label is the index of its name here."""

    names: tuple[str, ...]

    def index(self, name: str) -> int:
        return self.names.index(name)

    def __len__(self) -> int:
        return len(self.names)


@dataclass
class SeriesMasks:
    """Masks of one series from one source: pixel value k > 0 is ``segments[k - 1]``."""

    series_uid: str
    source: str
    kind: str  # "SEG", "RTSTRUCT" or "NIfTI"
    segments: list[str]
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # image index → uint8 (rows, cols)

    def areas(self) -> dict[str, int]:
        """Slices (not pixels) per segment: how many slices show each segment."""
        out: Counter[str] = Counter()
        for mask in self.masks.values():
            for value in np.unique(mask):
                if value:
                    out[self.segments[int(value) - 1]] += 1
        return dict(out)


@dataclass
class LabelSet:
    """Everything the label sources gave for one scan, plus what could not be matched."""

    labels: dict[str, dict[int, str]] = field(default_factory=dict)  # series → index → class
    masks: dict[str, list[SeriesMasks]] = field(default_factory=dict)  # series → mask sets
    problems: list[LabelProblem] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)  # files read, in order

    def add_masks(self, item: SeriesMasks) -> None:
        self.masks.setdefault(item.series_uid, []).append(item)

    def set_label(self, series_uid: str, index: int, name: str) -> None:
        self.labels.setdefault(series_uid, {})[index] = name

    def update(self, other: LabelSet) -> None:
        """Add ``other``'s labels (its labels win on the same slice), masks and problems."""
        for uid, labels in other.labels.items():
            self.labels.setdefault(uid, {}).update(labels)
        for items in other.masks.values():
            for item in items:
                self.add_masks(item)
        self.problems.extend(other.problems)
        self.sources.extend(s for s in other.sources if s not in self.sources)

    def class_table(self) -> ClassTable:
        """Every class name used, sorted (``none`` first when present)."""
        names = {n for labels in self.labels.values() for n in labels.values()}
        ordered = sorted(names - {NO_LABEL})
        return ClassTable(((NO_LABEL,) if NO_LABEL in names else ()) + tuple(ordered))

    def segment_names(self) -> list[str]:
        """Every segment name of every mask set, sorted; pixel value k is name k - 1."""
        return sorted({n for items in self.masks.values() for m in items for n in m.segments})

    def label_counts(self, series_uid: str | None = None) -> dict[str, int]:
        """Slices per class name, for one series or all."""
        uids = [series_uid] if series_uid is not None else list(self.labels)
        return dict(Counter(n for uid in uids for n in self.labels.get(uid, {}).values()))

    def mask_counts(self, series_uid: str) -> dict[str, int]:
        """Slices per segment name of one series (all mask sets together)."""
        total: Counter[str] = Counter()
        for item in self.masks.get(series_uid, []):
            total.update(item.areas())
        return dict(total)

    def mask_for(
        self, series_uid: str, index: int, names: list[str] | None = None
    ) -> np.ndarray | None:
        """The merged mask of one image, values = 1-based index into ``names``
        (default :meth:`segment_names`); None when no source covers the image."""
        items = [m for m in self.masks.get(series_uid, []) if index in m.masks]
        if not items:
            return None
        names = names if names is not None else self.segment_names()
        out: np.ndarray | None = None
        for item in items:
            mask = item.masks[index]
            lut = np.zeros(len(item.segments) + 1, np.uint8)
            for k, name in enumerate(item.segments, start=1):
                lut[k] = names.index(name) + 1 if name in names else 0
            mapped = lut[mask]
            out = mapped if out is None else np.where(mapped > 0, mapped, out)
        return out

    def masked_indices(self, series_uid: str) -> set[int]:
        return {i for m in self.masks.get(series_uid, []) for i in m.masks}
