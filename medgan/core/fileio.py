"""Atomic file writes: a file is either complete at its final name or absent.

Everything is written to a hidden temporary name in the destination folder (same file system),
flushed to disk, then renamed over the target with ``os.replace``; on any failure the temporary
file is removed and the old target, if any, is untouched.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any


def _temp_name(target: Path) -> Path:
    """A hidden sibling of ``target`` that keeps its suffixes (``.nii.gz`` writers look at them)."""
    suffixes = "".join(target.suffixes[-2:]) if target.name.lower().endswith(".nii.gz") else target.suffix
    return target.with_name(f".{target.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp{suffixes}")


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_path(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path to write to (for libraries that write by file name).

    On a clean exit the file is synced and renamed to ``path``; on an error it is deleted.
    """
    target = Path(path)
    tmp = _temp_name(target)
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_open(
    path: str | os.PathLike[str], mode: str = "wb", *, fsync: bool = True, **kwargs: Any
) -> Iterator[IO[Any]]:
    """Open a temporary sibling of ``path`` for writing; rename it into place on success."""
    if not mode.startswith("w"):
        raise ValueError("atomic_open only writes")
    with atomic_path(path, fsync=False) as tmp:
        with open(tmp, mode.replace("w", "x", 1), **kwargs) as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    with atomic_open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def atomic_write_json(path: str | os.PathLike[str], document: Any, **dump_kwargs: Any) -> None:
    """Write ``document`` as indented JSON (numpy scalars and arrays become plain values)."""
    dump_kwargs.setdefault("indent", 2)
    dump_kwargs.setdefault("default", json_default)
    atomic_write_text(path, json.dumps(document, **dump_kwargs) + "\n")


def json_default(value: Any) -> Any:
    """``json.dumps(default=...)`` for numpy values, sets and tuples."""
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:  # pragma: no cover
        pass
    if isinstance(value, (set, tuple)):
        return list(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
