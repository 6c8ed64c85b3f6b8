"""NIfTI writers: one 2D image per ``.nii.gz`` file, or all slices in one stack.

Arrays are stored as (columns, rows, slices) with an RAS affine built from the pixel
spacing (the usual DICOM-to-NIfTI convention), so ``data[:, :, k].T`` is slice ``k`` as
(rows, columns). A stack is a pile of independent slices, not an anatomical volume.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np

from medgan.export.base import SliceRecord, Writer, WriterContext


def _affine(ctx: WriterContext) -> np.ndarray:
    row_mm, col_mm = ctx.provenance.pixel_spacing or (1.0, 1.0)
    return np.diag([-float(col_mm), -float(row_mm), 1.0, 1.0])


def _image(data: np.ndarray, ctx: WriterContext) -> nib.Nifti1Image:
    image = nib.Nifti1Image(data, _affine(ctx))
    header = image.header
    header.set_xyzt_units(xyz="mm")
    header["descrip"] = b"SYNTHETIC MedGAN Studio; not for diagnosis"
    image.set_qform(image.affine, code=1)
    image.set_sform(image.affine, code=1)
    return image


nifti_image = _image  # public name for the labelled writers


class NiftiWriter(Writer):
    suffix = ".nii.gz"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        ctx.details["values"] = f"float32 {ctx.provenance.units or 'modality units'}".strip()
        ctx.details["layout"] = "data[:, :, 0].T is the slice as (rows, columns)"

    def write(self, batch: list[SliceRecord]) -> list[str]:
        names = []
        for record in batch:
            name = record.stem + self.suffix
            data = np.ascontiguousarray(record.modality.T)[:, :, None].astype(np.float32)
            nib.save(_image(data, self.ctx), self.ctx.folder / name)
            names.append(name)
        return names


class NiftiStackWriter(Writer):
    suffix = ".nii.gz"
    file_name = "images.nii.gz"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        res = ctx.provenance.resolution
        self._data: np.ndarray | None = None
        self._empty = (res, res, 0)
        ctx.details["values"] = f"float32 {ctx.provenance.units or 'modality units'}".strip()
        ctx.details["layout"] = (
            "data[:, :, k].T is slice k (manifest stack_index) as (rows, columns)"
        )
        ctx.details["stack"] = self.file_name

    def write(self, batch: list[SliceRecord]) -> list[str]:
        for record in batch:
            if self._data is None:
                rows, cols = record.modality.shape
                self._data = np.zeros((cols, rows, self.ctx.total), dtype=np.float32)
            self._data[:, :, record.number] = record.modality.T
        return [self.file_name] * len(batch)

    def close(self) -> list[str]:
        data = self._data if self._data is not None else np.zeros(self._empty, np.float32)
        nib.save(_image(data, self.ctx), self.ctx.folder / self.file_name)
        self._data = None
        return []
