"""What the node holds before the fuzzers start, and the check that it still holds it after.

The patient is admitted over ITI-8 (a real A01 on the node's MLLP listener); the sentinel document
is provided over ITI-41 (MTOM) with metadata taken from the NIST PnrXop capture. :func:`check`
retrieves it (ITI-43, byte for byte) and finds it (ITI-18 FindDocuments, Approved).
"""

from __future__ import annotations

import hashlib
import socket
import uuid

from lxml import etree

from tests.fuzz import seeds, wire
from xds.hl7.mllp import END_BLOCK, frame
from xds.namespaces import QUERY, RIM, SOAP12, XDSB, XOP

CONTENT = b"Sentinel report: nothing the fuzzers send may change or remove this document.\r\n" * 3
DOCUMENT_UNIQUE_ID = "1.3.6.1.4.1.21367.2005.3.7301.1.1"
SUBMISSION_UNIQUE_ID = "1.3.6.1.4.1.21367.2005.3.7301.1.2"


def mllp_exchange(port: int, message: bytes, timeout: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(frame(message))
        data = b""
        while not data.endswith(END_BLOCK + b"\r"):
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    return data[1:-2]


def admit_patient(node) -> None:  # noqa: ANN001 - tests.fuzz.conftest.LiveNode
    a01 = (
        "MSH|^~\\&|FUZZPAS|FUZZHOSP|XDSREG|DIR|20240102030405||ADT^A01^ADT_A01|SENTINEL1|P|2.5\r"
        "EVN|A01|20240102030405\r"
        f"PID|1||{seeds.PATIENT_NUMBER}^^^&{seeds.AUTHORITY}&ISO||Sentinel^Sam||19500101|M\r"
        "PV1|1|O\r"
    ).encode()
    ack = mllp_exchange(node.mllp_port, a01)
    assert b"MSA|AA|SENTINEL1" in ack, ack


def provide_request() -> tuple[bytes, str]:
    """ITI-41 of the sentinel document: the PnrXop/Xop capture's metadata, our ids and content."""
    body, _ = next(c for c in seeds.mtom_captures() if b"@apache.org" in c[0] and b"xop:Include" in c[0])
    start = body.index(b"<?xml")
    end = body.index(b"</soapenv:Envelope>") + len(b"</soapenv:Envelope>")
    env = etree.fromstring(body[start:end])
    pnr = env.find(f"{{{SOAP12}}}Body/{{{XDSB}}}ProvideAndRegisterDocumentSetRequest")
    for x in pnr.iter(f"{{{RIM}}}ExternalIdentifier"):
        name = x.find(f"{{{RIM}}}Name/{{{RIM}}}LocalizedString").get("value")
        if name == "XDSDocumentEntry.uniqueId":
            x.set("value", DOCUMENT_UNIQUE_ID)
        elif name == "XDSSubmissionSet.uniqueId":
            x.set("value", SUBMISSION_UNIQUE_ID)
    include = pnr.find(f"{{{XDSB}}}Document/{{{XOP}}}Include")
    include.set("href", "cid:sentinel.document@fuzz")
    root = wire.envelope(wire.PROVIDE, etree.tostring(pnr))
    return wire.multipart(root, [("sentinel.document@fuzz", CONTENT)])


def register(node) -> None:  # noqa: ANN001
    body, ct = provide_request()
    answer = wire.post(node.client, "/xds/repository", body, ct)
    assert answer.registry_status == "Success", etree.tostring(answer.payload)[:2000]


def retrieve_request(unique_id: str = DOCUMENT_UNIQUE_ID) -> bytes:
    rq = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": XDSB})
    dr = etree.SubElement(rq, f"{{{XDSB}}}DocumentRequest")
    etree.SubElement(dr, f"{{{XDSB}}}RepositoryUniqueId").text = seeds.REPOSITORY_ID
    etree.SubElement(dr, f"{{{XDSB}}}DocumentUniqueId").text = unique_id
    return wire.envelope(wire.RETRIEVE, etree.tostring(rq))


def find_documents_request() -> bytes:
    rq = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(rq, f"{{{QUERY}}}ResponseOption", returnType="LeafClass", returnComposedObjects="true")
    q = etree.SubElement(rq, f"{{{RIM}}}AdhocQuery", id="urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d")
    for name, value in (
        ("$XDSDocumentEntryPatientId", f"'{seeds.PATIENT}'"),
        ("$XDSDocumentEntryStatus", "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"),
    ):
        slot = etree.SubElement(q, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value
    return wire.envelope(wire.STORED_QUERY, etree.tostring(rq), message_id=f"urn:uuid:{uuid.uuid4()}")


def check(node) -> None:  # noqa: ANN001
    """The sentinel is still there, unchanged, Approved; the node still answers; no audit record
    was lost on the way (ATNA: every access is audited, whatever the request looked like)."""
    audit = node.node.components.get("audit")
    assert audit is None or audit.lost == 0, f"{audit.lost} audit record(s) could not be stored"
    answer = wire.post(node.client, "/xds/repository", retrieve_request())
    assert answer.registry_status == "Success", etree.tostring(answer.payload)[:2000]
    contents = list(answer.parts.values())
    assert len(contents) == 1 and hashlib.sha1(contents[0]).digest() == hashlib.sha1(CONTENT).digest()
    answer = wire.post(node.client, "/xds/registry", find_documents_request())
    assert answer.registry_status == "Success", etree.tostring(answer.payload)[:2000]
    found = [
        x.get("value")
        for eo in answer.payload.iter(f"{{{RIM}}}ExtrinsicObject")
        if eo.get("status", "").endswith(":Approved")
        for x in eo.iter(f"{{{RIM}}}ExternalIdentifier")
    ]
    assert DOCUMENT_UNIQUE_ID in found, etree.tostring(answer.payload)[:2000]
