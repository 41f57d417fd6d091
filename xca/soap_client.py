"""The gateway's client side: SOAP 1.2 requests to a Responding Gateway (over
:mod:`xca.http_client`), answers read as they arrive.

A plain ``application/soap+xml`` answer is only an envelope: it is fed to the XML parser chunk by
chunk as it arrives (when its Content-Length is known), so that the tree of the community that
answers last is mostly built by the time its last byte is in. A
``multipart/related`` (MTOM) answer is read up to the end of its root part; the other parts stay
on the wire and :class:`PartReader` hands them out on demand, so a retrieved document passes
through the gateway a chunk at a time and is never held whole. A part that arrives before the
one asked for (a sender may order its parts as it likes) is spooled to a temporary file.
"""

from __future__ import annotations

import binascii
import collections
import ssl
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import IO, Any

from lxml import etree
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from xca.http_client import Client, Response
from xds.namespaces import SOAP12, WSA
from xds.soap import envelope
from xds.soap.fault import SoapFault
from xds.soap.mtom import normalize_content_id

SOAP_CT = "application/soap+xml; charset=UTF-8"
RELAY_BLOCK = 256 * 1024  # bytes gathered per hand-over of a relayed part

# No DTD, entities or network; without huge_tree libxml2 also caps the depth (256) and text nodes.
_HUGE = 8 * 1024**2
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
_HUGE_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


class UpstreamError(Exception):
    """The other side did not answer with a usable SOAP response (the reason names why)."""


def request_bytes(body: etree._Element, action: str, to: str) -> bytes:
    """A SOAP 1.2 request envelope with wsa:Action, MessageID, ReplyTo (anonymous) and To."""
    reply_to = etree.Element(f"{{{WSA}}}ReplyTo")
    etree.SubElement(reply_to, f"{{{WSA}}}Address").text = "http://www.w3.org/2005/08/addressing/anonymous"
    to_el = etree.Element(f"{{{WSA}}}To")
    to_el.text = to
    env = envelope.build_envelope(
        body, action=action, relates_to=None, message_id=f"urn:uuid:{uuid.uuid4()}", extra_headers=[reply_to, to_el]
    )
    return envelope.serialize(env)


class _Base64:
    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes) -> bytes:
        text = self._carry + data.translate(None, b" \t\r\n")
        cut = len(text) - len(text) % 4
        self._carry = text[cut:]
        return binascii.a2b_base64(text[:cut]) if cut else b""


