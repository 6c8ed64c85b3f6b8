"""An export folder as a labelled synthetic set: images, their classes and masks.

Reads ``manifest.csv`` (columns ``file``, ``kind``, and, for labelled exports, ``label`` and
``mask_file``) and ``manifest.json`` (format, window, the model), else class folders
``<class>/<file>.png``. Images are read with the library that wrote them
(:class:`medgan.reports.export_images.ExportReader`) and mapped into the real data's window.
Only synthetic rows are used; real slices an export may contain are skipped.
"""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from medgan.core.errors import DataError
from medgan.dicom.window import Window, apply_window
from medgan.reports.export_images import ExportReader
from medgan.utility.sources import ArraySource

log = logging.getLogger(__name__)

_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".npy")


def _read_mask(path: Path) -> np.ndarray:
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        img: Any = nib.load(path)
        data = np.asarray(img.dataobj)
        return np.asarray(data[:, :, 0].T if data.ndim == 3 else data.T, np.uint8)
    if name.endswith(".npy"):
        return np.asarray(np.load(path), np.uint8)
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im, dtype=np.uint8)


def _patients(manifest: dict[str, Any]) -> frozenset[str] | None:
    model = manifest.get("model") or {}
    for holder in (model, model.get("training_summary") or {}):
        for key in ("patients", "training_patients"):
            value = holder.get(key)
            if isinstance(value, list):
                return frozenset(str(v) for v in value)
    return None


def _rows(folder: Path) -> list[dict[str, str]]:
    csv_path = folder / "manifest.csv"
    if csv_path.is_file():
        with csv_path.open(newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        return [r for r in rows if (r.get("kind") or "synthetic") == "synthetic"]
    rows = []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for f in sorted(sub.iterdir()):
            if f.suffix.lower() in _IMAGE_SUFFIXES:
                rows.append({"file": f"{sub.name}/{f.name}", "label": sub.name})
    return rows


def _read_any(reader: ExportReader, folder: Path, row: dict[str, Any]) -> np.ndarray | None:
    """The slice as uint8 through the export's window; labelled formats (image folders,
    pairs, nnU-Net, MONAI) by the file's suffix."""
    got = reader.read(row)
    if got is not None:
        return got
    path = folder / str(row.get("file", ""))
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        import nibabel as nib

        img: Any = nib.load(path)
        data = np.asarray(img.dataobj, np.float32)
        values = data[:, :, 0].T if data.ndim == 3 else data.T
        return reader_to_uint8(values, reader.window)
    if name.endswith(".png"):
        from PIL import Image

        with Image.open(path) as im:
            if im.mode in ("I;16", "I"):
                raw = np.asarray(im, np.float32) - float(reader.export.get("offset", 32768))
                return reader_to_uint8(raw, reader.window)
            return np.asarray(im.convert("L"), np.uint8)
    return None


def reader_to_uint8(values: np.ndarray, window: Window | None) -> np.ndarray:
    from medgan.dicom.window import to_uint8

    if window is None:
        window = Window.from_range(float(values.min()), float(values.max()) or 1.0)
    return to_uint8(values, window)


def _model_patients(manifest: dict[str, Any], model_file: str | Path) -> frozenset[str] | None:
    """The training patients of the model that made the export (its SHA-256 must match)."""
    from medgan.export.adapters import file_sha256
    from medgan.models.modelfile import read_metadata
    from medgan.utility.sources import model_patients

    expected = (manifest.get("model") or {}).get("model_sha256")
    if expected and file_sha256(model_file) != expected:
        raise DataError(
            "The model file given is not the one that made this export (SHA-256 differs).",
            advice="Give the model file named in the export's manifest.json.",
        )
    return model_patients(read_metadata(model_file))


def read_export_folder(
    folder: str | Path,
    *,
    window: Window | None = None,
    resolution: int | None = None,
    model_file: str | Path | None = None,
) -> ArraySource:
    """Read a labelled export folder (see the module docstring) into an :class:`ArraySource`.

    ``window``: the real data's window; slices are brought into it (through the export's own
    window when the manifest records one). ``model_file``: the model that made the export
    (checked by SHA-256), whose training patients are then known. Raises :class:`DataError`
    when nothing is readable or sizes differ from ``resolution``.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"No export folder at {folder}.", advice="Give the folder of an export.")
    manifest: dict[str, Any] = {}
    if (folder / "manifest.json").is_file():
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rows = _rows(folder)
    if not rows:
        raise DataError(
            f"{folder.name} holds no synthetic slices (no manifest.csv rows, no class folders).",
            advice="Give the folder written by `medgan generate` or the Export page.",
        )
    if not manifest.get("export"):
        manifest = {**manifest, "export": {"format": _guess_format(rows[0]["file"])}}
    reader = ExportReader(folder, manifest)
    images, labels, masks = [], [], []
    has_labels = any((r.get("label") or "").strip() for r in rows)
    has_masks = any((r.get("mask_file") or "").strip() for r in rows)
    for row in rows:
        u8 = _read_any(reader, folder, dict(row, stack_index=row.get("stack_index") or None))
        if u8 is None:
            continue
        if resolution is not None and u8.shape != (resolution, resolution):
            raise DataError(
                f"The export's slices are {u8.shape[0]}x{u8.shape[1]}; the real data is "
                f"{resolution}x{resolution}.",
                advice=f"Use --res {u8.shape[0]} or export at {resolution}x{resolution}.",
            )
        unit = u8.astype(np.float32) / 255.0
        if window is not None and reader.window is not None:
            values = reader.window.center + (unit - 0.5) * reader.window.width
            images.append(apply_window(values, window))
        else:
            images.append(unit * 2.0 - 1.0)
        labels.append((row.get("label") or "").strip())
        if has_masks:
            mfile = (row.get("mask_file") or "").strip()
            masks.append(_read_mask(folder / mfile) if mfile else np.zeros(u8.shape, np.uint8))
    if not images:
        raise DataError(f"No slice of {folder.name} could be read.", advice="Check the export.")
    info = {"format": reader.format, "model_sha256": (manifest.get("model") or {}).get("model_sha256")}
    return ArraySource(
        np.stack(images).astype(np.float32),
        labels if has_labels else None,
        np.stack(masks) if has_masks else None,
        patients=_model_patients(manifest, model_file) if model_file else _patients(manifest),
        window=None if window is not None else reader.window,
        kind="export folder",
        info={k: v for k, v in info.items() if v},
    )


def _guess_format(name: str) -> str:
    suffix = Path(name).suffix.lower()
    return {".png": "png", ".tif": "tiff", ".tiff": "tiff"}.get(suffix, "png")
