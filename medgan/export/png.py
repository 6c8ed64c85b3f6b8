"""PNG writers: 8-bit windowed and 16-bit (modality units + offset, or windowed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, PngImagePlugin

from medgan.export.base import SYNTHETIC_NOTICE, SliceRecord, Writer, WriterContext
from medgan.export.values import to_uint8, to_uint16


class PngWriter(Writer):
    """8-bit grayscale PNG of the window (``config.window`` or the model's window)."""

    suffix = ".png"
    bits = 8

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        self._info = PngImagePlugin.PngInfo()
        self._info.add_text("Description", SYNTHETIC_NOTICE)
        self._info.add_text("Software", f"MedGAN Studio {ctx.app_version}")
        lo, hi = ctx.encoding.window_bounds()
        units = ctx.provenance.units
        if self.bits == 8:
            ctx.details["values"] = f"windowed 8-bit: 0 = {lo:g} {units}, 255 = {hi:g} {units}"
        else:
            ctx.details["values"] = ctx.encoding.describe_16bit(units)
        self._info.add_text("medgan:values", str(ctx.details["values"]))

    def _pixels(self, record: SliceRecord):  # noqa: ANN202 - numpy array
        return to_uint8(record.modality, record.normalized, self.ctx.encoding)

    def _save(self, pixels: np.ndarray, path: Path, level: int) -> None:
        Image.fromarray(pixels).save(path, format="PNG", compress_level=level, pnginfo=self._info)

    def write(self, batch: list[SliceRecord]) -> list[str]:
        names, tasks = [], []
        level = self.ctx.config.png_compress_level
        for record in batch:
            name = record.stem + self.suffix
            image = Image.fromarray(self._pixels(record))
            tasks.append(
                lambda image=image, path=self.ctx.folder / name: image.save(
                    path, format="PNG", compress_level=level, pnginfo=self._info
                )
            )
            names.append(name)
        self.run_parallel(tasks)
        return names


class Png16Writer(PngWriter):
    """16-bit grayscale PNG: modality units + offset (default) or the window over 0..65535."""

    bits = 16

    def _pixels(self, record: SliceRecord):  # noqa: ANN202 - numpy array
        return to_uint16(record.modality, record.normalized, self.ctx.encoding)
