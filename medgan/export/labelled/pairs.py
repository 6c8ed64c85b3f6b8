"""Image + mask pairs: ``images/<file>`` and ``masks/<file>`` with the same name.

PNG: the image 8-bit windowed, the mask 8-bit grey with the segment values (0 background,
``k`` = segment ``k`` of the manifest's segment table). NIfTI: the image float32 in modality
units, the mask uint8, both with the same affine (``data[:, :, 0].T`` is the slice).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from PIL import Image

from medgan.core.errors import ExportError
from medgan.export.base import SliceRecord, Writer, WriterContext
from medgan.export.nifti import nifti_image
from medgan.export.png import PngWriter


def need_mask(record: SliceRecord) -> np.ndarray:
    if record.mask is None:
        raise ExportError(f"Slice {record.stem} has no mask; this format needs one per slice.")
    return np.asarray(record.mask, np.uint8)


def save_nifti_pair(
    record: SliceRecord, ctx: WriterContext, image_path: Path, mask_path: Path
) -> None:
    """The slice (float32 modality units) and its mask (uint8) on the same grid."""
    data = np.ascontiguousarray(record.modality.T)[:, :, None].astype(np.float32)
    nib.save(nifti_image(data, ctx), image_path)
    labels = np.ascontiguousarray(need_mask(record).T)[:, :, None]
    mask = nifti_image(labels, ctx)
    mask.set_data_dtype(np.uint8)
    nib.save(mask, mask_path)


def _describe_masks(ctx: WriterContext) -> str:
    table = ", ".join(f"{k} = {n}" for k, n in enumerate(ctx.segment_names, start=1))
    return f"mask values: 0 = background, {table}" if table else "mask values: 0 = background"


class PairsPngWriter(PngWriter):
    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        for sub in ("images", "masks"):
            (ctx.folder / sub).mkdir(exist_ok=True)
        ctx.details["layout"] = "images/<file>.png with masks/<file>.png (same name); " + (
            _describe_masks(ctx)
        )

    def write(self, batch: list[SliceRecord]) -> list[str]:
        return [image for image, _ in self.write_labelled(batch)]

    def write_labelled(self, batch: list[SliceRecord]) -> list[tuple[str, str]]:
        out, tasks = [], []
        level = self.ctx.config.png_compress_level
        folder = self.ctx.folder
        for record in batch:
            image, mask = f"images/{record.stem}.png", f"masks/{record.stem}.png"
            pixels, labels = self._pixels(record), need_mask(record)
            tasks.append(lambda p=pixels, path=folder / image: self._save(p, path, level))
            tasks.append(
                lambda m=labels, path=folder / mask: Image.fromarray(m, mode="L").save(
                    path, format="PNG", compress_level=level
                )
            )
            out.append((image, mask))
        self.run_parallel(tasks)
        return out


class NiftiPairWriter(Writer):
    """Base of the NIfTI pair layouts: ``image_dir/<stem><image_tail>`` and
    ``mask_dir/<stem>.nii.gz``."""

    suffix = ".nii.gz"
    image_dir, mask_dir, image_tail = "images", "masks", ".nii.gz"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        for sub in (self.image_dir, self.mask_dir):
            (ctx.folder / sub).mkdir(exist_ok=True)
        ctx.details["values"] = f"float32 {ctx.provenance.units or 'modality units'}".strip()
        ctx.details["layout"] = (
            f"{self.image_dir}/<case>{self.image_tail} with {self.mask_dir}/<case>.nii.gz "
            "(uint8, same affine); data[:, :, 0].T is the slice as (rows, columns); "
            + _describe_masks(ctx)
        )

    def write(self, batch: list[SliceRecord]) -> list[str]:
        return [image for image, _ in self.write_labelled(batch)]

    def write_labelled(self, batch: list[SliceRecord]) -> list[tuple[str, str]]:
        out, tasks = [], []
        for record in batch:
            image = f"{self.image_dir}/{record.stem}{self.image_tail}"
            mask = f"{self.mask_dir}/{record.stem}.nii.gz"
            need_mask(record)
            tasks.append(
                lambda r=record, i=self.ctx.folder / image, m=self.ctx.folder / mask: (
                    save_nifti_pair(r, self.ctx, i, m)
                )
            )
            out.append((image, mask))
        self.run_parallel(tasks)
        return out


class PairsNiftiWriter(NiftiPairWriter):
    pass
