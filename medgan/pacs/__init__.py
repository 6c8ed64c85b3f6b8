"""PACS access: server profiles (secrets in the keyring), search, retrieve into a private
cache, and sending synthetic series back, over DIMSE (pynetdicom) or DICOMweb
(dicomweb-client). The network libraries are imported only when a client is used.
"""

from __future__ import annotations

from medgan.pacs.profiles import DicomWebSettings, DimseSettings, Profile
from medgan.pacs.records import (
    FindPage,
    FindQuery,
    Hit,
    PacsError,
    RetrieveOutcome,
    SendOutcome,
    SeriesRef,
)

__all__ = [
    "DicomWebSettings",
    "DimseSettings",
    "FindPage",
    "FindQuery",
    "Hit",
    "PacsError",
    "Profile",
    "RetrieveOutcome",
    "SendOutcome",
    "SeriesRef",
]
