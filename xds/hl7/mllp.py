"""Minimal Lower Layer Protocol (HL7 v2.5 Appendix C.4, MLLP release 1) over asyncio TCP.

A frame is ``0x0B message 0x1C 0x0D``. The listener answers each frame with the handler's reply,
in order, one connection per task. It is lenient where senders differ and strict where input is
hostile: bytes outside frames are dropped, 0x1C alone ends a frame, a start block inside a frame
abandons the unfinished frame, a frame above ``max_message_bytes`` is drained without being kept
and answered by ``oversize_reply``; nothing a peer sends stops the listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

START_BLOCK = b"\x0b"
END_BLOCK = b"\x1c"
CARRIAGE_RETURN = b"\x0d"
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
HEAD_BYTES = 4096  # what is kept of an oversized frame, enough for its MSH

Handler = Callable[[bytes], Awaitable[bytes]]
OversizeReply = Callable[[bytes, int], bytes]


@dataclass(frozen=True)
class Peer:
    """The sending system of the message being handled (for the handler's audit record)."""

    host: str
    port: int
    certificate: str = ""  # the verified TLS client certificate's subject, "" without TLS


# set for each connection's task: a handler reads it with ``current_peer.get()``
current_peer: contextvars.ContextVar[Peer | None] = contextvars.ContextVar("mllp_peer", default=None)


def frame(payload: bytes) -> bytes:
    return START_BLOCK + payload + END_BLOCK + CARRIAGE_RETURN


@dataclass(frozen=True)
class Frame:
    """A complete frame's content; ``oversized`` frames carry only their first bytes."""

    payload: bytes
    oversized: bool = False


class FrameDecoder:
    """Splits a byte stream into MLLP frames (no I/O: feed it what the socket gives)."""

    _OUTSIDE, _INSIDE, _DRAINING = range(3)

    def __init__(self, max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES):
        self.max_message_bytes = max_message_bytes
        self._state = self._OUTSIDE
        self._buf = bytearray()
        self._head = b""
        self._after_end = False
        self.discarded_bytes = 0  # outside any frame
        self.abandoned_frames = 0  # start block seen again before the end block

    @property
    def in_frame(self) -> bool:
        return self._state != self._OUTSIDE

    def feed(self, data: bytes) -> list[Frame]:
        frames: list[Frame] = []
        i, n = 0, len(data)
        while i < n:
            if self._state == self._OUTSIDE:
                if self._after_end:
                    # the CR that closes a frame is not noise, even when it comes in the next read
                    self._after_end = False
                    if data[i : i + 1] == CARRIAGE_RETURN:
                        i += 1
                        continue
                s = data.find(START_BLOCK, i)
                if s == -1:
                    self.discarded_bytes += n - i
                    break
                self.discarded_bytes += s - i
                self._state, i = self._INSIDE, s + 1
                continue
            e = data.find(END_BLOCK, i)
            stop = n if e == -1 else e
            s = data.find(START_BLOCK, i, stop)
            if s != -1:
                if self._state == self._DRAINING:
                    frames.append(Frame(self._head, oversized=True))
                else:
                    self.abandoned_frames += 1
                self._buf.clear()
                self._state, i = self._INSIDE, s + 1
                continue
            if self._state == self._INSIDE:
                if len(self._buf) + (stop - i) > self.max_message_bytes:
                    self._head = bytes(self._buf[:HEAD_BYTES]) + data[i : i + max(0, HEAD_BYTES - len(self._buf))]
                    self._buf.clear()
                    self._state = self._DRAINING
                else:
                    self._buf += data[i:stop]
            if e == -1:
                break
            if self._state == self._DRAINING:
                frames.append(Frame(self._head, oversized=True))
                self._head = b""
            else:
                frames.append(Frame(bytes(self._buf)))
                self._buf.clear()
            self._state, i, self._after_end = self._OUTSIDE, e + 1, True
        return frames


class _Connection:
    def __init__(self, task: asyncio.Task, peer: str):
        self.task = task
        self.peer = peer
        self.busy = False


class MllpServer:
    """An MLLP listener; ``handler`` maps a message to its reply (both without framing)."""

    def __init__(
        self,
        handler: Handler,
        host: str = "127.0.0.1",
        port: int = 2575,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        oversize_reply: OversizeReply | None = None,
        max_connections: int = 512,
        frame_timeout: float = 60.0,
        idle_timeout: float | None = None,
        write_timeout: float = 30.0,
        ssl_context: ssl.SSLContext | None = None,
        on_tls_refused: Callable[[Any], None] | None = None,
        handshake_timeout: float = 10.0,
    ):
        self.handler = handler
        self.host = host
        self.requested_port = port
        self.max_message_bytes = max_message_bytes
        self.oversize_reply = oversize_reply
        self.max_connections = max_connections
        self.frame_timeout = frame_timeout  # a frame begun must end within this
        self.idle_timeout = idle_timeout  # between frames; None: keep the connection
        self.write_timeout = write_timeout
        # MLLP over TLS (ITI TF-2a 3.19.6; xds.security.tls): the handshake, and the client
        # certificate check, come before the first frame; a refusal is reported to on_tls_refused
        self.ssl_context = ssl_context
        self.on_tls_refused = on_tls_refused
        self.handshake_timeout = handshake_timeout
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._closing = False

    @property
    def port(self) -> int:
        if self._server is None or not self._server.sockets:
            return self.requested_port
        return self._server.sockets[0].getsockname()[1]

    @property
    def connection_count(self) -> int:
        return len(self._connections)

    async def start(self) -> MllpServer:
        if self.ssl_context is not None:
            from xds.security.tls import start_tls_stream_server

            self._server = await start_tls_stream_server(self._serve, self.host, self.requested_port, self.ssl_context,
                                                         "mllp", self.on_tls_refused, self.handshake_timeout)
        else:
            self._server = await asyncio.start_server(self._serve, self.host, self.requested_port)
        return self

    async def __aenter__(self) -> MllpServer:
        return await self.start()

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self, grace: float = 5.0) -> None:
        """Stop accepting; let messages being handled finish (``grace`` seconds), then disconnect."""
        if self._server is None:
            return
        self._closing = True
        self._server.close()
        for conn in list(self._connections):
            if not conn.busy:
                conn.task.cancel()
        pending = [c.task for c in self._connections]
        if pending:
            _, late = await asyncio.wait(pending, timeout=grace)
            for task in late:
                task.cancel()
            if late:
                await asyncio.wait(late, timeout=1.0)
        await self._server.wait_closed()
        self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peername = writer.get_extra_info("peername")
        peer = f"{peername[0]}:{peername[1]}" if isinstance(peername, tuple) else str(peername)
        if self._closing or len(self._connections) >= self.max_connections:
            log.warning("MLLP connection from %s refused: %s", peer,
                        "closing" if self._closing else f"{self.max_connections} connections open")
            writer.close()
            return
        conn = _Connection(asyncio.current_task(), peer)  # type: ignore[arg-type]
        self._connections.add(conn)
        decoder = FrameDecoder(self.max_message_bytes)
        try:
            certificate = ""
            if self.ssl_context is not None:  # the handshake has succeeded (start)
                from xds.security.tls import stream_peer_certificate

                cert = stream_peer_certificate(writer)
                certificate = cert.subject if cert is not None else ""
            if isinstance(peername, tuple):
                current_peer.set(Peer(str(peername[0]), int(peername[1]), certificate))
            await self._converse(conn, reader, writer, decoder)
        except asyncio.CancelledError:
            pass
        except (ConnectionError, TimeoutError) as exc:
            log.info("MLLP connection from %s ended: %s", peer, type(exc).__name__)
        except Exception as exc:
            log.error("MLLP connection from %s dropped: handler failed (%s)", peer, type(exc).__name__)
            log.debug("MLLP handler failure", exc_info=True)
        finally:
            self._connections.discard(conn)
            if decoder.in_frame:
                log.warning("MLLP connection from %s closed in the middle of a frame", peer)
            if decoder.discarded_bytes or decoder.abandoned_frames:
                log.warning("MLLP connection from %s: %d bytes outside frames, %d unfinished frames dropped",
                            peer, decoder.discarded_bytes, decoder.abandoned_frames)
            writer.close()
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    async def _converse(self, conn: _Connection, reader: asyncio.StreamReader,
                        writer: asyncio.StreamWriter, decoder: FrameDecoder) -> None:
        while not self._closing:
            timeout = self.frame_timeout if decoder.in_frame else self.idle_timeout
            data = await asyncio.wait_for(reader.read(65536), timeout)
            if not data:
                return
            for item in decoder.feed(data):
                conn.busy = True
                if item.oversized:
                    reply = self.oversize_reply(item.payload, self.max_message_bytes) if self.oversize_reply else None
                else:
                    reply = await self.handler(item.payload)
                if reply is not None:
                    writer.write(frame(reply))
                    await asyncio.wait_for(writer.drain(), self.write_timeout)
                conn.busy = False
                if self._closing:
                    return
