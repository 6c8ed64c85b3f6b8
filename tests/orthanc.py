"""A real Orthanc (Debian ``orthanc`` + ``orthanc-dicomweb``) for the PACS tests and benchmark.

:func:`start_orthanc` writes a temporary JSON configuration and storage folder, picks free
loopback ports, enables basic auth, a known AE title, C-FIND/C-GET/C-MOVE for anyone, and
our own storage SCP as a C-MOVE destination, loads the DICOMweb plugin and waits until the
REST API answers. :meth:`OrthancServer.stop` ends the process by its PID.
:func:`orthanc_missing` says why Orthanc cannot run here (tests skip with that reason).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

ORTHANC_BINARIES = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
PLUGIN_DIRS = ("/usr/share/orthanc/plugins", "/usr/lib/orthanc", "/usr/local/share/orthanc/plugins")
AE_TITLE = "MEDGANTEST"
MOVE_AE = "MEDGANMOVE"
USER = "medgan"
PASSWORD = "orthanc-test-pw-7f3a"


def _die_with_parent() -> None:
    """Linux: SIGTERM Orthanc when the test process dies (a killed pytest leaves no server)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary() -> str | None:
    found = shutil.which("Orthanc")
    if found:
        return found
    return next((p for p in ORTHANC_BINARIES if os.access(p, os.X_OK)), None)


def find_dicomweb_plugin() -> str | None:
    for folder in PLUGIN_DIRS:
        base = Path(folder)
        if base.is_dir():
            hits = sorted(base.glob("libOrthancDicomWeb.so*"))
            if hits:
                return str(hits[0])
    return None


def orthanc_missing() -> str | None:
    """None when Orthanc and its DICOMweb plugin are installed, else the reason to skip."""
    if find_binary() is None:
        return "Orthanc is not installed (Debian: apt-get install orthanc orthanc-dicomweb)"
    if find_dicomweb_plugin() is None:
        return "the Orthanc DICOMweb plugin is not installed (Debian: apt-get install orthanc-dicomweb)"
    return None


@dataclass
class OrthancServer:
    """A running Orthanc: ports, credentials, the C-MOVE destination it knows about."""

    root: Path
    http_port: int
    dicom_port: int
    move_port: int
    nodelay: bool = True
    extra: dict[str, object] = field(default_factory=dict)  # more configuration keys
    process: subprocess.Popen[bytes] | None = None
    log_path: Path = field(default_factory=Path)

    aet: str = AE_TITLE
    move_aet: str = MOVE_AE
    user: str = USER
    password: str = PASSWORD

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    def _request(self, method: str, path: str, data: bytes | None = None) -> bytes:
        token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
        req = urllib.request.Request(self.url + path, data=data, method=method)
        req.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(req, timeout=30) as resp:  # noqa: S310 - loopback only
            return bytes(resp.read())

    def rest(self, path: str) -> object:
        return json.loads(self._request("GET", path))

    def upload(self, paths: list[Path]) -> None:
        for p in paths:
            self._request("POST", "/instances", p.read_bytes())

    def clear(self) -> None:
        for pid in self.rest("/patients"):  # type: ignore[union-attr]
            self._request("DELETE", f"/patients/{pid}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def wait_ready(self, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"Orthanc exited early; log:\n{self.log_text()}")
            try:
                self.rest("/system")
                return
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer within {timeout_s} s; log:\n{self.log_text()}")

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the process by its PID (SIGTERM, then SIGKILL)."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        os.kill(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)

    def kill(self) -> None:
        """Kill at once (a server that dies mid-transfer)."""
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def start(self) -> None:
        binary, plugin = find_binary(), find_dicomweb_plugin()
        if binary is None or plugin is None:
            raise RuntimeError(orthanc_missing() or "Orthanc missing")
        storage = self.root / "storage"
        storage.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "medgan-test",
            "StorageDirectory": str(storage),
            "IndexDirectory": str(storage),
            "TemporaryDirectory": str(self.root / "tmp"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.aet,
            "DicomCheckCalledAet": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.user: self.password},
            "DicomAlwaysAllowEcho": True,
            "DicomAlwaysAllowStore": True,
            "DicomAlwaysAllowFind": True,
            "DicomAlwaysAllowGet": True,
            "DicomAlwaysAllowMove": True,
            "DicomModalities": {"medgan": [self.move_aet, "127.0.0.1", self.move_port]},
            "Plugins": [plugin],
            "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": False},
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "SaveJobs": False,
            "SyncStorageArea": False,
            "StorageCompression": False,
            "MetricsEnabled": False,
            "DicomScpTimeout": 10,
            "DicomThreadsCount": 4,
            "DeidentifyLogs": True,
            "LimitFindResults": 0,
        }
        config.update(self.extra)
        (self.root / "tmp").mkdir(exist_ok=True)
        cfg = self.root / "orthanc.json"
        cfg.write_text(json.dumps(config, indent=2))
        self.log_path = self.root / "orthanc.log"
        env = dict(os.environ)
        if self.nodelay:
            # DCMTK inside Orthanc keeps Nagle's algorithm on unless TCP_NODELAY=1: each C-GET
            # / C-MOVE sub-operation then waits ~44 ms for a delayed ACK.
            env["TCP_NODELAY"] = "1"
        with open(self.log_path, "wb") as log_fh:
            self.process = subprocess.Popen(  # noqa: S603 - fixed binary, our config
                [binary, str(cfg)],
                env=env,
                preexec_fn=_die_with_parent,
                stdout=log_fh,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.root,
            )
        self.wait_ready()


def start_orthanc(
    root: Path, *, nodelay: bool = True, extra: dict[str, object] | None = None
) -> OrthancServer:
    """Start a fresh Orthanc under ``root`` on free loopback ports; the caller stops it.

    ``nodelay=False`` runs it as packaged (DCMTK's Nagle default) for the benchmark.
    """
    server = OrthancServer(
        root=root,
        http_port=free_port(),
        dicom_port=free_port(),
        move_port=free_port(),
        nodelay=nodelay,
        extra=dict(extra or {}),
    )
    server.start()
    return server


class MemoryKeyring:
    """A keyring backend that keeps secrets in a dict (tests only: ``keyring.set_keyring``)."""

    priority = 1

    def __init__(self) -> None:
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        from keyring.errors import PasswordDeleteError

        if self.store.pop((service, username), None) is None:
            raise PasswordDeleteError(username)

    def get_credential(self, service: str, username: str | None) -> None:
        return None


def memory_keyring() -> MemoryKeyring:
    """A fresh in-memory backend that ``keyring`` accepts (a real KeyringBackend subclass)."""
    from keyring.backend import KeyringBackend

    class _Backend(MemoryKeyring, KeyringBackend):  # type: ignore[misc]
        priority = 1  # type: ignore[assignment]

        def __init__(self) -> None:
            MemoryKeyring.__init__(self)

    return _Backend()
