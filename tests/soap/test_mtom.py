"""MTOM/XOP codec (xds/soap/mtom.py): multipart/related in (RFC 2387, RFC 2046 5.1) and out."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import pytest
from lxml import etree
from python_multipart.multipart import parse_options_header

from xds.namespaces import XOP
from xds.soap import message
from xds.soap.fault import SoapFault
from xds.soap.message import Addressing, Attachment, SoapRequest, xop_include
from xds.soap.mtom import (
    MimePackage,
    assign_content_id,
    mtom_response,
    normalize_content_id,
    parse_multipart_related,
)

B = "MIMEBoundary_4a1f0c3e9d2b7a65"
CT = f'multipart/related; boundary="{B}"; type="application/xop+xml"; start-info="application/soap+xml"'
ENVELOPE = (
    b'<?xml version="1.0" encoding="UTF-8"?>\r\n'
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body>'
    b'<x:Doc xmlns:x="urn:test"><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" '
    b'href="cid:doc1%40urn%3Aihe%3Aiti%3Axds-b%3A2007"/></x:Doc></env:Body></env:Envelope>'
)
ROOT_HEADERS = {
    "Content-Type": 'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
    "Content-Transfer-Encoding": "binary",
    "Content-ID": "<root.0@example.org>",
}
# bytes a naive parser would take for framing: CRLF, "--", and prefixes of the delimiter
TRICKY = (
    b"\r\n--" + B[:-1].encode() + b"\r\n\r\n--\r\n-" + b"\n--" + B.encode() + b"\n"
    b"\r\r\n--" + B.encode()[:5] + bytes(range(256)) + b"\r\n--" + B.encode() + b"X\r\n" + b"\r"
)


def multipart(parts: list[tuple[dict[str, str], bytes]], boundary: str = B, nl: bytes = b"\r\n") -> bytes:
    out = []
    for headers, content in parts:
        out.append(b"--" + boundary.encode() + nl)
        out.extend(f"{k}: {v}".encode() + nl for k, v in headers.items())
        out.append(nl + content + nl)
    out.append(b"--" + boundary.encode() + b"--" + nl)
    return b"".join(out)


def mtom_body(
    document: bytes = b"%PDF-1.4 document", doc_headers: dict[str, str] | None = None, **kw
) -> bytes:
    headers = {
        "Content-Type": "application/pdf",
        "Content-Transfer-Encoding": "binary",
        "Content-ID": "<doc1@urn:ihe:iti:xds-b:2007>",
    }
    return multipart([(ROOT_HEADERS, ENVELOPE), (doc_headers or headers, document)], **kw)


async def stream_of(chunks: Iterable[bytes], pulled: list[int] | None = None) -> AsyncIterator[bytes]:
    for c in chunks:
        if pulled is not None:
            pulled.append(len(c))
        yield c


def split(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


def parse(
    body: bytes | list[bytes],
    content_type: str = CT,
    chunk: int = 65536,
    spool_threshold: int = 1 << 20,
    max_total: int = 1 << 30,
    max_root: int = 1 << 26,
    pulled: list[int] | None = None,
) -> MimePackage:
    chunks = body if isinstance(body, list) else split(body, chunk)
    return asyncio.run(
        parse_multipart_related(
            stream_of(chunks, pulled),
            content_type,
            spool_threshold=spool_threshold,
            max_total=max_total,
            max_root=max_root,
        )
    )


def sender_fault(body: bytes | list[bytes], content_type: str = CT, **kw) -> str:
    with pytest.raises(SoapFault) as e:
        parse(body, content_type, **kw)
    assert e.value.code == "Sender" and e.value.http_status == 400
    return e.value.reason


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def spool_dir(tmp_path, monkeypatch) -> Path:
    """Temporary files of the parser land here, so a test can see that none is left behind."""
    d = tmp_path / "spool"
    d.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(d))
    return d


# --- Content-ID (RFC 2392) ---


@pytest.mark.parametrize(
    "value",
    [
        "<abc@x>",
        "abc@x",
        '"<abc@x>"',
        '"abc@x"',
        " <abc@x> ",
        "cid:abc%40x",
        "cid:<abc@x>",
        "CID:abc@x",
        "cid:abc@x",
    ],
)
def test_normalize_content_id_forms(value):
    assert normalize_content_id(value) == "abc@x"


def test_percent_encoded_cid_url_matches_content_id_header():
    href = "cid:1.x%40urn%3Aihe%3Aiti%3Axds-b%3A2007"
    assert normalize_content_id(href) == normalize_content_id("<1.x@urn:ihe:iti:xds-b:2007>")


def test_content_id_header_is_not_percent_decoded():
    assert normalize_content_id("<a%40b>") == "a%40b"
    assert normalize_content_id("cid:a%2540b") == "a%40b"


def test_assign_content_id_generates_only_when_missing():
    a = Attachment(data=b"x")
    cid = assign_content_id(a)
    assert cid and a.content_id == cid and "@" in cid
    assert assign_content_id(a) == cid
    b = Attachment(data=b"y", content_id="<given@x>")
    assert assign_content_id(b) == "given@x"
    assert assign_content_id(Attachment(data=b"z")) != cid


# --- parsing ---


def test_root_is_first_part_without_start_and_attachment_keyed_by_normalized_id():
    pkg = parse(mtom_body())
    assert pkg.root == ENVELOPE
    assert pkg.root_content_type == ROOT_HEADERS["Content-Type"]
    assert list(pkg.attachments) == ["doc1@urn:ihe:iti:xds-b:2007"]
    att = pkg.attachments["doc1@urn:ihe:iti:xds-b:2007"]
    assert att.read_bytes() == b"%PDF-1.4 document"
    assert att.content_type == "application/pdf"
    assert att.path is None


def test_xop_include_resolves_through_soap_request_binary():
    pkg = parse(mtom_body())
    root = etree.fromstring(pkg.root)
    body = root[0]
    req = SoapRequest(root, None, body[0], Addressing(), attachments=pkg.attachments, mtom=True)
    assert req.binary(body[0]).read_bytes() == b"%PDF-1.4 document"


@pytest.mark.parametrize("start", ["<root.0@example.org>", "root.0@example.org", "cid:root.0%40example.org"])
def test_root_chosen_by_start_parameter_even_when_not_first(start):
    doc = ({"Content-Type": "image/jpeg", "Content-ID": '"<img@x>"'}, b"\xff\xd8jpeg")
    body = multipart([doc, (ROOT_HEADERS, ENVELOPE)])
    pkg = parse(body, CT + f'; start="{start}"')
    assert pkg.root == ENVELOPE
    assert pkg.attachments["img@x"].read_bytes() == b"\xff\xd8jpeg"


def test_start_naming_no_part_is_missing_root_part(spool_dir):
    reason = sender_fault(mtom_body(b"x" * 5000), CT + '; start="<nope@x>"', spool_threshold=100)
    assert "missing root part" in reason
    assert list(spool_dir.iterdir()) == []


@pytest.mark.parametrize("cid", ["<doc@x>", "doc@x", '"<doc@x>"', '"doc@x"'])
def test_content_id_header_forms(cid):
    body = multipart([(ROOT_HEADERS, ENVELOPE), ({"Content-ID": cid, "Content-Type": "text/plain"}, b"d")])
    assert parse(body).attachments["doc@x"].read_bytes() == b"d"


@pytest.mark.parametrize(
    "root_type",
    [
        'application/xop+xml; charset=UTF-8; type="application/soap+xml"',
        'application/soap+xml; charset=UTF-8; action="urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"',
        "text/xml; charset=utf-8",
    ],
)
def test_root_part_types_accepted(root_type):
    pkg = parse(multipart([({"Content-Type": root_type}, ENVELOPE)]))
    assert pkg.root.startswith(b"<?xml") and pkg.root_content_type == root_type


def test_root_part_of_another_type_is_a_sender_fault():
    assert "root MIME part" in sender_fault(multipart([({"Content-Type": "image/png"}, b"\x89PNG")]))


@pytest.mark.parametrize("cte", ["binary", "8bit", "7bit", "BINARY", None])
def test_identity_transfer_encodings_are_taken_as_is(cte):
    headers = {"Content-Type": "application/octet-stream", "Content-ID": "<doc1@urn:ihe:iti:xds-b:2007>"}
    if cte:
        headers["Content-Transfer-Encoding"] = cte
    data = b"\x00\x01\xfe\xff\r\n\n=41=\r\nAQID"
    assert parse(mtom_body(data, headers)).attachments["doc1@urn:ihe:iti:xds-b:2007"].read_bytes() == data


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 65536])
@pytest.mark.parametrize("threshold", [10, 1 << 20])
def test_base64_part_is_decoded(chunk, threshold, spool_dir):
    data = os.urandom(3000) + TRICKY
    encoded = base64.encodebytes(data).replace(b"\n", b"\r\n")  # 76-column lines, RFC 2045 6.8
    headers = {"Content-Type": "image/jpeg", "Content-Transfer-Encoding": "base64", "Content-ID": "<b64@x>"}
    body = multipart([(ROOT_HEADERS, ENVELOPE), (headers, encoded)])
    pkg = parse(body, chunk=chunk, spool_threshold=threshold)
    att = pkg.attachments["b64@x"]
    assert sha(att.read_bytes()) == sha(data) and att.size == len(data)
    pkg.close()
    assert list(spool_dir.iterdir()) == []


def test_base64_root_part_is_decoded():
    headers = dict(ROOT_HEADERS, **{"Content-Transfer-Encoding": "base64"})
    pkg = parse(multipart([(headers, base64.encodebytes(ENVELOPE))]), chunk=5)
    assert pkg.root == ENVELOPE


@pytest.mark.parametrize("bad", [b"not*base64!", b"QUJD\r\nRA", b"QQ==QUJD"])
def test_invalid_base64_is_a_sender_fault(bad, spool_dir):
    headers = {"Content-Transfer-Encoding": "base64", "Content-ID": "<b@x>"}
    assert "base64" in sender_fault(multipart([(ROOT_HEADERS, ENVELOPE), (headers, bad)]))
    assert list(spool_dir.iterdir()) == []


@pytest.mark.parametrize("chunk", [1, 5, 65536])
def test_quoted_printable_part_is_decoded(chunk):
    data = ("Résumé du compte rendu d'imagerie = conclusions\r\n" * 40).encode("latin-1") + bytes(range(256))
    encoded = binascii.b2a_qp(data, istext=False)
    headers = {
        "Content-Type": "text/plain; charset=ISO-8859-1",
        "Content-Transfer-Encoding": "quoted-printable",
    }
    headers["Content-ID"] = "<qp@x>"
    pkg = parse(multipart([(ROOT_HEADERS, ENVELOPE), (headers, encoded)]), chunk=chunk)
    assert pkg.attachments["qp@x"].read_bytes() == data


def test_unknown_transfer_encoding_is_a_sender_fault():
    headers = {"Content-Transfer-Encoding": "x-uuencode", "Content-ID": "<u@x>"}
    assert "Content-Transfer-Encoding" in sender_fault(
        multipart([(ROOT_HEADERS, ENVELOPE), (headers, b"begin 644")])
    )


@pytest.mark.parametrize(
    "content_type,expected",
    [
        ('multipart/related; type="application/xop+xml"', "no boundary"),
        ("multipart/related", "no boundary"),
        (f'multipart/mixed; boundary="{B}"', "not multipart/related"),
        ("application/soap+xml", "not multipart/related"),
        ("", "not multipart/related"),
        ('multipart/related; boundary="a\x01b"', "boundary"),
    ],
)
def test_bad_content_type_is_a_sender_fault(content_type, expected):
    assert expected in sender_fault(mtom_body(), content_type)


@pytest.mark.parametrize(
    "body,expected",
    [
        (f"--{B}--\r\n".encode(), "no parts"),
        (b"", "boundary delimiter"),
        (b"just some text without any delimiter\r\n", "boundary delimiter"),
        (mtom_body()[: -len(f"\r\n--{B}--\r\n")], "truncated"),
        (mtom_body()[:-3], "truncated"),
        (mtom_body()[:100], "truncated"),
    ],
)
def test_empty_or_truncated_body_is_a_sender_fault(body, expected, spool_dir):
    assert expected in sender_fault(body, spool_threshold=4)
    assert list(spool_dir.iterdir()) == []


def test_truncated_large_part_removes_its_temporary_file(spool_dir):
    body = mtom_body(os.urandom(300_000))
    assert "truncated" in sender_fault(body[:200_000], spool_threshold=1000)
    assert list(spool_dir.iterdir()) == []


def test_attachment_without_content_id_is_a_sender_fault():
    body = multipart([(ROOT_HEADERS, ENVELOPE), ({"Content-Type": "text/plain"}, b"orphan")])
    assert "Content-ID" in sender_fault(body)


def test_duplicate_content_id_is_a_sender_fault(spool_dir):
    doc = {"Content-ID": "<d@x>"}
    body = multipart([(ROOT_HEADERS, ENVELOPE), (doc, b"a" * 500), (doc, b"b")])
    assert "same Content-ID" in sender_fault(body, spool_threshold=10)
    assert list(spool_dir.iterdir()) == []
    root_twin = multipart([(ROOT_HEADERS, ENVELOPE), ({"Content-ID": "<root.0@example.org>"}, b"b")])
    assert "same Content-ID" in sender_fault(root_twin, CT + '; start="<root.0@example.org>"')


def test_malformed_part_headers_are_a_sender_fault_without_content(caplog):
    secret = "PID 9876543210^^^&2.16.840.1.113883.4.59"
    body = f"--{B}\r\nContent-ID <{secret}>\r\n\r\n{secret}\r\n--{B}--\r\n".encode()
    with caplog.at_level(logging.DEBUG):
        reason = sender_fault(body)
    assert "malformed" in reason and "9876543210" not in reason
    assert "9876543210" not in caplog.text


def test_preamble_and_epilogue_are_ignored():
    body = b"This is a MIME preamble.\r\n" + mtom_body() + b"epilogue, ignored\r\n"
    pkg = parse(body)
    assert pkg.root == ENVELOPE and len(pkg.attachments) == 1


def test_transport_padding_after_delimiter_is_allowed():
    body = mtom_body().replace(f"--{B}\r\n".encode(), f"--{B} \t\r\n".encode())
    assert parse(body).root == ENVELOPE


# --- limits and spooling ---


def test_small_part_stays_in_memory_and_large_part_is_spooled(spool_dir):
    small, large = os.urandom(1000), os.urandom(1001)
    body = multipart(
        [(ROOT_HEADERS, ENVELOPE), ({"Content-ID": "<s@x>"}, small), ({"Content-ID": "<l@x>"}, large)]
    )
    pkg = parse(body, spool_threshold=1000, chunk=333)
    s, big = pkg.attachments["s@x"], pkg.attachments["l@x"]
    assert s.path is None and s.read_bytes() == small
    assert big.path is not None and Path(big.path).parent == spool_dir
    assert Path(big.path).read_bytes() == large and big.size == 1001
    pkg.close()
    assert not Path(big.path).exists()


def test_total_above_max_total_is_a_sender_fault_and_reading_stops(spool_dir):
    body = mtom_body(os.urandom(500_000))
    chunks = split(body, 4096)
    pulled: list[int] = []
    reason = sender_fault(chunks, max_total=100_000, spool_threshold=10_000, pulled=pulled)
    assert "larger than the limit of 100000 bytes" in reason
    assert sum(pulled) <= 100_000 + 4096 and len(pulled) < len(chunks)
    assert list(spool_dir.iterdir()) == []


def test_root_above_max_root_is_a_sender_fault_and_reading_stops(spool_dir):
    big_root = ENVELOPE.replace(b"<env:Body>", b"<env:Body>" + b"<!-- padding -->" * 10_000)
    body = multipart([({"Content-ID": "<d@x>"}, os.urandom(50_000)), (ROOT_HEADERS, big_root)])
    chunks = split(body + os.urandom(1_000_000), 4096)
    pulled: list[int] = []
    reason = sender_fault(
        chunks, CT + '; start="<root.0@example.org>"', max_root=50_000, spool_threshold=1000, pulled=pulled
    )
    assert "SOAP envelope is larger than the limit of 50000 bytes" in reason
    assert len(pulled) < len(chunks) // 2
    assert list(spool_dir.iterdir()) == []


# --- chunking and framing ---


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 13, 64, 1000, 4093])
@pytest.mark.parametrize("threshold", [0, 1 << 20])
def test_odd_chunk_sizes(chunk, threshold, spool_dir):
    data = os.urandom(5000) + TRICKY
    pkg = parse(mtom_body(data), chunk=chunk, spool_threshold=threshold)
    assert pkg.root == ENVELOPE
    assert sha(pkg.attachments["doc1@urn:ihe:iti:xds-b:2007"].read_bytes()) == sha(data)
    pkg.close()
    assert list(spool_dir.iterdir()) == []


def test_every_split_inside_the_delimiters():
    data = b"payload\r\n--" + B[:10].encode()
    body = mtom_body(data)
    delimiter = f"\r\n--{B}\r\n".encode()
    regions = [body.index(delimiter), body.rindex(f"\r\n--{B}--".encode())]
    for start in regions:
        for cut in range(start - 2, start + len(delimiter) + 3):
            pkg = parse([body[:cut], body[cut:]])
            assert pkg.root == ENVELOPE, cut
            assert pkg.attachments["doc1@urn:ihe:iti:xds-b:2007"].read_bytes() == data, cut


def test_binary_with_crlf_and_boundary_like_bytes_round_trips_exactly(spool_dir):
    data = (TRICKY + os.urandom(10_000)) * 20 + b"\r\n"
    for threshold in (0, 1 << 20):
        pkg = parse(mtom_body(data), chunk=1021, spool_threshold=threshold)
        assert sha(pkg.attachments["doc1@urn:ihe:iti:xds-b:2007"].read_bytes()) == sha(data)
        pkg.close()


@pytest.mark.parametrize("chunk", [1, 2, 5, 61, 65536])
def test_bare_lf_framing_is_accepted(chunk):
    """RFC 2046 wants CRLF; the NIST testkit captures are framed with bare LF (see test_mtom_corpus)."""
    data = b"line one\r\nline two\n\x00\xff -- not a delimiter\n--" + B[:-2].encode() + b"\n"
    body = mtom_body(data, nl=b"\n")
    pkg = parse(body, chunk=chunk)
    assert pkg.root == ENVELOPE
    assert pkg.attachments["doc1@urn:ihe:iti:xds-b:2007"].read_bytes() == data


def test_bare_lf_framing_unfolds_folded_header_lines():
    body = mtom_body(b"x", nl=b"\n").replace(
        b"Content-Type: application/pdf", b"Content-Type:\n application/pdf"
    )
    assert parse(body, chunk=3).attachments["doc1@urn:ihe:iti:xds-b:2007"].content_type == "application/pdf"


def test_lf_inside_crlf_framed_message_is_content():
    data = b"a\n--" + B.encode() + b"\nb"
    assert parse(mtom_body(data)).attachments["doc1@urn:ihe:iti:xds-b:2007"].read_bytes() == data


# --- mtom_response ---


class CountingOpener:
    """An opener-backed document that records how it is read."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads: list[int] = []

    def __call__(self) -> io.BufferedReader:
        outer = self

        class Reader(io.BytesIO):
            def read(self, n: int | None = -1) -> bytes:
                block = super().read(n)
                outer.reads.append(len(block))
                return block

        return Reader(self.data)  # type: ignore[return-value]