class PartReader:
    """A multipart/related body (RFC 2387) read from ``chunks`` as it arrives."""

    def __init__(self, chunks: AsyncIterator[bytes], content_type: str, *, max_root: int, spool_threshold: int) -> None:
        mime, params = parse_options_header(content_type)
        options = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in params.items()}
        boundary = options.get("boundary", "")
        if mime != b"multipart/related" or not boundary:
            raise UpstreamError("the answer is not multipart/related with a boundary")
        self.start = normalize_content_id(options["start"]) if options.get("start") else None
        self.max_root = max_root
        self.spool_threshold = spool_threshold
        self.content_types: dict[str, str] = {}
        self._chunks = chunks
        self._events: collections.deque[tuple[str, Any]] = collections.deque()
        self._ended = False
        self._parser = MultipartParser(
            boundary.encode("latin-1"),
            {
                "on_part_begin": self._begin,
                "on_header_field": self._field,
                "on_header_value": self._value,
                "on_header_end": self._header_end,
                "on_headers_finished": self._headers_finished,
                "on_part_data": self._data,
                "on_part_end": lambda: self._events.append(("end", None)),
                "on_end": self._end,
            },
        )
        self._headers: dict[str, str] = {}
        self._name = bytearray()
        self._val = bytearray()
        self._first = True
        self._current: str | None = None  # the part whose data is being read
        self._decoder: _Base64 | None = None
        self._leftover = b""
        self._spooled: dict[str, IO[bytes]] = {}
        self._done: set[str] = set()

    # python-multipart callbacks: queue events, consumed by the pull methods below

    def _begin(self) -> None:
        self._headers = {}

    def _field(self, data: bytes, start: int, end: int) -> None:
        self._name += data[start:end]

    def _value(self, data: bytes, start: int, end: int) -> None:
        self._val += data[start:end]

    def _header_end(self) -> None:
        self._headers[self._name.decode("latin-1").strip().lower()] = self._val.decode("latin-1").strip()
        self._name.clear()
        self._val.clear()

    def _headers_finished(self) -> None:
        self._events.append(("head", self._headers))

    def _data(self, data: bytes, start: int, end: int) -> None:
        if end > start:
            self._events.append(("data", data[start:end]))

    def _end(self) -> None:
        self._ended = True

    async def _event(self) -> tuple[str, Any] | None:
        while not self._events:
            if self._ended:
                return None
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                raise UpstreamError("the multipart answer is truncated") from None
            try:
                self._parser.write(chunk)
            except MultipartParseError:
                raise UpstreamError("the multipart answer is malformed") from None
        return self._events.popleft()

    def _open_part(self, headers: dict[str, str]) -> tuple[str, bool]:
        """The part's normalised Content-ID and whether it is the root."""
        cid = normalize_content_id(headers.get("content-id", ""))
        is_root = cid == self.start if self.start is not None else self._first
        self._first = False
        cte = headers.get("content-transfer-encoding", "binary").lower()
        if cte == "base64":
            self._decoder = _Base64()
        elif cte in ("binary", "8bit", "7bit"):
            self._decoder = None
        else:
            raise UpstreamError(f"unsupported Content-Transfer-Encoding {cte[:30]!r}")
        self.content_types[cid] = headers.get("content-type", "application/octet-stream")
        return cid, is_root

    def _decode(self, data: bytes) -> bytes:
        return self._decoder.feed(data) if self._decoder is not None else data

    async def read_root(self) -> bytes:
        """The root part (the SOAP envelope); parts before it are spooled."""
        while True:
            event = await self._event()
            if event is None:
                raise UpstreamError("the multipart answer has no root part")
            kind, value = event
            if kind != "head":
                continue
            cid, is_root = self._open_part(value)
            if not is_root:
                await self._spool(cid)
                continue
            pieces: list[bytes] = []
            size = 0
            while (event := await self._event()) is not None and event[0] == "data":
                piece = self._decode(event[1])
                size += len(piece)
                if size > self.max_root:
                    raise UpstreamError(f"the SOAP envelope is larger than {self.max_root} bytes")
                pieces.append(piece)
            return b"".join(pieces)

    async def _spool(self, cid: str) -> None:
        f = tempfile.SpooledTemporaryFile(max_size=self.spool_threshold, prefix="xca-part-")
        if self._leftover:
            f.write(self._leftover)
            self._leftover = b""
        while (event := await self._event()) is not None and event[0] == "data":
            f.write(self._decode(event[1]))
        f.seek(0)
        self._spooled[cid] = f

    async def read_part(self, cid: str, size: int) -> bytes:
        """Up to ``size`` bytes of the part with Content-ID ``cid``; b"" at its end."""
        spooled = self._spooled.get(cid)
        if spooled is not None:
            block = spooled.read(size)
            if not block:
                spooled.close()
                del self._spooled[cid]
                self._done.add(cid)
            return block
        if cid in self._done:
            return b""
        if self._current != cid:
            if self._current is not None:
                await self._spool(self._current)  # abandoned half-way: keep the rest
                self._current = None
            while True:
                event = await self._event()
                if event is None:
                    raise UpstreamError(f"the answer has no part {cid!r}")
                if event[0] != "head":
                    continue
                found, _ = self._open_part(event[1])
                if found == cid:
                    self._current = cid
                    break
                await self._spool(found)
        # a short read is fine (the caller reads until b""): return once RELAY_BLOCK bytes are in
        pieces = [self._leftover] if self._leftover else []
        have = len(self._leftover)
        while have < min(size, RELAY_BLOCK):
            event = await self._event()
            if event is None or event[0] != "data":
                self._current = None
                self._done.add(cid)
                break
            piece = self._decode(event[1])
            pieces.append(piece)
            have += len(piece)
        data = pieces[0] if len(pieces) == 1 else b"".join(pieces)
        if len(data) <= size:
            self._leftover = b""
            return bytes(data)
        self._leftover = data[size:]
        return data[:size]

    def close(self) -> None:
        for f in self._spooled.values():
            f.close()
        self._spooled.clear()


