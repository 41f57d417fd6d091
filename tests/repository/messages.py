"""ITI-41 / ITI-43 wire messages for the repository tests, and readers of the answers.

Requests are built the way a Document Source sends them: model objects serialised by the ebRIM
codec, wrapped in a SOAP 1.2 envelope, documents as MTOM/XOP parts or inline base64. Responses are
read with the standard library's MIME parser, independent of our MTOM codec.
"""

from __future__ import annotations

import base64
import email
import email.policy
import itertools
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from lxml import etree

from xds.metadata import ebrim
from xds.metadata import model as m
from xds.namespaces import RS, SOAP12, WSA, XDSB, XOP

AUTHORITY = "1.3.6.1.4.1.21367.2005.13.20.1000"
PATIENT = f"a1b2c3d4e5^^^&{AUTHORITY}&ISO"
REPOSITORY_ID = "1.3.6.1.4.1.21367.13.40.216"
HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.1"

ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
NS = {"env": SOAP12, "wsa": WSA, "rs": RS, "xdsb": XDSB, "xop": XOP}

_seq = itertools.count(1)


def oid() -> str:
    return f"1.3.6.1.4.1.21367.2005.3.99.{uuid.uuid4().int % 10**12}.{next(_seq)}"


def document_entry(symbol: str = "Document01", patient: str = PATIENT, **kw: object) -> m.DocumentEntry:
    de = m.DocumentEntry(
        entry_uuid=symbol,
        unique_id=oid(),
        patient_id=patient,
        mime_type="text/plain",
        title="Physical",
        class_code=m.Code("DEMO-Consult", "1.3.6.1.4.1.21367.100.1", "Consultation"),
        type_code=m.Code("34108-1", "2.16.840.1.113883.6.1", "Outpatient Note"),
        format_code=m.Code("urn:ihe:rad:TEXT", "1.2.840.10008.2.6.1", "TEXT"),
        healthcare_facility_type_code=m.Code("Outpatient", "Connect-a-thon healthcareFacilityTypeCodes", "Outpatient"),
        practice_setting_code=m.Code("General Medicine", "Connect-a-thon practiceSettingCodes", "General Medicine"),
        confidentiality_codes=[m.Code("N", "2.16.840.1.113883.5.25", "Normal")],
        authors=[m.Author(person="^Smitty^Gerald^^^", institutions=["Cleveland Clinic"])],
        creation_time="20051224",
        language_code="en-us",
        source_patient_id="89765a87b^^^&1.3.4.5&ISO",
        source_patient_info=["PID-3|pid1^^^&1.2.3&ISO", "PID-5|Doe^John^^^"],
    )
    for k, v in kw.items():
        setattr(de, k, v)
    return de


def submission(*docs: m.DocumentEntry, patient: str = PATIENT) -> m.Submission:
    ss = m.SubmissionSet(
        entry_uuid="SubmissionSet01",
        unique_id=oid(),
        source_id="1.3.6.1.4.1.21367.2005.3.7",
        patient_id=patient,
        submission_time="20041225235050",
        content_type_code=m.Code("Communication", "Connect-a-thon contentTypeCodes", "Communication"),
        authors=[m.Author(person="^Dopplemeyer^Sherry^^^", institutions=["Cleveland Clinic"])],
    )
    members = [
        m.Association(entry_uuid=f"Assoc{i}", association_type=m.HAS_MEMBER, source=ss.entry_uuid,
                      target=d.entry_uuid, submission_set_status="Original")
        for i, d in enumerate(docs)
    ]
    return m.Submission(submission_set=ss, document_entries=list(docs), associations=members)


def envelope(action: str, body: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"env": SOAP12, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP12}}}Header")
    a = etree.SubElement(header, f"{{{WSA}}}Action")
    a.set(f"{{{SOAP12}}}mustUnderstand", "true")
    a.text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(header, f"{{{WSA}}}To").text = "http://testserver/xds/repository"
    etree.SubElement(etree.SubElement(header, f"{{{WSA}}}ReplyTo"), f"{{{WSA}}}Address").text = (
        "http://www.w3.org/2005/08/addressing/anonymous"
    )
    etree.SubElement(env, f"{{{SOAP12}}}Body").append(body)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


@dataclass
class Request:
    """An HTTP request body and its Content-Type; ``body`` may be an iterator (streamed upload)."""

    content_type: str
    body: bytes | Iterator[bytes]
    parts: list[tuple[str, bytes | Iterable[bytes]]] = field(default_factory=list)


