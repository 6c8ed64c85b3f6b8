"""Open the right client for a profile: :class:`DimseClient` or :class:`DicomWebClient`.

Both offer the same calls (the :class:`PacsClient` protocol), so search, retrieve and send
do not care which protocol a server speaks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Protocol

from medgan.pacs.dicomweb import DicomWebClient
from medgan.pacs.dimse import DimseClient
from medgan.pacs.profiles import Profile
from medgan.pacs.records import FindPage, FindQuery, SeriesRef
from medgan.pacs.secrets import require_secret

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

Sink = Callable[[str, bytes], None]


class PacsClient(Protocol):
    server: str

    def echo(self) -> None: ...

    def find(self, query: FindQuery) -> FindPage: ...

    def list_instances(self, ref: SeriesRef) -> list[str]: ...

    def fetch(
        self,
        ref: SeriesRef,
        sop_uids: Sequence[str],
        sink: Sink,
        cancel: threading.Event | None = None,
    ) -> int: ...

    def store(
        self,
        datasets: Sequence[Dataset],
        on_result: Callable[[int, str | None], None],
        cancel: threading.Event | None = None,
    ) -> None: ...


def resolve_secret(profile: Profile, secret: str | None = None) -> str | None:
    """The given secret, else the keyring's when the profile needs one."""
    if secret or not profile.needs_secret:
        return secret
    return require_secret(profile.name, profile.server)


def open_client(profile: Profile, secret: str | None = None) -> PacsClient:
    """A client for ``profile``; the secret comes from the keyring unless given."""
    if profile.kind == "dimse":
        return DimseClient(profile)
    return DicomWebClient(profile, resolve_secret(profile, secret))


def close_client(client: PacsClient) -> None:
    close = getattr(client, "close", None)
    if close is not None:
        close()
