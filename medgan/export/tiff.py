"""16-bit TIFF writer (modality units + offset, or windowed), one image per file."""

from __future__ import annotations

import json
from typing import Any

import tifffile

from medgan.export.base import SYNTHETIC_NOTICE, SliceRecord, Writer, WriterContext
from medgan.export.values import to_uint16


class TiffWriter(Writer):
    suffix = ".tif"

    def __init__(self, ctx: WriterContext) -> None:
        super().__init__(ctx)
        ctx.details["values"] = ctx.encoding.describe_16bit(ctx.provenance.units)
        spacing = ctx.provenance.pixel_spacing
        self._resolution = (10.0 / spacing[1], 10.0 / spacing[0]) if spacing else None
        self._description = json.dumps(
            {
                "notice": SYNTHETIC_NOTICE,
                "values": ctx.details["values"],
                "offset": ctx.config.offset if ctx.config.bit_mode == "modality" else None,
            }
        )

    def write(self, batch: list[SliceRecord]) -> list[str]:
        names = []
        for record in batch:
            name = record.stem + self.suffix
            pixels = to_uint16(record.modality, record.normalized, self.ctx.encoding)
            extra: dict[str, Any] = {}
            if self._resolution is not None:
                extra = {"resolution": self._resolution, "resolutionunit": "CENTIMETER"}
            tifffile.imwrite(
                self.ctx.folder / name,
                pixels,
                photometric="minisblack",
                description=self._description,
                software=f"MedGAN Studio {self.ctx.app_version}",
                metadata=None,
                **extra,
            )
            names.append(name)
        return names
