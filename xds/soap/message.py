"""The SOAP message as handlers see it: a parsed envelope plus its MTOM attachments.

Handlers never touch HTTP or MIME. A request arrives as a :class:`SoapRequest`; a handler
returns a :class:`SoapResponse` whose body may carry :class:`Attachment` objects to be sent
as XOP parts (ITI-43 / RAD-69 retrieves), streamed from where they are stored.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote

from lxml import etree

from xds.namespaces import XOP

if TYPE_CHECKING:
    from xds.audit.context import AuditContext

CHUNK = 1024 * 1024  # one thread-pool hop per MiB when streamed out


class Attachment:
    """Binary content: a MIME part of an MTOM package, an inline base64 value, or a stored document.

    The bytes live in memory (small parts), in a spooled temporary file (large parts) or behind an
    ``opener`` callable (documents streamed out of a store). ``open()`` always gives a fresh
    reader positioned at the start.
    """

    def __init__(
        self,
        *,
        content_id: str | None = None,
        content_type: str = "application/octet-stream",
        data: bytes | None = None,
        path: str | None = None,
        opener: Callable[[], BinaryIO] | None = None,
        size: int | None = None,
        owns_path: bool = False,
    ) -> None:
        if sum(x is not None for x in (data, path, opener)) != 1:
            raise ValueError("an Attachment needs exactly one of data, path or opener")
        self.content_id = content_id
        self.content_type = content_type
        self._data = data
        self.path = path
        self._opener = opener
        self._owns_path = owns_path
        if size is None:
            if data is not None:
                size = len(data)
            elif path is not None:
                size = os.path.getsize(path)
        self.size = size

    def open(self) -> BinaryIO:
        if self._data is not None:
            return io.BytesIO(self._data)
        if self.path is not None:
            return open(self.path, "rb")
        assert self._opener is not None
        return self._opener()

    def read_bytes(self) -> bytes:
        if self._data is not None:
            return self._data
        with self.open() as f:
            return f.read()

    def iter_chunks(self, chunk_size: int = CHUNK) -> Iterator[bytes]:
        with self.open() as f:
            while True:
                block = f.read(chunk_size)
                if not block:
                    return
                yield block

    @property
    def spooled(self) -> bool:
        """Whether a temporary file of this attachment's is left for :meth:`close` to remove."""
        return bool(self._owns_path and self.path)

    def close(self) -> None:
        """Remove a spooled temporary file this attachment owns."""
        if self._owns_path and self.path:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self._owns_path = False

    @classmethod
    def from_base64_text(cls, text: str, spool_threshold: int = 1 << 20) -> Attachment:
        """Decode inline base64 (xs:base64Binary) without holding large documents twice."""
        compact = "".join(text.split())
        if len(compact) <= spool_threshold:
            return cls(data=base64.b64decode(compact, validate=True))
        fd, path = tempfile.mkstemp(prefix="xds-b64-")
        with os.fdopen(fd, "wb") as out:
            step = 4 * 16384
            for i in range(0, len(compact), step):
                out.write(base64.b64decode(compact[i : i + step], validate=True))
        return cls(path=path, owns_path=True)

    def __repr__(self) -> str:  # never the content: it is patient data
        return f"Attachment(cid={self.content_id!r}, type={self.content_type!r}, size={self.size})"


@dataclass
class Addressing:
    """WS-Addressing 1.0 message addressing properties of a request."""

    action: str | None = None
    message_id: str | None = None
    to: str | None = None
    reply_to: str | None = None


@dataclass
class SoapRequest:
    envelope: etree._Element
    header: etree._Element | None
    body_element: etree._Element
    addressing: Addressing
    attachments: dict[str, Attachment] = field(default_factory=dict)
    mtom: bool = False
    client_host: str | None = None
    endpoint: str = ""
    # set by the endpoint's guard once verified (xds.security.guard): the TLS client certificate
    # (xds.security.tls.PeerCertificate) and the XUA-asserted person (xds.audit.events.Person)
    client_certificate: Any = None
    xua: Any = None

    def binary(self, element: etree._Element, spool_threshold: int = 1 << 20) -> Attachment:
        """Content of an xs:base64Binary element: its xop:Include part, or its inline text.

        XOP parts are handed over as they were received (ITI TF-2x V.3: the bytes never pass
        through base64 here). Raises KeyError naming the missing Content-ID.
        """
        include = element.find(f"{{{XOP}}}Include")
        if include is not None:
            href = include.get("href", "")
            from xds.soap.mtom import normalize_content_id

            cid = normalize_content_id(href)
            try:
                return self.attachments[cid]
            except KeyError:
                raise KeyError(cid) from None
        return Attachment.from_base64_text(element.text or "", spool_threshold)

    def close(self) -> None:
        for a in self.attachments.values():
            a.close()


@dataclass
class SoapResponse:
    """A response body element and the wsa:Action it answers with.

    ``attachments`` are referenced from the body by ``xop:Include href="cid:<content_id>"``
    elements the handler placed there (see :func:`xop_include`). With ``mtom`` the response
    goes out as multipart/related even without attachments (ITI-43 requires an MTOM response).
    ``close`` (a function or coroutine function) runs once the response has been sent or the
    client has gone: a gateway releases there the upstream connection its attachments stream from.
    """

    body_element: etree._Element
    action: str
    attachments: list[Attachment] = field(default_factory=list)
    mtom: bool = False
    close: Callable[[], object] | None = None
    # what the transaction touched (patients, documents, studies, the query), for its ATNA audit
    # message; None: the audit record carries the event and its participants only
    audit: AuditContext | None = None
    # the body as it goes on the wire, when the handler has it serialised already (a LeafClass
    # query answer assembled from stored fragments); body_element is then what it says about the
    # outcome (status, errors), for the guard and the logs
    body_bytes: bytes | None = None


def xop_include(parent: etree._Element, attachment: Attachment) -> etree._Element:
    """Put an xop:Include referencing ``attachment`` into ``parent`` (an xs:base64Binary element)."""
    inc = etree.SubElement(parent, f"{{{XOP}}}Include", nsmap={"xop": XOP})
    # RFC 2392: a cid URL %-encodes what a URL may not carry; the receiver decodes it again.
    inc.set("href", "cid:" + quote(attachment.content_id or "", safe="@.-_~!$&'()*+,;=:"))
    return inc


def new_message_id() -> str:
    """A fresh ``urn:uuid:`` wsa:MessageID: a random (version 4) UUID, RFC 4122 4.4, built from
    16 random bytes without the uuid module's object (on the path of every answer)."""
    h = os.urandom(16).hex()
    return f"urn:uuid:{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"
