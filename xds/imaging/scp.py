"""The node's DICOM listener: Verification (C-ECHO) and Storage (C-STORE) SCP for PACS feeds.

DICOM PS3.4 Annex A (Verification) and Annex B (Storage Service Class) over pynetdicom. Every
received data set is stored as it arrived on the wire (:meth:`pynetdicom.events.Event.encoded_dataset`:
the transfer syntax the PACS chose, no decoding and re-encoding) in the
:class:`~xds.imaging.instance_store.InstanceStore`, and ``on_stored`` is told so the Imaging Document
Source can restart the study's quiet period.

Association policy (PS3.8 9.3.4 A-ASSOCIATE-RJ): with ``reject_unknown_calling_ae`` the called AE
title must be ours and the calling AE title one of ``calling_ae_titles``; otherwise any peer may
store. A rejected association is a Security Alert (Node Authentication) in the audit trail.

Audit (PS3.15 A.5.3.7): when an association's connection closes, one DICOM Instances Transferred
message per study it sent, whose outcome says how the C-STOREs of that study went (see
:func:`transfer_outcome`).

Many storage SCUs (dcmtk's storescu among them) write a PDU's header and its data in separate
writes without TCP_NODELAY: Nagle's algorithm then holds the data until the header is acknowledged,
and the receiver's delayed ACK (40 ms on Linux) stalls every C-STORE. The listener therefore
acknowledges every read at once (TCP_QUICKACK, re-armed after each read because Linux leaves
quick-ack mode on its own).
"""

from __future__ import annotations

import asyncio
import io
import logging
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pynetdicom import AE, evt
from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from xds.config import ImagingConfig
from xds.imaging.instance_store import InstanceError, InstanceStore, StoredInstance, part10, read_header

log = logging.getLogger("xds.imaging")

# Storage SOP classes a PACS sends a DIR (PS3.4 Table B.5-1): CT, MR, CR, DX, MG, US, NM, PET, XA,
# RF, SC, encapsulated PDF, SR, KOS and softcopy presentation states.
STORAGE_SOP_CLASSES = (
    "1.2.840.10008.5.1.4.1.1.2",  # CT Image
    "1.2.840.10008.5.1.4.1.1.2.1",  # Enhanced CT Image
    "1.2.840.10008.5.1.4.1.1.4",  # MR Image
    "1.2.840.10008.5.1.4.1.1.4.1",  # Enhanced MR Image
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image - For Processing
    "1.2.840.10008.5.1.4.1.1.1.2",  # Digital Mammography X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.2.1",  # Digital Mammography X-Ray Image - For Processing
    "1.2.840.10008.5.1.4.1.1.1.3",  # Digital Intra-Oral X-Ray Image - For Presentation
    "1.2.840.10008.5.1.4.1.1.13.1.3",  # Breast Tomosynthesis Image
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image
    "1.2.840.10008.5.1.4.1.1.20",  # Nuclear Medicine Image
    "1.2.840.10008.5.1.4.1.1.128",  # Positron Emission Tomography Image
    "1.2.840.10008.5.1.4.1.1.12.1",  # X-Ray Angiographic Image
    "1.2.840.10008.5.1.4.1.1.12.1.1",  # Enhanced XA Image
    "1.2.840.10008.5.1.4.1.1.12.2",  # X-Ray Radiofluoroscopic Image
    "1.2.840.10008.5.1.4.1.1.7",  # Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.1",  # Multi-frame Single Bit Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.2",  # Multi-frame Grayscale Byte Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.3",  # Multi-frame Grayscale Word Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.7.4",  # Multi-frame True Color Secondary Capture Image
    "1.2.840.10008.5.1.4.1.1.77.1.4",  # VL Photographic Image
    "1.2.840.10008.5.1.4.1.1.104.1",  # Encapsulated PDF
    "1.2.840.10008.5.1.4.1.1.88.11",  # Basic Text SR
    "1.2.840.10008.5.1.4.1.1.88.22",  # Enhanced SR
    "1.2.840.10008.5.1.4.1.1.88.33",  # Comprehensive SR
    "1.2.840.10008.5.1.4.1.1.88.34",  # Comprehensive 3D SR
    "1.2.840.10008.5.1.4.1.1.88.67",  # X-Ray Radiation Dose SR
    "1.2.840.10008.5.1.4.1.1.88.59",  # Key Object Selection Document
    "1.2.840.10008.5.1.4.1.1.11.1",  # Grayscale Softcopy Presentation State
)

