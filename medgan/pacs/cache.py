"""The private retrieve cache: one folder per series, complete or absent.

Layout under :func:`cache_root` (mode 0700)::

    <profile>/<study>/<series>/<instance>.dcm   complete series (names are keyed hashes)
    .partial/<profile>-<series>/                 a retrieve in progress or interrupted
    .index/<profile>-<series>.json               counts and time of a complete series

A retrieve writes each instance atomically into the partial folder; when every expected
instance is there the folder is renamed to its final place in one step, so a series that
looks complete is complete. An interrupted retrieve leaves only the partial folder, which the
next retrieve resumes. Folder names and metadata hold hashes, never UIDs or names.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import threading
import uuid
from pathlib import Path

from medgan.core.fileio import atomic_write_json
from medgan.core.privacy import hash_id
from medgan.pacs.records import PacsError, SeriesRef

ENV_CACHE = "MEDGAN_PACS_CACHE"


def cache_root() -> Path:
    """``MEDGAN_PACS_CACHE``, else ``$XDG_CACHE_HOME/medgan-studio/pacs`` (created, mode 0700)."""
    env = os.environ.get(ENV_CACHE)
    if env:
        root = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        root = Path(base) / "medgan-studio" / "pacs"
    return ensure_private(root)


def ensure_private(folder: Path) -> Path:
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
    except OSError as exc:
        raise PacsError(
            f"The PACS cache folder {folder} cannot be created ({exc.strerror or exc}).",
            advice=f"Set {ENV_CACHE} to a folder you may write to.",
        ) from exc
    return folder


class SeriesCache:
    """Where one series of one profile lives in the cache."""

    def __init__(self, root: Path, profile_name: str, ref: SeriesRef) -> None:
        self.root = root
        self.ref = ref
        p = hash_id(f"pacs-profile:{profile_name}")[:12]
        series = hash_id(ref.series_uid)
        self.final = root / p / hash_id(ref.study_uid) / series
        self.partial = root / ".partial" / f"{p}-{series}"
        self.index = root / ".index" / f"{p}-{series}.json"
        self._lock = threading.Lock()

    @staticmethod
    def file_name(sop_uid: str) -> str:
        return f"{hash_id(sop_uid)}.dcm"

    def is_complete(self) -> bool:
        return self.final.is_dir()

    def complete_count(self) -> int:
        return sum(1 for p in self.final.iterdir() if p.suffix == ".dcm")

    def start(self) -> None:
        ensure_private(self.partial.parent)
        self.partial.mkdir(mode=0o700, exist_ok=True)

    def present(self, sop_uids: list[str]) -> set[str]:
        """The instances an earlier, interrupted retrieve already wrote."""
        if not self.partial.is_dir():
            return set()
        names = {p.name for p in self.partial.iterdir()}
        return {u for u in sop_uids if self.file_name(u) in names}

    def write(self, sop_uid: str, data: bytes) -> None:
        """Write one instance atomically (hidden temporary name, then rename)."""
        target = self.partial / self.file_name(sop_uid)
        tmp = self.partial / f".{target.name}.{uuid.uuid4().hex[:8]}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def finish(self, sop_uids: list[str], *, profile: str, fetched: int) -> Path:
        """Check every instance is there, then move the series into place in one rename."""
        names = {p.name for p in self.partial.iterdir() if not p.name.startswith(".")}
        missing = [u for u in sop_uids if self.file_name(u) not in names]
        if missing:
            raise PacsError(
                f"The retrieve of a series from '{profile}' is incomplete: {len(missing)} of "
                f"{len(sop_uids)} instances are missing.",
                advice="Retrieve it again; the instances already received are kept.",
            )
        for stray in self.partial.glob(".*.tmp"):
            stray.unlink(missing_ok=True)
        ensure_private(self.final.parent.parent)
        ensure_private(self.final.parent)
        try:
            os.replace(self.partial, self.final)
        except OSError:
            if not self.final.is_dir():
                raise
            shutil.rmtree(self.partial, ignore_errors=True)  # another retrieve finished first
        ensure_private(self.index.parent)
        atomic_write_json(
            self.index,
            {
                "profile": profile,
                "series_key": self.final.name,
                "instances": len(sop_uids),
                "fetched": fetched,
                "completed_utc": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        return self.final

    def discard(self) -> None:
        """Forget the series (complete or partial)."""
        shutil.rmtree(self.partial, ignore_errors=True)
        shutil.rmtree(self.final, ignore_errors=True)
        self.index.unlink(missing_ok=True)
