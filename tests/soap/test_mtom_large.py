"""A 200 MB MTOM upload is parsed with bounded memory: the document goes to a spooled file."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
import tracemalloc
from collections.abc import AsyncIterator

import pytest

from tests.soap.test_mtom import CT, ENVELOPE, ROOT_HEADERS, TRICKY, B
from xds.soap import message
from xds.soap.message import Attachment
from xds.soap.mtom import mtom_response, parse_multipart_related

SIZE = 200 * 1024 * 1024
CHUNK = message.CHUNK
DOC_ID = "doc1@urn:ihe:iti:xds-b:2007"


def document_blocks(size: int) -> list[bytes]:
    block = (TRICKY + os.urandom(CHUNK))[:CHUNK]
    pieces = [block[i:] + block[:i] for i in (0, 1, 2, 3, 5, 8, 13, 21)]
    return [pieces[i % len(pieces)] for i in range(size // CHUNK)]


async def upload(blocks: list[bytes], digest: hashlib._Hash) -> AsyncIterator[bytes]:
    head = f"--{B}\r\n".encode()
    head += "".join(f"{k}: {v}\r\n" for k, v in ROOT_HEADERS.items()).encode() + b"\r\n" + ENVELOPE
    head += f"\r\n--{B}\r\nContent-Type: application/dicom\r\nContent-ID: <{DOC_ID}>\r\n\r\n".encode()
    yield head
    for b in blocks:
        digest.update(b)
        yield b
    yield f"\r\n--{B}--\r\n".encode()


def file_sha256(path: str) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


@pytest.mark.slow
def test_200mb_attachment_is_spooled_with_bounded_memory():
    blocks = document_blocks(SIZE)
    sent = hashlib.sha256()
    started = time.monotonic()
    tracemalloc.start()
    try:
        pkg = asyncio.run(
            parse_multipart_related(
                upload(blocks, sent),
                CT,
                spool_threshold=1 << 20,
                max_total=SIZE + (1 << 20),
                max_root=1 << 20,
            )
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    elapsed = time.monotonic() - started
    try:
        att = pkg.attachments[DOC_ID]
        assert pkg.root == ENVELOPE
        assert att.path is not None and att.size == SIZE
        assert peak < 32 * 1024 * 1024, f"peak Python allocations {peak / 2**20:.1f} MiB"
        assert elapsed < 30, f"{elapsed:.1f} s"
        assert file_sha256(att.path) == sent.hexdigest()
    finally:
        pkg.close()
    assert not os.path.exists(att.path)


@pytest.mark.slow
def test_large_attachment_streams_out_in_bounded_chunks(tmp_path):
    path = tmp_path / "doc.bin"
    with open(path, "wb") as f:
        for b in document_blocks(32 * 1024 * 1024):
            f.write(b)
    att = Attachment(path=str(path), content_type="application/dicom", content_id=DOC_ID)
    tracemalloc.start()
    try:
        _, stream = mtom_response(ENVELOPE, [att], action="urn:ihe:iti:2007:RetrieveDocumentSetResponse")
        total = biggest = 0
        for chunk in stream:
            total += len(chunk)
            biggest = max(biggest, len(chunk))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total > att.size and biggest <= CHUNK + 1024
    assert peak < 4 * 1024 * 1024
