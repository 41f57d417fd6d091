"""The one XML parser every wire input goes through.

No DTDs, no entity expansion, no network, no huge-tree unlocking outside MTOM-aware paths, and a
depth limit checked before the tree is handed on (lxml itself only caps depth at 256 by default in
some builds; we check explicitly so the limit is a setting).
"""

from __future__ import annotations

from lxml import etree

from xds.soap.fault import SoapFault


def _parser(huge: bool = False) -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        remove_comments=True,
        remove_pis=True,
        huge_tree=huge,
        collect_ids=False,
    )


_PARSER = _parser()
_HUGE_PARSER = _parser(huge=True)


def parse_xml(data: bytes, *, max_depth: int = 256, huge: bool = False, what: str = "message") -> etree._Element:
    """Parse ``data`` or raise a Sender fault saying what is wrong (never echoing the content)."""
    if b"<!DOCTYPE" in data[:4096] or b"<!ENTITY" in data[:65536]:
        raise SoapFault("Sender", f"The {what} contains a DTD, which SOAP forbids (SOAP 1.2 Part 1, 5)")
    try:
        root = etree.fromstring(data, _HUGE_PARSER if huge else _PARSER)
    except etree.XMLSyntaxError as e:
        msg = str(e.msg if hasattr(e, "msg") else e).splitlines()[0][:200]
        raise SoapFault("Sender", f"The {what} is not well-formed XML: {msg}") from None
    if root is None:
        raise SoapFault("Sender", f"The {what} is empty")
    # Each level costs at least 7 bytes ("<a>" + "</a>"): a shorter document cannot be too deep.
    if len(data) > 7 * max_depth:
        check_depth(root, max_depth, what)
    return root


def check_depth(root: etree._Element, max_depth: int, what: str = "message") -> None:
    # iterwalk keeps a stack; count start/end events instead of recursing.
    depth = 0
    for event, _ in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth > max_depth:
                raise SoapFault("Sender", f"The {what} nests XML deeper than the limit of {max_depth}")
        else:
            depth -= 1
