"""Typed settings for one export: format, destination, bit depth, synthetic identity."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from medgan.core.errors import ExportError
from medgan.dicom.window import Window

FORMATS: tuple[str, ...] = ("png", "png16", "tiff", "npy", "npz", "nifti", "nifti-stack", "dicom")
"""The formats every set can be exported in. ``png`` is 8-bit windowed; ``png16``/``tiff`` are
16-bit; ``dicom`` adds a SEG per image when the set has masks. Labelled sets also have
:data:`LABELLED_FORMATS`; :data:`ALL_FORMATS` is both."""

NEEDS_LABELS: tuple[str, ...] = ("imagefolder",)
"""Formats that need a class per slice."""

NEEDS_MASKS: tuple[str, ...] = ("pairs-png", "pairs-nifti", "nnunet", "monai")
"""Formats that need a mask per slice."""

LABELLED_FORMATS: tuple[str, ...] = NEEDS_LABELS + NEEDS_MASKS
"""Formats only labelled sets (classes or masks) can be exported in."""

ALL_FORMATS: tuple[str, ...] = FORMATS + LABELLED_FORMATS

BIT_MODES: tuple[str, ...] = ("modality", "windowed")

DEFAULT_OFFSET = 32768
"""Added to modality units before storing them as uint16 (CT: HU + 32768), so negative HU fit."""

DEFAULT_PATIENT_NAME = "SYNTHETIC^MEDGAN"
DEFAULT_PATIENT_ID = "SYNTH0001"


@dataclass(frozen=True)
class ExportConfig:
    """How and where to write one export.

    Args:
        format: one of :data:`FORMATS`.
        destination: the export folder to create. It must not exist (or be an empty folder)
            unless ``overwrite`` is set, in which case it is replaced atomically.
        overwrite: replace an existing destination (atomically, only once the new export is
            complete).
        include_real: also export the preprocessed real training slices, marked ``real``.
        patient_name / patient_id: the synthetic identity written into DICOM files.
        bit_mode: for ``png16`` and ``tiff``: ``modality`` stores modality units plus
            ``offset`` (e.g. HU + 32768) in uint16; ``windowed`` stores the window as 0..65535.
        offset: the offset added to modality units in ``modality`` mode (recorded in the
            manifest and the export's README).
        window: a :class:`Window` in modality units for 8-bit PNG (and windowed 16-bit); a
            ``(center, width)`` pair is converted; ``None`` uses the model's training window.
        png_compress_level: zlib level for PNG (1 is fast, 9 is small; all are lossless).
    """

    format: str = "png"
    destination: str = ""
    overwrite: bool = False
    include_real: bool = False
    patient_name: str = DEFAULT_PATIENT_NAME
    patient_id: str = DEFAULT_PATIENT_ID
    bit_mode: str = "modality"
    offset: int = DEFAULT_OFFSET
    window: Window | None = None
    png_compress_level: int = 1

    def __post_init__(self) -> None:
        if self.window is not None and not isinstance(self.window, Window):
            try:
                object.__setattr__(self, "window", Window.coerce(self.window))
            except (TypeError, ValueError, KeyError) as exc:
                raise ExportError(
                    f"The window width must be positive and both numbers finite ({exc}).",
                    advice="Give the window as center,width, e.g. 40,400.",
                ) from exc
        if self.format not in ALL_FORMATS:
            raise ExportError(
                f"Unknown export format {self.format!r}.",
                advice=f"Choose one of: {', '.join(ALL_FORMATS)}.",
            )
        if self.bit_mode not in BIT_MODES:
            raise ExportError(
                f"Unknown 16-bit mode {self.bit_mode!r}.",
                advice=f"Choose one of: {', '.join(BIT_MODES)}.",
            )
        if not 0 <= int(self.offset) <= 65535:
            raise ExportError(
                f"The 16-bit offset {self.offset} is outside 0..65535.",
                advice="Use 32768 for CT (HU) or 0 for non-negative modalities.",
            )
        if self.window is not None and float(self.window[1]) <= 0:
            raise ExportError("The window width must be positive.")
        if not 0 <= self.png_compress_level <= 9:
            raise ExportError("The PNG compression level must be between 0 and 9.")
        for label, value in (("name", self.patient_name), ("ID", self.patient_id)):
            if not value or len(value) > 64 or "\\" in value:
                raise ExportError(
                    f"The synthetic patient {label} {value!r} is not usable in DICOM.",
                    advice="Use 1 to 64 characters without backslashes.",
                )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready settings (the destination is reduced to its folder name)."""
        data = asdict(self)
        data["destination"] = (
            os.path.basename(os.path.normpath(self.destination)) if self.destination else ""
        )
        data["window"] = list(self.window.as_tuple()) if self.window is not None else None
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExportConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)
