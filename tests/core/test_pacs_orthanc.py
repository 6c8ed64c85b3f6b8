"""Round trips against a real Orthanc (Debian orthanc + orthanc-dicomweb): C-ECHO, C-FIND,
C-GET, C-MOVE, QIDO-RS, WADO-RS, STOW-RS, C-STORE, resume, cancel, and the CLI.

One Orthanc per session on free loopback ports with basic auth and a known AE title
(:mod:`tests.orthanc`); the module is skipped with the reason when Orthanc is not installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import keyring
import numpy as np
import pydicom
import pytest

from medgan.cli import main
from medgan.core.errors import Cancelled
from medgan.dicom.index import scan_folder
from medgan.export import ExportConfig, export_set
from medgan.pacs.profiles import DicomWebSettings, DimseSettings, Profile
from medgan.pacs.records import FindQuery, PacsError, SeriesRef
from medgan.pacs.send import send_files
from medgan.workflows import pacs as flows
from tests.core._export_data import provenance, synthetic
from tests.dicom_factory import write_series
from tests.orthanc import OrthancServer, memory_keyring, orthanc_missing, start_orthanc

pytestmark = pytest.mark.skipif(orthanc_missing() is not None, reason=orthanc_missing() or "")

PATIENTS = 2
SLICES = 6


@pytest.fixture(scope="session")
def orthanc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[OrthancServer, Path]]:
    from medgan.demo.study import write_demo_study

    server = start_orthanc(tmp_path_factory.mktemp("orthanc"))
    try:
        demo = write_demo_study(
            tmp_path_factory.mktemp("pacs-demo") / "demo",
            n_patients=PATIENTS,
            slices_per_patient=SLICES,
            size=64,
        )
        server.upload(sorted(p for p in demo.rglob("*.dcm")))
        yield server, demo
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MEDGAN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDGAN_PACS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MEDGAN_PACS_SECRET", raising=False)
    before = keyring.get_keyring()
    keyring.set_keyring(memory_keyring())
    yield
    keyring.set_keyring(before)


def dimse(server: OrthancServer, name: str = "o-dimse", **kw: object) -> Profile:
    settings = DimseSettings(
        host="127.0.0.1",
        port=server.dicom_port,
        called_aet=server.aet,
        calling_aet=server.move_aet,
        move_port=server.move_port,
        timeout_s=10,
    )
    return Profile(name, "dimse", dimse=dataclasses.replace(settings, **kw))  # type: ignore[arg-type]


def web(server: OrthancServer, name: str = "o-web", workers: int = 4, **kw: object) -> Profile:
    settings = DicomWebSettings(
        url=server.dicomweb_url,
        auth="basic",
        username=server.user,
        timeout_s=10,
    )
    return Profile(name, "dicomweb", dicomweb=dataclasses.replace(settings, **kw), workers=workers)  # type: ignore[arg-type]


def _series(server: OrthancServer, patient: int = 1) -> SeriesRef:
    page = flows.search(
        dimse(server),
        FindQuery(level="series", patient_id=f"MEDGAN-DEMO-{patient:02d}", modality="CT"),
    )
    assert len(page.hits) == 1
    return SeriesRef(page.hits[0].study_uid, page.hits[0].series_uid)


def _pixels_by_uid(files: list[Path]) -> dict[str, np.ndarray]:
    out = {}
    for f in files:
        ds = pydicom.dcmread(f)
        out[str(ds.SOPInstanceUID)] = ds.pixel_array
    return out


def test_echo_over_dimse_and_dicomweb(orthanc: tuple[OrthancServer, Path]) -> None:
    server, _ = orthanc
    assert "C-ECHO" in flows.check_connection(dimse(server))
    assert "QIDO-RS ping" in flows.check_connection(web(server), secret=server.password)


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_find_studies_and_series_by_every_field_with_paging(
    orthanc: tuple[OrthancServer, Path], kind: str
) -> None:
    server, _ = orthanc
    profile = dimse(server) if kind == "dimse" else web(server)
    secret = None if kind == "dimse" else server.password

    def find(**kw: object) -> list[str]:
        page = flows.search(profile, FindQuery(**kw), secret=secret)  # type: ignore[arg-type]
        return sorted(h.patient_id for h in page.hits)

    everyone = [f"MEDGAN-DEMO-{i:02d}" for i in range(1, PATIENTS + 1)]
    assert find() == everyone
    assert find(patient_name="patient02") == ["MEDGAN-DEMO-02"]
    assert find(patient_id="MEDGAN-DEMO-01") == ["MEDGAN-DEMO-01"]
    assert find(accession="DEMO000002") == ["MEDGAN-DEMO-02"]
    assert find(modality="CT") == everyone and find(modality="MR") == []
    assert find(description="WITHOUT CONTRAST") == everyone
    assert find(date_from="20210101", date_to="20210110") == ["MEDGAN-DEMO-01"]
    assert find(date_from="20300101") == []
    series = flows.search(profile, FindQuery(level="series", description="Axial"), secret=secret)
    assert len(series.hits) == PATIENTS
    assert all(h.n_instances == SLICES and h.modality == "CT" for h in series.hits)
    one = flows.search(
        profile,
        FindQuery(level="series", study_uid=series.hits[0].study_uid, modality="CT"),
        secret=secret,
    )
    assert [h.series_uid for h in one.hits] == [series.hits[0].series_uid]
    study = flows.search(profile, FindQuery(), secret=secret).hits[0]
    assert study.n_series and study.n_instances and study.n_instances >= SLICES
    assert study.patient_name
    first = flows.search(profile, FindQuery(limit=1), secret=secret)
    second = flows.search(profile, FindQuery(limit=1, offset=1), secret=secret)
    assert first.has_more and not second.has_more
    assert {first.hits[0].study_uid, second.hits[0].study_uid} == {
        h.study_uid for h in flows.search(profile, FindQuery(), secret=secret).hits
    }


@pytest.mark.parametrize("how", ["c-get", "c-get-serial", "c-move", "wado-parallel", "wado-stream"])
def test_retrieve_gives_the_original_pixels_in_a_private_folder_that_opens(
    orthanc: tuple[OrthancServer, Path], how: str
) -> None:
    server, demo = orthanc
    profile = {
        "c-get": dimse(server),
        "c-get-serial": dataclasses.replace(dimse(server), workers=1),
        "c-move": dimse(server, retrieve="move"),
        "wado-parallel": web(server),
        "wado-stream": web(server, workers=1),
    }[how]
    ref = _series(server, 2)
    seen: list[tuple[int, int]] = []
    outcome = flows.retrieve(
        flows.RetrieveRequest(profile, [ref], secret=server.password),
        progress=lambda _s, d, t: seen.append((d, t)),
    )
    assert outcome.fetched == SLICES and outcome.reused == 0 and seen[-1] == (SLICES, SLICES)
    folder = Path(outcome.folder)
    original = _pixels_by_uid(sorted((demo / "DEMO02" / "CT_HEAD").glob("*.dcm")))
    got = _pixels_by_uid(sorted(folder.glob("*.dcm")))
    assert got.keys() == original.keys()
    for uid, pixels in original.items():
        np.testing.assert_array_equal(got[uid], pixels)
    root = Path(os.environ["MEDGAN_PACS_CACHE"])
    assert stat.S_IMODE(os.stat(root).st_mode) == 0o700
    scan = scan_folder(folder)
    assert len(scan.series) == 1 and scan.series[0].n_images == SLICES
    again = flows.retrieve(flows.RetrieveRequest(profile, [ref], secret=server.password))
    assert again.fetched == 0 and again.reused == SLICES and again.folders == outcome.folders


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_cancel_half_way_leaves_nothing_complete_and_the_next_retrieve_resumes(
    orthanc: tuple[OrthancServer, Path], kind: str
) -> None:
    server, _ = orthanc
    profile = dataclasses.replace(dimse(server) if kind == "dimse" else web(server), workers=1)
    ref = _series(server, 1)
    cancel = threading.Event()

    def progress(_stage: str, done: int, total: int) -> None:
        if done >= 3:
            cancel.set()

    with pytest.raises(Cancelled, match="kept for a resume"):
        flows.retrieve(
            flows.RetrieveRequest(profile, [ref], secret=server.password),
            progress=progress,
            cancel=cancel,
        )
    root = Path(os.environ["MEDGAN_PACS_CACHE"])
    complete = [p for p in root.glob("*/*/*") if p.is_dir()]
    assert complete == []
    partial = [p for p in (root / ".partial").iterdir()]
    assert len(partial) == 1 and 3 <= len(list(partial[0].glob("*.dcm"))) < SLICES
    outcome = flows.retrieve(flows.RetrieveRequest(profile, [ref], secret=server.password))
    assert outcome.reused >= 3 and outcome.reused + outcome.fetched == SLICES
    assert len(list(Path(outcome.folder).glob("*.dcm"))) == SLICES


def _export(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    config = ExportConfig(format="dicom", destination=str(folder))
    export_set(synthetic(4), config, provenance(), durable=False)
    return folder


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_send_a_synthetic_export_by_cstore_and_stow(
    orthanc: tuple[OrthancServer, Path], tmp_path: Path, kind: str
) -> None:
    server, _ = orthanc
    profile = dimse(server) if kind == "dimse" else web(server)
    folder = _export(tmp_path)
    outcome = send_files(profile, folder, secret=server.password)
    assert outcome.ok and outcome.sent == 4
    sent = pydicom.dcmread(sorted(folder.glob("*.dcm"))[0])
    page = flows.search(
        dimse(server), FindQuery(level="series", study_uid=str(sent.StudyInstanceUID))
    )
    assert len(page.hits) == 1 and "SYNTHETIC" in page.hits[0].description
    assert page.hits[0].n_instances == 4
    again = send_files(profile, folder, secret=server.password)  # duplicates are accepted
    assert again.sent + len(again.failed) == 4


def test_send_refuses_files_not_marked_synthetic(
    orthanc: tuple[OrthancServer, Path], tmp_path: Path
) -> None:
    server, _ = orthanc
    write_series(tmp_path / "real", n=2)
    with pytest.raises(PacsError, match="not marked synthetic"):
        send_files(dimse(server), tmp_path / "real")


def test_cli_profile_find_get_send(
    orthanc: tuple[OrthancServer, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    server, _ = orthanc
    monkeypatch.setattr("sys.stdin", io.StringIO(server.password + "\n"))
    assert (
        main(
            [
                "pacs",
                "profile",
                "add",
                "cli-web",
                "--dicomweb",
                server.dicomweb_url,
                "--auth",
                "basic",
                "--username",
                server.user,
                "--secret-stdin",
            ]
        )
        == 0
    )
    assert (
        main(
            [
                "pacs",
                "profile",
                "add",
                "cli-dimse",
                "--dimse",
                f"127.0.0.1:{server.dicom_port}",
                "--called-aet",
                server.aet,
                "--calling-aet",
                server.move_aet,
            ]
        )
        == 0
    )
    assert main(["pacs", "profile", "list"]) == 0
    assert main(["pacs", "echo", "cli-web"]) == 0
    assert main(["pacs", "echo", "cli-dimse"]) == 0
    capsys.readouterr()
    assert main(["pacs", "find", "cli-web", "--level", "series", "--json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert len(found["hits"]) >= PATIENTS
    assert all("PATIENT" not in h["patient"] for h in found["hits"])  # hashed by default
    uid = found["hits"][0]["series_uid"]
    assert main(["pacs", "get", "cli-dimse", "--series", uid, "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "1 series ready" in out
    folder = Path(out.strip().splitlines()[-1])
    assert len(list(folder.glob("*.dcm"))) >= 1
    assert main(["pacs", "send", "cli-web", str(_export(tmp_path)), "--quiet"]) == 0
    out, err = capsys.readouterr()
    assert "4 files sent, 0 failed" in out
    config_text = (Path(os.environ["MEDGAN_CONFIG_DIR"]) / "pacs_profiles.json").read_text()
    assert server.password not in config_text + out + err


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_send_reports_each_refused_instance(
    orthanc: tuple[OrthancServer, Path], tmp_path: Path, kind: str
) -> None:
    server, _ = orthanc
    folder = _export(tmp_path)
    bad = sorted(folder.glob("*.dcm"))[1]
    ds = pydicom.dcmread(bad)
    del ds.SeriesInstanceUID  # Orthanc refuses an instance without a series
    ds.save_as(bad, enforce_file_format=True)
    profile = dimse(server) if kind == "dimse" else web(server)
    outcome = send_files(profile, folder, secret=server.password)
    assert outcome.sent == 3 and [name for name, _ in outcome.failed] == [bad.name]
    assert outcome.failed[0][1]


@pytest.mark.parametrize("kind", ["dimse", "dicomweb"])
def test_a_full_disk_is_a_clear_error_and_nothing_looks_complete(
    orthanc: tuple[OrthancServer, Path], monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    import errno

    from medgan.pacs.cache import SeriesCache

    server, _ = orthanc
    real_write = SeriesCache.write
    written: list[str] = []

    def write(self: SeriesCache, uid: str, data: bytes) -> None:
        if len(written) >= 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(uid)
        real_write(self, uid, data)

    monkeypatch.setattr(SeriesCache, "write", write)
    profile = dataclasses.replace(dimse(server) if kind == "dimse" else web(server), workers=1)
    with pytest.raises(PacsError, match="cannot be written to the cache.*No space left") as info:
        flows.retrieve(flows.RetrieveRequest(profile, [_series(server, 1)], secret=server.password))
    assert "disk space" in (info.value.advice or "")
    root = Path(os.environ["MEDGAN_PACS_CACHE"])
    assert [p for p in root.glob("*/*/*") if p.is_dir()] == []
