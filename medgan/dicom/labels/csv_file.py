"""Slice labels from a CSV file: a ``label`` column and one key column.

Key columns: ``sop_instance_uid`` (one slice; ``frame``, 0-based, picks a frame of a
multi-frame file), ``series_instance_uid`` (every slice of the series) or ``path`` (a file,
relative to the CSV's folder or the scanned folder). Bad rows (unknown key, empty label,
duplicate key with a conflicting label) are listed one by one; the other rows are used.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path

from medgan.core.errors import DataError
from medgan.core.fileio import atomic_write_text
from medgan.dicom.labels.match import Hit, ImageLookup
from medgan.dicom.labels.records import LabelProblem, LabelSet
from medgan.dicom.records import SeriesRecord

KEY_COLUMNS = ("sop_instance_uid", "series_instance_uid", "path")
_ALIASES = {"sopinstanceuid": "sop_instance_uid", "seriesinstanceuid": "series_instance_uid",
            "file": "path", "class": "label"}  # fmt: skip


def _column(name: str) -> str:
    key = name.strip().lower().replace(" ", "_")
    return _ALIASES.get(key, key)


def read_csv_rows(
    path: str | os.PathLike[str],
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """The header (normalised names) and ``(line number, row)`` pairs of a label CSV."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(
            f"Cannot read the label file {path}: {exc}.",
            advice="Save it as a UTF-8 CSV with a 'label' column and a key column.",
        ) from exc
    try:
        dialect = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    rows = list(reader)
    if not rows:
        raise DataError(f"The label file {path} is empty.", advice="Add a header row.")
    header = [_column(h) for h in rows[0]]
    out = []
    for line, values in enumerate(rows[1:], start=2):
        if not any(v.strip() for v in values):
            continue
        out.append(
            (
                line,
                {h: (values[i].strip() if i < len(values) else "") for i, h in enumerate(header)},
            )
        )
    return header, out


def read_label_csv(
    path: str | os.PathLike[str], lookup: ImageLookup, *, source: str | None = None
) -> LabelSet:
    """Labels of a CSV matched to the scanned images; unmatched rows become problems."""
    name = source or os.fspath(path)
    header, rows = read_csv_rows(path)
    result = LabelSet(sources=[name])
    if "label" not in header or not any(k in header for k in KEY_COLUMNS):
        result.problems.append(
            LabelProblem(
                name,
                f"needs a 'label' column and one of {', '.join(KEY_COLUMNS)} "
                f"(found: {', '.join(h for h in header if h) or 'no columns'})",
            )
        )
        return result
    base = os.path.dirname(os.path.abspath(os.fspath(path)))
    given: dict[tuple[str, int], tuple[str, int]] = {}  # slice → (label, row)
    for line, row in rows:
        label = row.get("label", "")
        key_col = next((k for k in KEY_COLUMNS if row.get(k)), None)
        if key_col is None:
            result.problems.append(LabelProblem(name, "no key (UID or path) in this row", line))
            continue
        if not label:
            result.problems.append(LabelProblem(name, f"empty label for {key_col}", line))
            continue
        hits, why = _resolve(key_col, row, lookup, base)
        if not hits:
            result.problems.append(LabelProblem(name, why, line))
            continue
        for hit in hits:
            key = (hit.series_uid, hit.index)
            if key in given and given[key][0] != label:
                first_label, first_line = given[key]
                result.problems.append(
                    LabelProblem(
                        name,
                        f"conflicting label {label!r} for a slice labelled {first_label!r} "
                        f"in row {first_line}; the slice is left unlabelled",
                        line,
                    )
                )
                given[key] = ("", first_line)
                continue
            given.setdefault(key, (label, line))
    for (uid, index), (label, _line) in given.items():
        if label:
            result.set_label(uid, index, label)
    return result


def _resolve(
    key_col: str, row: dict[str, str], lookup: ImageLookup, base: str
) -> tuple[list[Hit], str]:
    value = row[key_col]
    frame: int | None = None
    if row.get("frame"):
        try:
            frame = int(row["frame"])
        except ValueError:
            return [], f"frame {row['frame']!r} is not a whole number"
    if key_col == "series_instance_uid":
        series = lookup.series.get(value)
        if series is None:
            return [], "unknown series_instance_uid (no scanned series has it)"
        return [Hit(value, i) for i in range(series.n_images)], ""
    if key_col == "sop_instance_uid":
        hit = lookup.by_sop(value, frame)
        return ([hit], "") if hit else ([], "unknown sop_instance_uid (no scanned image has it)")
    hit = lookup.by_path(value, frame, base)
    return ([hit], "") if hit else ([], "unknown path (no scanned image file there)")


def labels_to_csv_text(labels: LabelSet, series: Iterable[SeriesRecord]) -> str:
    """Labels as CSV text with ``sop_instance_uid,frame,label`` rows (readable back)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["sop_instance_uid", "frame", "label"])
    for s in series:
        for index, label in sorted(labels.labels.get(s.series_uid, {}).items()):
            ref = s.images[index]
            writer.writerow([ref.sop_instance_uid, "" if ref.frame is None else ref.frame, label])
    return buf.getvalue()


def write_label_csv(
    path: str | os.PathLike[str], labels: LabelSet, series: Iterable[SeriesRecord]
) -> None:
    """Write :func:`labels_to_csv_text` atomically (never into a folder the user did not pick)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, labels_to_csv_text(labels, series))
