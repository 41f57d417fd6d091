"""SOAP requests for the fuzzers, and the one judgement of every SOAP answer.

:func:`judge` is the property shared by all HTTP fuzzers: an answer is either a SOAP 1.2 fault
(HTTP 400 for the sender's faults, 500 for the receiver's, SOAP 1.2 Part 2, 7.5.1.2) whose reason
names no patient data and is not the dispatcher's "internal error" safety net, or a 200 whose body
is the transaction's response, any RegistryError in it carrying an IHE error code. Answers are read
with lxml and the standard library's MIME parser, independent of the node's own codec.
"""

from __future__ import annotations

import email
import email.policy
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

from lxml import etree

from xds.metadata.rules import ErrorCode
from xds.namespaces import QUERY, RS, SOAP12, WSA, XDSB, XDSI

SOAP_CT = "application/soap+xml; charset=UTF-8"
FAULT_CODES = {"env:Sender", "env:Receiver", "env:MustUnderstand", "env:VersionMismatch", "env:DataEncodingUnknown"}
IHE_CODES = {c.value for c in ErrorCode}
NS = {"env": SOAP12, "wsa": WSA, "rs": RS, "query": QUERY, "xdsb": XDSB, "xdsi": XDSI}

REGISTER = "urn:ihe:iti:2007:RegisterDocumentSet-b"
STORED_QUERY = "urn:ihe:iti:2007:RegistryStoredQuery"
PROVIDE = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
RETRIEVE = "urn:ihe:iti:2007:RetrieveDocumentSet"
RAD69 = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
XCQ = "urn:ihe:iti:2007:CrossGatewayQuery"
XCR = "urn:ihe:iti:2007:CrossGatewayRetrieve"
RAD75 = "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet"

# Which action a body goes with, by the local name of its root element.
ACTION_OF = {
    "SubmitObjectsRequest": REGISTER,
    "AdhocQueryRequest": STORED_QUERY,
    "ProvideAndRegisterDocumentSetRequest": PROVIDE,
    "RetrieveDocumentSetRequest": RETRIEVE,
    "RetrieveImagingDocumentSetRequest": RAD69,
}
PATH_OF = {
    REGISTER: "/xds/registry",
    STORED_QUERY: "/xds/registry",
    PROVIDE: "/xds/repository",
    RETRIEVE: "/xds/repository",
    RAD69: "/xds/imaging",
    XCQ: "/xca/respond",
    XCR: "/xca/respond",
    RAD75: "/xca/respond",
}


