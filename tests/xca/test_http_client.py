"""The Initiating Gateway's HTTP/1.1 client (xca/http_client.py) against small asyncio servers:
keep-alive reuse, both body framings, timeouts, a keep-alive connection the server closed, mutual
TLS with the community's trust anchors and the gateway's client certificate, and a body streamed
without being held."""

from __future__ import annotations

import asyncio
import gzip
import ssl
from collections.abc import Awaitable, Callable

import pytest

from tests.security.conftest import DevPki, dev_pki  # noqa: F401 - fixture
from xca import http_client
from xca.config import CommunityConfig, client_ssl_context

Answer = Callable[[bytes, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """An HTTP/1.1 server answering each request with ``answer``; counts connections."""

    def __init__(self, answer: Answer, tls: ssl.SSLContext | None = None) -> None:
        self.answer = answer
        self.tls = tls
        self.connections = 0
        self.requests: list[bytes] = []
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Server:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"{'https' if self.tls else 'http'}://localhost:{port}/xca/respond"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                body = await reader.readexactly(length)
                self.requests.append(head + body)
                await self.answer(body, writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def client(**kw: float) -> http_client.Client:
    return http_client.Client(**{"connect": 2.0, "read": 2.0, "write": 2.0, "pool": 2.0, **kw})


async def echo(body: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


async def chunked(body: bytes, writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    for piece in (body[:3], body[3:]):
        writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
    writer.write(b"0\r\n\r\n")


@pytest.mark.parametrize("answer", [echo, chunked])
def test_answers_of_either_framing_come_back_over_one_kept_alive_connection(answer: Answer) -> None:
    async def run() -> None:
        async with Server(answer) as server:
            c = client()
            for n in range(3):
                r = await c.post(server.url, b"request %d" % n, {"Content-Type": "application/soap+xml"})
                assert r.status_code == 200
                assert await r.aread() == b"request %d" % n  # and the connection is free again
            assert server.connections == 1 and c._open == 1
            await c.aclose()
            assert server.requests[0].startswith(b"POST /xca/respond HTTP/1.1\r\nHost: localhost:")
            assert b"Content-Type: application/soap+xml\r\n" in server.requests[0]

    asyncio.run(run())


def test_a_keep_alive_connection_the_server_closed_is_replaced_without_an_error() -> None:
    served: set[int] = set()

    async def one_answer_per_connection(body: bytes, writer: asyncio.StreamWriter) -> None:
        if id(writer) in served:  # an idle timeout that struck as the next request came in
            writer.transport.abort()
            return
        served.add(id(writer))
        await echo(body, writer)

    async def run() -> None:
        async with Server(one_answer_per_connection) as server:
            c = client()
            for n in range(3):
                r = await c.post(server.url, b"q%d" % n, {})
                assert await r.aread() == b"q%d" % n
                await r.aclose()
            assert server.connections == 3 and len(server.requests) == 5
            assert c._open == 1  # the two dead connections are not counted against the pool
            await c.aclose()

    asyncio.run(run())


def test_a_refused_connection_and_a_silent_server_are_errors_of_their_kind() -> None:
    async def silent(body: bytes, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(5)

    async def run() -> None:
        async with Server(echo) as server:
            url = server.url
        c = client()
        with pytest.raises(http_client.ConnectError):
            await c.post(url, b"x", {})
        async with Server(silent) as server:
            with pytest.raises(http_client.ReadTimeout):
                await client(read=0.2).post(server.url, b"x", {})
        await c.aclose()

    asyncio.run(run())


def test_a_gzip_answer_is_decoded() -> None:
    async def gzipped(body: bytes, writer: asyncio.StreamWriter) -> None:
        data = gzip.compress(body * 100)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s" % (len(data), data))

    async def run() -> None:
        async with Server(gzipped) as server:
            c = client()
            r = await c.post(server.url, b"abc", {})
            assert await r.aread() == b"abc" * 100
            await r.aclose()
            await c.aclose()

    asyncio.run(run())


def test_a_large_body_streams_with_the_connection_paused_while_the_consumer_lags() -> None:
    block = bytes(range(256)) * 4096  # 1 MiB
    blocks = 24

    async def large(body: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (len(block) * blocks))
        for _ in range(blocks):
            writer.write(block)
            await writer.drain()

    async def run() -> None:
        async with Server(large) as server:
            c = client()
            r = await c.post(server.url, b"x", {})
            conn = r._conn
            assert conn is not None
            received = peak = 0
            async for chunk in r.aiter_bytes():
                received += len(chunk)
                peak = max(peak, conn.buffered)
                await asyncio.sleep(0.0005)
            await r.aclose()
            await c.aclose()
            assert received == len(block) * blocks
            # paused above HIGH_WATER: what is buffered stays near it, never the whole body
            assert peak < http_client.HIGH_WATER + 2 * 1024**2

    asyncio.run(run())


def test_mutual_tls_with_the_community_trust_anchors_and_the_gateway_client_certificate(
    dev_pki: DevPki,  # noqa: F811
) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=dev_pki.path("ca"))
    server_tls.load_cert_chain(*dev_pki.pair("node"))
    server_tls.verify_mode = ssl.CERT_REQUIRED

    async def run() -> None:
        async with Server(echo, tls=server_tls) as server:
            def community(**tls: str) -> CommunityConfig:
                return CommunityConfig("C", "urn:oid:1.2.3", server.url, **tls)

            c = client()
            mutual = client_ssl_context(community(ca=dev_pki.path("ca"), cert=dev_pki.path("client"),
                                                  key=dev_pki.path("client", "key")))
            r = await c.post(server.url, b"over TLS", {}, tls=mutual)
            assert await r.aread() == b"over TLS"
            await r.aclose()
            # no client certificate: the server refuses the handshake
            anonymous = client_ssl_context(community(ca=dev_pki.path("ca")))
            with pytest.raises(http_client.HTTPError):
                r = await c.post(server.url, b"x", {}, tls=anonymous)
                await r.aread()
            # a server certificate the community's trust anchors do not vouch for
            stranger = client_ssl_context(community(ca=dev_pki.path("other-ca"), cert=dev_pki.path("client"),
                                                    key=dev_pki.path("client", "key")))
            with pytest.raises(http_client.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await c.post(server.url, b"x", {}, tls=stranger)
            await c.aclose()

    asyncio.run(run())


def test_an_abandoned_body_closes_its_connection_and_a_full_pool_makes_the_next_request_wait() -> None:
    async def large(body: bytes, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % (4 * 1024**2))
        writer.write(b"x" * (4 * 1024**2))

    async def run() -> None:
        async with Server(large) as server:
            c = client(pool=0.3, max_connections=1)
            r = await c.post(server.url, b"x", {})
            with pytest.raises(http_client.PoolTimeout):
                await c.post(server.url, b"y", {})
            await anext(r.aiter_bytes())
            await r.aclose()  # half read: the connection cannot carry another request
            r = await c.post(server.url, b"z", {})
            assert len(await r.aread()) == 4 * 1024**2
            assert server.connections == 2 and c._open == 1
            await c.aclose()

    asyncio.run(run())


ENVELOPE = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>'
            b'<q:AdhocQueryResponse xmlns:q="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" status="ok">'
            b"%s</q:AdhocQueryResponse></s:Body></s:Envelope>")
FAULT = (b'<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver'
         b'</s:Value></s:Code><s:Reason><s:Text xml:lang="en">boom</s:Text></s:Reason></s:Fault></s:Body></s:Envelope>')


def test_a_soap_answer_is_parsed_as_its_pieces_arrive_and_bad_ones_are_upstream_errors() -> None:
    """xca.soap_client.call: an answer with a Content-Length is fed to the parser chunk by chunk;
    one that is not XML, a fault, an empty error: UpstreamError, the connection still reusable."""
    from xca.soap_client import UpstreamError, call

    good = ENVELOPE % (b"<q:item/>" * 2000)
    answers = {b"good": (200, [good[:7000], good[7000:20000], good[20000:]]), b"malformed": (200, [b"<a><b></a>", b"x"]),
               b"fault": (500, [FAULT]), b"empty": (500, [])}

    async def answer(body: bytes, writer: asyncio.StreamWriter) -> None:
        status, pieces = answers[body]
        writer.write(b"HTTP/1.1 %d X\r\nContent-Type: application/soap+xml\r\nContent-Length: %d\r\n\r\n"
                     % (status, sum(map(len, pieces))))
        for piece in pieces:
            writer.write(piece)
            await writer.drain()
            await asyncio.sleep(0.01)

    async def run() -> None:
        async with Server(answer) as server:
            c = client()
            got = await call(c, server.url, b"good", "urn:x")
            assert got.body.get("status") == "ok" and len(got.body) == 2000
            await got.aclose()
            for body, reason in ((b"malformed", "HTTP 200, the answer is not well-formed XML"),
                                 (b"fault", "SOAP fault s:Receiver boom"), (b"empty", "HTTP 500")):
                with pytest.raises(UpstreamError) as e:
                    await call(c, server.url, body, "urn:x")
                assert str(e.value) == reason
            assert server.connections == 1
            await c.aclose()

    asyncio.run(run())
