"""PACS faults: server down, wrong AE title, wrong password, TLS failures, malformed JSON,
truncated multipart, a server killed mid-retrieve. Each is a clear message naming the server
and the step, nothing is left looking complete in the cache, and no credential is echoed.

Orthanc plays the real server (:mod:`tests.orthanc`); a tiny local HTTP(S) server plays the
misbehaving ones that Orthanc will not imitate.
"""

from __future__ import annotations

import dataclasses
import http.server
import json
import logging
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest

from medgan.pacs.profiles import DicomWebSettings, DimseSettings, Profile
from medgan.pacs.records import FindQuery, PacsError, SeriesRef
from medgan.workflows import pacs as flows
from tests.orthanc import OrthancServer, free_port, memory_keyring, orthanc_missing, start_orthanc

needs_orthanc = pytest.mark.skipif(orthanc_missing() is not None, reason=orthanc_missing() or "")
SECRET = "right-pw-QZX-4242"
WRONG = "wrong-pw-QZX-1313"
STUDY = "1.2.826.0.1.3680043.8.498.1"
SERIES = "1.2.826.0.1.3680043.8.498.1.1"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("MEDGAN_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("MEDGAN_PACS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MEDGAN_PACS_SECRET", raising=False)
    before = keyring.get_keyring()
    keyring.set_keyring(memory_keyring())
    yield
    keyring.set_keyring(before)


def _nothing_complete() -> None:
    root = Path(os.environ["MEDGAN_PACS_CACHE"])
    if root.exists():
        assert [p for p in root.glob("*/*/*") if p.is_dir()] == []
        assert not (root / ".index").exists() or not any((root / ".index").iterdir())


def _web(url: str, **kw: object) -> Profile:
    settings = DicomWebSettings(url=url, auth="basic", username="medgan", timeout_s=5)
    return Profile("fault-web", "dicomweb", dicomweb=dataclasses.replace(settings, **kw))  # type: ignore[arg-type]


def _dimse(port: int, **kw: object) -> Profile:
    settings = DimseSettings(host="127.0.0.1", port=port, called_aet="MEDGANTEST", timeout_s=5)
    return Profile("fault-dimse", "dimse", dimse=dataclasses.replace(settings, **kw))  # type: ignore[arg-type]


# -- a small local server for the misbehaving cases --------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, Callable[[_Handler], None]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server API
        path = self.path.split("?")[0]
        for prefix, route in self.routes.items():
            if path.endswith(prefix):
                route(self)
                return
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., str]]:
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(
        routes: dict[str, Callable[[_Handler], None]], tls: ssl.SSLContext | None = None
    ) -> str:
        handler = type("H", (_Handler,), {"routes": routes})
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        if tls is not None:
            srv.socket = tls.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        scheme = "https" if tls else "http"
        return f"{scheme}://127.0.0.1:{srv.server_address[1]}/dicom-web"

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def _json(body: object) -> Callable[[_Handler], None]:
    def route(h: _Handler) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        h.send_response(200)
        h.send_header("Content-Type", "application/dicom+json")
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    return route


def _instances(uids: list[str]) -> Callable[[_Handler], None]:
    return _json([{"00080018": {"vr": "UI", "Value": [u]}} for u in uids])