@dataclass
class Answer:
    """What a community answered: the SOAP Body's element, and the parts still to be read."""

    body: etree._Element
    response: Response
    parts: PartReader | None = None

    async def aclose(self) -> None:
        if self.parts is not None:
            self.parts.close()
        await self.response.aclose()


def _parser(size: int, *, new: bool = False) -> etree.XMLParser:
    """No DTD, entities or network; above 8 MiB libxml2's limits on depth and text nodes off."""
    if new:  # a parser of its own, fed as the bytes arrive
        return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=size > _HUGE)
    return _HUGE_PARSER if size > _HUGE else _PARSER


async def _read_envelope(response: Response, max_envelope: int) -> etree._Element | bytes:
    """A plain SOAP answer, parsed as its chunks arrive when its Content-Length is known (so that
    the answer that comes in last is mostly parsed by the time its last byte is in); else its
    bytes. Read to the end either way, so that the connection can be used again."""
    length = response.headers.get("content-length", "")
    parser = _parser(int(length), new=True) if length.isdigit() else None
    chunks: list[bytes] = []
    size = 0
    malformed = False
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > max_envelope:
            raise UpstreamError(f"the answer is larger than {max_envelope} bytes")
        if parser is None:
            chunks.append(chunk)
        elif not malformed:
            try:
                parser.feed(chunk)
            except etree.XMLSyntaxError:
                malformed = True
    if not size and response.status_code != 200:
        raise UpstreamError(f"HTTP {response.status_code}")
    if parser is None:
        return b"".join(chunks)
    if size and not malformed:
        try:
            return parser.close()
        except etree.XMLSyntaxError:
            pass
    raise UpstreamError(f"HTTP {response.status_code}, the answer is not well-formed XML")


def _fault_reason(body: etree._Element) -> str:
    text = body.findtext(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text") or ""
    code = body.findtext(f"{{{SOAP12}}}Code/{{{SOAP12}}}Value") or ""
    return f"SOAP fault {code} {text}".strip()[:300]


async def call(
    client: Client,
    url: str,
    payload: bytes,
    action: str,
    *,
    max_envelope: int = 64 * 1024**2,
    spool_threshold: int = 1024**2,
    tls: ssl.SSLContext | None = None,
) -> Answer:
    """POST ``payload`` (a SOAP envelope) and read the answer's envelope. Raises UpstreamError for
    anything but a SOAP response body, :class:`xca.http_client.HTTPError` when no HTTP answer came;
    the caller closes the returned :class:`Answer`."""
    response = await client.post(url, payload, {"Content-Type": f'{SOAP_CT}; action="{action}"'}, tls=tls)
    try:
        content_type = response.headers.get("content-type", "")
        parts = None
        if content_type.lower().startswith("multipart/"):
            parts = PartReader(
                response.aiter_bytes(), content_type, max_root=max_envelope, spool_threshold=spool_threshold
            )
            root = await parts.read_root()
        else:
            root = await _read_envelope(response, max_envelope)
        try:
            env = root if isinstance(root, etree._Element) else etree.fromstring(root, _parser(len(root)))
            _, body = envelope.split_envelope(env)
        except etree.XMLSyntaxError:
            raise UpstreamError(f"HTTP {response.status_code}, the answer is not well-formed XML") from None
        except SoapFault as e:
            raise UpstreamError(f"HTTP {response.status_code}, not a SOAP 1.2 envelope ({e.reason})") from None
        if body.tag == f"{{{SOAP12}}}Fault":
            raise UpstreamError(_fault_reason(body))
        if response.status_code != 200:
            raise UpstreamError(f"HTTP {response.status_code}")
        return Answer(body, response, parts)
    except BaseException:
        await response.aclose()
        raise
