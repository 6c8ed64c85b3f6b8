"""Fast read-only access to header values without pydicom's per-element conversion.

Converting raw elements (keyword lookup, VR conversion, validation) is most of the cost of
a header pass over thousands of files; the handful of values the scan needs are plain text,
decimal/integer strings or unsigned shorts, which are parsed here straight from the bytes.
Text whose meaning depends on the character set (names, descriptions) goes through pydicom.
"""

from __future__ import annotations

import struct
from functools import lru_cache
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset


@lru_cache(maxsize=256)
def _tag(keyword: str) -> int:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(keyword)
    return tag


class RawTags:
    """Values of ``ds`` by keyword, parsed from raw bytes where possible."""

    def __init__(self, ds: Dataset) -> None:
        self.ds = ds
        encoding = getattr(ds, "original_encoding", (None, True))
        little = encoding[1] is not False
        self._us = struct.Struct("<H" if little else ">H")
        self._encodings: list[str] | None = None

    def _value(self, keyword: str) -> Any:
        elem = self.ds.get_item(_tag(keyword))
        return None if elem is None else elem.value

    def has(self, keyword: str) -> bool:
        return _tag(keyword) in self.ds

    def text(self, keyword: str) -> str:
        """A single-valued ASCII value (UI, CS, DA, ...), stripped of DICOM padding."""
        value = self._value(keyword)
        if value is None:
            return ""
        if isinstance(value, bytes):
            return value.decode("latin-1").strip(" \x00")
        return str(value).strip(" \x00")

    def texts(self, keyword: str) -> list[str]:
        """A multi-valued ASCII value split on backslashes."""
        value = self._value(keyword)
        if value is None:
            return []
        if isinstance(value, bytes):
            return [v.strip(" \x00") for v in value.decode("latin-1").split("\\")]
        if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
            return [str(v).strip() for v in value]
        return [str(value).strip()]

    def floats(self, keyword: str, n: int) -> tuple[float, ...] | None:
        """Exactly ``n`` decimal values, or None when absent or malformed."""
        try:
            out = tuple(float(v) for v in self.texts(keyword))
        except ValueError:
            return None
        return out if len(out) == n else None

    def first_float(self, keyword: str, default: float | None = None) -> float | None:
        values = self.texts(keyword)
        try:
            return float(values[0]) if values and values[0] else default
        except ValueError:
            return default

    def int_text(self, keyword: str) -> int | None:
        """An IS value (InstanceNumber, SeriesNumber, NumberOfFrames) or None."""
        values = self.texts(keyword)
        try:
            return int(float(values[0])) if values and values[0] else None
        except ValueError:
            return None

    def ushort(self, keyword: str, default: int = 0) -> int:
        """A US value (Rows, BitsAllocated, ...)."""
        value = self._value(keyword)
        if value is None or value == b"":
            return default
        if isinstance(value, bytes):
            return int(self._us.unpack(value[:2])[0]) if len(value) >= 2 else default
        try:
            return int(value[0] if isinstance(value, (list, tuple)) else value)
        except (TypeError, ValueError):
            return default

    def decoded(self, keyword: str) -> str:
        """A value whose text depends on the Specific Character Set (names, descriptions).

        Decoded here rather than by pydicom's element conversion, whose validation warnings
        may quote the value: names must never reach a log.
        """
        value = self._value(keyword)
        if value is None:
            return ""
        if not isinstance(value, bytes):
            return str(value).strip()
        from pydicom.charset import convert_encodings, decode_bytes

        if self._encodings is None:
            try:
                self._encodings = convert_encodings(self.texts("SpecificCharacterSet") or None)
            except Exception:  # noqa: BLE001 - an unknown charset falls back to ASCII/latin-1
                self._encodings = ["iso8859"]
        try:
            text = decode_bytes(value, self._encodings, {0x5C, 0x3D, 0x5E})
        except Exception:  # noqa: BLE001
            text = value.decode("latin-1")
        return text.strip(" \x00")
