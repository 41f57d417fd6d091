"""SOAP 1.2 envelope: parse a request envelope, build a response envelope (SOAP 1.2 Part 1, 5)."""

from __future__ import annotations

import functools
from xml.sax.saxutils import escape

from lxml import etree

from xds.namespaces import SOAP11, SOAP12, WSA
from xds.soap.fault import SoapFault, build_fault_body

MUST_UNDERSTAND = f"{{{SOAP12}}}mustUnderstand"
ROLE = f"{{{SOAP12}}}role"
ROLE_NEXT = "http://www.w3.org/2003/05/soap-envelope/role/next"
ROLE_ULTIMATE = "http://www.w3.org/2003/05/soap-envelope/role/ultimateReceiver"
ROLE_NONE = "http://www.w3.org/2003/05/soap-envelope/role/none"



_ENVELOPE11 = f"{{{SOAP11}}}Envelope"
_ENVELOPE = f"{{{SOAP12}}}Envelope"
_HEADER = f"{{{SOAP12}}}Header"
_BODY = f"{{{SOAP12}}}Body"


def split_envelope(root: etree._Element) -> tuple[etree._Element | None, etree._Element]:
    """Return (Header or None, the single Body child). Faults as SOAP 1.2 prescribes."""
    if root.tag == _ENVELOPE11:
        raise SoapFault("VersionMismatch", "SOAP 1.1 envelopes are not supported; send SOAP 1.2")
    if root.tag != _ENVELOPE:
        if etree.QName(root).localname == "Envelope":
            raise SoapFault("VersionMismatch", "The envelope is not in the SOAP 1.2 namespace")
        raise SoapFault("Sender", "The message is not a SOAP envelope")
    header = body = None
    for child in root:
        tag = child.tag
        if not isinstance(tag, str):
            continue
        if tag == _HEADER and header is None and body is None:
            header = child
        elif tag == _BODY and body is None:
            body = child
        else:
            raise SoapFault("Sender", f"Unexpected element {etree.QName(child).localname} in the SOAP envelope")
    if body is None:
        raise SoapFault("Sender", "The SOAP envelope has no Body")
    if len(body) == 1 and isinstance((only := body[0]).tag, str):  # the usual case, without a list
        return header, only
    payload = [c for c in body if isinstance(c.tag, str)]
    if len(payload) != 1:
        raise SoapFault("Sender", f"The SOAP Body must hold exactly one element, not {len(payload)}")
    return header, payload[0]


def is_true(value: str | None) -> bool:
    return value is not None and value.strip() in ("1", "true")


def targeted_at_us(block: etree._Element) -> bool:
    role = block.get(ROLE)
    return role in (None, "", ROLE_NEXT, ROLE_ULTIMATE)


def check_must_understand(header: etree._Element | None, understood: set[str]) -> None:
    """SOAP 1.2 Part 1, 5.2.3: fault on any header block targeted at us, mustUnderstand=true,
    that we do not process. ``understood`` holds Clark-notation tag names."""
    if header is None:
        return
    missing = []
    for b in header:
        flag = b.get(MUST_UNDERSTAND)  # None for comments and PIs too
        if flag is not None and b.tag not in understood and is_true(flag) and targeted_at_us(b):
            missing.append(b)
    if missing:
        names = [etree.QName(b) for b in missing]
        raise SoapFault(
            "MustUnderstand",
            "Header block(s) not understood: " + ", ".join(q.text for q in names),
            not_understood=names,
        )


def build_envelope(
    body_element: etree._Element,
    *,
    action: str,
    relates_to: str | None,
    message_id: str | None = None,
    extra_headers: list[etree._Element] | None = None,
) -> etree._Element:
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"env": SOAP12, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP12}}}Header")
    a = etree.SubElement(header, f"{{{WSA}}}Action")
    a.set(MUST_UNDERSTAND, "1")
    a.text = action
    if message_id:
        etree.SubElement(header, f"{{{WSA}}}MessageID").text = message_id
    if relates_to:
        etree.SubElement(header, f"{{{WSA}}}RelatesTo").text = relates_to
    for h in extra_headers or []:
        header.append(h)
    body = etree.SubElement(env, f"{{{SOAP12}}}Body")
    body.append(body_element)
    return env


def build_fault_envelope(fault: SoapFault, relates_to: str | None, message_id: str | None) -> etree._Element:
    extra: list[etree._Element] = []
    for q in fault.not_understood:
        if q.namespace:
            nu = etree.Element(f"{{{SOAP12}}}NotUnderstood", nsmap={"env": SOAP12, "ns1": q.namespace})
            nu.set("qname", f"ns1:{q.localname}")
        else:  # a header block in no namespace: an unprefixed QName, no default namespace in scope
            nu = etree.Element(f"{{{SOAP12}}}NotUnderstood", nsmap={"env": SOAP12})
            nu.set("qname", q.localname)
        extra.append(nu)
    if fault.code == "VersionMismatch":
        up = etree.Element(f"{{{SOAP12}}}Upgrade", nsmap={"env": SOAP12, "ns1": SOAP12})
        se = etree.SubElement(up, f"{{{SOAP12}}}SupportedEnvelope")
        se.set("qname", "ns1:Envelope")
        extra.append(up)
    from xds.soap.fault import FAULT_ACTION

    return build_envelope(
        build_fault_body(fault),
        action=FAULT_ACTION,
        relates_to=relates_to,
        message_id=message_id,
        extra_headers=extra,
    )


_HEAD = (
    f'<?xml version="1.0" encoding="UTF-8"?>\n<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}">'
    '<env:Header><wsa:Action env:mustUnderstand="1">'
).encode()


def _text(value: str) -> bytes:
    """``value`` as XML character data, UTF-8 (most ids need no escaping: checked first)."""
    if "&" in value or "<" in value or ">" in value:
        value = escape(value)
    return value.encode()


@functools.lru_cache(maxsize=256)
def _head(action: str) -> bytes:
    """The envelope up to the end of wsa:Action: the same few actions answer every request."""
    return _HEAD + _text(action) + b"</wsa:Action>"


def response_bytes(
    body_element: etree._Element,
    *,
    action: str,
    relates_to: str | None,
    message_id: str | None = None,
    body_bytes: bytes | None = None,
) -> bytes:
    """The serialised response envelope, as :func:`build_envelope` + :func:`serialize` would give,
    without building a tree around the body (the hot path of every answer). ``body_bytes``: the
    body already serialised (UTF-8, no XML declaration), used instead of ``body_element``."""
    if body_bytes is None:
        body_bytes = etree.tostring(body_element, encoding="UTF-8", xml_declaration=False)
    return b"".join((
        _head(action),
        b"<wsa:MessageID>" + _text(message_id) + b"</wsa:MessageID>" if message_id else b"",
        b"<wsa:RelatesTo>" + _text(relates_to) + b"</wsa:RelatesTo>" if relates_to else b"",
        b"</env:Header><env:Body>",
        body_bytes,
        b"</env:Body></env:Envelope>",
    ))


def serialize(env: etree._Element) -> bytes:
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")
