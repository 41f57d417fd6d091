"""One SOAP endpoint: HTTP in, dispatch on wsa:Action to a registered handler, HTTP out.

Handlers are plain synchronous callables ``handler(request: SoapRequest) -> SoapResponse`` run in
the thread pool (they use SQLAlchemy and file I/O), or ``async def`` handlers awaited on the event
loop (gateways fanning out with httpx, and handlers that never block). A handler raises
:class:`~xds.soap.fault.SoapFault` for a SOAP-level error; IHE errors travel in the response body
(RegistryResponse with RegistryErrorList) and are the handler's business.
"""

from __future__ import annotations

import functools
import inspect
import logging
import traceback
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from python_multipart.multipart import parse_options_header
from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response, StreamingResponse

from xds.config import LimitsConfig
from xds.soap import addressing, envelope, mtom
from xds.soap.fault import SoapFault, action_not_supported
from xds.soap.message import SoapRequest, SoapResponse, new_message_id
from xds.soap.xmlparse import parse_xml

log = logging.getLogger("xds.soap")

Handler = Callable[[SoapRequest], SoapResponse]

SOAP_CT = "application/soap+xml"


@dataclass
class Operation:
    action: str
    response_action: str
    handler: Handler
    name: str
    is_async: bool = field(init=False)

    def __post_init__(self) -> None:
        self.is_async = inspect.iscoroutinefunction(self.handler)


def content_type_params(header: str) -> tuple[str, Mapping[str, str]]:
    """The media type (lower case) and parameters (names lower case) of a Content-Type header."""
    if "boundary" in header:  # multipart: a new boundary per request, nothing to remember
        return _content_type_params(header)
    return _cached_content_type_params(header)


def _content_type_params(header: str) -> tuple[str, Mapping[str, str]]:
    mime, params = parse_options_header(header or "")
    return mime.decode("latin-1").lower(), MappingProxyType(
        {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in params.items()}
    )


# a client sends the same few Content-Types over and over; parsing one costs ~20 us
_cached_content_type_params = functools.lru_cache(maxsize=512)(_content_type_params)


