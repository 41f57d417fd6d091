"""A test stand-in for a slow community: forwards each POST to a real Responding Gateway after a
fixed delay (or, with no target, answers an empty ITI-38 Success after the delay)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Iterator

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.live import free_port

EMPTY_ITI38_ANSWER = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" xmlns:wsa="http://www.w3.org/2005/08/addressing">'
    b'<env:Header><wsa:Action env:mustUnderstand="1">urn:ihe:iti:2007:CrossGatewayQueryResponse</wsa:Action></env:Header>'
    b'<env:Body><query:AdhocQueryResponse xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" '
    b'xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" '
    b'status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"><rim:RegistryObjectList/>'
    b"</query:AdhocQueryResponse></env:Body></env:Envelope>"
)


def app(delay: float, target: str | None) -> Starlette:
    async def forward(request: Request) -> Response:
        body = await request.body()
        await asyncio.sleep(delay)
        if target is None:
            return Response(EMPTY_ITI38_ANSWER, media_type="application/soap+xml; charset=UTF-8")
        async with httpx.AsyncClient(timeout=30) as client:
            r = await client.post(target, content=body, headers={"content-type": request.headers["content-type"]})
        return Response(r.content, status_code=r.status_code, media_type=r.headers.get("content-type"))

    return Starlette(routes=[Route("/xca/respond", forward, methods=["POST"])])


@contextlib.contextmanager
def delay_proxy(delay: float, target: str | None = None) -> Iterator[str]:
    """Serve the proxy in a thread; yields its /xca/respond URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app(delay, target), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the delay proxy did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}/xca/respond"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
