"""HTTP/1.1 client of the Initiating Gateway's connections to the Responding Gateways.

The gateway's hot path is one small POST per community and an answer read as it arrives. httpx
(httpcore + h11) spent about a quarter of the gateway's CPU there, most of it in pure-Python
response parsing and buffer handling; this client parses with httptools (llhttp, as uvicorn does on
the server side) in an asyncio protocol and keeps what the gateway relies on:

* keep-alive connections pooled per origin (scheme, host, port, TLS context), at most
  ``max_connections`` in all; a request waits up to ``pool`` seconds for one. A request whose
  reused connection turns out closed by the other side before any answer byte is sent again once
  on a new connection (a keep-alive race, RFC 9112 9.3.1; the gateway only sends queries and
  retrieves, which are safe to repeat);
* timeouts: ``connect`` (TCP and the TLS handshake), ``read`` (the answer stalls that long between
  two reads), ``write`` (the request cannot be written that long);
* TLS with the community's trust anchors and the gateway's client certificate (an
  ``ssl.SSLContext`` per community, :mod:`xca.config`);
* streaming: the body is handed out chunk by chunk as it arrives; the connection stops reading
  while more than ``HIGH_WATER`` bytes wait for the consumer, so a relayed document is never held.

It sends no ``Accept-Encoding`` (the communities answer identity); a ``Content-Encoding`` of gzip or
deflate is decoded all the same. Proxies are not used: the gateway connects to each community.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import zlib
from collections.abc import AsyncIterator
from urllib.parse import urlsplit

import certifi
import httptools

HIGH_WATER = 1 << 20  # bytes received and not yet consumed before the connection stops reading
LOW_WATER = 256 * 1024
USER_AGENT = b"dir-xds-initiating-gateway"


class HTTPError(Exception):
    """A request that got no usable HTTP answer; the subclass says why."""


class ConnectError(HTTPError):
    pass


class ConnectTimeout(HTTPError):
    pass


class PoolTimeout(HTTPError):
    pass


class ReadTimeout(HTTPError):
    pass


class WriteTimeout(HTTPError):
    pass


class ReadError(HTTPError):
    pass


class RemoteProtocolError(HTTPError):
    pass


def default_ssl_context() -> ssl.SSLContext:
    """What a community without its own trust anchors is verified against (certifi's bundle, as
    httpx did)."""
    return ssl.create_default_context(cafile=certifi.where())


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: a request written, its response parsed as the bytes arrive."""

    def __init__(self, key: tuple) -> None:
        self.key = key
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.lost = False
        self.in_flight = False  # a request is out and its response not yet handed back
        self.answered = 0  # responses completed on this connection
        self._paused = False
        self._write_ready: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._begin()

    def _begin(self) -> None:
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.received = False
        self.error: HTTPError | None = None
        self.chunks: collections.deque[bytes] = collections.deque()
        self.buffered = 0
        self._informational = False

    # --- asyncio.Protocol ---

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if not self.in_flight:  # bytes nobody asked for: the connection cannot be trusted any more
            self.transport.close()  # type: ignore[union-attr]
            return
        self.received = True
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self.error = RemoteProtocolError(f"malformed HTTP answer: {e}")
            self.transport.close()  # type: ignore[union-attr]
        if self.buffered > HIGH_WATER and not self._paused and not self.lost and self.error is None:
            self._paused = True
            self.transport.pause_reading()  # type: ignore[union-attr]
        self._wake()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.complete and self.error is None:
            if self.headers_done and self._until_close():
                self.complete = True  # RFC 9112 6.3 item 8: the body ends with the connection
            elif exc is not None:
                self.error = ReadError(str(exc) or type(exc).__name__)
            else:
                self.error = RemoteProtocolError("the server closed the connection without a complete answer")
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_result(None)
        self._wake()

    def pause_writing(self) -> None:
        self._write_ready = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._write_ready is not None and not self._write_ready.done():
            self._write_ready.set_result(None)
        self._write_ready = None

    # --- httptools callbacks ---

    def on_message_begin(self) -> None:
        self.headers = []
        self._informational = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue and the like: the real answer follows
            self._informational = True
            return
        self.status = status
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.chunks.append(body)
        self.buffered += len(body)

    def on_message_complete(self) -> None:
        if self._informational:
            return
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive()

    # --- used by Client and Response ---

    def _until_close(self) -> bool:
        names = {n for n, _ in self.headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait(self, timeout: float, expired: type[HTTPError]) -> None:
        """Until something arrives (or the connection goes), at most ``timeout`` seconds."""
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self._waiter
        except TimeoutError:
            raise expired(f"no data for {timeout:g} s") from None
        finally:
            self._waiter = None

    async def send(self, data: bytes, write_timeout: float) -> None:
        if self.lost:
            raise ReadError("the connection was closed")
        self._begin()
        self.in_flight = True
        self.transport.write(data)  # type: ignore[union-attr]
        ready = self._write_ready
        if ready is not None:
            try:
                async with asyncio.timeout(write_timeout):
                    await ready
            except TimeoutError:
                raise WriteTimeout(f"the request could not be written for {write_timeout:g} s") from None

    async def next_chunk(self, read_timeout: float) -> bytes | None:
        while True:
            if self.chunks:
                chunk = self.chunks.popleft()
                self.buffered -= len(chunk)
                if self._paused and self.buffered < LOW_WATER and not self.lost:
                    self._paused = False
                    self.transport.resume_reading()  # type: ignore[union-attr]
                return chunk
            if self.complete:
                return None
            if self.error is not None:
                raise self.error
            await self.wait(read_timeout, ReadTimeout)

    @property
    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.lost and not self.chunks and self.error is None

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


class Response:
    """An answer whose headers have arrived; the body is read with :meth:`aiter_bytes` /
    :meth:`aread`. The connection goes back to the pool when the body has been read to its end,
    or with :meth:`aclose` (closed, if the body was not read to its end)."""

    def __init__(self, client: Client, conn: _Connection, read_timeout: float) -> None:
        self._client = client
        self._conn: _Connection | None = conn
        self._read_timeout = read_timeout
        self.status_code = conn.status
        headers: dict[str, str] = {}
        for name, value in conn.headers:
            n, v = name.decode("latin-1"), value.decode("latin-1")
            headers[n] = f"{headers[n]}, {v}" if n in headers else v
        self.headers = headers  # names in lower case

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        conn = self._conn
        if conn is None:
            return
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        decoder = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            decoder = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib header, detected
        elif encoding not in ("identity", ""):
            raise RemoteProtocolError(f"unsupported Content-Encoding {encoding[:30]!r}")
        while (chunk := await conn.next_chunk(self._read_timeout)) is not None:
            if decoder is not None:
                chunk = decoder.decompress(chunk)
                if not chunk:
                    continue
            yield chunk
        if decoder is not None and (tail := decoder.flush()):
            yield tail
        await self.aclose()  # read to the end: the connection goes back to the pool at once

    async def aread(self) -> bytes:
        return b"".join([c async for c in self.aiter_bytes()])

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            self._client._release(conn)


class Client:
    """Pooled HTTP/1.1 connections to the communities (see the module's description)."""

    def __init__(
        self, *, connect: float, read: float, write: float, pool: float, max_connections: int = 100
    ) -> None:
        self.connect_timeout = connect
        self.read_timeout = read
        self.write_timeout = write
        self.pool_timeout = pool
        self.max_connections = max_connections
        self._idle: dict[tuple, list[_Connection]] = {}
        self._open = 0  # connections in use or idle
        self._waiting: collections.deque[asyncio.Future[None]] = collections.deque()
        self._default_tls: ssl.SSLContext | None = None
        self._closed = False

    async def post(
        self, url: str, content: bytes, headers: dict[str, str], *, tls: ssl.SSLContext | None = None
    ) -> Response:
        """POST ``content`` to ``url`` and return once the answer's headers are in."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConnectError(f"not an http(s) URL: {url[:100]!r}")
        https = parts.scheme == "https"
        if https and tls is None:
            if self._default_tls is None:
                self._default_tls = default_ssl_context()
            tls = self._default_tls
        host = parts.hostname
        port = parts.port or (443 if https else 80)
        key = (host, port, tls if https else None)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        authority = parts.netloc.rsplit("@", 1)[-1]
        head = [f"POST {target} HTTP/1.1\r\nHost: {authority}\r\n".encode("latin-1"),
                b"User-Agent: ", USER_AGENT, b"\r\nAccept: */*\r\n"]
        for name, value in headers.items():
            head.append(f"{name}: {value}\r\n".encode("latin-1"))
        head.append(f"Content-Length: {len(content)}\r\n\r\n".encode("latin-1"))
        data = b"".join(head) + content
        for attempt in (0, 1):
            conn = await self._acquire(key)
            reused = conn.answered > 0
            try:
                await conn.send(data, self.write_timeout)
                while not conn.headers_done:
                    if conn.error is not None:
                        raise conn.error
                    await conn.wait(self.read_timeout, ReadTimeout)
            except (ReadError, RemoteProtocolError):
                self._discard(conn)
                if attempt == 0 and reused and not conn.received:
                    continue  # the other side had closed the idle connection: once more, afresh
                raise
            except BaseException:
                self._discard(conn)
                raise
            return Response(self, conn, self.read_timeout)
        raise AssertionError("unreachable")

    async def _acquire(self, key: tuple) -> _Connection:
        if self._closed:
            raise ConnectError("the client is closed")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.pool_timeout
        while True:
            idle = self._idle.get(key)
            while idle:
                conn = idle.pop()
                if not conn.lost and not conn.transport.is_closing():  # type: ignore[union-attr]
                    return conn
                self._forget(conn)
            if self._open >= self.max_connections:
                self._close_an_idle_connection()
            if self._open < self.max_connections:
                self._open += 1
                try:
                    return await self._connect(key)
                except BaseException:
                    self._forget(None)
                    raise
            waiter = loop.create_future()
            self._waiting.append(waiter)
            try:
                async with asyncio.timeout_at(deadline):
                    await waiter
            except TimeoutError:
                raise PoolTimeout(f"no connection free within {self.pool_timeout:g} s") from None
            finally:
                if waiter in self._waiting:
                    self._waiting.remove(waiter)

    async def _connect(self, key: tuple) -> _Connection:
        host, port, tls = key
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout):
                _, conn = await loop.create_connection(
                    lambda: _Connection(key), host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise ConnectTimeout(f"no connection to {host}:{port} within {self.connect_timeout:g} s") from None
        except OSError as e:  # refused, unreachable, and TLS handshakes that fail (ssl.SSLError)
            raise ConnectError(str(e) or type(e).__name__) from None
        return conn

    def _close_an_idle_connection(self) -> None:
        for idle in self._idle.values():
            if idle:
                conn = idle.pop(0)
                conn.close()
                self._forget(conn)
                return

    def _release(self, conn: _Connection) -> None:
        if conn.reusable and not self._closed:
            conn.in_flight = False
            conn.answered += 1
            self._idle.setdefault(conn.key, []).append(conn)
            self._notify()
        else:
            self._discard(conn)

    def _discard(self, conn: _Connection) -> None:
        conn.close()
        self._forget(conn)

    def _forget(self, conn: _Connection | None) -> None:
        """``conn`` (None: one that never came about) no longer counts against ``max_connections``."""
        self._open -= 1
        self._notify()

    def _notify(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for conn in idle:
                conn.close()
        self._idle.clear()
