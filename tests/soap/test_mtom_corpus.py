"""Real MTOM wire captures from the NIST XDS toolkit (../shared/corpus/nist-testkit) parse and resolve.

The captures are stored with bare LF line ends (no CR anywhere, delimiters ``LF--boundary``): RFC
2046 5.1.1 wants CRLF, so the parser accepts bare-LF framing for them. Each is also parsed with every
LF turned into CRLF, the form an RFC-conformant sender puts on the wire.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from lxml import etree

from tests.soap.test_mtom import parse
from xds.namespaces import XDSB, XOP
from xds.soap.message import Addressing, SoapRequest
from xds.soap.mtom import normalize_content_id
from xds.soap.xmlparse import parse_xml

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
TESTKIT = SHARED / "corpus" / "nist-testkit"
PNR_XOP = TESTKIT / "PnrXop"
RESOURCES = TESTKIT / "_toolkit-resources"

CAPTURES = ["PnrXop/Xop", "PnrXop/NoXop", "PnrXop/encodedURL", "PnrXop/dicom", "PnrNoXop/submit"]
DOC_TAG = f"{{{XDSB}}}Document"


def http_content_type(testplan: Path) -> str:
    """The Content-Type header of the step's <HttpTransaction><Headers>."""
    headers = etree.parse(str(testplan)).findtext(".//HttpTransaction/Headers") or ""
    m = re.search(r"^\s*Content-Type:\s*(.+?)\s*$", headers, re.I | re.M)
    assert m, testplan
    return m.group(1)


def capture(name: str) -> tuple[bytes, str]:
    d = TESTKIT / name
    return (d / "body.txt").read_bytes(), http_content_type(d / "testplan.xml")


def as_crlf(body: bytes) -> bytes:
    assert b"\r" not in body
    return body.replace(b"\n", b"\r\n")


def request_of(pkg) -> SoapRequest:
    root = parse_xml(pkg.root, what="SOAP envelope")
    body = root.find("{http://www.w3.org/2003/05/soap-envelope}Body")
    return SoapRequest(root, None, body[0], Addressing(), attachments=pkg.attachments, mtom=True)


def documents(req: SoapRequest) -> dict[str, bytes]:
    return {doc.get("id"): req.binary(doc).read_bytes() for doc in req.envelope.iter(DOC_TAG)}


@pytest.mark.parametrize("framing", ["as-stored", "crlf"])
@pytest.mark.parametrize("chunk", [1, 7, 4096, 65536])
@pytest.mark.parametrize("name", CAPTURES)
def test_nist_capture_parses_and_xop_includes_resolve(name, chunk, framing):
    body, content_type = capture(name)
    if framing == "crlf":
        body = as_crlf(body)
    pkg = parse(body, content_type, chunk=chunk, spool_threshold=16)
    req = request_of(pkg)
    assert req.envelope.tag == "{http://www.w3.org/2003/05/soap-envelope}Envelope"
    includes = list(req.envelope.iter(f"{{{XOP}}}Include"))
    assert documents(req), "every capture carries a document"
    assert len(includes) == len(pkg.attachments)
    for inc in includes:
        assert req.binary(inc.getparent()) is pkg.attachments[normalize_content_id(inc.get("href"))]
    req.close()


@pytest.mark.parametrize("framing", ["as-stored", "crlf"])
def test_encoded_url_href_resolves_to_plain_content_id(framing):
    body, content_type = capture("PnrXop/encodedURL")
    body = as_crlf(body) if framing == "crlf" else body
    assert b'href="cid:fdf975cc-9f08-4d94-b7f6-99f4807f3654-1@urn%3Aihe%3Aiti%3Axds-b%3A2007"' in body
    assert b"Content-ID: <fdf975cc-9f08-4d94-b7f6-99f4807f3654-1@urn:ihe:iti:xds-b:2007>" in body
    pkg = parse(body, content_type)
    assert list(pkg.attachments) == ["fdf975cc-9f08-4d94-b7f6-99f4807f3654-1@urn:ihe:iti:xds-b:2007"]
    document = (PNR_XOP / "encodedURL" / "my_document.txt").read_bytes()
    assert documents(request_of(pkg))["Document01"] == (as_crlf(document) if framing == "crlf" else document)


