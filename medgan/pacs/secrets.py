"""Passwords and tokens of PACS profiles, kept in the operating system's keyring.

Never in the profiles file, a log or an export. When no keyring backend is usable (a headless
Linux box without Secret Service, say) every call raises :class:`PacsError` saying so; there is
no silent plain-text fallback. For scripts, ``MEDGAN_PACS_SECRET`` (read from the environment,
never stored) overrides the keyring for every profile.
"""

from __future__ import annotations

import logging
import os

from medgan.pacs.records import PacsError

log = logging.getLogger(__name__)

SERVICE = "medgan-studio-pacs"
ENV_SECRET = "MEDGAN_PACS_SECRET"

_NO_KEYRING_ADVICE = (
    "Install and unlock a keyring (GNOME Keyring / KWallet on Linux; macOS and Windows have "
    "one), or install the 'keyrings.alt' package for an encrypted file keyring; for scripts "
    f"add the profile with --no-keyring and set {ENV_SECRET} in the environment instead."
)


def _backend() -> object:
    import keyring
    from keyring.backends import fail

    backend = keyring.get_keyring()
    if isinstance(backend, fail.Keyring):
        raise PacsError(
            "No usable keyring was found to keep PACS passwords.", advice=_NO_KEYRING_ADVICE
        )
    return backend


def keyring_problem() -> str | None:
    """None when secrets can be stored, else the message to show."""
    try:
        _backend()
    except PacsError as exc:
        return str(exc)
    return None


def store_secret(profile_name: str, secret: str) -> None:
    """Keep ``secret`` for the profile in the keyring (replacing any earlier one)."""
    import keyring
    from keyring.errors import KeyringError

    _backend()
    try:
        keyring.set_password(SERVICE, profile_name, secret)
    except KeyringError as exc:
        raise PacsError(
            f"The keyring refused to store the password of profile '{profile_name}' "
            f"({type(exc).__name__}).",
            advice="Unlock the keyring and try again. " + _NO_KEYRING_ADVICE,
        ) from exc
    log.info("Secret of PACS profile '%s' stored in the keyring", profile_name)


def get_secret(profile_name: str) -> str | None:
    """The profile's secret (environment override first), or None when none is stored."""
    env = os.environ.get(ENV_SECRET)
    if env:
        return env
    import keyring
    from keyring.errors import KeyringError

    _backend()
    try:
        return keyring.get_password(SERVICE, profile_name)
    except KeyringError as exc:
        raise PacsError(
            f"The keyring could not be read for profile '{profile_name}' ({type(exc).__name__}).",
            advice="Unlock the keyring and try again.",
        ) from exc


def delete_secret(profile_name: str) -> None:
    import keyring
    from keyring.errors import KeyringError, PasswordDeleteError

    try:
        _backend()
        keyring.delete_password(SERVICE, profile_name)
    except (PasswordDeleteError, PacsError):
        pass
    except KeyringError as exc:  # pragma: no cover - backend specific
        log.warning(
            "Could not delete the secret of profile '%s': %s", profile_name, type(exc).__name__
        )


def require_secret(profile_name: str, server: str) -> str:
    """The secret, or a :class:`PacsError` saying how to give one."""
    secret = get_secret(profile_name)
    if not secret:
        raise PacsError(
            f"No password or token is stored for {server}.",
            advice="Enter it in File > Open from PACS (Edit profile) or with "
            f"'medgan pacs profile add {profile_name} ... --ask-secret'.",
        )
    return secret