def envelope(action: str | None, body: bytes, *, message_id: str | None = None, headers: bytes = b"") -> bytes:
    """A SOAP 1.2 envelope around ``body`` (serialised XML, or any bytes) as IHE clients send it."""
    parts = [b'<?xml version="1.0" encoding="UTF-8"?>',
             f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'.encode()]
    if action is not None:
        parts.append(f'<wsa:Action env:mustUnderstand="true">{action}</wsa:Action>'.encode())
    parts.append(f"<wsa:MessageID>{message_id or f'urn:uuid:{uuid.uuid4()}'}</wsa:MessageID>".encode())
    parts.append(b"<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>")
    parts += [headers, b"</env:Header><env:Body>", strip_declaration(body), b"</env:Body></env:Envelope>"]
    return b"".join(parts)


def strip_declaration(xml: bytes) -> bytes:
    if xml.lstrip().startswith(b"<?xml"):
        end = xml.find(b"?>")
        return xml[end + 2 :] if end != -1 else xml
    return xml


def multipart(root: bytes, parts: Iterable[tuple[str, bytes]], boundary: str = "MIMEBoundary_fuzz",
              action: str = PROVIDE) -> tuple[bytes, str]:
    """(body, Content-Type) of an MTOM package: ``root`` then the (Content-ID, bytes) parts."""
    out = [f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n"
           f"Content-Transfer-Encoding: binary\r\nContent-ID: <root.fuzz@xds>\r\n\r\n".encode(), root]
    for cid, data in parts:
        out.append(f"\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n"
                   f"Content-Transfer-Encoding: binary\r\nContent-ID: <{cid}>\r\n\r\n".encode())
        out.append(data)
    out.append(f"\r\n--{boundary}--\r\n".encode())
    ct = (f'multipart/related; boundary="{boundary}"; type="application/xop+xml"; start="<root.fuzz@xds>"; '
          f'start-info="application/soap+xml"; action="{action}"')
    return b"".join(out), ct


# --- answers ---------------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    kind: str  # "fault" | "response"
    payload: etree._Element
    fault_code: str = ""
    fault_reason: str = ""
    parts: dict[str, bytes] = field(default_factory=dict)

    @property
    def registry_status(self) -> str:
        rr = self.registry_response
        return "" if rr is None else rr.get("status", "").rsplit(":", 1)[-1]

    @property
    def registry_response(self) -> etree._Element | None:
        if self.payload.tag == f"{{{RS}}}RegistryResponse":
            return self.payload
        if self.payload.get("status") is not None:  # AdhocQueryResponse
            return self.payload
        return self.payload.find(f"{{{RS}}}RegistryResponse")

    @property
    def error_codes(self) -> list[str]:
        return [e.get("errorCode", "") for e in self.payload.iter(f"{{{RS}}}RegistryError")]


class Misbehaviour(AssertionError):
    pass


def _root_part(content_type: str, content: bytes) -> tuple[bytes, dict[str, bytes]]:
    if not content_type.lower().startswith("multipart/related"):
        return content, {}
    msg = email.message_from_bytes(b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + content,
                                   policy=email.policy.HTTP)
    payloads = list(msg.iter_parts())
    if not payloads:
        raise Misbehaviour(f"multipart answer without parts: {content[:300]!r}")
    parts = {}
    for p in payloads[1:]:
        parts[(p["Content-ID"] or "").strip().strip("<>")] = p.get_payload(decode=True)
    return payloads[0].get_payload(decode=True), parts


def judge(status: int, content_type: str, content: bytes, phi: Iterable[str] = ()) -> Answer:
    """The answer to a (possibly hostile) SOAP request, or :class:`Misbehaviour` saying why it is
    not an acceptable one."""
    head = content[:600]
    if b"Traceback" in content or b'File "/' in content:
        raise Misbehaviour(f"HTTP {status} shows a stack trace: {head!r}")
    if status not in (200, 400, 500):
        raise Misbehaviour(f"HTTP {status} is neither a SOAP answer nor a SOAP fault: {head!r}")
    try:
        root_bytes, parts = _root_part(content_type, content)
        root = etree.fromstring(root_bytes)
    except Exception as e:
        raise Misbehaviour(f"HTTP {status} {content_type!r} is not a SOAP envelope ({e}): {head!r}") from None
    if root.tag != f"{{{SOAP12}}}Envelope":
        raise Misbehaviour(f"HTTP {status}: answer is not a SOAP 1.2 envelope: {head!r}")
    body = root.find("env:Body", NS)
    if body is None or len(body) != 1:
        raise Misbehaviour(f"HTTP {status}: SOAP Body without exactly one child: {head!r}")
    payload = body[0]
    fault = payload.tag == f"{{{SOAP12}}}Fault"
    if status == 200 and fault:
        raise Misbehaviour(f"a SOAP fault with HTTP 200: {head!r}")
    if status != 200:
        if not fault:
            raise Misbehaviour(f"HTTP {status} without a SOAP fault: {head!r}")
        code = payload.findtext("env:Code/env:Value", namespaces=NS) or ""
        reason = payload.findtext("env:Reason/env:Text", namespaces=NS) or ""
        if code not in FAULT_CODES:
            raise Misbehaviour(f"unknown SOAP fault code {code!r}")
        if (status == 400) != (code in ("env:Sender", "env:DataEncodingUnknown")):
            raise Misbehaviour(f"fault {code} with HTTP {status} (SOAP 1.2 Part 2, 7.5.1.2): {reason!r}")
        if "Internal error" in reason:
            raise Misbehaviour(f"a handler raised on this input (the dispatcher's safety net answered): {reason!r}")
        leaked = [v for v in phi if v and v in etree.tostring(payload, encoding="unicode")]
        if leaked:
            raise Misbehaviour(f"the fault echoes patient data {leaked}: {reason!r}")
        return Answer(status, "fault", payload, code, reason, parts)
    answer = Answer(status, "response", payload, parts=parts)
    rr = answer.registry_response
    if rr is None:
        raise Misbehaviour(f"200 answer without a RegistryResponse: {etree.tostring(payload)[:400]!r}")
    bad = [c for c in answer.error_codes if c not in IHE_CODES]
    if bad:
        raise Misbehaviour(f"RegistryErrors without an IHE error code: {bad}")
    if answer.registry_status == "Failure" and not answer.error_codes:
        raise Misbehaviour("a Failure without a RegistryError")
    return answer


def post(client, path: str, body: bytes, content_type: str = SOAP_CT, phi: Iterable[str] = ()) -> Answer:  # noqa: ANN001
    r = client.post(path, content=body, headers={"content-type": content_type.encode("latin-1", "replace")})
    return judge(r.status_code, r.headers.get("content-type", ""), r.content, phi)