def response_envelope(attachments: list[Attachment]) -> bytes:
    root = etree.Element("{urn:test}Response")
    for att in attachments:
        assign_content_id(att)
        xop_include(etree.SubElement(root, "{urn:test}Document"), att)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def test_response_content_type_and_root_part():
    env = response_envelope([])
    ct, stream = mtom_response(
        env, [], action="urn:ihe:iti:2007:RetrieveDocumentSetResponse", boundary="bnd_1"
    )
    mime, params = parse_options_header(ct)
    params = {k.decode(): v.decode() for k, v in params.items()}
    assert mime == b"multipart/related"
    assert params["type"] == "application/xop+xml"
    assert params["boundary"] == "bnd_1"
    assert params["start-info"] == "application/soap+xml"
    assert params["action"] == "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
    body = b"".join(stream)
    assert body.startswith(b"--bnd_1\r\n") and body.endswith(b"\r\n--bnd_1--\r\n")
    head = body.split(b"\r\n\r\n", 1)[0].decode()
    assert (
        'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"; '
        'action="urn:ihe:iti:2007:RetrieveDocumentSetResponse"'
    ) in head
    assert f"Content-ID: {params['start']}" in head
    assert "Content-Transfer-Encoding: binary" in head
    pkg = parse(body, ct)
    assert pkg.root == env and pkg.attachments == {}


