"""MTOM/XOP over MIME multipart/related (RFC 2387, XOP 1.0, SOAP 1.2 MTOM), streamed both ways.

In: :func:`parse_multipart_related` feeds the request body chunk by chunk to python-multipart's
streaming parser; the root part (the SOAP envelope) is kept in memory, other parts stay in memory up
to ``spool_threshold`` bytes and are spooled to a temporary file above it. Out: :func:`mtom_response`
streams the envelope and then each attachment from wherever it is stored.

Content-IDs are compared after :func:`normalize_content_id`, so ``href="cid:a%40b"`` (RFC 2392)
finds the part with ``Content-ID: <a@b>``. Any malformed input is a Sender fault whose reason never
quotes the content.
"""

from __future__ import annotations

import binascii
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO
from urllib.parse import unquote

from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from xds.soap.fault import SoapFault
from xds.soap.message import Attachment

log = logging.getLogger("xds.soap")

ROOT_TYPES = frozenset({"application/xop+xml", "application/soap+xml", "text/xml", "application/xml"})
IDENTITY_ENCODINGS = frozenset({"binary", "8bit", "7bit"})
XOP_ROOT_TYPE = 'application/xop+xml; charset=UTF-8; type="application/soap+xml"'

_MAX_BOUNDARY = 200
_MAX_PREAMBLE = 64 * 1024
_MAX_HEADER_BLOCK = 64 * 1024
_MAX_PART_HEADERS = 32
_SPOOL_BUFFER = 64 * 1024
_PIECE_MIN = 16 * 1024
_BCHARS = frozenset(b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ'()+_,-./:=? ")


def _malformed(reason: str) -> SoapFault:
    return SoapFault("Sender", reason)


def normalize_content_id(value: str) -> str:
    """The bare content id of a Content-ID header value, a ``start`` parameter or a ``cid:`` URL.

    Quotes, angle brackets and a ``cid:`` prefix are stripped; only a ``cid:`` URL is %-decoded
    (RFC 2392: the URL form %-encodes, the header form does not).
    """
    v = value.strip()
    if len(v) >= 2 and v[0] == '"' and v[-1] == '"':
        v = v[1:-1].strip()
    is_url = v[:4].lower() == "cid:"
    if is_url:
        v = v[4:].strip()
    if len(v) >= 2 and v[0] == "<" and v[-1] == ">":
        v = v[1:-1].strip()
    return unquote(v) if is_url else v


def assign_content_id(attachment: Attachment) -> str:
    """Give ``attachment`` a Content-ID if it has none (normalising one it has) and return it.

    Call it before putting the attachment into the body with
    :func:`~xds.soap.message.xop_include`: the href is taken from the id at that moment.
    """
    cid = normalize_content_id(attachment.content_id) if attachment.content_id else ""
    attachment.content_id = cid or f"{uuid.uuid4()}@xds"
    return attachment.content_id


@dataclass
class MimePackage:
    """A parsed multipart/related message: the root part and the others keyed by normalised id."""

    root: bytes
    root_content_type: str
    attachments: dict[str, Attachment] = field(default_factory=dict)

    def close(self) -> None:
        for a in self.attachments.values():
            a.close()


# --- Content-Transfer-Encoding (RFC 2045, 6) ---


class _Base64Decoder:
    def __init__(self) -> None:
        self._carry = b""
        self._padded = False

    def feed(self, data: bytes | memoryview) -> bytes:
        text = self._carry + bytes(data).translate(None, b" \t\r\n")
        cut = len(text) - len(text) % 4
        self._carry = text[cut:]
        if not cut:
            return b""
        if self._padded:
            raise _malformed("A base64 MIME part has data after its padding")
        try:
            out = binascii.a2b_base64(text[:cut], strict_mode=True)
        except binascii.Error:
            raise _malformed("A MIME part declared as base64 is not valid base64") from None
        self._padded = text[cut - 1] == 0x3D
        return out

    def finish(self) -> bytes:
        if self._carry:
            raise _malformed("A base64 MIME part ends in the middle of a quantum")
        return b""


class _QuotedPrintableDecoder:
    def __init__(self) -> None:
        self._carry = b""

    def feed(self, data: bytes | memoryview) -> bytes:
        text = self._carry + bytes(data)
        cut = text.rfind(b"\n") + 1
        if cut == 0:
            if len(text) < 8192:
                self._carry = text
                return b""
            eq = text.find(b"=", len(text) - 2)
            cut = eq if eq != -1 else len(text)
        self._carry = text[cut:]
        return binascii.a2b_qp(text[:cut])

    def finish(self) -> bytes:
        tail, self._carry = self._carry, b""
        return binascii.a2b_qp(tail)


# --- framing ---


class _Framing:
    """Skips the preamble and normalises the framing that python-multipart is given.

    RFC 2046 5.1.1 delimits parts with CRLF. Messages whose first delimiter line ends in CRLF pass
    through untouched. Messages framed with bare LF (the NIST testkit captures PnrXop/* are stored
    so) are rewritten on the fly: ``LF--boundary`` becomes ``CRLF--boundary`` and part header lines
    get CRLF (folded lines unfolded); part content is never changed.
    """

    _BODY, _DELIM, _HEADERS, _EPILOGUE = range(4)

    def __init__(self, boundary: bytes) -> None:
        self.dash = b"--" + boundary
        self.lf_delim = b"\n" + self.dash
        self.mode: str | None = None  # "crlf" or "lf" once the first delimiter line is read
        self._buf = b""
        self._state = self._HEADERS

    def feed(self, chunk: bytes) -> bytes:
        if self.mode == "crlf":
            return chunk
        if self.mode is None:
            return self._open(chunk)
        return self._lf(chunk)

    def _open(self, chunk: bytes) -> bytes:
        buf = self._buf + chunk
        pos = 0
        while True:
            i = buf.find(self.dash, pos)
            if i == -1:
                if len(buf) > _MAX_PREAMBLE:
                    raise _malformed("The multipart/related body does not contain its boundary delimiter")
                self._buf = buf
                return b""
            if i > 0 and buf[i - 1] != 0x0A:
                pos = i + 1
                continue
            rest = buf[i + len(self.dash) :]
            if rest.startswith(b"--"):
                raise _malformed("The multipart/related body contains no parts")
            nl = rest.find(b"\n")
            line = rest if nl == -1 else rest[:nl]
            if line not in (b"", b"-") and line.rstrip(b"\r").strip(b" \t"):
                pos = i + 1  # "--boundary" followed by other text is not a delimiter line
                continue
            if nl == -1:
                if len(rest) > 1024:
                    raise _malformed("The multipart/related boundary line is malformed")
                self._buf = buf
                return b""
            self._buf = b""
            head = self.dash + b"\r\n"
            if line.endswith(b"\r"):
                self.mode = "crlf"
                return head + rest[nl + 1 :]
            self.mode = "lf"
            return head + self._lf(rest[nl + 1 :])

    def _lf(self, chunk: bytes) -> bytes:
        buf = self._buf + chunk if self._buf else chunk
        out: list[bytes] = []
        while buf:
            state = self._state
            if state == self._BODY:
                j = buf.find(self.lf_delim)
                if j == -1:
                    keep = 0
                    k = buf.rfind(b"\n", max(0, len(buf) - len(self.lf_delim) + 1))
                    if k != -1 and self.lf_delim.startswith(buf[k:]):
                        keep = len(buf) - k
                    out.append(buf[: len(buf) - keep])
                    buf = buf[len(buf) - keep :]
                    break
                out.append(buf[:j])
                buf = buf[j + len(self.lf_delim) :]
                self._state = self._DELIM
            elif state == self._DELIM:
                if buf.startswith(b"--"):
                    out.append(b"\r\n" + self.dash + b"--")
                    self._state = self._EPILOGUE
                    buf = b""
                    break
                if buf == b"-":
                    break
                nl = buf.find(b"\n")
                line = buf if nl == -1 else buf[:nl]
                if line.rstrip(b"\r").strip(b" \t"):
                    out.append(self.lf_delim)
                    self._state = self._BODY
                    continue
                if nl == -1:
                    if len(buf) > 1024:
                        raise _malformed("The multipart/related boundary line is malformed")
                    break
                out.append(b"\r\n" + self.dash + b"\r\n")
                buf = buf[nl + 1 :]
                self._state = self._HEADERS
            elif state == self._HEADERS:
                if buf[:1] == b"\n" or buf[:2] == b"\r\n":
                    out.append(b"\r\n")
                    buf = buf[1 if buf[:1] == b"\n" else 2 :]
                    self._state = self._BODY
                    continue
                if buf == b"\r":
                    break
                ends = [(j, n) for j, n in ((buf.find(b"\n\n"), 2), (buf.find(b"\n\r\n"), 3)) if j != -1]
                if not ends:
                    if len(buf) > _MAX_HEADER_BLOCK:
                        raise _malformed("The headers of a MIME part are too large")
                    break
                j, n = min(ends)
                out.append(_crlf_header_block(buf[:j]) + b"\r\n\r\n")
                buf = buf[j + n :]
                self._state = self._BODY
            else:
                buf = b""
        self._buf = buf
        return b"".join(out)


def _crlf_header_block(block: bytes) -> bytes:
    lines: list[bytes] = []
    for line in block.replace(b"\r\n", b"\n").split(b"\n"):
        if line[:1] in (b" ", b"\t") and lines:
            lines[-1] += b" " + line.strip()
        else:
            lines.append(line)
    return b"\r\n".join(lines)


# --- parts ---


class _PackageReader:
    """python-multipart callbacks building a :class:`MimePackage` part by part."""

    def __init__(
        self, start: str | None, default_root_type: str, spool_threshold: int, max_root: int
    ) -> None:
        self.start = start
        self.default_root_type = default_root_type
        self.spool_threshold = spool_threshold
        self.max_root = max_root
        self.ended = False
        self.parts = 0
        self.root: bytes | None = None
        self.root_content_type = ""
        self.root_cid: str | None = None
        self.attachments: dict[str, Attachment] = {}
        self._name = bytearray()
        self._value = bytearray()
        self._headers: dict[str, str] = {}
        self._is_root = False
        self._cid: str | None = None
        self._type = ""
        self._decoder: _Base64Decoder | _QuotedPrintableDecoder | None = None
        self._pieces: list[bytes | bytearray | memoryview] = []
        self._file: BinaryIO | None = None
        self._path: str | None = None
        self._size = 0

    def callbacks(self) -> dict:
        return {
            "on_part_begin": self.on_part_begin,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_end": self.on_end,
        }

    def on_part_begin(self) -> None:
        self._headers = {}
        self._name.clear()
        self._value.clear()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._name += memoryview(data)[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._value += memoryview(data)[start:end]

    def on_header_end(self) -> None:
        self._headers[self._name.decode("latin-1").strip().lower()] = self._value.decode("latin-1").strip()
        self._name.clear()
        self._value.clear()

    def on_headers_finished(self) -> None:
        headers = self._headers
        cte = headers.get("content-transfer-encoding", "binary").lower()
        if cte in IDENTITY_ENCODINGS:
            self._decoder = None
        elif cte == "base64":
            self._decoder = _Base64Decoder()
        elif cte == "quoted-printable":
            self._decoder = _QuotedPrintableDecoder()
        else:
            raise _malformed(
                f"Unsupported Content-Transfer-Encoding {cte[:40]!r} in a MIME part (RFC 2045, 6.1)"
            )
        raw_cid = headers.get("content-id")
        cid = normalize_content_id(raw_cid) if raw_cid else None
        index = self.parts
        self.parts += 1
        is_root = cid == self.start if self.start is not None else index == 0
        if is_root and self.root_cid is not None and cid == self.root_cid:
            is_root = False  # a second part with the root's id: reported as a duplicate below
        if not is_root:
            if not cid:
                raise _malformed("A MIME part other than the root has no Content-ID (XOP 1.0, 4.1)")
            if cid in self.attachments or cid == self.root_cid:
                raise _malformed("Two MIME parts have the same Content-ID")
        self._type = headers.get("content-type", "")
        if is_root:
            mime = parse_options_header(self._type)[0].decode("latin-1")
            if self._type and mime not in ROOT_TYPES:
                raise _malformed(
                    f"The root MIME part has Content-Type {mime[:60]!r}; expected application/xop+xml, "
                    "application/soap+xml or text/xml"
                )
            self.root_cid = cid or ""
        self._is_root = is_root
        self._cid = cid
        self._pieces = []
        self._size = 0

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        view = memoryview(data)[start:end]
        self._store(self._decoder.feed(view) if self._decoder is not None else view)

    def _store(self, data: bytes | memoryview) -> None:
        n = len(data)
        if not n:
            return
        self._size += n
        if self._file is not None:
            self._file.write(data)
            return
        if self._is_root and self._size > self.max_root:
            raise _malformed(f"The SOAP envelope is larger than the limit of {self.max_root} bytes")
        # Large pieces stay views into the (immutable) chunks fed to the parser, joined once at the
        # end; small ones are merged so that a trickle of tiny chunks cannot pile up objects.
        pieces = self._pieces
        if n >= _PIECE_MIN:
            pieces.append(data)
        elif pieces and isinstance(pieces[-1], bytearray):
            pieces[-1] += data
        else:
            pieces.append(bytearray(data))
        if not self._is_root and self._size > self.spool_threshold:
            fd, self._path = tempfile.mkstemp(prefix="xds-mtom-")
            self._file = os.fdopen(fd, "wb", buffering=_SPOOL_BUFFER)
            for piece in self._pieces:
                self._file.write(piece)
            self._pieces = []

    def on_part_end(self) -> None:
        if self._decoder is not None:
            self._store(self._decoder.finish())
        content_type = self._type or "application/octet-stream"
        if self._is_root:
            self.root = b"".join(self._pieces)
            self.root_content_type = self._type or self.default_root_type
        elif self._file is not None:
            self._file.close()
            self._file = None
            path, self._path = self._path, None
            att = Attachment(
                content_id=self._cid, content_type=content_type, path=path, size=self._size, owns_path=True
            )
            self.attachments[self._cid or ""] = att
        else:
            self.attachments[self._cid or ""] = Attachment(
                content_id=self._cid, content_type=content_type, data=b"".join(self._pieces)
            )
        self._pieces = []

    def on_end(self) -> None:
        self.ended = True

    def package(self) -> MimePackage:
        if self.root is None:
            raise _malformed(
                "The multipart/related message is missing root part: no part has the start Content-ID"
            )
        return MimePackage(self.root, self.root_content_type, self.attachments)

    def discard(self) -> None:
        """Remove everything spooled so far (on any failure)."""
        if self._file is not None:
            self._file.close()
            self._file = None
        if self._path is not None:
            try:
                os.unlink(self._path)
            except FileNotFoundError:
                pass
            self._path = None
        for a in self.attachments.values():
            a.close()
        self.attachments.clear()
        self._pieces = []
        self.root = None


async def parse_multipart_related(
    stream: AsyncIterator[bytes],
    content_type: str,
    *,
    spool_threshold: int,
    max_total: int,
    max_root: int,
) -> MimePackage:
    """Read a multipart/related body (RFC 2387) from ``stream``.

    The root part is the one named by the ``start`` parameter, or the first part without one.
    Parts other than the root larger than ``spool_threshold`` bytes go to temporary files that the
    returned attachments own (``Attachment.close()`` removes them). Reading stops at the first
    error with a Sender fault, and whatever was spooled is removed.
    """
    mime, params = parse_options_header(content_type or "")
    options = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in params.items()}
    if mime != b"multipart/related":
        raise _malformed("The request is not multipart/related")
    boundary = options.get("boundary", "")
    if not boundary:
        raise _malformed("The multipart/related Content-Type has no boundary parameter")
    if len(boundary) > _MAX_BOUNDARY or not all(" " <= c <= "~" for c in boundary):
        raise _malformed("The multipart/related boundary parameter is not valid (RFC 2046, 5.1.1)")
    start = normalize_content_id(options["start"]) if options.get("start") else None
    reader = _PackageReader(start, options.get("type", ""), spool_threshold, max_root)
    parser = MultipartParser(
        boundary.encode("latin-1"), reader.callbacks(), max_header_count=_MAX_PART_HEADERS
    )
    framing = _Framing(boundary.encode("latin-1"))
    total = 0
    try:
        async for chunk in stream:
            if not chunk:
                continue
            total += len(chunk)
            if total > max_total:
                raise _malformed(f"The request is larger than the limit of {max_total} bytes")
            data = framing.feed(chunk)
            if data:
                parser.write(data)  # after the close delimiter it discards the epilogue
        if not reader.ended:
            if framing.mode is None:
                raise _malformed("The multipart/related body does not contain its boundary delimiter")
            raise _malformed("The multipart/related body is truncated: no closing boundary delimiter")
        return reader.package()
    except MultipartParseError:
        reader.discard()
        raise _malformed("The multipart/related body is malformed") from None
    except OSError:
        reader.discard()
        log.exception("cannot spool a MIME part to a temporary file")
        raise SoapFault("Receiver", "The request could not be stored for processing") from None
    except BaseException:
        reader.discard()
        raise


# --- out ---


def _header_safe(value: str, what: str) -> str:
    if any(c in value for c in '\r\n"'):
        raise SoapFault("Receiver", f"Cannot send {what} containing a quote or line break in a MIME header")
    return value


def mtom_response(
    envelope_xml: bytes,
    attachments: list[Attachment],
    action: str | None = None,
    boundary: str | None = None,
) -> tuple[str, Iterator[bytes]]:
    """The Content-Type and a byte stream of an MTOM message: ``envelope_xml`` then ``attachments``.

    Attachments are read with ``iter_chunks()`` while the stream is consumed. The envelope must
    already reference each attachment as ``cid:<content_id>``, so ids have to be assigned (with
    :func:`assign_content_id`) before the envelope was built; ids generated here for attachments
    still lacking one are only useful to a caller that does not reference them.
    """
    boundary = boundary or f"MIMEBoundary_{uuid.uuid4().hex}"
    if len(boundary) > 70 or not set(boundary.encode("latin-1")) <= _BCHARS or boundary.endswith(" "):
        raise ValueError("invalid MIME boundary (RFC 2046, 5.1.1)")
    root_id = f"root.{uuid.uuid4().hex}@xds"
    action_param = f'; action="{_header_safe(action, "an action")}"' if action else ""
    for att in attachments:
        assign_content_id(att)
        _header_safe(att.content_id or "", "a Content-ID")
        _header_safe(att.content_type, "a Content-Type")
    content_type = (
        f'multipart/related; type="application/xop+xml"; boundary="{boundary}"; start="<{root_id}>"; '
        f'start-info="application/soap+xml"{action_param}'
    )
    return content_type, _stream(envelope_xml, attachments, boundary.encode("latin-1"), root_id, action_param)


def _part_head(content_type: str, content_id: str) -> bytes:
    return (
        f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <{content_id}>\r\n\r\n"
    ).encode("latin-1")


def _stream(
    envelope_xml: bytes, attachments: list[Attachment], boundary: bytes, root_id: str, action_param: str
) -> Iterator[bytes]:
    delimiter = b"\r\n--" + boundary + b"\r\n"
    yield b"--" + boundary + b"\r\n" + _part_head(XOP_ROOT_TYPE + action_param, root_id) + envelope_xml
    for att in attachments:
        # the part's head on its own: prepending it to the first block copied a whole block
        yield delimiter + _part_head(att.content_type, att.content_id or "")
        yield from att.iter_chunks()
    yield b"\r\n--" + boundary + b"--\r\n"