# Accepted as proposed (PS3.5 Section 10 and Annex A): the first of the peer's proposed syntaxes
# that is in this list wins, so a PACS sending JPEG gets JPEG stored.
TRANSFER_SYNTAXES = (
    "1.2.840.10008.1.2",  # Implicit VR Little Endian
    "1.2.840.10008.1.2.1",  # Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99",  # Deflated Explicit VR Little Endian
    "1.2.840.10008.1.2.2",  # Explicit VR Big Endian (retired, still sent by old modalities)
    "1.2.840.10008.1.2.4.50",  # JPEG Baseline (Process 1)
    "1.2.840.10008.1.2.4.51",  # JPEG Extended (Process 2 & 4)
    "1.2.840.10008.1.2.4.57",  # JPEG Lossless, Non-Hierarchical (Process 14)
    "1.2.840.10008.1.2.4.70",  # JPEG Lossless, First-Order Prediction (Process 14 SV1)
    "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
    "1.2.840.10008.1.2.4.81",  # JPEG-LS Near-Lossless
    "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only
    "1.2.840.10008.1.2.4.91",  # JPEG 2000
    "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless
    "1.2.840.10008.1.2.4.203",  # HTJ2K
    "1.2.840.10008.1.2.5",  # RLE Lossless
    "1.2.840.10008.1.2.4.100",  # MPEG2 Main Profile / Main Level
    "1.2.840.10008.1.2.4.102",  # MPEG-4 AVC/H.264 High Profile / Level 4.1
)

# C-STORE response statuses (PS3.4 Table B.2-1)
SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700
CANNOT_UNDERSTAND = 0xC000

StoredCallback = Callable[[StoredInstance], None]


@dataclass(frozen=True)
class FailedStore:
    """A C-STORE the listener did not store: its SOP Class / Instance UIDs (from the request), the
    status it was answered with and why (no data set values: they may be patient data)."""

    sop_class_uid: str
    sop_instance_uid: str
    status: int
    reason: str


@dataclass
class StudyTransfer:
    """What one association sent of one study."""

    stored: list[StoredInstance] = field(default_factory=list)
    failed: list[FailedStore] = field(default_factory=list)


_FAILED_UIDS_LISTED = 5  # failed SOP Instance UIDs named in EventOutcomeDescription


def transfer_outcome(transfer: StudyTransfer) -> tuple[int, str]:
    """EventOutcomeIndicator and EventOutcomeDescription of a study's DICOM Instances Transferred
    message (PS3.15 A.5.1 outcome codes, read as the node's other transactions read them):
    0 every instance stored; 4 (minor failure) some stored, some not; 8 (serious failure) none
    stored because the sender's data sets were refused; 12 (major failure) none stored because the
    node could not store them (out of resources: the service was unavailable)."""
    from xds.audit import codes

    failed = transfer.failed
    if not failed:
        return codes.SUCCESS, ""
    stored = len(transfer.stored)
    total = stored + len(failed)
    by_status: dict[tuple[int, str], int] = {}
    for f in failed:
        by_status[(f.status, f.reason)] = by_status.get((f.status, f.reason), 0) + 1
    reasons = "; ".join(f"{n} answered {status:04X} ({reason})" for (status, reason), n in by_status.items())
    uids = [f.sop_instance_uid or "?" for f in failed]
    listed = ", ".join(uids[:_FAILED_UIDS_LISTED]) + (f" and {len(uids) - _FAILED_UIDS_LISTED} more"
                                                      if len(uids) > _FAILED_UIDS_LISTED else "")
    description = f"{len(failed)} of {total} instances not stored: {reasons}; SOP Instance UIDs {listed}"
    if stored:
        return codes.MINOR_FAILURE, description
    if all(f.status == OUT_OF_RESOURCES for f in failed):
        return codes.MAJOR_FAILURE, description
    return codes.SERIOUS_FAILURE, description

_TCP_QUICKACK: int | None = getattr(socket, "TCP_QUICKACK", None)  # Linux only


class _QuickAckSocket(socket.socket):
    """An accepted connection that acknowledges each read immediately."""

    def recv(self, bufsize: int, flags: int = 0) -> bytes:
        data = super().recv(bufsize, flags)
        try:
            self.setsockopt(socket.IPPROTO_TCP, _TCP_QUICKACK, 1)  # type: ignore[arg-type]
        except OSError:
            pass
        return data


class _AssociationServer(ThreadedAssociationServer):
    def get_request(self) -> tuple[socket.socket, Any]:
        if self.ssl_context is not None or _TCP_QUICKACK is None:
            return super().get_request()
        client, address = self.socket.accept()  # type: ignore[union-attr]
        timeout = client.gettimeout()
        quick = _QuickAckSocket(client.family, client.type, client.proto, fileno=client.detach())
        quick.settimeout(timeout)
        quick.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return quick, address