def test_xop_attachment_is_the_sibling_document_file():
    pkg = parse(*capture("PnrXop/Xop"))
    assert documents(request_of(pkg))["Document01"] == (PNR_XOP / "Xop" / "my_document.txt").read_bytes()


def test_xop_and_noxop_twins_carry_the_same_document():
    xop = documents(request_of(parse(*capture("PnrXop/Xop"))))["Document01"]
    noxop_req = request_of(parse(*capture("PnrXop/NoXop")))
    assert not noxop_req.attachments
    inline = noxop_req.envelope.find(f".//{DOC_TAG}")
    assert inline.find(f"{{{XOP}}}Include") is None and inline.text.strip()
    noxop = documents(noxop_req)["Document01"]
    # The inline base64 still holds the CRLF line ends the stored files lost, and the XOP part has one
    # more trailing blank line (the captures' my_document.txt): same text, not the same bytes.
    assert noxop == b"This is my document.\r\n\r\nIt is great!\r\n"
    assert xop == b"This is my document.\n\nIt is great!\n\n"
    assert noxop.replace(b"\r\n", b"\n").rstrip(b"\n") == xop.rstrip(b"\n")


def test_wcf_capture_single_part_8bit_with_inline_dicom():
    body, content_type = capture("PnrXop/dicom")
    assert body.startswith(b"\n--uuid:") and "start=" not in content_type
    pkg = parse(body, content_type)
    assert pkg.attachments == {}
    assert pkg.root_content_type == 'application/xop+xml;charset=utf-8;type="application/soap+xml"'
    (doc,) = documents(request_of(pkg)).values()
    assert doc[128:132] == b"DICM"


def test_toolkit_axis2_capture_with_start_parameter():
    d = RESOURCES / "config-datatypes" / "src" / "test" / "resources"
    content_type = http_content_type_from_request(d / "multipart.header.txt")
    assert 'start="<0.8a2e384099b4a244bc1c7bab88c735b4f94aeb2925619b62@apache.org>"' in content_type
    for body in (d / "multipart.body.txt").read_bytes(), as_crlf((d / "multipart.body.txt").read_bytes()):
        pkg = parse(body, content_type, chunk=11)
        docs = documents(request_of(pkg))
        assert docs["Document01"].startswith(b"This is my document.")
        assert list(pkg.attachments) == ["1.9a2e384099b4a244bc1c7bab88c735b4f94aeb2925619b62@apache.org"]


def http_content_type_from_request(header_file: Path) -> str:
    m = re.search(r"^Content-Type:\s*(.+?)\s*$", header_file.read_text(), re.I | re.M)
    assert m
    return m.group(1)


def test_toolkit_sim_proxy_sample_splits_like_its_expected_parts():
    d = RESOURCES / "sim-proxy" / "src" / "test" / "resources"
    body = (d / "sample_mtom_message.txt").read_bytes()
    boundary = body.split(b"\n", 1)[0][2:].decode()  # no header file: the first delimiter line names it
    pkg = parse(body, f'multipart/related; boundary="{boundary}"; type="application/xop+xml"', chunk=5)
    (att,) = pkg.attachments.values()
    assert att.read_bytes() == (d / "sample_part_2.txt").read_bytes()
    assert (
        pkg.root + b"\n" == (d / "sample_part_1.txt").read_bytes()
    )  # the file ends with a newline; the part does not
    # Its xop:Include names cid:1.<hex>@apache.org while the parts are <1.<hex>> (the root) and
    # <2.<hex>>: the href resolves to nothing, and binary() says which id is missing.
    req = request_of(pkg)
    (doc,) = req.envelope.iter(DOC_TAG)
    with pytest.raises(KeyError, match="1.694859fac46e21a68c012f8f4fe208a370fc32b6e07ae79f@apache.org"):
        req.binary(doc)