def _truncated_multipart(parts: list[bytes]) -> Callable[[_Handler], None]:
    """A multipart reply that promises every part, then stops half-way and closes."""

    def route(h: _Handler) -> None:
        boundary = b"medganboundary"
        body = (
            b"".join(
                b"--" + boundary + b"\r\nContent-Type: application/dicom\r\n\r\n" + p + b"\r\n"
                for p in parts
            )
            + b"--"
            + boundary
            + b"--\r\n"
        )
        h.send_response(200)
        h.send_header(
            "Content-Type",
            f'multipart/related; type="application/dicom"; boundary={boundary.decode()}',
        )
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body[: len(body) * 2 // 3])
        h.wfile.flush()
        h.close_connection = True

    return route


def _dicom_parts(tmp_path: Path, n: int) -> tuple[list[str], list[bytes]]:
    from tests.dicom_factory import write_series

    files = write_series(tmp_path / "parts", n=n)
    import pydicom

    uids = [str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in files]
    return uids, [f.read_bytes() for f in files]


def test_server_down_is_named_with_the_step() -> None:
    port = free_port()  # nothing listens there
    with pytest.raises(
        PacsError, match=r"C-ECHO \(connect\) on 'fault-dimse'.*no connection"
    ) as e1:
        flows.check_connection(_dimse(port))
    with pytest.raises(PacsError, match=r"QIDO-RS ping on 'fault-web'.*no connection") as e2:
        flows.check_connection(_web(f"http://127.0.0.1:{port}/dicom-web"), secret=SECRET)
    for exc in (e1.value, e2.value):
        assert f"127.0.0.1:{port}" in str(exc) and exc.advice and SECRET not in str(exc)


def test_malformed_json_is_a_clear_error(fake_server: Callable[..., str]) -> None:
    url = fake_server(
        {
            "/studies": _json(b'[{"0020000D": {"vr": "UI", "Value": ['),
            "/series": _json({"not": "a list"}),
        }
    )
    with pytest.raises(PacsError, match=r"QIDO-RS study search on 'fault-web'.*malformed reply"):
        flows.search(_web(url), FindQuery(), secret=SECRET)
    with pytest.raises(PacsError, match=r"QIDO-RS series search.*not a list of DICOM JSON"):
        flows.search(_web(url), FindQuery(level="series"), secret=SECRET)


@pytest.mark.parametrize("workers", [1, 3])
def test_truncated_multipart_leaves_nothing_complete(
    fake_server: Callable[..., str], tmp_path: Path, workers: int
) -> None:
    uids, parts = _dicom_parts(tmp_path, 3)
    routes: dict[str, Callable[[_Handler], None]] = {"/instances": _instances(uids)}
    routes[f"/series/{SERIES}"] = _truncated_multipart(parts)
    for uid, part in zip(uids, parts, strict=True):
        routes[f"/instances/{uid}"] = _truncated_multipart([part])
    profile = dataclasses.replace(_web(fake_server(routes)), workers=workers)
    with pytest.raises(
        PacsError,
        match=r"WADO-RS (series )?retrieve on 'fault-web'.*(cut off|truncated|ended after)",
    ) as info:
        flows.retrieve(flows.RetrieveRequest(profile, [SeriesRef(STUDY, SERIES)], secret=SECRET))
    assert SECRET not in str(info.value)
    _nothing_complete()


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return cert, key


def test_untrusted_self_signed_certificate_fails_and_its_ca_bundle_works(
    fake_server: Callable[..., str], self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    url = fake_server({"/studies": _json([])}, tls=ctx)
    with pytest.raises(
        PacsError, match=r"QIDO-RS ping on 'fault-web'.*TLS handshake failed"
    ) as info:
        flows.check_connection(_web(url), secret=SECRET)
    assert "CA bundle" in (info.value.advice or "")
    assert "succeeded" in flows.check_connection(_web(url, ca_bundle=str(cert)), secret=SECRET)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OrthancServer]:
    """An Orthanc of its own (this module kills it), with one 40-slice series."""
    from medgan.demo.study import write_demo_study

    srv = start_orthanc(tmp_path_factory.mktemp("orthanc-faults"))
    try:
        demo = write_demo_study(
            tmp_path_factory.mktemp("fault-demo") / "demo",
            n_patients=1,
            slices_per_patient=40,
            size=32,
        )
        srv.upload(sorted(demo.rglob("IM*.dcm")))
        yield srv
    finally:
        srv.stop()


@needs_orthanc
class TestAgainstOrthanc:
    """Faults a real Orthanc produces: bad AE title, bad password, TLS on a plain port, death."""

    def _ref(self, server: OrthancServer) -> SeriesRef:
        hit = flows.search(
            _dimse(server.dicom_port), FindQuery(level="series", modality="CT")
        ).hits[0]
        return SeriesRef(hit.study_uid, hit.series_uid)

    def test_wrong_called_ae_title_is_a_rejected_association(self, server: OrthancServer) -> None:
        with pytest.raises(
            PacsError, match=r"C-ECHO \(association\).*rejected.*'NOTORTHANC'"
        ) as info:
            flows.check_connection(_dimse(server.dicom_port, called_aet="NOTORTHANC"))
        assert "called AE title" in (info.value.advice or "")

    def test_wrong_password_is_an_authentication_failure_that_never_echoes_it(
        self, server: OrthancServer, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        with pytest.raises(
            PacsError, match=r"QIDO-RS ping.*authentication failed \(HTTP 401\)"
        ) as info:
            flows.check_connection(_web(server.dicomweb_url), secret=WRONG)
        assert WRONG not in str(info.value) and WRONG not in caplog.text
        flows.check_connection(_web(server.dicomweb_url), secret=server.password)

    def test_tls_to_a_plain_port_fails_clearly(self, server: OrthancServer) -> None:
        url = server.dicomweb_url.replace("http://", "https://")
        with pytest.raises(PacsError, match="TLS handshake failed"):
            flows.check_connection(_web(url), secret=server.password)
        with pytest.raises(PacsError, match=r"C-ECHO.*(TLS|aborted)"):
            flows.check_connection(_dimse(server.dicom_port, tls=True))

    def test_server_killed_mid_retrieve_leaves_nothing_complete(
        self, server: OrthancServer
    ) -> None:
        ref = self._ref(server)
        profile = dataclasses.replace(_dimse(server.dicom_port), workers=1)
        killed: list[int] = []

        def progress(_stage: str, done: int, total: int) -> None:
            if done >= 5 and not killed:
                killed.append(done)
                server.kill()

        with pytest.raises(
            PacsError, match=r"C-GET on 'fault-dimse'.*dropped the connection after \d+ of 40"
        ) as info:
            flows.retrieve(flows.RetrieveRequest(profile, [ref]), progress=progress)
        assert killed and "resume" in (info.value.advice or "")
        _nothing_complete()


@needs_orthanc
def test_dimse_over_tls_needs_the_servers_ca_and_works_with_it(
    tmp_path: Path, self_signed: tuple[Path, Path]
) -> None:
    cert, key = self_signed
    tls = {
        "DicomTlsEnabled": True,
        "DicomTlsCertificate": str(cert),
        "DicomTlsPrivateKey": str(key),
        "DicomTlsTrustedCertificates": str(cert),
        "DicomTlsRemoteCertificateRequired": False,
    }
    srv = start_orthanc(tmp_path / "orthanc-tls", extra=tls)
    try:
        with pytest.raises(PacsError, match=r"C-ECHO.*on 'fault-dimse'.*TLS") as info:
            flows.check_connection(_dimse(srv.dicom_port, tls=True))
        assert info.value.advice
        with pytest.raises(PacsError, match=r"C-ECHO"):
            flows.check_connection(_dimse(srv.dicom_port))  # plain DIMSE to a TLS port
        ok = flows.check_connection(_dimse(srv.dicom_port, tls=True, ca_bundle=str(cert)))
        assert "succeeded" in ok
    finally:
        srv.stop()