class StorageSCP:
    """A running Verification + Storage SCP. ``close()`` stops it (awaitable, like the node's other
    listeners)."""

    def __init__(self, settings: ImagingConfig, instances: InstanceStore, on_stored: StoredCallback | None = None,
                 *, ssl_context: Any = None, audit: Any = None, listener_uri: str = "",
                 patient_of: Callable[[StoredInstance], str] | None = None) -> None:
        self.settings = settings
        self.instances = instances
        self.on_stored = on_stored
        self.ssl_context = ssl_context  # xds.security.guard.NodeSecurity.ssl_context("dicom"); None: plain TCP
        self.audit = audit  # xds.audit.trail.AuditTrail: DICOM Instances Transferred per study per association
        self.listener_uri = listener_uri or f"dicom://{settings.ae_title}@{settings.host}:{settings.port}"
        self.patient_of = patient_of
        self._received: dict[int, dict[str, StudyTransfer]] = {}  # by association, by Study Instance UID
        self._peers: dict[int, str] = {}  # the association's TLS client certificate subject
        self._received_lock = threading.Lock()
        self.ae = self._application_entity()
        self._server: Any = None

    def _application_entity(self) -> AE:
        s = self.settings
        ae = AE(ae_title=s.ae_title)
        ae.maximum_pdu_size = 0  # no limit on what we accept
        ae.network_timeout = 60
        ae.acse_timeout = 30
        ae.dimse_timeout = 120
        ae.add_supported_context(Verification)
        for sop_class in STORAGE_SOP_CLASSES:
            ae.add_supported_context(sop_class, list(TRANSFER_SYNTAXES))
        if s.reject_unknown_calling_ae:
            ae.require_called_aet = True
            ae.require_calling_aet = list(s.calling_ae_titles)
        return ae

    @property
    def port(self) -> int:
        return int(self._server.server_address[1]) if self._server is not None else self.settings.port

    def start(self) -> StorageSCP:
        pynetdicom_log = logging.getLogger("pynetdicom")
        if pynetdicom_log.level == logging.NOTSET:  # one INFO line per C-STORE otherwise
            pynetdicom_log.setLevel(logging.WARNING)
        handlers = [(evt.EVT_C_STORE, self._handle_store), (evt.EVT_C_ECHO, _handle_echo)]
        if self.audit is not None:
            handlers += [(evt.EVT_CONN_CLOSE, self._handle_closed), (evt.EVT_REJECTED, self._handle_rejected)]
        server = self.ae.make_server(
            (self.settings.host, self.settings.port), evt_handlers=handlers, server_class=_AssociationServer,
            ssl_context=self.ssl_context,
        )
        # as AE.start_server(block=False) does; AE.shutdown() and server.shutdown() expect it listed
        self.ae._servers.append(server)
        threading.Thread(target=server.serve_forever, name=f"dicom-{self.settings.ae_title}", daemon=True).start()
        self._server = server
        log.info("DICOM Storage SCP %s on %s:%s", self.settings.ae_title, self.settings.host, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None

    async def close(self) -> None:
        await asyncio.to_thread(self.stop)

    def _handle_store(self, event: Any) -> int:
        calling = event.assoc.requestor.ae_title
        data: bytes | None = None
        try:
            meta = event.file_meta
            meta.SourceApplicationEntityTitle = calling
            data = part10(meta, event.encoded_dataset(include_meta=False))
            instance = self.instances.add(data, calling_ae=calling)
        except InstanceError as e:
            log.warning("C-STORE from %s refused: %s", calling, e)
            self._note_failed(event, data, CANNOT_UNDERSTAND, str(e))
            return CANNOT_UNDERSTAND
        except Exception:
            log.exception("C-STORE from %s could not be stored", calling)
            self._note_failed(event, data, OUT_OF_RESOURCES, "the node could not store it")
            return OUT_OF_RESOURCES
        if self.audit is not None:
            self._transfer(event.assoc, instance.study_instance_uid, lambda t: t.stored.append(instance))
        if self.on_stored is not None:
            try:
                self.on_stored(instance)
            except Exception:
                log.exception("after C-STORE of %s", instance.sop_instance_uid)
        return SUCCESS

    def _transfer(self, assoc: Any, study: str, note: Callable[[StudyTransfer], None]) -> None:
        key = id(assoc)
        if key not in self._received and self.ssl_context is not None:
            self._peers[key] = _peer_subject(assoc)
        with self._received_lock:
            note(self._received.setdefault(key, {}).setdefault(study, StudyTransfer()))

    def _note_failed(self, event: Any, data: bytes | None, status: int, reason: str) -> None:
        """Remember a C-STORE that was not stored, under its study when the data set names one
        (the audit of a failed transfer must not fail: best effort, never raises)."""
        if self.audit is None:
            return
        try:
            meta = event.file_meta
            failed = FailedStore(str(meta.get("MediaStorageSOPClassUID", "") or ""),
                                 str(meta.get("MediaStorageSOPInstanceUID", "") or ""), status, reason)
            self._transfer(event.assoc, _study_of(data), lambda t: t.failed.append(failed))
        except Exception as e:
            log.warning("audit: a refused C-STORE from %s could not be noted (%s)",
                        event.assoc.requestor.ae_title, type(e).__name__)

    def _handle_closed(self, event: Any) -> None:
        """The association's connection closed: one DICOM Instances Transferred record per study
        it sent (PS3.15 A.5.3.7: one patient per message)."""
        with self._received_lock:
            by_study = self._received.pop(id(event.assoc), None)
            subject = self._peers.pop(id(event.assoc), "")
        if by_study:
            try:
                self._audit_received(event.assoc, by_study, subject)
            except Exception:
                log.exception("DICOM Instances Transferred audit of an association from %s",
                              event.assoc.requestor.ae_title)

    def _audit_received(self, assoc: Any, by_study: dict[str, StudyTransfer], subject: str) -> None:
        from xds.audit import events

        audit = self.audit
        requestor = assoc.requestor
        calling = str(requestor.ae_title or "").strip()
        sender = events.Party(calling, str(requestor.address or ""), subject,
                              alternative_user_id=f"AETITLES={calling}")
        receiver = events.Party(self.listener_uri, alternative_user_id=f"AETITLES={self.settings.ae_title}")
        for study, transfer in by_study.items():
            patient = ""
            instances = transfer.stored
            try:
                if instances and self.patient_of is not None:
                    patient = self.patient_of(instances[0])
                elif study:
                    patient = self._study_patient(study)
            except Exception as e:  # stored as received: the data set need not decode past its header
                log.warning("audit: the patient of study %s could not be read from its instance (%s); "
                            "recording the Patient ID indexed at reception", study, type(e).__name__)
                patient = self._study_patient(study)
            pairs = tuple(dict.fromkeys((i.sop_class_uid, i.sop_instance_uid) for i in instances))
            outcome, description = transfer_outcome(transfer)
            audit.record(events.instances_transferred(
                outcome=outcome, sender=sender, receiver=receiver, source=audit.source, study=study,
                instances=pairs, patient_id=patient, description=description,
            ))

    def _handle_rejected(self, event: Any) -> None:
        """An association this listener rejected (PS3.8 9.3.4): a Security Alert, Node
        Authentication failure, when the AE titles were the reason (PS3.15 A.5.3.17)."""
        try:
            reason = self._rejection_reason(event.assoc)
            if reason is None:
                log.warning("DICOM association from %s rejected: too many associations",
                            event.assoc.requestor.address)
                return
            from xds.audit import codes, events

            requestor = event.assoc.requestor
            calling = str(requestor.ae_title or "").strip()
            subject = _peer_subject(event.assoc) if self.ssl_context is not None else ""
            self.audit.record(events.security_alert(
                outcome=codes.MINOR_FAILURE, alert=codes.NODE_AUTHENTICATION,
                reporter=events.Party(self.listener_uri),
                performer=events.Party(calling, str(requestor.address or ""), subject,
                                       alternative_user_id=f"AETITLES={calling}"),
                subject=self.listener_uri, source=self.audit.source, description=reason,
            ))
        except Exception:
            log.exception("audit of a rejected DICOM association")

    def _rejection_reason(self, assoc: Any) -> str | None:
        s = self.settings
        calling = str(assoc.requestor.ae_title or "").strip()
        primitive = getattr(assoc.requestor, "primitive", None)
        called = str(getattr(primitive, "called_ae_title", "") or "").strip()
        if s.reject_unknown_calling_ae and calling not in [t.strip() for t in s.calling_ae_titles]:
            return f"association rejected: calling AE title {calling!r} is not accepted"
        if s.reject_unknown_calling_ae and called != s.ae_title.strip():
            return f"association rejected: called AE title {called!r} is not this listener's"
        return None

    def _study_patient(self, study_instance_uid: str) -> str:
        study = self.instances.study(study_instance_uid)
        if study is None or not study.patient_id:
            return ""
        issuer = study.issuer_of_patient_id
        return f"{study.patient_id}^^^{issuer}" if issuer else study.patient_id


def _study_of(data: bytes | None) -> str:
    """The Study Instance UID of a data set that was not stored, or "" when it cannot be read."""
    if data is None:
        return ""
    try:
        return str(read_header(io.BytesIO(data)).get("StudyInstanceUID", "") or "").strip()
    except Exception:
        return ""


def _peer_subject(assoc: Any) -> str:
    from xds.security.tls import PeerCertificate

    try:
        cert = PeerCertificate.from_ssl_object(assoc.dul.socket.socket)
    except Exception:
        return ""
    return cert.subject if cert is not None else ""


def _handle_echo(event: Any) -> int:
    return SUCCESS
