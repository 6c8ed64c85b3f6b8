"""Workflow: PACS jobs the CLI and the GUI share — test, search, retrieve, send.

Each takes a typed request and ``progress(stage, done, total)`` / ``cancel`` keywords
(:mod:`medgan.workflows.progress`); stages are ``retrieve`` and ``send``. Secrets come from
the keyring unless the request carries one (the GUI's "remember" box unticked, a script's
environment).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from medgan.pacs.client import close_client, open_client
from medgan.pacs.profiles import Profile, get_profile, save_profile
from medgan.pacs.records import (
    FindPage,
    FindQuery,
    PacsError,
    RetrieveOutcome,
    SendOutcome,
    SeriesRef,
)
from medgan.pacs.retrieve import retrieve_series
from medgan.pacs.secrets import delete_secret, store_secret
from medgan.pacs.send import send_files
from medgan.workflows.progress import StageProgress, stage


def _profile(profile: Profile | str) -> Profile:
    return get_profile(profile) if isinstance(profile, str) else profile


def add_profile(profile: Profile, secret: str | None = None, *, use_keyring: bool = True) -> None:
    """Save ``profile``; keep ``secret`` (password or token) in the keyring when given.

    ``use_keyring=False`` saves the profile alone: its secret must then come from
    ``MEDGAN_PACS_SECRET`` (or the caller) whenever the profile is used.
    """
    if not profile.needs_secret:
        delete_secret(profile.name)
    elif use_keyring and secret:
        store_secret(profile.name, secret)
    elif use_keyring:
        raise PacsError(
            f"Profile '{profile.name}' uses {profile.dicomweb.auth} auth but no secret was given.",
            advice="Give the password or token (it is kept in the keyring).",
        )
    save_profile(profile)


def check_connection(profile: Profile | str, *, secret: str | None = None) -> str:
    """C-ECHO or a QIDO-RS ping; returns a one-line success message."""
    p = _profile(profile)
    client = open_client(p, secret)
    try:
        client.echo()
    finally:
        close_client(client)
    how = "C-ECHO" if p.kind == "dimse" else "QIDO-RS ping"
    return f"{how} to {p.server} succeeded."


def search(profile: Profile | str, query: FindQuery, *, secret: str | None = None) -> FindPage:
    """One page of studies or series matching ``query``."""
    client = open_client(_profile(profile), secret)
    try:
        return client.find(query)
    finally:
        close_client(client)


@dataclass(frozen=True)
class RetrieveRequest:
    profile: Profile | str
    series: list[SeriesRef] = field(default_factory=list)
    secret: str | None = None
    workers: int | None = None


def retrieve(
    request: RetrieveRequest,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
) -> RetrieveOutcome:
    """Retrieve the series into the private cache (resumable, all-or-nothing per series)."""
    if not request.series:
        raise PacsError("No series was chosen to retrieve.", advice="Select one or more series.")
    return retrieve_series(
        _profile(request.profile),
        request.series,
        secret=request.secret,
        progress=stage(progress, "retrieve"),
        cancel=cancel,
        workers=request.workers,
    )


@dataclass(frozen=True)
class SendRequest:
    profile: Profile | str
    source: str  # a DICOM export folder (or one file)
    secret: str | None = None


def send_export(
    request: SendRequest,
    *,
    progress: StageProgress | None = None,
    cancel: threading.Event | None = None,
) -> SendOutcome:
    """Send a synthetic DICOM export by C-STORE or STOW-RS; failures listed per file."""
    return send_files(
        _profile(request.profile),
        request.source,
        secret=request.secret,
        progress=stage(progress, "send"),
        cancel=cancel,
    )
