"""De-identification helpers: keyed hashes of identifiers and de-identified series summaries.

Patient names and IDs appear only in the UI. Anything written to disk or logs uses
:func:`hash_id`, an HMAC-SHA-256 keyed with a secret kept per installation, so the same
patient always maps to the same short token on this machine, but a token cannot be reversed
by hashing a list of likely IDs without the key.

The key is read from ``MEDGAN_HASH_KEY`` (any text), else from the file
``$MEDGAN_CONFIG_DIR/hash_key`` (default ``~/.config/medgan/hash_key``), created with random
bytes on first use (mode 0600, written atomically).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import tempfile
import threading
from pathlib import Path
from typing import Any

from medgan.dicom.records import SeriesRecord

log = logging.getLogger(__name__)

_HASH_HEX = 16
_FALLBACK_KEY = b"medgan-studio/hash-id/v1"
_key_lock = threading.Lock()
_key_cache: dict[str, bytes] = {}


def config_dir() -> Path:
    """Where per-user settings live (``MEDGAN_CONFIG_DIR`` overrides)."""
    env = os.environ.get("MEDGAN_CONFIG_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "medgan"


def _load_or_create_key(path: Path) -> bytes:
    try:
        data = path.read_bytes().strip()
        if data:
            return data
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".hash_key.")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_hex(32).encode())
        # Another process may have created the key meanwhile: never overwrite it.
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path.read_bytes().strip()


def hash_key() -> bytes:
    """The installation's secret hashing key (see the module docstring)."""
    env = os.environ.get("MEDGAN_HASH_KEY")
    if env:
        return env.encode()
    path = config_dir() / "hash_key"
    cache_key = str(path)
    with _key_lock:
        if cache_key not in _key_cache:
            try:
                _key_cache[cache_key] = _load_or_create_key(path)
            except OSError as exc:
                log.warning(
                    "Cannot store the hashing key in %s (%s); using a built-in key, so hashed "
                    "ids are not secret. Set MEDGAN_HASH_KEY to fix this.",
                    path.parent,
                    exc.strerror or exc,
                )
                _key_cache[cache_key] = _FALLBACK_KEY
        return _key_cache[cache_key]


def hash_id(value: object) -> str:
    """A short, stable, keyed hash (hex) of an identifier such as a PatientID or UID.

    Surrounding whitespace is ignored (DICOM pads values). An empty value still hashes, so
    every anonymous patient shares one token.
    """
    text = "" if value is None else str(value).strip()
    digest = hmac.new(hash_key(), text.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:_HASH_HEX]


def patient_key(series: SeriesRecord) -> str:
    """The hashed patient identity of a series (ID, or name when the ID is empty)."""
    return hash_id(series.patient_id or series.patient_name)


def series_summary(series: SeriesRecord) -> dict[str, Any]:
    """A de-identified description of a series for manifests and model files.

    Holds modality, image size, spacing, counts, photometric and transfer syntax, and
    hashed patient/study/series ids; never names, IDs, dates, descriptions or institutions.
    """
    spacing = series.spacing
    return {
        "patient": patient_key(series),
        "study": hash_id(series.study_uid),
        "series": hash_id(series.series_uid),
        "modality": series.modality,
        "rows": series.rows,
        "cols": series.cols,
        "n_images": series.n_images,
        "n_files": len(series.files),
        "pixel_spacing": list(series.pixel_spacing) if series.pixel_spacing else None,
        "slice_spacing": series.slice_spacing,
        "spacing": list(spacing) if spacing else None,
        "photometric": series.photometric,
        "transfer_syntax": series.transfer_syntax,
        "trainable": series.trainable,
        "n_warnings": len(series.warnings),
    }
