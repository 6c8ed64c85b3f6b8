"""Send a synthetic DICOM export to a server by C-STORE or STOW-RS; report each failure.

Only files marked synthetic (``SYNTHETIC`` in the series description, as MedGAN's DICOM
export writes) are sent: this tool must never push patient images back by accident.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from medgan.core.errors import Cancelled
from medgan.pacs.client import close_client, open_client
from medgan.pacs.profiles import Profile
from medgan.pacs.records import PacsError, SendOutcome

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]
MARK = "SYNTHETIC"


def _has_dicom_magic(path: Path) -> bool:
    try:
        with open(path, "rb") as fh:
            return fh.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def export_files(source: str | Path) -> list[Path]:
    """The DICOM files of an export folder (or one file), sorted; hidden files skipped."""
    src = Path(source)
    if src.is_file():
        return [src]
    if not src.is_dir():
        raise PacsError(f"{src} does not exist.", advice="Choose a DICOM export folder.")
    files = sorted(
        p
        for p in src.rglob("*")
        if p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(src).parts)
        and (p.suffix.lower() == ".dcm" or (not p.suffix and _has_dicom_magic(p)))
    )
    if not files:
        raise PacsError(
            f"{src} holds no DICOM files.",
            advice="Export the synthetic images as DICOM first (Export page, format DICOM).",
        )
    return files


def send_files(
    profile: Profile,
    source: str | Path,
    *,
    secret: str | None = None,
    progress: ProgressFn | None = None,
    cancel: threading.Event | None = None,
) -> SendOutcome:
    """Send every synthetic DICOM file under ``source``; per-file failures in the outcome."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    started = time.monotonic()
    files = export_files(source)
    datasets = []
    outcome = SendOutcome()
    for path in files:
        try:
            ds = pydicom.dcmread(path)
        except (InvalidDicomError, OSError, ValueError) as exc:
            outcome.failed.append((path.name, f"not a readable DICOM file ({type(exc).__name__})"))
            continue
        if MARK not in str(ds.get("SeriesDescription", "")).upper():
            raise PacsError(
                f"{path.name} is not marked synthetic (no {MARK} in its series description).",
                advice="Only MedGAN's synthetic DICOM exports can be sent; patient images are "
                "never pushed back.",
            )
        datasets.append((path, ds))
    total = len(datasets)
    done = 0
    if progress is not None:
        progress(0, total)

    def on_result(index: int, reason: str | None) -> None:
        nonlocal done
        done += 1
        if reason is None:
            outcome.sent += 1
        else:
            outcome.failed.append((datasets[index][0].name, reason))
        if progress is not None:
            progress(done, total)

    client = open_client(profile, secret)
    try:
        if cancel is not None and cancel.is_set():
            raise Cancelled("The send was cancelled.")
        client.store([ds for _, ds in datasets], on_result, cancel)
    finally:
        close_client(client)
    outcome.seconds = time.monotonic() - started
    log.info(
        "Sent %d of %d files to %s (%d failed) in %.1f s",
        outcome.sent,
        len(files),
        profile.server,
        len(outcome.failed),
        outcome.seconds,
    )
    return outcome
