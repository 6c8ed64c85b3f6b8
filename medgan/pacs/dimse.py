"""DIMSE client (pynetdicom): C-ECHO, C-FIND, C-GET, C-MOVE to our own storage SCP, C-STORE.

One :class:`DimseClient` holds one profile; every call opens its own association, so clients
can run in parallel threads (one association each). Failures become :class:`PacsError`
naming the server and the step (connect, C-ECHO, C-FIND, C-GET, C-MOVE, C-STORE).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from medgan.core.errors import Cancelled
from medgan.pacs.profiles import Profile
from medgan.pacs.query import make_hit, match_keys, return_keys, sort_hits
from medgan.pacs.quiet import quiet_network_logs
from medgan.pacs.records import FindPage, FindQuery, PacsError, SeriesRef, step_error

if TYPE_CHECKING:
    from pydicom.dataset import Dataset
    from pynetdicom.association import Association

log = logging.getLogger(__name__)

#: ``sink(sop_instance_uid, part10_bytes)`` stores one received instance.
Sink = Callable[[str, bytes], None]

STORAGE_CLASSES = (
    "CTImageStorage",
    "EnhancedCTImageStorage",
    "MRImageStorage",
    "EnhancedMRImageStorage",
    "ComputedRadiographyImageStorage",
    "DigitalXRayImageStorageForPresentation",
    "DigitalXRayImageStorageForProcessing",
    "DigitalMammographyXRayImageStorageForPresentation",
    "UltrasoundImageStorage",
    "UltrasoundMultiFrameImageStorage",
    "SecondaryCaptureImageStorage",
    "MultiFrameGrayscaleWordSecondaryCaptureImageStorage",
    "MultiFrameGrayscaleByteSecondaryCaptureImageStorage",
    "PositronEmissionTomographyImageStorage",
    "NuclearMedicineImageStorage",
    "XRayAngiographicImageStorage",
    "SegmentationStorage",
)
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2.1",  # explicit VR little endian
    "1.2.840.10008.1.2",  # implicit VR little endian
    "1.2.840.10008.1.2.4.70",  # JPEG lossless SV1
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 lossless
    "1.2.840.10008.1.2.4.80",  # JPEG-LS lossless
    "1.2.840.10008.1.2.5",  # RLE
    "1.2.840.10008.1.2.4.50",  # JPEG baseline
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
)
_CONNECT_ADVICE = (
    "Check that the server is running, the host and port are right and no firewall is in the way."
)
_STATUS_OK = 0x0000
FIND_MODEL = "1.2.840.10008.5.1.4.1.2.2.1"  # Study Root Q/R information model - FIND
MOVE_MODEL = "1.2.840.10008.5.1.4.1.2.2.2"
GET_MODEL = "1.2.840.10008.5.1.4.1.2.2.3"
_STATUS_OUT_OF_RESOURCES = 0xA700


def _no_delay(assoc: Any) -> None:
    """Send small PDUs at once (Nagle + delayed ACKs cost ~40 ms per C-STORE sub-operation)."""
    import socket

    sock = getattr(getattr(getattr(assoc, "dul", None), "socket", None), "socket", None)
    if sock is not None:
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:  # pragma: no cover - not a TCP socket
            pass


def _probe(host: str, port: int, timeout: float) -> str | None:
    """None when a TCP connection opens, else why not (to tell 'down' from 'refused us')."""
    import socket

    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


class DimseClient:
    """Talks DIMSE to the server of a DIMSE ``profile``."""

    def __init__(self, profile: Profile) -> None:
        if profile.kind != "dimse":
            raise PacsError(f"Profile {profile.server} is not a DIMSE profile.")
        quiet_network_logs()
        self.profile = profile
        self.settings = profile.dimse
        self.server = profile.server

    # -- associations ---------------------------------------------------------------------
    def _ae(self, contexts: Sequence[str], *, scp_storage: bool = False) -> Any:
        from pynetdicom import AE
        from pynetdicom import sop_class as sc

        ae = AE(ae_title=self.settings.calling_aet)
        for t in ("acse_timeout", "dimse_timeout", "network_timeout", "connection_timeout"):
            setattr(ae, t, self.settings.timeout_s)
        for name in contexts:
            ae.add_requested_context(getattr(sc, name))
        if scp_storage:
            for name in STORAGE_CLASSES:
                ae.add_requested_context(getattr(sc, name), list(TRANSFER_SYNTAXES))
        return ae

    def _tls_args(self) -> tuple[Any, str] | None:
        if not self.settings.tls:
            return None
        import ssl

        ctx = ssl.create_default_context(cafile=self.settings.ca_bundle or None)
        return ctx, self.settings.host

    @contextmanager
    def _association(
        self,
        step: str,
        contexts: Sequence[str],
        *,
        scp_storage: bool = False,
        handlers: list[Any] | None = None,
        ae: Any = None,
    ) -> Iterator[Association]:
        from pynetdicom import build_role
        from pynetdicom import sop_class as sc

        ae = ae or self._ae(contexts, scp_storage=scp_storage)
        ext_neg = (
            [build_role(getattr(sc, n), scp_role=True) for n in STORAGE_CLASSES]
            if scp_storage
            else []
        )
        s = self.settings
        try:
            assoc = ae.associate(
                s.host,
                int(s.port),
                ae_title=s.called_aet,
                ext_neg=ext_neg,
                evt_handlers=handlers or [],
                tls_args=self._tls_args(),
            )
        except OSError as exc:  # TLS context errors, bad CA bundle file
            raise step_error(self.server, f"{step} (connect)", str(exc), _CONNECT_ADVICE) from exc
        if not assoc.is_established:
            raise self._connect_error(step, assoc)
        _no_delay(assoc)
        try:
            yield assoc
        finally:
            if assoc.is_established:
                assoc.release()

    def _connect_error(self, step: str, assoc: Any) -> PacsError:
        s = self.settings
        if assoc.is_rejected:
            return step_error(
                self.server,
                f"{step} (association)",
                f"the server rejected the association from AE title '{s.calling_aet}' "
                f"to '{s.called_aet}'",
                "Check the called AE title (the server's), and that the server accepts our "
                "calling AE title.",
            )
        reachable = _probe(s.host, int(s.port), min(5.0, s.timeout_s))
        if reachable is not None:
            reason = f"no connection to {s.host}:{s.port} ({reachable})"
            return step_error(self.server, f"{step} (connect)", reason, _CONNECT_ADVICE)
        if assoc.is_aborted:
            reason = "the server aborted the association request"
            if s.tls:
                reason += " (TLS: is the port a TLS port, and is its certificate trusted?)"
            return step_error(self.server, f"{step} (association)", reason, _CONNECT_ADVICE)
        reason = f"no connection to {s.host}:{s.port}"
        if s.tls:
            reason += " (with TLS: the port may not speak TLS, or its certificate is not trusted)"
        return step_error(self.server, f"{step} (connect)", reason, _CONNECT_ADVICE)

    # -- services -------------------------------------------------------------------------
    def echo(self) -> None:
        with self._association("C-ECHO", ["Verification"]) as assoc:
            status = assoc.send_c_echo()
            if not status or status.Status != _STATUS_OK:
                raise step_error(
                    self.server, "C-ECHO", "no successful reply", "Check the server's log."
                )

    def _find(self, assoc: Any, identifier: Dataset, step: str) -> list[Dataset]:
        out: list[Dataset] = []
        for status, ds in assoc.send_c_find(identifier, FIND_MODEL):
            if not status:
                raise step_error(
                    self.server,
                    step,
                    "the connection was lost during the search",
                    "Try again; check the server's log.",
                )
            code = int(status.Status)
            if code in (0xFF00, 0xFF01):
                if ds is not None:
                    out.append(ds)
            elif code != _STATUS_OK:
                raise step_error(
                    self.server,
                    step,
                    f"the server answered with status 0x{code:04X}",
                    "The server may not support this search; try fewer fields.",
                )
        return out

    def find(self, query: FindQuery) -> FindPage:
        """Search at study or series level; C-FIND has no paging, so pages are cut here."""
        from pydicom.dataset import Dataset

        ident = Dataset()
        ident.QueryRetrieveLevel = "STUDY" if query.level == "study" else "SERIES"
        for keyword in return_keys(query.level):
            setattr(ident, keyword, "")
        for keyword, value in match_keys(query).items():
            setattr(ident, keyword, value)
        with self._association("C-FIND", ["StudyRootQueryRetrieveInformationModelFind"]) as a:
            found = self._find(a, ident, "C-FIND")

        def getter(ds: Dataset) -> Callable[[str], str]:
            return lambda k: "" if ds.get(k) is None else str(ds.get(k))

        hits = sort_hits([make_hit(query.level, getter(ds)) for ds in found])
        page = hits[query.offset : query.offset + query.limit]
        return FindPage(page, query.offset, query.offset + query.limit < len(hits))

    def list_instances(self, ref: SeriesRef) -> list[str]:
        from pydicom.dataset import Dataset

        ident = Dataset()
        ident.QueryRetrieveLevel = "IMAGE"
        ident.StudyInstanceUID = ref.study_uid
        ident.SeriesInstanceUID = ref.series_uid
        ident.SOPInstanceUID = ""
        step = "C-FIND (list the series' instances)"
        with self._association(step, ["StudyRootQueryRetrieveInformationModelFind"]) as a:
            found = self._find(a, ident, step)
        return sorted({str(ds.SOPInstanceUID) for ds in found if ds.get("SOPInstanceUID")})

    def fetch(
        self,
        ref: SeriesRef,
        sop_uids: Sequence[str],
        sink: Sink,
        cancel: threading.Event | None = None,
    ) -> int:
        """Retrieve ``sop_uids`` of the series by C-GET or C-MOVE; ``sink`` gets each file."""
        if self.settings.retrieve == "move":
            return self._move(ref, sop_uids, sink, cancel)
        return self._get(ref, sop_uids, sink, cancel)

    def _image_identifier(self, ref: SeriesRef, sop_uids: Sequence[str]) -> Dataset:
        from pydicom.dataset import Dataset

        ident = Dataset()
        ident.QueryRetrieveLevel = "IMAGE"
        ident.StudyInstanceUID = ref.study_uid
        ident.SeriesInstanceUID = ref.series_uid
        ident.SOPInstanceUID = list(sop_uids) if len(sop_uids) > 1 else sop_uids[0]
        return ident

    def _store_handler(self, sink: Sink, errors: list[BaseException], received: list[str]) -> Any:
        def on_store(event: Any) -> int:
            try:
                uid = str(event.request.AffectedSOPInstanceUID)
                sink(uid, event.encoded_dataset())
                received.append(uid)
                return _STATUS_OK
            except BaseException as exc:  # noqa: BLE001 - reported after the transfer
                errors.append(exc)
                return _STATUS_OUT_OF_RESOURCES

        return on_store

    def _get(
        self, ref: SeriesRef, sop_uids: Sequence[str], sink: Sink, cancel: threading.Event | None
    ) -> int:
        from pynetdicom import evt

        errors: list[BaseException] = []
        received: list[str] = []
        handlers = [(evt.EVT_C_STORE, self._store_handler(sink, errors, received))]
        with self._association(
            "C-GET",
            ["StudyRootQueryRetrieveInformationModelGet"],
            scp_storage=True,
            handlers=handlers,
        ) as assoc:
            final = None
            for status, _ in assoc.send_c_get(self._image_identifier(ref, sop_uids), GET_MODEL):
                if cancel is not None and cancel.is_set():
                    assoc.abort()
                    raise Cancelled("The retrieve was cancelled.")
                if not status:
                    break
                final = status
            self._check_transfer("C-GET", assoc, final, errors, received, len(sop_uids))
        return len(received)

    def _check_transfer(
        self,
        step: str,
        assoc: Any,
        final: Any,
        errors: list[BaseException],
        received: list[str],
        expected: int,
    ) -> None:
        if errors:
            exc = errors[0]
            if isinstance(exc, PacsError):
                raise exc
            raise step_error(
                self.server,
                step,
                f"an instance could not be saved ({exc})",
                "Check free disk space in the cache folder.",
            ) from exc
        if final is None or assoc.is_aborted or int(final.Status) in (0xFF00, 0xFF01):
            raise step_error(
                self.server,
                step,
                f"the server dropped the connection after {len(received)} of {expected} instances",
                "Try again; the retrieve resumes where it stopped.",
            )
        code = int(final.Status)
        if code not in (_STATUS_OK, 0xB000) or len(received) < expected:
            failed = final.get("NumberOfFailedSuboperations", "?")
            raise step_error(
                self.server,
                step,
                f"status 0x{code:04X}, {len(received)} of {expected} instances received, "
                f"{failed} failed",
                "Check the server's log; try again to resume.",
            )

    def _move(
        self, ref: SeriesRef, sop_uids: Sequence[str], sink: Sink, cancel: threading.Event | None
    ) -> int:
        from pynetdicom import evt

        errors: list[BaseException] = []
        received: list[str] = []
        scp_ae = self._ae(["StudyRootQueryRetrieveInformationModelMove"])
        from pynetdicom import sop_class as sc

        for name in STORAGE_CLASSES:
            scp_ae.add_supported_context(getattr(sc, name), list(TRANSFER_SYNTAXES))
        handler = self._store_handler(sink, errors, received)
        try:
            server = scp_ae.start_server(
                (
                    "127.0.0.1" if self.settings.host in ("127.0.0.1", "localhost") else "",
                    int(self.settings.move_port),
                ),
                block=False,
                evt_handlers=[(evt.EVT_C_STORE, handler)],
            )
        except OSError as exc:
            raise step_error(
                self.server,
                "C-MOVE (start our storage SCP)",
                f"port {self.settings.move_port} cannot be opened ({exc.strerror or exc})",
                "Choose another move port in the profile (and register it on the server).",
            ) from exc
        try:
            with self._association(
                "C-MOVE", ["StudyRootQueryRetrieveInformationModelMove"], ae=scp_ae
            ) as assoc:
                final = None
                ident = self._image_identifier(ref, sop_uids)
                for status, _ in assoc.send_c_move(ident, self.settings.calling_aet, MOVE_MODEL):
                    if cancel is not None and cancel.is_set():
                        assoc.abort()
                        raise Cancelled("The retrieve was cancelled.")
                    if not status:
                        break
                    final = status
                if final is not None and int(final.Status) == 0xA801:
                    raise step_error(
                        self.server,
                        "C-MOVE",
                        f"the server does not know the destination '{self.settings.calling_aet}'",
                        "Register our AE title, host and move port on the server, or use C-GET.",
                    )
                self._check_transfer("C-MOVE", assoc, final, errors, received, len(sop_uids))
        finally:
            server.shutdown()
        return len(received)

    def store(
        self,
        datasets: Sequence[Dataset],
        on_result: Callable[[int, str | None], None],
        cancel: threading.Event | None = None,
    ) -> None:
        """C-STORE each dataset; ``on_result(index, None | reason)`` after each one."""
        from pynetdicom import sop_class as sc  # noqa: F401 - import check

        ae = self._ae([])
        pairs = sorted(
            {(str(ds.SOPClassUID), str(ds.file_meta.TransferSyntaxUID)) for ds in datasets}
        )
        for sop, ts in pairs:
            ae.add_requested_context(sop, [ts])
        with self._association("C-STORE", [], ae=ae) as assoc:
            for i, ds in enumerate(datasets):
                if cancel is not None and cancel.is_set():
                    raise Cancelled("The send was cancelled.")
                try:
                    status = assoc.send_c_store(ds)
                except (ValueError, RuntimeError) as exc:
                    on_result(i, str(exc))
                    continue
                if not status:
                    raise step_error(
                        self.server,
                        "C-STORE",
                        f"the connection was lost after {i} of {len(datasets)} files",
                        "Try again; check the server's log.",
                    )
                code = int(status.Status)
                on_result(
                    i,
                    None
                    if code in (_STATUS_OK, 0xB000, 0xB007, 0xB006)
                    else f"status 0x{code:04X}",
                )
