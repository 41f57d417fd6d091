"""Transactions against a live node for the security tests, a TLS syslog audit repository, and
readers of the node's audit store."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
from lxml import etree

from tests.repository import messages as rm
from xds.audit.store import AuditStore
from xds.audit.syslog import parse_octet_counted
from xds.hl7.mllp import frame
from xds.metadata import ebrim
from xds.namespaces import QUERY, RIM

AUTHORITY = "2.16.840.1.113883.4.59"  # conf/hdirs.toml: the Ontario health number
REPOSITORY_ID = "2.25.194578161177471140042198828596590154623"
ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


def new_hn() -> str:
    return str(uuid.uuid4().int % 10**10).zfill(10)


def cx(number: str) -> str:
    return f"{number}^^^&{AUTHORITY}&ISO"


def adt_a01(number: str, control_id: str) -> bytes:
    return (
        f"MSH|^~\\&|RIS|HOSP|XDSREG|HDIRS|20240101120000||ADT^A01^ADT_A01|{control_id}|P|2.5\r"
        "EVN|A01|20240101120000\r"
        f"PID|1||{number}^^^&{AUTHORITY}&ISO||AUDIT^TEST||19700101|F\r"
        "PV1|1|O\r"
    ).encode()


def mllp_exchange(port: int, payload: bytes, ssl_context: ssl.SSLContext | None = None) -> bytes:
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock = ssl_context.wrap_socket(raw, server_hostname="localhost") if ssl_context else raw
    with sock:
        sock.sendall(frame(payload))
        reply = b""
        while not reply.endswith(b"\x1c\r"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    return reply


def feed_patient(port: int, number: str, ssl_context: ssl.SSLContext | None = None) -> str:
    control_id = uuid.uuid4().hex[:20]
    reply = mllp_exchange(port, adt_a01(number, control_id), ssl_context)
    assert b"MSA|AA|" + control_id.encode() in reply, reply
    return control_id


def provide(client: httpx.Client, base: str, patient: str, content: bytes = b"report text",
            headers: dict | None = None) -> tuple[str, str]:
    """ITI-41 of one text document; returns (document uniqueId, submission set uniqueId)."""
    entry = rm.document_entry(patient=patient)
    sub = rm.submission(entry, patient=patient)
    req = rm.provide_and_register(sub, {entry.entry_uuid: content}, mtom=False)
    r = client.post(base + "/xds/repository", content=req.body, headers={"content-type": req.content_type,
                                                                          **(headers or {})})
    assert rm.read_response(r.headers["content-type"], r.content).short_status == "Success", r.content[:2000]
    assert sub.submission_set is not None
    return entry.unique_id, sub.submission_set.unique_id


def register(client: httpx.Client, base: str, patient: str) -> str:
    """ITI-42 of one DocumentEntry; returns the submission set uniqueId."""
    content = b"registered elsewhere"
    entry = rm.document_entry(patient=patient, hash=hashlib.sha1(content).hexdigest(), size=len(content),
                              repository_unique_id="2.25.1")
    sub = rm.submission(entry, patient=patient)
    body = rm.envelope(ITI42, ebrim.serialize_submit_objects_request(sub))
    r = client.post(base + "/xds/registry", content=body,
                    headers={"content-type": f'application/soap+xml; charset=UTF-8; action="{ITI42}"'})
    assert rm.read_response(r.headers["content-type"], r.content).short_status == "Success", r.content[:2000]
    assert sub.submission_set is not None
    return sub.submission_set.unique_id


def adhoc_query_body(query_id: str, slots: dict[str, str], return_type: str = "ObjectRef") -> etree._Element:
    req = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(req, f"{{{QUERY}}}ResponseOption", returnType=return_type, returnComposedObjects="true")
    q = etree.SubElement(req, f"{{{RIM}}}AdhocQuery", id=query_id)
    for name, value in slots.items():
        slot = etree.SubElement(q, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value
    return req


def find_documents_body(patient: str) -> etree._Element:
    return adhoc_query_body(FIND_DOCUMENTS, {
        "$XDSDocumentEntryPatientId": f"'{patient}'",
        "$XDSDocumentEntryStatus": "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
    })


def get_documents(client: httpx.Client, base: str, unique_id: str) -> httpx.Response:
    """ITI-18 GetDocuments by uniqueId, LeafClass: the request names no patient."""
    body = rm.envelope(ITI18, adhoc_query_body(GET_DOCUMENTS, {"$XDSDocumentEntryUniqueId": f"('{unique_id}')"},
                                               "LeafClass"))
    return client.post(base + "/xds/registry", content=body,
                       headers={"content-type": f'application/soap+xml; charset=UTF-8; action="{ITI18}"'})


def find_documents(client: httpx.Client, base: str, patient: str, *, extra_headers: str = "") -> httpx.Response:
    body = rm.envelope(ITI18, find_documents_body(patient))
    if extra_headers:
        body = body.replace(b"</env:Header>", extra_headers.encode() + b"</env:Header>")
    return client.post(base + "/xds/registry", content=body,
                       headers={"content-type": f'application/soap+xml; charset=UTF-8; action="{ITI18}"'})


def retrieve(client: httpx.Client, base: str, unique_id: str) -> rm.Outcome:
    req = rm.retrieve_document_set((REPOSITORY_ID, unique_id))
    r = client.post(base + "/xds/repository", content=req.body, headers={"content-type": req.content_type})
    return rm.read_response(r.headers["content-type"], r.content)


# --- the node's audit store ------------------------------------------------------------------------


@contextlib.contextmanager
def audit_store(data_dir: Path) -> Iterator[AuditStore]:
    store = AuditStore.open(f"sqlite:///{data_dir / 'audit.sqlite'}")
    try:
        yield store
    finally:
        store.close()


def audit_messages(data_dir: Path, transaction: str | None = None) -> list[etree._Element]:
    with audit_store(data_dir) as store:
        return [etree.fromstring(m.encode()) for m in store.messages(transaction=transaction)]


def event_codes(message: etree._Element) -> tuple[str, str, str, str]:
    """(EventID, EventTypeCode, EventActionCode, EventOutcomeIndicator)."""
    ev = message.find("EventIdentification")
    return (ev.find("EventID").get("csd-code"), ev.find("EventTypeCode").get("csd-code"),
            ev.get("EventActionCode"), ev.get("EventOutcomeIndicator"))


def objects(message: etree._Element) -> dict[str, list[str]]:
    """ParticipantObjectIDs by ParticipantObjectIDTypeCode csd-code."""
    out: dict[str, list[str]] = {}
    for po in message.findall("ParticipantObjectIdentification"):
        out.setdefault(po.find("ParticipantObjectIDTypeCode").get("csd-code"), []).append(po.get("ParticipantObjectID"))
    return out


# --- an Audit Record Repository: syslog over TLS (RFC 5425) ----------------------------------------


class SyslogRepository:
    """Accepts RFC 5425 connections (client certificate required) and keeps every message."""

    def __init__(self, context: ssl.SSLContext, port: int = 0) -> None:
        self.context = context
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.messages: list[bytes] = []
        self.peers: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(None)
            tls = self.context.wrap_socket(conn, server_side=True)
        except (ssl.SSLError, OSError):
            conn.close()
            return
        cert = tls.getpeercert() or {}
        with self._lock:
            self.peers.append(str(dict(x[0] for x in cert.get("subject", ())).get("commonName", "")))
        buffer = bytearray()
        tls.settimeout(0.5)
        with tls:
            while not self._stop.is_set():
                try:
                    data = tls.recv(65536)
                except TimeoutError:
                    continue
                except (ssl.SSLError, OSError):
                    return
                if not data:
                    return
                buffer += data
                frames = parse_octet_counted(buffer)
                with self._lock:
                    self.messages.extend(frames)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[bytes]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.messages) >= count:
                    return list(self.messages)
            time.sleep(0.05)
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self._stop.set()
        self.sock.close()
        self._thread.join(2)


def syslog_server_context(dev_pki) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=dev_pki.path("ca"))
    ctx.load_cert_chain(*dev_pki.pair("node"))  # the repository's own certificate (SAN 127.0.0.1)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def wait_until(predicate, timeout: float = 15.0, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def audit_store_queued(data_dir: Path) -> int:
    with audit_store(data_dir) as store:
        return store.queued()


def outbox_attempts(data_dir: Path) -> int:
    from sqlalchemy import func, select

    from xds.audit.store import audit_outbox

    with audit_store(data_dir) as store, store.engine.connect() as conn:
        return int(conn.execute(select(func.coalesce(func.max(audit_outbox.c.attempts), 0))).scalar())
