"""Pixel encodings shared by the writers: windowed 8/16-bit and modality units + offset."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from medgan.dicom.window import Window

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Encoding:
    """How values are stored. ``window`` is a :class:`Window` in modality units or ``None``
    (then the model's [-1, 1] range is the window)."""

    window: Window | None
    offset: int
    bit_mode: str  # "modality" | "windowed"

    def describe_16bit(self, units: str) -> str:
        if self.bit_mode == "windowed":
            lo, hi = self.window_bounds()
            return f"windowed: 0 = {lo:g} {units}, 65535 = {hi:g} {units} (linear)".strip()
        return f"modality units + {self.offset} (value - {self.offset} = {units or 'units'})"

    def window_bounds(self) -> tuple[float, float]:
        if self.window is None:
            return -1.0, 1.0
        return float(self.window.low), float(self.window.high)


def _unit_interval(modality: np.ndarray, normalized: np.ndarray, enc: Encoding) -> np.ndarray:
    """Values scaled so that the window maps to [0, 1] (clipped)."""
    if enc.window is None:
        scaled = (normalized + 1.0) * 0.5
    else:
        lo, hi = enc.window_bounds()
        scaled = (modality - lo) / (hi - lo)
    return np.clip(scaled, 0.0, 1.0)


def to_uint8(modality: np.ndarray, normalized: np.ndarray, enc: Encoding) -> np.ndarray:
    """Windowed 8-bit grey levels (0 = window bottom, 255 = window top)."""
    return np.rint(_unit_interval(modality, normalized, enc) * 255.0).astype(np.uint8)


def to_uint16(modality: np.ndarray, normalized: np.ndarray, enc: Encoding) -> np.ndarray:
    """16-bit values: modality units + offset, or the window stretched over 0..65535."""
    if enc.bit_mode == "windowed":
        return np.rint(_unit_interval(modality, normalized, enc) * 65535.0).astype(np.uint16)
    stored = np.rint(modality.astype(np.float64) + enc.offset)
    clipped = int(np.count_nonzero((stored < 0) | (stored > 65535)))
    if clipped:
        log.warning(
            "%d pixel(s) fell outside the 16-bit range with offset %d and were clipped.",
            clipped,
            enc.offset,
        )
    return np.clip(stored, 0, 65535).astype(np.uint16)


def dicom_rescale(window: Window | None, offset: int) -> tuple[float, float]:
    """(slope, intercept) so that uint16 stored values cover the modality range finely.

    Wide ranges (CT in HU) keep slope 1 (stored = HU + offset); narrow or normalized ranges
    use a fractional slope so that quantization stays well below the window's resolution.
    """
    width = 2.0 if window is None else float(window.width)
    # Short decimals, so that the DS strings written are exactly the values used here.
    slope = 1.0 if width >= 1024 else float(f"{width / 16384.0:.4g}")
    return slope, float(f"{-offset * slope:.10g}")


def to_dicom_stored(modality: np.ndarray, slope: float, intercept: float) -> np.ndarray:
    """Stored uint16 values for a Rescale Slope/Intercept pair (clipped to 0..65535)."""
    stored = np.rint((modality.astype(np.float64) - intercept) / slope)
    return np.clip(stored, 0, 65535).astype(np.uint16)
