"""PACS profiles, secrets, queries and the cache, without a server."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from medgan.pacs.cache import SeriesCache, cache_root
from medgan.pacs.profiles import (
    DicomWebSettings,
    DimseSettings,
    Profile,
    get_profile,
    load_profiles,
    profiles_path,
)
from medgan.pacs.query import match_keys
from medgan.pacs.records import FindQuery, PacsError, SeriesRef
from medgan.pacs.secrets import get_secret, keyring_problem, store_secret
from medgan.workflows.pacs import add_profile
from tests.orthanc import memory_keyring

SECRET = "s3cret-Pw-QZX-9"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MEDGAN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDGAN_PACS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MEDGAN_PACS_SECRET", raising=False)
    before = keyring.get_keyring()
    keyring.set_keyring(memory_keyring())
    yield
    keyring.set_keyring(before)


def _web(**kw: object) -> Profile:
    settings = DicomWebSettings(
        url="https://pacs.example.org/dicom-web", auth="basic", username="u"
    )
    return Profile("web", "dicomweb", dicomweb=settings, **kw)  # type: ignore[arg-type]


def test_profile_round_trip_keeps_the_secret_out_of_the_file() -> None:
    add_profile(_web(), SECRET)
    dimse = Profile(
        "dimse", "dimse", dimse=DimseSettings(host="pacs", port=11112, called_aet="PACS")
    )
    add_profile(dimse)
    loaded = load_profiles()
    assert loaded == {"web": _web(), "dimse": dimse}
    text = profiles_path().read_text()
    assert SECRET not in text and json.loads(text)["version"] == 1
    assert stat.S_IMODE(os.stat(profiles_path()).st_mode) == 0o600
    assert get_secret("web") == SECRET
    with pytest.raises(PacsError, match="no PACS profile named 'nope'"):
        get_profile("nope")


@pytest.mark.parametrize(
    ("profile", "match"),
    [
        (lambda: Profile("bad name!", "dimse", dimse=DimseSettings(host="h")), "profile name"),
        (lambda: Profile("x", "dicomweb", dicomweb=DicomWebSettings(url="ftp://x")), "http"),
        (
            lambda: Profile("x", "dicomweb", dicomweb=DicomWebSettings(url="https://u:p@h/dw")),
            "user name or password",
        ),
        (
            lambda: Profile("x", "dimse", dimse=DimseSettings(host="h", called_aet="A\\B")),
            "AE title",
        ),
        (lambda: Profile("x", "dimse", dimse=DimseSettings(host="h", port=70000)), "Port"),
        (
            lambda: Profile(
                "x", "dicomweb", dicomweb=DicomWebSettings(url="http://h", auth="basic")
            ),
            "user name",
        ),
    ],
)
def test_invalid_profiles_are_refused_with_advice(profile, match: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PacsError, match=match) as info:
        profile()
    assert info.value.advice


def test_a_profile_needing_a_secret_is_refused_without_one() -> None:
    with pytest.raises(PacsError, match="no secret was given"):
        add_profile(_web())


def test_no_usable_keyring_is_a_clear_error_not_a_plain_text_fallback() -> None:
    keyring.set_keyring(fail.Keyring())
    assert "No usable keyring" in (keyring_problem() or "")
    with pytest.raises(PacsError, match="No usable keyring") as info:
        store_secret("web", SECRET)
    assert "keyrings.alt" in (info.value.advice or "")
    with pytest.raises(PacsError, match="No usable keyring"):
        add_profile(_web(), SECRET)
    assert not profiles_path().exists()


def test_query_keys_and_validation() -> None:
    q = FindQuery(patient_name="smith", date_from="20200101", date_to="20201231", modality="ct")
    assert match_keys(q) == {
        "PatientName": "*smith*",
        "StudyDate": "20200101-20201231",
        "ModalitiesInStudy": "CT",
    }
    s = FindQuery(level="series", description="brain", study_uid="1.2.3", series_uid="1.2.3.4")
    assert match_keys(s) == {
        "StudyInstanceUID": "1.2.3",
        "SeriesInstanceUID": "1.2.3.4",
        "SeriesDescription": "*brain*",
    }
    with pytest.raises(PacsError, match="YYYYMMDD"):
        FindQuery(date_from="2020-01-01")
    with pytest.raises(PacsError, match="level"):
        FindQuery(level="patient")


def test_cache_is_private_and_a_series_is_complete_or_absent() -> None:
    root = cache_root()
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    ref = SeriesRef("1.2.3", "1.2.3.4")
    cache = SeriesCache(root, "web", ref)
    uids = ["1.2.3.4.1", "1.2.3.4.2", "1.2.3.4.3"]
    cache.start()
    cache.write(uids[0], b"one")
    assert not cache.is_complete()
    assert cache.present(uids) == {uids[0]}
    with pytest.raises(PacsError, match="2 of 3 instances are missing"):
        cache.finish(uids, profile="web", fetched=1)
    assert not cache.is_complete()
    for uid in uids[1:]:
        cache.write(uid, b"more")
    final = cache.finish(uids, profile="web", fetched=3)
    assert cache.is_complete() and sorted(p.name for p in final.iterdir()) == sorted(
        SeriesCache.file_name(u) for u in uids
    )
    assert not cache.partial.exists()
    # Names and metadata hold hashes, never the UIDs.
    for path in root.rglob("*"):
        assert "1.2.3" not in path.name
    meta = cache.index.read_text()
    assert "1.2.3" not in meta and json.loads(meta)["instances"] == 3


def test_no_keyring_profiles_for_scripts_take_the_secret_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from medgan.cli import main
    from medgan.pacs.client import resolve_secret

    keyring.set_keyring(fail.Keyring())
    argv = ["pacs", "profile", "add", "web", "--dicomweb", "https://pacs.example.org/dicom-web",
            "--auth", "basic", "--username", "u"]  # fmt: skip
    assert main([*argv, "--secret-env", "NOPE_UNSET"]) == 1
    assert main([*argv, "--no-keyring"]) == 0
    assert "MEDGAN_PACS_SECRET" in capsys.readouterr().out
    profile = get_profile("web")
    with pytest.raises(PacsError, match="No usable keyring"):
        resolve_secret(profile)
    monkeypatch.setenv("MEDGAN_PACS_SECRET", SECRET)
    assert resolve_secret(profile) == SECRET
    assert SECRET not in profiles_path().read_text()
