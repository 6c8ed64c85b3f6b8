"""Window/level: the file's own window, CT presets in Hounsfield units, robust auto-window.

A window maps modality values ``[center - width/2, center + width/2]`` linearly onto the
display (or training) range; values outside are clipped.

Example:
    >>> w = CT_PRESETS["brain"]
    >>> apply_window(np.array([w.low, w.center, w.high]), w).tolist()
    [-1.0, 0.0, 1.0]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """A display window in modality units (``width`` > 0)."""

    center: float
    width: float

    def __post_init__(self) -> None:
        if not np.isfinite(self.center) or not np.isfinite(self.width) or self.width <= 0:
            raise ValueError(f"A window needs a finite center and a positive width, got {self}.")

    @property
    def low(self) -> float:
        return self.center - self.width / 2

    @property
    def high(self) -> float:
        return self.center + self.width / 2

    @classmethod
    def from_range(cls, low: float, high: float) -> Window:
        """The window spanning ``[low, high]`` (widened to 1 when the range is empty)."""
        width = max(float(high) - float(low), 1.0)
        return cls((float(low) + float(high)) / 2, width)

    def to_dict(self) -> dict[str, float]:
        return {"center": float(self.center), "width": float(self.width)}

    def as_tuple(self) -> tuple[float, float]:
        """``(center, width)`` as plain floats: the form written into files."""
        return (float(self.center), float(self.width))

    def to_modality(self, values: np.ndarray) -> np.ndarray:
        """The inverse of :func:`apply_window`: [-1, 1] → modality units (float32)."""
        return to_modality(values, self)

    @classmethod
    def coerce(cls, value: WindowLike | None) -> Window | None:
        """A ``Window`` from a ``Window``, a ``(center, width)`` pair or a ``{"center", "width"}``
        dict (the forms files hold); ``None`` stays ``None``."""
        if value is None or isinstance(value, Window):
            return value
        if isinstance(value, dict):
            return cls(float(value["center"]), float(value["width"]))
        center, width = value
        return cls(float(center), float(width))

    # A Window reads like its (center, width) pair, so code and files holding numbers keep
    # working: ``center, width = w``, ``w[1]`` and ``w == (40.0, 80.0)``.
    def __iter__(self) -> Iterator[float]:
        return iter((self.center, self.width))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, i: int) -> float:
        return (self.center, self.width)[i]

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Window):
            return (self.center, self.width) == (other.center, other.width)
        if isinstance(other, (tuple, list)) and len(other) == 2:
            return (self.center, self.width) == tuple(other)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.center, self.width))


WindowLike = Window | tuple[float, float] | Sequence[float] | dict[str, float]
"""What :meth:`Window.coerce` accepts."""


#: Common CT windows (center, width) in Hounsfield units.
CT_PRESETS: dict[str, Window] = {
    "brain": Window(40, 80),
    "subdural": Window(75, 215),
    "stroke": Window(32, 8),
    "lung": Window(-600, 1500),
    "mediastinum": Window(50, 350),
    "abdomen": Window(40, 400),
    "liver": Window(60, 160),
    "bone": Window(400, 1800),
}


def auto_window(
    pixels: np.ndarray,
    *,
    low_pct: float = 0.5,
    high_pct: float = 99.5,
    max_samples: int = 1_000_000,
) -> Window:
    """A window from robust percentiles of the finite pixel values (MR, CR, anything).

    Large arrays are subsampled with a fixed stride, so the result is deterministic and fast.
    A constant image gives a width-1 window around its value.
    """
    flat = np.asarray(pixels).ravel()
    if flat.size > max_samples:
        flat = flat[:: int(np.ceil(flat.size / max_samples))]
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return Window(0.0, 1.0)
    low, high = np.percentile(flat.astype(np.float64), [low_pct, high_pct])
    if high <= low:
        low, high = float(flat.min()), float(flat.max())
    return Window.from_range(float(low), float(high))


def apply_window(pixels: np.ndarray, window: Window) -> np.ndarray:
    """Modality values → float32 in [-1, 1] through ``window`` (clipped)."""
    arr = np.asarray(pixels, dtype=np.float32)
    out = (arr - np.float32(window.center)) * np.float32(2.0 / window.width)
    np.clip(out, -1.0, 1.0, out=out)
    return out


def to_modality(values: np.ndarray, window: WindowLike | None) -> np.ndarray:
    """[-1, 1] → modality units through ``window`` (``center + v * width / 2``), float32.

    The inverse of :func:`apply_window` inside the window; without a window the values are
    returned as float32 (a copy).
    """
    win = Window.coerce(window)
    if win is None:
        return np.array(values, dtype=np.float32, copy=True)
    arr = np.asarray(values, dtype=np.float32)
    return (arr * np.float32(win.width / 2.0) + np.float32(win.center)).astype(np.float32)


def to_uint8(pixels: np.ndarray, window: Window) -> np.ndarray:
    """Modality values → uint8 0..255 through ``window``, for display and PNG previews."""
    scaled = (apply_window(pixels, window) + 1.0) * 127.5
    return np.rint(scaled).astype(np.uint8)


def series_window(
    file_window: tuple[float, float] | None, modality: str, pixels: np.ndarray | None = None
) -> Window:
    """The window to show first: the file's own, else a CT preset, else auto from ``pixels``."""
    if file_window is not None and file_window[1] > 0:
        return Window(float(file_window[0]), float(file_window[1]))
    if modality.upper() == "CT":
        return CT_PRESETS["abdomen"]
    if pixels is not None:
        return auto_window(pixels)
    return Window(0.5, 1.0)
