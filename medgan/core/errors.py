"""Errors a user can act on. Every message says what went wrong and what to do."""

from __future__ import annotations


class MedganError(Exception):
    """Base class for expected, user-facing failures (bad input, bad settings, I/O)."""

    def __init__(self, message: str, *, advice: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.advice = advice

    def __str__(self) -> str:
        return f"{self.message} {self.advice}" if self.advice else self.message


class DicomError(MedganError):
    """A DICOM folder or file cannot be read or used."""


class DataError(MedganError):
    """The chosen images cannot form a training set (too few, wrong shape, ...)."""


class ModelFileError(MedganError):
    """A model file is missing, corrupt, tampered with, or incompatible."""


class TrainingError(MedganError):
    """Training failed (NaN losses, out of memory, ...); ``advice`` says which setting to change."""


class ExportError(MedganError):
    """An export could not be written (destination exists, disk full, read-only, ...)."""


class Cancelled(MedganError):  # noqa: N818 - reads better at call sites than CancelledError
    """A long job stopped because the user asked it to."""

    def __init__(self, message: str = "Cancelled by the user.") -> None:
        super().__init__(message)
