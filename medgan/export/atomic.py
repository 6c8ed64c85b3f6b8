"""All-or-nothing folder writes: build in a hidden sibling folder, fsync, rename into place.

A failed or cancelled export removes its temporary folder, so the destination is either
absent (or untouched) or complete. An existing destination is never overwritten unless asked;
then the old folder is swapped out only after the new one is complete.
"""

from __future__ import annotations

import errno
import logging
import os
import secrets
import shutil
from pathlib import Path
from types import TracebackType
from typing import Literal

from medgan.core.errors import ExportError

log = logging.getLogger(__name__)

_PARTIAL = ".partial-"
_OLD = ".replaced-"


def explain_os_error(exc: OSError, path: Path | str) -> ExportError:
    """Turn an OSError into an ExportError a user can act on."""
    where = str(path)
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return ExportError(
            f"The disk is full while writing the export to {where}; nothing was kept.",
            advice="Free some space or choose another destination, then export again.",
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return ExportError(
            f"Cannot write to {where}: the destination is read-only or not permitted.",
            advice="Choose a folder you can write to (for example in your home folder).",
        )
    if code == errno.ENAMETOOLONG:
        return ExportError(
            f"The export path is too long for this file system: {where}",
            advice="Choose a shorter folder name or a folder closer to the drive's root.",
        )
    if code in (errno.EEXIST, errno.ENOTEMPTY):
        return ExportError(
            f"The destination {where} already exists and is not empty.",
            advice="Choose a new folder, or ask for an explicit overwrite.",
        )
    return ExportError(f"Could not write the export to {where}: {exc.strerror or exc}.")


def check_destination(destination: Path | str, *, overwrite: bool = False) -> Path:
    """Fail early (before any slow work) if ``destination`` cannot be created.

    Returns the absolute destination. An existing empty folder is accepted (a file dialog
    often creates it); a non-empty one needs ``overwrite``.
    """
    if not str(destination):
        raise ExportError("No export destination was given.", advice="Choose a folder to create.")
    dest = Path(destination).expanduser().absolute()
    try:
        name_max = os.pathconf(_existing_ancestor(dest.parent), "PC_NAME_MAX")
    except (OSError, ValueError):
        name_max = 255
    if any(len(os.fsencode(part)) > name_max for part in dest.parts):
        raise explain_os_error(OSError(errno.ENAMETOOLONG, "File name too long"), dest)
    try:
        if dest.exists() and not dest.is_dir():
            raise ExportError(
                f"The destination {dest} is a file, not a folder.", advice="Choose a folder name."
            )
        if dest.is_dir() and any(dest.iterdir()) and not overwrite:
            raise ExportError(
                f"The destination {dest} already exists and is not empty; it was left unchanged.",
                advice="Choose a new folder, or use the overwrite option to replace it.",
            )
    except OSError as exc:
        raise explain_os_error(exc, dest) from exc
    return dest


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _fsync_file(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file (in parallel: fsync waits on the disk, not the CPU), then the folders."""
    from concurrent.futures import ThreadPoolExecutor

    paths, folders = [], []
    for folder, _dirs, files in os.walk(root):
        paths += [os.path.join(folder, name) for name in files]
        folders.append(Path(folder))
    if len(paths) > 8:
        with ThreadPoolExecutor(max_workers=16) as pool:
            list(pool.map(_fsync_file, paths))
    else:
        for path in paths:
            _fsync_file(path)
    for sub in folders:
        _fsync_dir(sub)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # some platforms cannot open folders; rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class AtomicFolder:
    """Context manager yielding a temporary folder that becomes ``destination`` on commit.

    Example::

        with AtomicFolder(dest) as tmp:
            write_files(tmp)
            ...  # an exception here removes tmp and leaves dest as it was
        # leaving the block without an exception renames tmp to dest
    """

    def __init__(self, destination: Path | str, *, overwrite: bool = False, durable: bool = True):
        self.destination = check_destination(destination, overwrite=overwrite)
        self.overwrite = overwrite
        self.durable = durable
        self.temp: Path | None = None

    def __enter__(self) -> Path:
        dest = self.destination
        token = secrets.token_hex(4)
        stem = dest.name[:100]
        self.temp = dest.parent / f".{stem}{_PARTIAL}{token}"
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            self.temp.mkdir()
        except OSError as exc:
            raise explain_os_error(exc, dest) from exc
        log.debug("Writing the export into temporary folder %s", self.temp)
        return self.temp

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        assert self.temp is not None
        if exc_type is not None:
            self._discard()
            if isinstance(exc, OSError):
                raise explain_os_error(exc, self.destination) from exc
            return False
        try:
            self._commit()
        except OSError as err:
            self._discard()
            raise explain_os_error(err, self.destination) from err
        except BaseException:
            self._discard()
            raise
        return False

    def _discard(self) -> None:
        if self.temp is not None and self.temp.exists():
            shutil.rmtree(self.temp, ignore_errors=True)
            log.debug("Removed the incomplete export %s", self.temp)

    def _commit(self) -> None:
        assert self.temp is not None
        dest = self.destination
        if self.durable:
            _fsync_tree(self.temp)
        replaced: Path | None = None
        if dest.is_dir() and any(dest.iterdir()):
            if not self.overwrite:  # appeared while we were writing
                raise OSError(errno.ENOTEMPTY, "Directory not empty", str(dest))
            replaced = dest.parent / f".{dest.name[:100]}{_OLD}{secrets.token_hex(4)}"
            os.rename(dest, replaced)
        try:
            # os.rename replaces an empty folder atomically and refuses a non-empty one.
            os.rename(self.temp, dest)
        except BaseException:
            if replaced is not None:
                os.rename(replaced, dest)
            raise
        if self.durable:
            _fsync_dir(dest.parent)
        if replaced is not None:
            shutil.rmtree(replaced, ignore_errors=True)
        log.info("Export complete: %s", dest)
