"""Checks a labelled export passes before anything is written, and its manifest tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from medgan.core.errors import ExportError
from medgan.export.config import NEEDS_LABELS, NEEDS_MASKS
from medgan.export.items import SliceSet

_MASK_FREE = "png, png16, tiff, npy, npz, nifti, dicom or imagefolder"


def check_labelled(
    sets: Sequence[SliceSet],
    fmt: str,
    class_names: tuple[str, ...],
    segment_names: tuple[str, ...],
) -> None:
    """Refuse (with advice) a labelled format for sets that cannot fill it.

    Raises:
        ExportError: no labels / masks for a format that needs them, some kept slices without
            a class or a mask, labels or mask values outside their tables, duplicate names.
    """
    if len(set(class_names)) != len(class_names) or any(not str(n) for n in class_names):
        raise ExportError(
            "The class names must be distinct and not empty.",
            advice="Fix the label file (each class one distinct name) and build the set again.",
        )
    for s in sets:
        if s.labels is not None and len(s.labels):
            top = int(s.labels.max())
            if top >= len(class_names):
                raise ExportError(
                    f"A {s.kind} slice has class {top}, but the class table has "
                    f"{len(class_names)} entries.",
                    advice="Give the class names the labels refer to.",
                )
        if s.masks is not None and s.masks.size and int(s.masks.max()) > len(segment_names):
            raise ExportError(
                f"The {s.kind} masks hold value {int(s.masks.max())} but only "
                f"{len(segment_names)} segment name(s) are known.",
                advice="Give the segment names the mask values refer to.",
            )
    if fmt in NEEDS_LABELS:
        if not class_names or all(s.labels is None for s in sets):
            raise ExportError(
                f"The {fmt} format needs a class per slice, and this set has no labels.",
                advice="Use a model trained with labels (generate per class), or choose an "
                "unlabelled format such as png.",
            )
        missing = {s.kind: _count(s, _unlabelled(s)) for s in sets}
        _refuse_missing(fmt, "a class", missing)
    if fmt in NEEDS_MASKS:
        if all(s.masks is None for s in sets):
            raise ExportError(
                f"The {fmt} format needs a mask per slice, and this set has no masks.",
                advice=f"Use a model that generates masks with the images, or choose {_MASK_FREE}.",
            )
        missing = {s.kind: _count(s, _maskless(s)) for s in sets}
        _refuse_missing(fmt, "a mask", missing)


def _unlabelled(s: SliceSet) -> np.ndarray:
    return np.ones(len(s), bool) if s.labels is None else s.labels < 0


def _maskless(s: SliceSet) -> np.ndarray:
    if s.masks is None or s.mask_present is None:
        return np.ones(len(s), bool)
    return ~s.mask_present.astype(bool)


def _count(s: SliceSet, missing: np.ndarray) -> int:
    return int(np.count_nonzero(missing[s.kept]))


def _refuse_missing(fmt: str, what: str, missing: dict[str, int]) -> None:
    bad = {k: v for k, v in missing.items() if v}
    if not bad:
        return
    detail = " and ".join(f"{v} {k} slice(s)" for k, v in bad.items())
    advice = (
        "Leave out the real slices (untick 'include real'), label or mask them, "
        if "real" in bad
        else "Reject those slices, "
    )
    raise ExportError(
        f"{detail} to export have no {what[2:]}; the {fmt} format needs {what} for every "
        "slice. Nothing was written.",
        advice=advice + f"or choose a format that does not need {what[2:]}s.",
    )


def label_tables(
    sets: Sequence[SliceSet],
    class_names: tuple[str, ...],
    segment_names: tuple[str, ...],
    details: dict[str, Any],
) -> dict[str, Any]:
    """The manifest's ``classes`` (value, exact name, folder, exported counts per source) and
    ``segments`` (mask value and name, background 0)."""
    folders = details.get("class_folders", {})
    classes = []
    for k, name in enumerate(class_names):
        entry: dict[str, Any] = {"value": k, "name": name}
        if isinstance(folders, dict) and name in folders:
            entry["folder"] = folders[name]
        for s in sets:
            n = 0 if s.labels is None else int(np.count_nonzero(s.labels[s.kept] == k))
            entry[f"n_{s.kind}"] = n
        classes.append(entry)
    segments = [{"value": 0, "name": "background"}] + [
        {"value": k, "name": n} for k, n in enumerate(segment_names, start=1)
    ]
    return {"classes": classes, "segments": segments}
