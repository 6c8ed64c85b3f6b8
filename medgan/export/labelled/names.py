"""File-system-safe names for class folders (the exact class name stays in the manifest)."""

from __future__ import annotations

import re
import unicodedata

_UNSAFE = re.compile(r"[^A-Za-z0-9._ -]+")
_WINDOWS_RESERVED = {
    "CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
    *(f"LPT{i}" for i in range(1, 10)),
}  # fmt: skip
MAX_LENGTH = 64


def safe_name(name: str, fallback: str = "class") -> str:
    """A folder name that works on Linux, macOS and Windows: ASCII letters, digits, ``._ -``
    (everything else becomes ``_``), no leading/trailing dots or spaces, not a reserved
    Windows device name, at most 64 characters."""
    text = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode("ascii")
    text = _UNSAFE.sub("_", text).strip(" .")[:MAX_LENGTH].strip(" .")
    if not text or set(text) <= {"_"}:
        text = fallback
    if text.split(".")[0].upper() in _WINDOWS_RESERVED:
        text = f"{text}_"
    return text


def class_folders(class_names: tuple[str, ...] | list[str]) -> list[str]:
    """One distinct safe folder per class, in class order (clashes get ``_2``, ``_3``...;
    compared case-insensitively, as on macOS and Windows)."""
    out: list[str] = []
    seen: set[str] = set()
    for k, name in enumerate(class_names):
        base = safe_name(name, fallback=f"class_{k}")
        folder, n = base, 2
        while folder.lower() in seen:
            folder, n = f"{base}_{n}", n + 1
        seen.add(folder.lower())
        out.append(folder)
    return out
