"""On-disk cache of built training sets, so re-training does not decode the DICOM files again.

Entries are ``.npz`` files (no pickle, no identifiers: hashed patient keys only) named by a key
that hashes the cache format, the training-set config, and every chosen image's path, frame,
size and modification time, so any change to the files or the settings misses the cache.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from medgan.core.fileio import atomic_open
from medgan.dicom.records import SeriesRecord

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # 2: labels and masks


def cache_dir(root: str | os.PathLike[str] | None = None) -> Path:
    """``<root>/trainsets``; root defaults to ``$MEDGAN_CACHE`` or ``~/.cache/medgan-studio``."""
    if root is None:
        env = os.environ.get("MEDGAN_CACHE")
        root = Path(env).expanduser() if env else Path.home() / ".cache" / "medgan-studio"
    return Path(root) / "trainsets"


def cache_key(
    series_list: Sequence[SeriesRecord],
    indices: Sequence[Sequence[int]],
    config: dict[str, Any],
    extra: str = "",
) -> str:
    """Hash of the format version, the config, each chosen image's file identity and
    ``extra`` (the digest of the slices' labels and masks)."""
    h = hashlib.sha256()
    h.update(
        json.dumps({"v": CACHE_VERSION, "config": config, "extra": extra}, sort_keys=True).encode()
    )
    for series, idx in zip(series_list, indices, strict=True):
        h.update(b"\x00series")
        for i in idx:
            ref = series.images[i]
            try:
                st = os.stat(ref.path)
                stamp = f"{st.st_size}:{st.st_mtime_ns}"
            except OSError:
                stamp = "missing"
            h.update(f"{ref.path}|{ref.frame}|{stamp}\n".encode())
    return h.hexdigest()[:32]


def save_arrays(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """Write an entry atomically; a failure only logs a warning (the cache is optional)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, "wb", fsync=False) as fh:  # a cache: losing it costs a rebuild
            np.savez(fh, **arrays)  # type: ignore[arg-type]
    except OSError as exc:
        log.warning("Could not cache the training set (%s); it will be rebuilt next time.", exc)


def load_arrays(path: Path, names: Sequence[str]) -> dict[str, np.ndarray] | None:
    """Read an entry's arrays, or None when it is missing or unreadable (then it is rebuilt)."""
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in names}
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("Ignoring an unreadable training-set cache entry (%s).", exc)
        return None