class Endpoint:
    """A SOAP 1.2 endpoint at ``path`` serving the operations registered on it."""

    def __init__(self, name: str, path: str, wsdl: str | None = None, limits: LimitsConfig | None = None) -> None:
        self.name = name
        self.path = path
        self.wsdl = wsdl
        self.limits = limits or LimitsConfig()
        self.operations: dict[str, Operation] = {}
        # Clark names of header blocks a handler of this endpoint processes (e.g. wsse:Security)
        self.understood_headers: set[str] = set(addressing.UNDERSTOOD)
        # client certificate, XUA and audit of every transaction (xds.security.guard.EndpointGuard)
        self.guard: Any = None

    def operation(self, action: str, response_action: str, name: str = "") -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.add_operation(action, response_action, handler, name or handler.__name__)
            return handler

        return register

    def add_operation(self, action: str, response_action: str, handler: Handler, name: str = "") -> None:
        self.operations[action] = Operation(action, response_action, handler, name or action)

    # --- HTTP ---

    async def __call__(self, scope, receive, send) -> None:  # ASGI app, mountable as a Route
        if scope["method"] == "GET":
            response = self._get(Request(scope, receive))
        else:
            response = await self._post(scope, receive)
        await response(scope, receive, send)

    def _get(self, request: Request) -> Response:
        from xds.soap import wsdl

        return wsdl.respond(request, self)

    async def _post(self, scope, receive) -> Answer | Response:
        """Answer a POST, read straight from the ASGI ``receive`` (no Starlette Request on the path
        of every message unless a guard needs one) and answered in memory with its Content-Length."""
        guard = self.guard
        request: Request | None = None
        if guard is not None:
            request = Request(scope, receive)
            if (refused := await guard.admit(request)) is not None:
                return refused
        soap: SoapRequest | None = None
        relates_to: str | None = None
        op: Operation | None = None
        result: SoapResponse | SoapFault | None = None
        person = None
        try:
            soap = await self._read(scope, receive)
            relates_to = soap.addressing.message_id
            op = self.operations.get(soap.addressing.action or "")
            if op is None:
                raise action_not_supported(soap.addressing.action)
            if guard is not None:
                person = await guard.authenticate(request, soap)
            try:
                if op.is_async:
                    response = await op.handler(soap)  # type: ignore[misc]
                else:
                    response = await run_in_threadpool(op.handler, soap)
            except SoapFault:
                raise
            except Exception as e:
                incident = uuid.uuid4().hex[:12]
                # the stack, not the exception's message: messages may quote patient data
                log.error(
                    "handler %s on %s failed (incident %s): %s\n%s", op.name, self.path, incident,
                    type(e).__name__,
                    "\n".join(f"  {f.filename}:{f.lineno} in {f.name}" for f in traceback.extract_tb(e.__traceback__)),
                )
                raise SoapFault("Receiver", f"Internal error while processing the request (incident {incident})") from None
            result = response
            return self._respond(response, soap)
        except SoapFault as fault:
            result = fault
            log.info("SOAP fault on %s: %s %s", self.path, fault.code, fault.reason)
            if soap is not None:
                soap.close()
            body = envelope.serialize(envelope.build_fault_envelope(fault, relates_to, new_message_id()))
            return Answer(fault.http_status, _FAULT_CT, body)
        except ClientDisconnect:
            if soap is not None:
                soap.close()
            return Answer(400, None, b"")
        finally:
            if guard is not None and op is not None:
                await guard.record(request, soap, op.action, result, person)

    async def _read(self, scope, receive) -> SoapRequest:
        limits = self.limits
        length = raw_type = None
        for name, value in scope["headers"]:  # ASGI: names in lower case; the first one counts
            if name == b"content-length":
                if length is None:
                    length = value
            elif name == b"content-type" and raw_type is None:
                raw_type = value
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                raise SoapFault("Sender", "Invalid Content-Length") from None
            if declared > limits.max_request_bytes:
                raise SoapFault("Sender", f"The request is larger than the limit of {limits.max_request_bytes} bytes")
        content_type = raw_type.decode("latin-1") if raw_type is not None else ""
        mime, params = content_type_params(content_type)
        ct_action = params.get("action")
        attachments = {}
        is_mtom = False
        if mime == "multipart/related":
            package = await mtom.parse_multipart_related(
                body_stream(receive),
                content_type,
                spool_threshold=limits.spool_threshold_bytes,
                max_total=limits.max_request_bytes,
                max_root=limits.max_envelope_bytes,
            )
            root_bytes = package.root
            attachments = package.attachments
            is_mtom = True
            _, root_params = content_type_params(package.root_content_type)
            ct_action = ct_action or root_params.get("action")
        elif mime in _SOAP_TYPES:
            root_bytes = await read_body(receive, limits.max_envelope_bytes)
        else:
            raise SoapFault("Sender", f"Unsupported Content-Type {mime!r}: expected application/soap+xml or multipart/related")
        try:
            root = parse_xml(root_bytes, max_depth=limits.max_xml_depth, huge=len(root_bytes) > 8 * 1024**2, what="SOAP envelope")
            header, body_element = envelope.split_envelope(root)
            addr = addressing.read_addressing(header, ct_action)
            envelope.check_must_understand(header, self.understood_headers)
        except SoapFault:
            for a in attachments.values():
                a.close()
            raise
        client = scope.get("client")
        return SoapRequest(
            envelope=root,
            header=header,
            body_element=body_element,
            addressing=addr,
            attachments=attachments,
            mtom=is_mtom,
            client_host=client[0] if client else None,
            endpoint=self.path,
        )

    def _respond(self, response: SoapResponse, request: SoapRequest) -> Answer | Response:
        xml = envelope.response_bytes(
            response.body_element,
            action=response.action,
            relates_to=request.addressing.message_id,
            message_id=new_message_id(),
            body_bytes=response.body_bytes,
        )
        cleanup = None
        spooled = request.attachments and any(a.spooled for a in request.attachments.values())
        if spooled or response.close is not None:
            cleanup = BackgroundTasks()
            if spooled:
                cleanup.add_task(request.close)
            if response.close is not None:
                cleanup.add_task(response.close)
        if response.mtom or response.attachments or request.mtom:
            content_type, stream = mtom.mtom_response(xml, response.attachments, action=response.action)
            if not response.attachments:
                # the envelope alone, already in memory: one write, no thread-pool hop per MIME piece
                return Answer(200, content_type.encode("latin-1"), b"".join(stream), cleanup)
            return StreamingResponse(stream, media_type=content_type, background=cleanup)
        return Answer(200, _soap_content_type(response.action), xml, cleanup)


class Answer:
    """A response held in memory: one ``http.response.start`` with its Content-Length, one
    ``http.response.body``, then the cleanup (an ASGI app like Starlette's Response, without
    building its header list through ``MutableHeaders``)."""

    __slots__ = ("status", "content_type", "body", "cleanup")

    def __init__(self, status: int, content_type: bytes | None, body: bytes, cleanup: BackgroundTasks | None = None) -> None:
        self.status = status
        self.content_type = content_type
        self.body = body
        self.cleanup = cleanup

    async def __call__(self, scope, receive, send) -> None:
        headers = [(b"content-length", b"%d" % len(self.body))]
        if self.content_type is not None:
            headers.append((b"content-type", self.content_type))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        await send({"type": "http.response.body", "body": self.body})
        if self.cleanup is not None:
            await self.cleanup()


_SOAP_TYPES = frozenset((SOAP_CT, "text/xml", "application/xml", ""))
_FAULT_CT = f"{SOAP_CT}; charset=UTF-8".encode()


@functools.lru_cache(maxsize=256)
def _soap_content_type(action: str) -> bytes:
    return f'{SOAP_CT}; charset=UTF-8; action="{action}"'.encode("latin-1")


async def body_stream(receive) -> AsyncIterator[bytes]:
    """The request body as its chunks arrive from the ASGI server (ClientDisconnect if it goes)."""
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                yield chunk
            if not message.get("more_body", False):
                return
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


async def read_body(receive, limit: int) -> bytes:
    """The whole request body, at most ``limit`` bytes (a Sender fault beyond)."""
    chunks: list[bytes] = []
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunk = message.get("body", b"")
            if chunk:
                total += len(chunk)
                if total > limit:
                    raise SoapFault("Sender", f"The SOAP envelope is larger than the limit of {limit} bytes")
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)
