"""The gateway's side of a community's answer, in process: MTOM parts read as they arrive
(in order, out of order, base64, truncated), and the de-duplication of merged query results."""

from __future__ import annotations

import asyncio
import base64

import pytest
from lxml import etree

from xca.initiating_gateway import deduplicate
from xca.soap_client import PartReader, UpstreamError
from xds.namespaces import RIM

BOUNDARY = "MIMEBoundary_test"
CONTENT_TYPE = f'multipart/related; type="application/xop+xml"; boundary="{BOUNDARY}"; start="<root@x>"'


def package(parts: list[tuple[str, bytes, str]]) -> bytes:
    out = b""
    for cid, data, cte in parts:
        out += f"--{BOUNDARY}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: {cte}\r\n".encode()
        out += f"Content-ID: <{cid}>\r\n\r\n".encode() + data + b"\r\n"
    return out + f"--{BOUNDARY}--\r\n".encode()


async def chunks(data: bytes, size: int = 7):
    for i in range(0, len(data), size):
        yield data[i : i + size]


async def read_all(reader: PartReader, cid: str, size: int = 5) -> bytes:
    out = b""
    while block := await reader.read_part(cid, size):
        out += block
    return out


def test_parts_are_read_in_the_order_asked_spooling_those_that_come_first():
    body = package([("a@x", b"first part", "binary"), ("root@x", b"<Envelope/>", "binary"),
                    ("b@x", b"second part\r\n--not-a-boundary", "binary"), ("c@x", b"third", "binary")])

    async def run() -> tuple[bytes, bytes, bytes, bytes]:
        reader = PartReader(chunks(body), CONTENT_TYPE, max_root=1000, spool_threshold=4)
        root = await reader.read_root()
        c = await read_all(reader, "c@x")  # b@x is spooled on the way
        a = await read_all(reader, "a@x")  # spooled before the root
        b = await read_all(reader, "b@x")
        reader.close()
        return root, a, b, c

    assert asyncio.run(run()) == (b"<Envelope/>", b"first part", b"second part\r\n--not-a-boundary", b"third")


def test_a_base64_part_is_decoded():
    data = bytes(range(256)) * 3
    encoded = base64.encodebytes(data)
    body = package([("root@x", b"<Envelope/>", "binary"), ("a@x", encoded, "base64")])

    async def run() -> bytes:
        reader = PartReader(chunks(body, 11), CONTENT_TYPE, max_root=1000, spool_threshold=1 << 20)
        await reader.read_root()
        return await read_all(reader, "a@x", 100)

    assert asyncio.run(run()) == data


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (package([("root@x", b"<Envelope/>", "binary"), ("a@x", b"data", "binary")])[:-30], "truncated"),
        (package([("a@x", b"data", "binary")]), "no root part"),
        (package([("root@x", b"<Envelope/>" * 200, "binary")]), "larger than"),
    ],
)
def test_a_broken_answer_is_an_upstream_error(body: bytes, message: str):
    async def run() -> None:
        reader = PartReader(chunks(body), CONTENT_TYPE, max_root=1000, spool_threshold=1 << 20)
        await reader.read_root()
        await read_all(reader, "a@x")

    with pytest.raises(UpstreamError, match=message):
        asyncio.run(run())


def entry(entry_id: str, unique_id: str, home: str, study: str | None = None) -> etree._Element:
    eo = etree.Element(f"{{{RIM}}}ExtrinsicObject", id=entry_id, home=home,
                       mimeType="application/dicom" if study else "text/plain")
    if study:
        slot = etree.SubElement(eo, f"{{{RIM}}}Slot", name="urn:ihe:iti:xds:2013:referenceIdList")
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = (
            f"{study}^^^^urn:ihe:iti:xds:2016:studyInstanceUID")
    etree.SubElement(eo, f"{{{RIM}}}ExternalIdentifier", identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab",
                     value=unique_id)
    return eo


def association(assoc_id: str, source: str, target: str) -> etree._Element:
    return etree.Element(f"{{{RIM}}}Association", id=assoc_id, sourceObject=source, targetObject=target)


def test_the_same_document_or_study_from_two_communities_is_listed_once():
    objects = [
        entry("urn:uuid:1", "1.1", "urn:oid:1.1", study="9.9"),  # HDIRS: the study's manifest
        entry("urn:uuid:2", "1.2", "urn:oid:1.1"),  # HDIRS: a report
        association("urn:uuid:a1", "urn:uuid:ss1", "urn:uuid:1"),
        entry("urn:uuid:3", "2.1", "urn:oid:2.2", study="9.9"),  # SWODIN: another manifest, same study
        entry("urn:uuid:4", "1.2", "urn:oid:2.2"),  # SWODIN: the same report
        entry("urn:uuid:5", "2.3", "urn:oid:2.2", study="9.8"),  # SWODIN: another study
        association("urn:uuid:a3", "urn:uuid:ss2", "urn:uuid:3"),
        association("urn:uuid:a5", "urn:uuid:ss2", "urn:uuid:5"),
    ]
    kept = deduplicate(objects)
    assert [o.get("id") for o in kept] == ["urn:uuid:1", "urn:uuid:2", "urn:uuid:a1", "urn:uuid:5", "urn:uuid:a5"]