def provide_and_register(
    sub: m.Submission,
    documents: dict[str, bytes | Iterable[bytes]],
    *,
    mtom: bool = True,
    boundary: str = "MIMEBoundary_test0123456789",
) -> Request:
    """ITI-41 with ``documents`` (by DocumentEntry id) as XOP parts, or inline base64 (``mtom=False``:
    plain application/soap+xml). A document given as an iterable of chunks is streamed."""
    pnr = etree.Element(f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xdsb": XDSB})
    pnr.append(ebrim.serialize_submit_objects_request(sub))
    parts: list[tuple[str, bytes | Iterable[bytes]]] = []
    for doc_id, content in documents.items():
        d = etree.SubElement(pnr, f"{{{XDSB}}}Document", id=doc_id)
        if mtom:
            cid = f"doc{len(parts)}.{uuid.uuid4().hex}@test"
            etree.SubElement(d, f"{{{XOP}}}Include", nsmap={"xop": XOP}, href=f"cid:{cid}")
            parts.append((cid, content))
        else:
            assert isinstance(content, bytes)
            d.text = base64.b64encode(content).decode()
    root = envelope(ITI41, pnr)
    if not mtom:
        return Request(f'application/soap+xml; charset=UTF-8; action="{ITI41}"', root)
    ct = (f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; start="<root@test>"; '
          f'start-info="application/soap+xml"; action="{ITI41}"')
    return Request(ct, _multipart(root, parts, boundary), parts)


def _multipart(root: bytes, parts: list[tuple[str, bytes | Iterable[bytes]]], boundary: str) -> bytes | Iterator[bytes]:
    head = (f'--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"\r\n'
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <root@test>\r\n\r\n").encode() + root

    def part_head(cid: str) -> bytes:
        return (f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                f"Content-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n").encode()

    tail = f"\r\n--{boundary}--\r\n".encode()
    if all(isinstance(c, bytes) for _, c in parts):
        return head + b"".join(part_head(cid) + c for cid, c in parts) + tail  # type: ignore[operator]

    def stream() -> Iterator[bytes]:
        yield head
        for cid, content in parts:
            yield part_head(cid)
            if isinstance(content, bytes):
                yield content
            else:
                yield from content
        yield tail

    return stream()


def retrieve_document_set(*requests: tuple[str, str] | tuple[str, str, str]) -> Request:
    """ITI-43 for (repositoryUniqueId, documentUniqueId[, homeCommunityId]) triples."""
    rq = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": XDSB})
    for r in requests:
        dr = etree.SubElement(rq, f"{{{XDSB}}}DocumentRequest")
        if len(r) == 3:
            etree.SubElement(dr, f"{{{XDSB}}}HomeCommunityId").text = r[2]
        etree.SubElement(dr, f"{{{XDSB}}}RepositoryUniqueId").text = r[0]
        etree.SubElement(dr, f"{{{XDSB}}}DocumentUniqueId").text = r[1]
    return Request(f'application/soap+xml; charset=UTF-8; action="{ITI43}"', envelope(ITI43, rq))


# --- responses ---


@dataclass
class Outcome:
    status: str
    errors: list[tuple[str, str, str]]  # (errorCode, severity local name, location)
    body: etree._Element
    parts: dict[str, bytes] = field(default_factory=dict)
    mtom: bool = False

    @property
    def codes(self) -> list[str]:
        return [e[0] for e in self.errors]

    @property
    def short_status(self) -> str:
        return self.status.rsplit(":", 1)[-1]

    def documents(self) -> list[dict[str, object]]:
        """ITI-43 DocumentResponses: their fields and the bytes of their XOP part."""
        out = []
        for dr in self.body.findall("xdsb:DocumentResponse", NS):
            inc = dr.find("xdsb:Document/xop:Include", NS)
            cid = inc.get("href", "")[4:] if inc is not None else ""
            out.append({
                "home": dr.findtext("xdsb:HomeCommunityId", namespaces=NS),
                "repository": dr.findtext("xdsb:RepositoryUniqueId", namespaces=NS),
                "unique_id": dr.findtext("xdsb:DocumentUniqueId", namespaces=NS),
                "mime_type": dr.findtext("xdsb:mimeType", namespaces=NS),
                "content": self.parts.get(email.utils.unquote(cid)),
            })
        return out


def read_response(content_type: str, content: bytes) -> Outcome:
    parts: dict[str, bytes] = {}
    is_mtom = content_type.lower().startswith("multipart/related")
    if is_mtom:
        msg = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + content,
                                       policy=email.policy.HTTP)
        payloads = list(msg.iter_parts())
        root_bytes = payloads[0].get_payload(decode=True)
        for p in payloads[1:]:
            parts[p["Content-ID"].strip("<>")] = p.get_payload(decode=True)
    else:
        root_bytes = content
    root = etree.fromstring(root_bytes)
    payload = root.find("env:Body", NS)[0]
    rr = payload if payload.tag == f"{{{RS}}}RegistryResponse" else payload.find("rs:RegistryResponse", NS)
    assert rr is not None, etree.tostring(root)[:2000]
    errors = [
        (e.get("errorCode"), e.get("severity", "").rsplit(":", 1)[-1], e.get("location", ""))
        for e in rr.iter(f"{{{RS}}}RegistryError")
    ]
    return Outcome(rr.get("status", ""), errors, payload, parts, is_mtom)
