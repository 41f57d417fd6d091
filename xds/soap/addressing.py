"""WS-Addressing 1.0 (W3C, SOAP binding): read the request's message addressing properties.

IHE ITI TF-2x V.3.2 requires wsa:Action (mustUnderstand="true"), wsa:MessageID, wsa:To and
wsa:ReplyTo on requests, and wsa:Action + wsa:RelatesTo on responses.
"""

from __future__ import annotations

from lxml import etree

from xds.namespaces import WSA
from xds.soap.fault import addressing_header_required, invalid_addressing_header
from xds.soap.message import Addressing

ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
NONE = "http://www.w3.org/2005/08/addressing/none"

_WSA_PREFIX = f"{{{WSA}}}"

UNDERSTOOD = {
    f"{{{WSA}}}{name}"
    for name in ("Action", "MessageID", "To", "ReplyTo", "FaultTo", "From", "RelatesTo")
}


_WSA_NAMES = {tag: tag[len(_WSA_PREFIX):] for tag in UNDERSTOOD}


def _wsa_headers(header: etree._Element) -> dict[str, etree._Element]:
    found: dict[str, etree._Element] = {}
    for block in header.iterchildren(f"{{{WSA}}}*"):
        tag = block.tag
        name = _WSA_NAMES.get(tag) or tag[len(_WSA_PREFIX):]
        if name in found:
            # WS-Addressing 1.0 SOAP binding 6.4.3: duplicated headers are InvalidAddressingHeader
            raise invalid_addressing_header(f"wsa:{name}", f"wsa:{name} appears more than once")
        found[name] = block
    return found


def read_addressing(header: etree._Element | None, content_type_action: str | None) -> Addressing:
    """Return the request's addressing. A missing wsa:Action is tolerated only when the
    HTTP Content-Type carries an ``action`` parameter (SOAP 1.2 Part 2, 7.1.4); otherwise
    it is a MessageAddressingHeaderRequired fault."""
    out = Addressing()
    if header is not None:
        wsa = _wsa_headers(header)
        action = wsa.get("Action")
        if action is not None:
            out.action = (action.text or "").strip()
        mid = wsa.get("MessageID")
        if mid is not None:
            out.message_id = (mid.text or "").strip()
        to = wsa.get("To")
        if to is not None:
            out.to = (to.text or "").strip()
        reply_to = wsa.get("ReplyTo")
        if reply_to is not None:
            addr = reply_to.find(f"{{{WSA}}}Address")
            out.reply_to = (addr.text or "").strip() if addr is not None else None
            if out.reply_to and out.reply_to not in (ANONYMOUS,):
                # IHE synchronous web services answer on the same HTTP connection only.
                raise invalid_addressing_header(
                    "wsa:ReplyTo", "only the anonymous address is supported (synchronous exchange)"
                )
    if content_type_action in ("None", ""):
        content_type_action = None
    if not out.action:
        if content_type_action:
            out.action = content_type_action
        else:
            raise addressing_header_required("wsa:Action")
    # A Content-Type action that differs from wsa:Action is the sender's SHOULD broken (WS-Addressing
    # 1.0 SOAP binding 5.1; zeep sends action="None" for WSDLs without soapAction): wsa:Action wins.
    return out