def test_response_round_trips_through_parser(tmp_path, spool_dir):
    stored = tmp_path / "stored.bin"
    stored.write_bytes((TRICKY + os.urandom(70_000)) * 40)
    opener = CountingOpener(os.urandom(3_000_000) + TRICKY)
    atts = [
        Attachment(data=b"small\r\n--" + B.encode(), content_type="text/plain"),
        Attachment(path=str(stored), content_type="application/dicom", content_id="<given@x>"),
        Attachment(opener=opener, content_type="application/pdf"),
        Attachment(data=b"", content_type="application/octet-stream"),
    ]
    env = response_envelope(atts)
    ct, stream = mtom_response(env, atts, action="urn:ihe:rad:2009:RetrieveImagingDocumentSetResponse")
    chunks = list(stream)
    # streamed: no chunk holds a whole large attachment
    assert max(len(c) for c in chunks[1:]) <= message.CHUNK + 200
    assert max(opener.reads) <= message.CHUNK
    body = b"".join(chunks)
    pkg = parse(split(body, 997), ct, spool_threshold=1000)
    assert pkg.root == env
    root = etree.fromstring(pkg.root)
    req = SoapRequest(root, None, root, Addressing(), attachments=pkg.attachments, mtom=True)
    expected = [b"small\r\n--" + B.encode(), stored.read_bytes(), opener.data, b""]
    docs = root.findall("{urn:test}Document")
    assert len(docs) == 4
    for doc, want, att in zip(docs, expected, atts, strict=True):
        got = req.binary(doc)
        assert sha(got.read_bytes()) == sha(want)
        assert got.content_type == att.content_type
        assert doc.find(f"{{{XOP}}}Include").get("href") == "cid:" + att.content_id
    assert atts[1].content_id == "given@x"
    req.close()
    assert list(spool_dir.iterdir()) == []


