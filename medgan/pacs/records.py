"""Plain values of the PACS package: the error, search queries and hits, retrieve/send outcomes.

Hits carry patient names and IDs because the search dialog must show them; nothing here is
ever logged or written to disk (the cache metadata holds counts and hashed ids only).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from medgan.core.errors import MedganError

LEVELS = ("study", "series")


class PacsError(MedganError):
    """A PACS step failed: the message names the server and the step, never a credential."""


def step_error(server: str, step: str, reason: str, advice: str) -> PacsError:
    """``PacsError("<step> on <server> failed: <reason>.", advice=...)``."""
    reason = reason.rstrip(". ")
    return PacsError(f"{step} on {server} failed: {reason}.", advice=advice)


@dataclass(frozen=True)
class FindQuery:
    """What to search for; empty fields match anything. Dates are ``YYYYMMDD``."""

    level: str = "study"
    patient_id: str = ""
    patient_name: str = ""
    accession: str = ""
    date_from: str = ""
    date_to: str = ""
    modality: str = ""
    description: str = ""
    study_uid: str = ""
    series_uid: str = ""
    offset: int = 0
    limit: int = 50

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise PacsError(f"Unknown search level {self.level!r}.", advice="Use study or series.")
        for name in ("date_from", "date_to"):
            value = getattr(self, name)
            if value and not (len(value) == 8 and value.isdigit()):
                raise PacsError(
                    f"The date {value!r} is not a date.", advice="Write dates as YYYYMMDD."
                )
        if self.offset < 0 or self.limit < 1:
            raise PacsError("Paging needs offset >= 0 and limit >= 1.", advice="Fix the page size.")

    def date_range(self) -> str:
        """DICOM range matching: ``from-to``, ``from-``, ``-to`` or empty."""
        if not self.date_from and not self.date_to:
            return ""
        if self.date_from and self.date_from == self.date_to:
            return self.date_from
        return f"{self.date_from}-{self.date_to}"


@dataclass(frozen=True)
class Hit:
    """One study or series found (identifying fields: show in the dialog only)."""

    level: str
    study_uid: str
    series_uid: str = ""
    patient_name: str = ""
    patient_id: str = ""
    study_date: str = ""
    accession: str = ""
    description: str = ""
    modality: str = ""
    n_series: int | None = None
    n_instances: int | None = None


@dataclass(frozen=True)
class FindPage:
    """One page of hits; ``has_more`` when the server holds more after this page."""

    hits: list[Hit]
    offset: int
    has_more: bool


@dataclass(frozen=True)
class SeriesRef:
    """A series to retrieve."""

    study_uid: str
    series_uid: str


@dataclass
class RetrieveOutcome:
    """Result of retrieving series into the cache."""

    folders: list[str] = field(default_factory=list)  # one complete folder per series
    fetched: int = 0  # instances transferred in this run
    reused: int = 0  # instances already in the cache (resume or complete series)
    seconds: float = 0.0

    @property
    def folder(self) -> str:
        """The folder to open: the single series, else the common parent of all of them."""
        import os

        if len(self.folders) == 1:
            return self.folders[0]
        return os.path.commonpath(self.folders) if self.folders else ""


@dataclass
class SendOutcome:
    """Result of sending files: how many were stored, and each failure with its reason."""

    sent: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed
