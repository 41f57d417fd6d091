"""MTOM/XOP requests from zeep (W3C SOAP 1.2 MTOM, W3C XOP 1.0; ITI TF-2x V.3.6 and ITI TF-2b 3.41).

zeep serialises every ``xs:base64Binary`` value inline. :class:`MtomTransport` is a zeep transport
whose ``post_xml`` takes the document content out of the envelope again and sends it as XOP: each
such element gets an ``xop:Include href="cid:..."`` child instead of its text, and the request goes
out as ``multipart/related; type="application/xop+xml"`` with the envelope as the root part and one
binary part per document, streamed with a Content-Length.

What becomes a part:

* a :class:`XopPart` given where zeep expects the bytes (``transport.part(path_or_bytes_or_file)``):
  zeep writes only a short placeholder, and the bytes are read from the file (or stream) while the
  request is sent, never base64-encoded and never all in memory;
* plain ``bytes`` in an element named in ``xop_elements`` (by default ``xdsb:Document``, the
  documents of ITI-41 and RAD-68): zeep has base64-encoded them already, they are decoded back.

A request with no part goes out as plain ``application/soap+xml``, unless ``always=True``.

Responses are zeep's business: it decodes a multipart/related answer and resolves its
``xop:Include`` elements itself (into memory). But zeep 4 strips CR and LF bytes from both ends of
every part sent with ``Content-Transfer-Encoding: binary`` (``zeep.wsdl.attachments.Attachment``;
python-zeep issues 1249 and 1481), which corrupts a retrieved document that begins or ends with
them. So before zeep reads a multipart answer, this transport drops that header from the parts'
headers: zeep then takes each part's bytes exactly as they came.
"""

from __future__ import annotations

import base64
import binascii
import os
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import BinaryIO

import requests
from lxml import etree
from zeep.transports import Transport
from zeep.wsdl.utils import etree_to_string

from xds.namespaces import XDSB, XOP

DEFAULT_XOP_ELEMENTS = frozenset({f"{{{XDSB}}}Document"})
CHUNK_SIZE = 1024 * 1024
_MARKER_PREFIX = b"urn:xds:client:xop-part:"


class XopPart(bytes):
    """Document content to be sent as an XOP part, standing in for its bytes in a zeep call.

    Its value as ``bytes`` is a short unique marker (what zeep base64-encodes into the envelope);
    the content itself comes from ``source`` when the request is sent: ``bytes``, a path (read in
    chunks), or a binary file object (read from its current position; seekable to know its size,
    else the request is sent with chunked transfer encoding).
    """

    source: bytes | Path | BinaryIO
    content_type: str
    size: int | None

    def __new__(
        cls, source: bytes | str | os.PathLike[str] | BinaryIO, content_type: str = "application/octet-stream"
    ) -> XopPart:
        self = super().__new__(cls, _MARKER_PREFIX + uuid.uuid4().hex.encode())
        if isinstance(source, bytes | bytearray | memoryview):
            self.source, self.size = bytes(source), len(source)
        elif isinstance(source, str | os.PathLike):
            self.source = Path(source)
            self.size = self.source.stat().st_size
        else:
            self.source, self.size = source, _remaining_size(source)
        if any(c in content_type for c in '\r\n"'):
            raise ValueError("a part's content type cannot hold a quote or a line break")
        self.content_type = content_type
        return self

    @property
    def placeholder(self) -> str:
        """The element text zeep writes for this part (base64 of the marker)."""
        return base64.b64encode(bytes(self)).decode("ascii")

    def chunks(self, size: int = CHUNK_SIZE) -> Iterator[bytes]:
        if isinstance(self.source, bytes):
            yield self.source
            return
        if isinstance(self.source, Path):
            with open(self.source, "rb") as f:
                yield from iter(lambda: f.read(size), b"")
            return
        yield from iter(lambda: self.source.read(size), b"")  # type: ignore[union-attr]


def _remaining_size(stream: BinaryIO) -> int | None:
    try:
        if not stream.seekable():
            return None
        here = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(here)
        return end - here
    except (AttributeError, OSError):
        return None


class MtomTransport(Transport):
    """A zeep Transport that sends document content as MTOM/XOP parts (see the module docstring).

    ``xop_elements``: Clark-notation names of elements whose base64 text is moved into a part
    (default: ``{urn:ihe:iti:xds-b:2007}Document``). ``always``: send multipart/related even when
    the request carries no part. Other arguments are zeep's (``timeout``, ``operation_timeout``,
    ``session``, ``cache``).
    """

    def __init__(
        self, *args, xop_elements: Iterable[str] = DEFAULT_XOP_ELEMENTS, always: bool = False, **kwargs
    ) -> None:
        super().__init__(*args, **kwargs)
        self.xop_elements = frozenset(xop_elements)
        self.always = always
        self._waiting: dict[str, XopPart] = {}

    def part(
        self,
        source: bytes | str | os.PathLike[str] | BinaryIO,
        content_type: str = "application/octet-stream",
    ) -> XopPart:
        """A :class:`XopPart` for ``source``, to pass to zeep where the document bytes go."""
        part = XopPart(source, content_type)
        self._waiting[part.placeholder] = part
        return part

    def discard(self, *parts: XopPart) -> None:
        """Forget parts that will not be sent (a part is forgotten once sent): the transport
        keeps each part it made until then."""
        for part in parts:
            self._waiting.pop(part.placeholder, None)

    def post_xml(self, address, envelope, headers):
        parts = self._extract_parts(envelope)
        if not parts and not self.always:
            response = super().post_xml(address, envelope, headers)
        else:
            body = MultipartRelated(etree_to_string(envelope), parts, headers.get("Content-Type", ""))
            headers = {**headers, "Content-Type": body.content_type}
            data = body if body.length is not None else iter(body)
            response = self.session.post(address, data=data, headers=headers, timeout=self.operation_timeout)
        keep_binary_parts_whole(response)
        return response

    def _extract_parts(self, envelope: etree._Element) -> list[tuple[str, XopPart]]:
        """Replace each document's text by an xop:Include; return (content id, part) pairs."""
        parts = []
        for element in envelope.iter():
            text = element.text
            if not isinstance(element.tag, str) or not text or len(element):
                continue
            part = self._waiting.pop(text.strip(), None)
            if part is None and element.tag in self.xop_elements:
                try:
                    part = XopPart(base64.b64decode("".join(text.split()), validate=True))
                except binascii.Error:
                    continue
            if part is None:
                continue
            content_id = f"{uuid.uuid4().hex}@xds.client"
            element.text = None
            include = etree.SubElement(element, f"{{{XOP}}}Include", nsmap={"xop": XOP})
            include.set("href", f"cid:{content_id}")
            parts.append((content_id, part))
        return parts


class MultipartRelated:
    """The body of an MTOM request: iterable (streamed), sized when every part's size is known."""

    def __init__(self, envelope: bytes, parts: list[tuple[str, XopPart]], soap_content_type: str) -> None:
        self.boundary = f"MIMEBoundary_{uuid.uuid4().hex}"
        root_id = f"root.{uuid.uuid4().hex}@xds.client"
        action = _parameter(soap_content_type, "action")
        action_param = f'; action="{action}"' if action else ""
        self.content_type = (
            f'multipart/related; type="application/xop+xml"; boundary="{self.boundary}"; '
            f'start="<{root_id}>"; start-info="application/soap+xml"{action_param}'
        )
        self._head = (
            f"--{self.boundary}\r\n"
            f'Content-Type: application/xop+xml; charset=UTF-8; type="application/soap+xml"{action_param}\r\n'
            f"Content-Transfer-Encoding: binary\r\nContent-ID: <{root_id}>\r\n\r\n"
        ).encode("latin-1") + envelope
        self._parts = [
            (
                (
                    f"\r\n--{self.boundary}\r\nContent-Type: {part.content_type}\r\n"
                    f"Content-Transfer-Encoding: binary\r\nContent-ID: <{content_id}>\r\n\r\n"
                ).encode("latin-1"),
                part,
            )
            for content_id, part in parts
        ]
        self._tail = f"\r\n--{self.boundary}--\r\n".encode("latin-1")
        sizes = [part.size for _, part in self._parts]
        self.length = (
            None
            if None in sizes
            else len(self._head) + sum(len(h) for h, _ in self._parts) + sum(sizes) + len(self._tail)  # type: ignore[arg-type]
        )

    def __len__(self) -> int:
        if self.length is None:
            raise TypeError("a part of unknown size: the body has no length")
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        yield self._head
        for head, part in self._parts:
            yield head
            yield from part.chunks()
        yield self._tail


def keep_binary_parts_whole(response: requests.Response) -> None:
    """Drop ``Content-Transfer-Encoding: binary`` from the part headers of a multipart answer, so
    that zeep does not strip CR/LF from the ends of the parts (see the module docstring)."""
    content_type = response.headers.get("Content-Type", "")
    boundary = _parameter(content_type, "boundary")
    if not content_type.lower().startswith("multipart/related") or not boundary:
        return
    content = response.content
    delimiter = b"--" + boundary.encode("latin-1")
    pieces: list[bytes] = []
    done = 0
    start = content.find(delimiter)
    while start >= 0:
        head_start = content.find(b"\r\n", start) + 2
        head_end = content.find(b"\r\n\r\n", head_start - 2)
        if head_start < 2 or head_end < 0:
            break
        lines = content[head_start:head_end].split(b"\r\n")
        kept = [
            line
            for line in lines
            if line.partition(b":")[0].strip().lower() != b"content-transfer-encoding"
            or line.partition(b":")[2].strip().lower() != b"binary"
        ]
        if len(kept) != len(lines):
            pieces += [content[done:head_start], b"\r\n".join(kept)]
            done = head_end
        start = content.find(b"\r\n" + delimiter, head_end)
        if start >= 0:
            start += 2
    if pieces:
        response._content = b"".join([*pieces, content[done:]])


def _parameter(content_type: str, name: str) -> str | None:
    """A parameter of a media type (``action`` of application/soap+xml), unquoted."""
    for item in content_type.split(";")[1:]:
        key, _, value = item.strip().partition("=")
        if key.strip().lower() == name:
            value = value.strip().strip('"')
            return value if value and value != "None" and '"' not in value and "\r" not in value else None
    return None
