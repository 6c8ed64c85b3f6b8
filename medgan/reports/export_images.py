"""Read exported slices back for a report's contact sheet, whatever the export format, as
uint8 display images through the export's window.

Each format is read with the library that wrote it (Pillow, tifffile, NumPy, nibabel,
pydicom); only pixel data is used, never a header value.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from medgan.dicom.window import Window, to_uint8

log = logging.getLogger(__name__)

# 8-bit windowed PNG per slice (class folders and image/mask pairs write the same PNG), and one
# NIfTI per slice (``data[:, :, 0].T`` is the slice; pairs, nnU-Net and MONAI layouts alike).
_PNG8 = ("png", "imagefolder", "pairs-png")
_NIFTI = ("nifti", "pairs-nifti", "nnunet", "monai")


def display_window(manifest: dict[str, Any]) -> Window | None:
    """The export's 8-bit window if it set one, else the model's."""
    for value in (
        (manifest.get("export") or {}).get("window"),
        (manifest.get("model") or {}).get("window"),
    ):
        win = Window.coerce(value) if value else None
        if win is not None:
            return win
    return None


def _to_display(values: np.ndarray, window: Window | None) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float32)
    if window is None:
        finite = arr[np.isfinite(arr)]
        lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
        window = Window.from_range(lo, hi)
    return to_uint8(arr, window)


class ExportReader:
    """Reads slice ``row`` (a manifest ``files`` entry) of an export folder as uint8."""

    def __init__(self, folder: Path, manifest: dict[str, Any]) -> None:
        self.folder = folder
        self.export = manifest.get("export") or {}
        self.format = str(self.export.get("format", ""))
        self.window = display_window(manifest)
        self._stack: np.ndarray | None = None

    def read(self, row: dict[str, Any]) -> np.ndarray | None:
        """The slice, or None when it cannot be read (the report says so)."""
        try:
            return self._read(row)
        except Exception as exc:  # noqa: BLE001 - a contact sheet must not stop the report
            log.warning("Could not read %s for the report: %s", row.get("file"), exc)
            return None

    def _read(self, row: dict[str, Any]) -> np.ndarray | None:
        path = self.folder / str(row.get("file", ""))
        fmt = self.format
        if fmt in _PNG8:
            from PIL import Image

            with Image.open(path) as im:
                return np.asarray(im.convert("L"), dtype=np.uint8)
        if fmt in ("png16", "tiff"):
            if fmt == "tiff":
                import tifffile

                raw = np.asarray(tifffile.imread(path), dtype=np.float32)
            else:
                from PIL import Image

                with Image.open(path) as im:
                    raw = np.asarray(im, dtype=np.float32)
            if self.export.get("bit_mode", "modality") == "windowed":
                return np.clip(raw / 257.0 + 0.5, 0, 255).astype(np.uint8)
            return _to_display(raw - float(self.export.get("offset", 32768)), self.window)
        if fmt in ("npy", "npz", "nifti-stack"):
            k = row.get("stack_index")
            if k is None:
                return None
            return _to_display(self._stack_array()[int(k)], self.window)
        if fmt in _NIFTI:
            import nibabel as nib

            img: Any = nib.load(path)
            return _to_display(np.asarray(img.dataobj)[:, :, 0].T, self.window)
        if fmt == "dicom":
            import pydicom

            ds = pydicom.dcmread(path)
            values = ds.pixel_array.astype(np.float32) * float(ds.get("RescaleSlope", 1) or 1)
            return _to_display(values + float(ds.get("RescaleIntercept", 0) or 0), self.window)
        return None

    def _stack_array(self) -> np.ndarray:
        if self._stack is None:
            if self.format == "npy":
                self._stack = np.load(self.folder / "images.npy", mmap_mode="r")
            elif self.format == "npz":
                with np.load(self.folder / "images.npz") as z:
                    self._stack = np.asarray(z["images"])
            else:
                import nibabel as nib

                stack: Any = nib.load(self.folder / "images.nii.gz")
                data = np.asarray(stack.dataobj, dtype=np.float32)
                self._stack = np.transpose(data, (2, 1, 0))  # slice k = data[:, :, k].T
        return self._stack
