"""DICOMweb client (dicomweb-client over a requests session): QIDO-RS, WADO-RS, STOW-RS.

Auth is none, basic (user name in the profile, password in the keyring) or a bearer token;
TLS is verified against the system's CAs or the profile's CA bundle. Failures become
:class:`PacsError` naming the server and the step; messages never quote a request URL (QIDO
query strings hold search terms) or a credential.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from medgan.core.errors import Cancelled
from medgan.pacs.profiles import Profile
from medgan.pacs.query import make_hit, match_keys, return_keys
from medgan.pacs.quiet import quiet_network_logs
from medgan.pacs.records import FindPage, FindQuery, PacsError, SeriesRef, step_error

if TYPE_CHECKING:
    from pydicom.dataset import Dataset

log = logging.getLogger(__name__)

Sink = Callable[[str, bytes], None]
STOW_BATCH = 16
LIST_PAGE = 1000


def _tag(keyword: str) -> str:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    return f"{tag:08X}" if tag is not None else keyword


def json_value(item: dict[str, Any], keyword: str) -> str:
    """A DICOM JSON attribute as text ('' when absent); PN gives the alphabetic form."""
    element = item.get(_tag(keyword))
    if not isinstance(element, dict):
        return ""
    values = element.get("Value") or []
    out = []
    for v in values:
        if isinstance(v, dict):
            out.append(str(v.get("Alphabetic", "")))
        else:
            out.append(str(v))
    return "\\".join(out)


_SAFE = "*?^,-._~"


def _qido_value(value: str) -> str:
    return "".join(c if (c.isascii() and c.isalnum()) or c in _SAFE else "?" for c in value)


def to_part10(ds: Dataset) -> bytes:
    from pydicom import dcmwrite

    buf = io.BytesIO()
    dcmwrite(buf, ds, enforce_file_format=True)
    return buf.getvalue()


def _profile_session_class() -> type:
    import requests

    class ProfileSession(requests.Session):
        """A session whose CA bundle (or disabled verification) beats REQUESTS_CA_BUNDLE.

        requests lets the environment's CA bundle override ``session.verify``; a profile's
        explicit CA bundle must win, or a private CA could never be trusted.
        """

        def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            settings: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
            if self.verify is not True:
                settings["verify"] = self.verify
            return settings

    return ProfileSession


def _profile_session() -> Any:
    return _profile_session_class()()


class DicomWebClient:
    """Talks DICOMweb to the server of a DICOMweb ``profile`` (one HTTP session)."""

    def __init__(self, profile: Profile, secret: str | None = None) -> None:
        if profile.kind != "dicomweb":
            raise PacsError(f"Profile {profile.server} is not a DICOMweb profile.")
        quiet_network_logs()
        self.profile = profile
        self.settings = profile.dicomweb
        self.server = profile.server
        self._secret = secret
        self._client: Any = None

    def _api(self) -> Any:
        if self._client is None:
            from dicomweb_client.api import DICOMwebClient

            s = self.settings
            session = _profile_session()
            session.verify = s.ca_bundle if (s.verify_tls and s.ca_bundle) else s.verify_tls
            headers: dict[str, str] = {}
            if s.auth == "basic":
                session.auth = (s.username, self._secret or "")
            elif s.auth == "bearer":
                headers["Authorization"] = f"Bearer {self._secret or ''}"
            self._client = DICOMwebClient(
                s.url.rstrip("/"),
                session=session,
                qido_url_prefix=s.qido_prefix or None,
                wado_url_prefix=s.wado_prefix or None,
                stow_url_prefix=s.stow_prefix or None,
                headers=headers or None,
                timeout=s.timeout_s,
            )
            self._client.set_http_retry_params(retry=False)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client._session.close()
            self._client = None

    # -- error mapping --------------------------------------------------------------------
    def _error(self, step: str, exc: BaseException) -> PacsError:
        import requests

        if isinstance(exc, PacsError):
            return exc
        if isinstance(exc, requests.exceptions.SSLError):
            return step_error(
                self.server,
                step,
                "the TLS handshake failed (the certificate is not trusted, or the port does "
                "not speak TLS)",
                "Give the server's CA certificate as the profile's CA bundle, or check that "
                "the URL should start with http:// rather than https://.",
            )
        if isinstance(exc, requests.exceptions.Timeout):
            return step_error(
                self.server,
                step,
                f"no answer within {self.settings.timeout_s:g} s",
                "The server may be overloaded or unreachable; try again later.",
            )
        if isinstance(exc, requests.exceptions.HTTPError):
            code = exc.response.status_code if exc.response is not None else 0
            if code in (401, 403):
                return step_error(
                    self.server,
                    step,
                    f"authentication failed (HTTP {code})",
                    "Check the user name and password or token of the profile (stored in "
                    "the keyring) and your rights on the server.",
                )
            if code == 404:
                return step_error(
                    self.server,
                    step,
                    "not found (HTTP 404)",
                    "Check the base URL and the QIDO/WADO/STOW prefixes of the profile.",
                )
            return step_error(
                self.server,
                step,
                f"the server answered HTTP {code}",
                "Check the server's log; try again later.",
            )
        if isinstance(
            exc,
            (requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError),
        ):
            return step_error(
                self.server,
                step,
                "the reply was cut off (truncated response)",
                "Try again; the retrieve resumes where it stopped.",
            )
        if isinstance(exc, requests.exceptions.ConnectionError):
            return step_error(
                self.server,
                step,
                "no connection (the server is down or unreachable)",
                "Check that the server is running and the URL is right.",
            )
        if isinstance(exc, OSError) and not isinstance(exc, requests.exceptions.RequestException):
            return step_error(
                self.server,
                step,
                f"the CA bundle {self.settings.ca_bundle} cannot be read",
                "Give an existing PEM file as the profile's CA bundle, or leave it empty.",
            )
        if isinstance(exc, ValueError):
            return step_error(
                self.server,
                step,
                "the server sent a malformed reply",
                "The server may not speak DICOMweb at this URL; check the prefixes.",
            )
        return step_error(
            self.server,
            step,
            f"unexpected {type(exc).__name__}",
            "Check the server's log; try again.",
        )

    def _call(self, step: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Cancelled:
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a PacsError
            raise self._error(step, exc) from exc

    # -- services -------------------------------------------------------------------------
    def echo(self) -> None:
        """A QIDO-RS ping: one study asked for."""
        result = self._call("QIDO-RS ping", lambda: self._api().search_for_studies(limit=1))
        if not isinstance(result, list):
            raise step_error(
                self.server,
                "QIDO-RS ping",
                "the reply is not a list",
                "The URL may not be a DICOMweb endpoint.",
            )

    def _qido(self, step: str, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        """GET a QIDO-RS resource with the search terms readable in the query string.

        Orthanc 1.10 does not percent-decode query arguments, so an encoded ``*``, ``^`` or
        space (as dicomweb-client sends them) matches nothing there. Search values are
        therefore sent with DICOM wildcards and ``^`` as they are, and any other character
        that would need encoding (a space, an accent) as the one-character wildcard ``?``:
        the same or a slightly broader match on every server.
        """
        from urllib.parse import quote

        s = self.settings
        base = s.url.rstrip("/")
        if s.qido_prefix:
            base += "/" + s.qido_prefix.strip("/")
        query = "&".join(f"{k}={quote(_qido_value(str(v)), safe=_SAFE)}" for k, v in params.items())
        session = self._api()._session

        def run() -> Any:
            reply = session.get(
                f"{base}/{path}?{query}",
                headers={"Accept": "application/dicom+json"},
                timeout=s.timeout_s,
            )
            reply.raise_for_status()
            if reply.status_code == 204 or not reply.content.strip():
                return []
            return reply.json()

        found = self._call(step, run)
        if not isinstance(found, list) or not all(isinstance(x, dict) for x in found):
            raise step_error(
                self.server,
                step,
                "the reply is not a list of DICOM JSON objects",
                "The server may not speak DICOMweb at this URL.",
            )
        return found

    def find(self, query: FindQuery) -> FindPage:
        filters = match_keys(query)
        study_uid = filters.pop("StudyInstanceUID", "") if query.level == "series" else ""
        params = dict(filters)
        params["includefield"] = ",".join(return_keys(query.level))
        params["limit"] = str(query.limit + 1)
        params["offset"] = str(query.offset)
        if query.level == "study":
            path = "studies"
        else:
            path = f"studies/{study_uid}/series" if study_uid else "series"
        found = self._qido(f"QIDO-RS {query.level} search", path, params)
        hits = [make_hit(query.level, partial(json_value, item)) for item in found]
        return FindPage(hits[: query.limit], query.offset, len(hits) > query.limit)

    def list_instances(self, ref: SeriesRef) -> list[str]:
        """Every SOP Instance UID of the series, paged; stops when a page brings nothing new."""
        step = "QIDO-RS (list the series' instances)"
        path = f"studies/{ref.study_uid}/series/{ref.series_uid}/instances"
        uids: set[str] = set()
        offset = 0
        while True:
            params = {
                "includefield": "SOPInstanceUID",
                "limit": str(LIST_PAGE),
                "offset": str(offset),
            }
            found = self._qido(step, path, params)
            new = {u for u in (json_value(x, "SOPInstanceUID") for x in found) if u} - uids
            uids |= new
            offset += len(found)
            if len(found) < LIST_PAGE or not new:
                return sorted(uids)

    def fetch(
        self,
        ref: SeriesRef,
        sop_uids: Sequence[str],
        sink: Sink,
        cancel: threading.Event | None = None,
    ) -> int:
        """WADO-RS one instance at a time on this session (callers run several in parallel)."""
        api = self._api()
        for uid in sop_uids:
            if cancel is not None and cancel.is_set():
                raise Cancelled("The retrieve was cancelled.")
            ds = self._call(
                "WADO-RS retrieve",
                partial(api.retrieve_instance, ref.study_uid, ref.series_uid, uid),
            )
            if str(ds.get("SOPInstanceUID", "")) != uid:
                raise step_error(
                    self.server,
                    "WADO-RS retrieve",
                    "the server sent another instance",
                    "Check the server; try again.",
                )
            sink(uid, to_part10(ds))
        return len(sop_uids)

    def fetch_series(
        self, ref: SeriesRef, wanted: set[str], sink: Sink, cancel: threading.Event | None = None
    ) -> int:
        """WADO-RS the whole series as one multipart stream; keep the ``wanted`` instances."""
        step = "WADO-RS series retrieve"
        api = self._api()
        count = 0

        def run() -> None:
            nonlocal count
            for ds in api.iter_series(ref.study_uid, ref.series_uid):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("The retrieve was cancelled.")
                uid = str(ds.get("SOPInstanceUID", ""))
                if uid in wanted:
                    sink(uid, to_part10(ds))
                    count += 1

        self._call(step, run)
        return count

    def store(
        self,
        datasets: Sequence[Dataset],
        on_result: Callable[[int, str | None], None],
        cancel: threading.Event | None = None,
    ) -> None:
        """STOW-RS in small batches; a failed batch is resent one by one to name the failures."""
        api = self._api()
        for start in range(0, len(datasets), STOW_BATCH):
            if cancel is not None and cancel.is_set():
                raise Cancelled("The send was cancelled.")
            batch = list(datasets[start : start + STOW_BATCH])
            try:
                reply = self._call("STOW-RS send", partial(api.store_instances, batch))
            except PacsError as exc:
                if "HTTP" not in exc.message or "authentication" in exc.message:
                    raise
                for k, ds in enumerate(batch):
                    try:
                        self._call("STOW-RS send", partial(api.store_instances, [ds]))
                        on_result(start + k, None)
                    except PacsError as one:
                        on_result(start + k, one.message)
                continue
            failed = {
                str(item.get("ReferencedSOPInstanceUID", "")): int(item.get("FailureReason", 0))
                for item in (reply.get("FailedSOPSequence") or [])
            }
            for k, ds in enumerate(batch):
                code = failed.get(str(ds.SOPInstanceUID))
                on_result(start + k, None if code is None else f"failure reason 0x{code:04X}")
