"""SOAP 1.2 faults (SOAP 1.2 Part 1, 5.4) and the WS-Addressing 1.0 SOAP binding faults (section 6)."""

from __future__ import annotations

from lxml import etree

from xds.namespaces import SOAP12, WSA

FAULT_ACTION = "http://www.w3.org/2005/08/addressing/soap/fault"


class SoapFault(Exception):
    """A fault to send back. ``code`` is a SOAP 1.2 env:Code value (Sender, Receiver,
    MustUnderstand, VersionMismatch, DataEncodingUnknown); ``subcode`` an optional QName
    (namespace, local name), e.g. wsa:ActionNotSupported. ``reason`` is what a client reads: it
    must not carry patient data.
    """

    def __init__(
        self,
        code: str,
        reason: str,
        subcode: tuple[str, str] | None = None,
        detail: etree._Element | None = None,
        not_understood: list[etree.QName] | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason
        self.subcode = subcode
        self.detail = detail
        self.not_understood = not_understood or []
        # SOAP 1.2 Part 2, 7.5.1.2: Sender faults are 400, everything else 500.
        self.http_status = http_status or (400 if code in ("Sender", "DataEncodingUnknown") else 500)


def sender(reason: str, subcode: tuple[str, str] | None = None) -> SoapFault:
    return SoapFault("Sender", reason, subcode)


def receiver(reason: str) -> SoapFault:
    return SoapFault("Receiver", reason)


def action_not_supported(action: str | None) -> SoapFault:
    detail = etree.Element(f"{{{WSA}}}ProblemAction", nsmap={"wsa": WSA})
    etree.SubElement(detail, f"{{{WSA}}}Action").text = action or ""
    return SoapFault(
        "Sender",
        f"The endpoint does not support the action {action!r}",
        subcode=(WSA, "ActionNotSupported"),
        detail=detail,
    )


def addressing_header_required(header: str = "wsa:Action") -> SoapFault:
    detail = etree.Element(f"{{{WSA}}}ProblemHeaderQName", nsmap={"wsa": WSA})
    detail.text = header
    return SoapFault(
        "Sender",
        f"A required header representing a Message Addressing Property is not present: {header}",
        subcode=(WSA, "MessageAddressingHeaderRequired"),
        detail=detail,
    )


def invalid_addressing_header(header: str, why: str) -> SoapFault:
    detail = etree.Element(f"{{{WSA}}}ProblemHeaderQName", nsmap={"wsa": WSA})
    detail.text = header
    return SoapFault(
        "Sender",
        f"A header representing a Message Addressing Property is not valid: {why}",
        subcode=(WSA, "InvalidAddressingHeader"),
        detail=detail,
    )


def build_fault_body(fault: SoapFault) -> etree._Element:
    """The env:Fault element (SOAP 1.2 Part 1, 5.4)."""
    f = etree.Element(f"{{{SOAP12}}}Fault", nsmap={"env": SOAP12})
    code = etree.SubElement(f, f"{{{SOAP12}}}Code")
    etree.SubElement(code, f"{{{SOAP12}}}Value").text = f"env:{fault.code}"
    if fault.subcode is not None:
        ns, local = fault.subcode
        sub = etree.SubElement(code, f"{{{SOAP12}}}Subcode")
        value = etree.SubElement(sub, f"{{{SOAP12}}}Value", nsmap={"wsa" if ns == WSA else "ns1": ns})
        value.text = f"{'wsa' if ns == WSA else 'ns1'}:{local}"
    reason = etree.SubElement(f, f"{{{SOAP12}}}Reason")
    text = etree.SubElement(reason, f"{{{SOAP12}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = fault.reason
    if fault.detail is not None:
        etree.SubElement(f, f"{{{SOAP12}}}Detail").append(fault.detail)
    return f
