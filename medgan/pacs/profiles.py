"""Server profiles: typed connection settings stored in the user's config, secrets excluded.

A profile is DICOMweb (base URL, QIDO/WADO/STOW prefixes, auth none/basic/bearer, TLS
verification with an optional CA bundle) or DIMSE (host, port, called/calling AE titles, TLS
with an optional CA bundle, C-GET or C-MOVE to our own storage SCP). Profiles live in
``config_dir()/pacs_profiles.json`` (mode 0600, written atomically). Passwords and tokens are
kept in the operating system's keyring (:mod:`medgan.pacs.secrets`), never in this file.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from medgan.core.fileio import atomic_write_text
from medgan.core.privacy import config_dir
from medgan.pacs.records import PacsError

KINDS = ("dicomweb", "dimse")
AUTHS = ("none", "basic", "bearer")
RETRIEVE_METHODS = ("get", "move")
FILE_NAME = "pacs_profiles.json"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_AE = re.compile(r"^[\x20-\x5b\x5d-\x7e]{1,16}$")  # printable, no backslash, 16 chars max


@dataclass(frozen=True)
class DicomWebSettings:
    url: str = ""
    qido_prefix: str = ""
    wado_prefix: str = ""
    stow_prefix: str = ""
    auth: str = "none"
    username: str = ""  # basic auth only; the password is in the keyring
    verify_tls: bool = True
    ca_bundle: str = ""  # PEM file of extra trusted CAs (empty: the system's)
    timeout_s: float = 30.0


@dataclass(frozen=True)
class DimseSettings:
    host: str = ""
    port: int = 104
    called_aet: str = "ANY-SCP"
    calling_aet: str = "MEDGAN"
    tls: bool = False
    ca_bundle: str = ""
    retrieve: str = "get"  # "get" or "move" (to our own storage SCP)
    move_port: int = 11113  # where our storage SCP listens for C-MOVE
    timeout_s: float = 30.0


@dataclass(frozen=True)
class Profile:
    """One server. ``server`` is a display name with no credentials (for messages and logs)."""

    name: str
    kind: str
    dicomweb: DicomWebSettings = field(default_factory=DicomWebSettings)
    dimse: DimseSettings = field(default_factory=DimseSettings)
    workers: int = 4  # parallel associations / HTTP sessions for retrieves

    def __post_init__(self) -> None:
        validate(self, check_files=False)  # a CA file removed later must not hide the profile

    @property
    def server(self) -> str:
        if self.kind == "dimse":
            d = self.dimse
            return f"'{self.name}' ({d.called_aet}@{d.host}:{d.port})"
        parts = urlsplit(self.dicomweb.url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        return f"'{self.name}' ({parts.scheme}://{host}{port}{parts.path})"

    @property
    def needs_secret(self) -> bool:
        return self.kind == "dicomweb" and self.dicomweb.auth != "none"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "workers": self.workers}
        out[self.kind] = asdict(self.dicomweb if self.kind == "dicomweb" else self.dimse)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        kind = str(data.get("kind", ""))
        web = _known(DicomWebSettings, data.get("dicomweb") or {})
        dimse = _known(DimseSettings, data.get("dimse") or {})
        return cls(
            name=str(data.get("name", "")),
            kind=kind,
            dicomweb=DicomWebSettings(**web),
            dimse=DimseSettings(**dimse),
            workers=int(data.get("workers", 4)),
        )


def _known(kind: type, values: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in fields(kind)}
    return {k: v for k, v in values.items() if k in names}


def validate(p: Profile, *, check_files: bool = True) -> None:
    """Raise :class:`PacsError` with advice when a profile cannot work."""
    if not _NAME.match(p.name or ""):
        raise PacsError(
            f"The profile name {p.name!r} is not usable.",
            advice="Use letters, digits, '.', '_' or '-' (64 characters at most).",
        )
    if p.kind not in KINDS:
        raise PacsError(f"Unknown server kind {p.kind!r}.", advice="Use dicomweb or dimse.")
    if not 1 <= p.workers <= 16:
        raise PacsError(f"{p.workers} parallel transfers is out of range.", advice="Use 1 to 16.")
    if p.kind == "dicomweb":
        w = p.dicomweb
        parts = urlsplit(w.url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise PacsError(
                f"The DICOMweb address {w.url!r} is not an http(s) URL.",
                advice="Write it like https://pacs.example.org/dicom-web.",
            )
        if parts.username or parts.password:
            raise PacsError(
                "The DICOMweb address holds a user name or password.",
                advice="Remove them from the URL; choose basic auth and give the password "
                "separately (it is kept in the keyring).",
            )
        if w.auth not in AUTHS:
            raise PacsError(f"Unknown auth {w.auth!r}.", advice="Use none, basic or bearer.")
        if w.auth == "basic" and not w.username:
            raise PacsError("Basic auth needs a user name.", advice="Give --username.")
        if check_files and w.ca_bundle and not Path(w.ca_bundle).is_file():
            raise PacsError(
                f"The CA bundle {w.ca_bundle} does not exist.", advice="Give a PEM file."
            )
    else:
        d = p.dimse
        if not d.host:
            raise PacsError("A DIMSE profile needs a host.", advice="Give --host.")
        for port in (d.port, d.move_port):
            if not 1 <= int(port) <= 65535:
                raise PacsError(f"Port {port} is out of range.", advice="Use 1 to 65535.")
        for label, aet in (("called", d.called_aet), ("calling", d.calling_aet)):
            if not _AE.match(aet or "") or not aet.strip():
                raise PacsError(
                    f"The {label} AE title {aet!r} is not valid.",
                    advice="Use 1 to 16 printable characters without backslash.",
                )
        if d.retrieve not in RETRIEVE_METHODS:
            raise PacsError(f"Unknown retrieve method {d.retrieve!r}.", advice="Use get or move.")
        if check_files and d.ca_bundle and not Path(d.ca_bundle).is_file():
            raise PacsError(
                f"The CA bundle {d.ca_bundle} does not exist.", advice="Give a PEM file."
            )


def profiles_path() -> Path:
    return config_dir() / FILE_NAME


def load_profiles() -> dict[str, Profile]:
    """Every saved profile by name (an absent file: none)."""
    path = profiles_path()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise PacsError(
            f"The PACS profiles file {path} cannot be read ({exc}).",
            advice="Fix or delete the file and add the profiles again.",
        ) from exc
    out: dict[str, Profile] = {}
    for item in data.get("profiles", []):
        profile = Profile.from_dict(item)
        out[profile.name] = profile
    return out


def get_profile(name: str) -> Profile:
    profiles = load_profiles()
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none yet"
        raise PacsError(
            f"There is no PACS profile named {name!r} (known: {known}).",
            advice="Add one with 'medgan pacs profile add' or in File > Open from PACS.",
        )
    return profiles[name]


def _write(profiles: dict[str, Profile]) -> None:
    path = profiles_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    doc = {"version": 1, "profiles": [p.to_dict() for p in profiles.values()]}
    atomic_write_text(path, json.dumps(doc, indent=2) + "\n")
    os.chmod(path, 0o600)


def save_profile(profile: Profile) -> None:
    """Add or replace ``profile`` (validated) in the profiles file."""
    validate(profile)
    profiles = load_profiles()
    profiles[profile.name] = profile
    _write(profiles)


def delete_profile(name: str) -> None:
    profiles = load_profiles()
    if profiles.pop(name, None) is not None:
        _write(profiles)


__all__ = [
    "DicomWebSettings",
    "DimseSettings",
    "Profile",
    "delete_profile",
    "get_profile",
    "load_profiles",
    "profiles_path",
    "save_profile",
    "validate",
]
