"""De-identification: keyed hashes of identifiers.

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