def test_response_assigns_missing_ids_before_streaming():
    att = Attachment(data=b"x")
    ct, stream = mtom_response(b"<r/>", [att])
    assert att.content_id
    assert f"Content-ID: <{att.content_id}>".encode() in b"".join(stream)


def test_response_rejects_header_injection():
    with pytest.raises(SoapFault):
        mtom_response(b"<r/>", [], action='urn:x"\r\nX-Evil: 1')
    with pytest.raises(SoapFault):
        mtom_response(b"<r/>", [Attachment(data=b"x", content_type="text/plain\r\nX-Evil: 1")])
    with pytest.raises(ValueError):
        mtom_response(b"<r/>", [], boundary="bad\r\nboundary")


def test_trickle_of_tiny_chunks_keeps_memory_proportional(spool_dir):
    import tracemalloc

    data = os.urandom(128 * 1024)
    chunks = split(mtom_body(data), 16)
    tracemalloc.start()
    try:
        pkg = parse(chunks, spool_threshold=1 << 20)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert pkg.attachments["doc1@urn:ihe:iti:xds-b:2007"].read_bytes() == data
    assert peak < 1024 * 1024, f"{peak / 1024:.0f} KiB"


def test_full_disk_while_spooling_is_a_receiver_fault(monkeypatch, spool_dir):
    def no_space(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tempfile, "mkstemp", no_space)
    with pytest.raises(SoapFault) as e:
        parse(mtom_body(os.urandom(5000)), spool_threshold=100)
    assert e.value.code == "Receiver" and e.value.http_status == 500


def test_body_is_read_to_its_end_after_the_close_delimiter():
    chunks = split(mtom_body() + b"\r\n" + b"epilogue " * 1000, 100)
    pulled: list[int] = []
    assert parse(chunks, pulled=pulled).root == ENVELOPE
    assert len(pulled) == len(chunks)
