"""ITI-20 Record Audit Event over syslog: RFC 5424 messages, RFC 5425 TLS transport.

A message is ``<85>1 TIMESTAMP HOSTNAME APP-NAME PROCID IHE+RFC-3881 - BOM<AuditMessage ...>``:
facility 10 (security/authorization) and severity 5 (notice), MSGID "IHE+RFC-3881", no structured
data, the UTF-8 XML after a byte order mark (ITI TF-2 3.20.4.1.2; RFC 5424 6.4). Over TLS each
message is framed by octet counting, ``MSG-LEN SP SYSLOG-MSG`` (RFC 5425 4.3).

:class:`SyslogSender` drains the audit store's outbox in a background task: it claims a batch,
writes it on a kept-open connection, and removes it from the outbox once written; on any failure
the batch goes back with an exponential delay. Clinical traffic only ever writes the local store,
so a down audit repository delays delivery and nothing else. (RFC 5425 has no application-level
acknowledgement: a message written into a connection the repository drops at that moment is lost
to it, as with every syslog sender; the local store still holds it.)
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
import ssl

from xds.audit.store import AuditStore, Pending

log = logging.getLogger("xds.audit.syslog")

PRI = 10 * 8 + 5  # facility security/authorization, severity notice
MSGID = "IHE+RFC-3881"
BOM = b"\xef\xbb\xbf"


def _field(value: str, limit: int) -> str:
    """RFC 5424 6.2: PRINTUSASCII, no spaces, "-" when empty."""
    value = re.sub(r"[^\x21-\x7e]", "_", value)[:limit]
    return value or "-"


def syslog_message(xml: bytes, *, hostname: str, app_name: str, procid: str,
                   timestamp: dt.datetime | None = None) -> bytes:
    ts = (timestamp or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="milliseconds")
    header = (f"<{PRI}>1 {ts.replace('+00:00', 'Z')} {_field(hostname, 255)} {_field(app_name, 48)} "
              f"{_field(procid, 128)} {MSGID} - ")
    return header.encode("ascii") + BOM + xml


def octet_counted(message: bytes) -> bytes:
    return str(len(message)).encode("ascii") + b" " + message


def parse_octet_counted(buffer: bytearray) -> list[bytes]:
    """Complete frames taken off the front of ``buffer`` (for tests and a receiving repository)."""
    out: list[bytes] = []
    while True:
        space = buffer.find(b" ")
        if space <= 0:
            return out
        length = int(buffer[:space])
        end = space + 1 + length
        if len(buffer) < end:
            return out
        out.append(bytes(buffer[space + 1 : end]))
        del buffer[:end]


class SyslogSender:
    def __init__(
        self,
        store: AuditStore,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        *,
        hostname: str,
        app_name: str,
        procid: str,
        batch_size: int = 100,
        retry_min: float = 1.0,
        retry_max: float = 300.0,
        poll: float = 5.0,
        timeout: float = 10.0,
        linger: float = 0.5,
    ) -> None:
        self.store = store
        self.host, self.port = host, port
        self.ssl_context = ssl_context
        self.hostname, self.app_name, self.procid = hostname, app_name, procid
        self.batch_size = batch_size
        self.retry_min, self.retry_max = retry_min, retry_max
        self.poll = poll
        self.timeout = timeout
        self.linger = linger  # after a wake-up, let a batch gather (one outbox round trip for many)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task | None = None
        self._stopping = False
        self.sent = 0
        self.failures = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = self._loop.create_task(self._run(), name="audit-syslog-sender")

    def wake(self) -> None:
        """Something was queued (callable from any thread)."""
        loop, event = self._loop, self._wake
        if loop is None or event is None or loop.is_closed() or event.is_set():
            return  # (set: the sender has been woken and not yet claimed; it will see this one too)
        try:
            if asyncio.get_running_loop() is loop:
                event.set()
                return
        except RuntimeError:
            pass
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(event.set)

    async def stop(self, flush_timeout: float = 2.0) -> None:
        """Try to send what is queued for ``flush_timeout`` seconds, then stop (the rest stays queued)."""
        self._stopping = True
        if self._task is not None:
            self.wake()
            try:
                await asyncio.wait_for(asyncio.shield(self._task), flush_timeout)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            self._task = None
        await self._close()

    async def _run(self) -> None:
        delay = self.retry_min
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                batch = await asyncio.to_thread(self.store.claim, self.batch_size)
            except Exception:
                log.exception("audit outbox unreadable")
                batch = []
            if not batch:
                if self._stopping:
                    return
                await self._idle()
                continue
            ids = [p.event for p in batch]
            try:
                await self._send(batch)
            except asyncio.CancelledError:
                await asyncio.to_thread(self.store.failed, ids, "sender stopped", 0.0)
                raise
            except Exception as exc:
                self.failures += 1
                reason = f"{type(exc).__name__}: {exc}"
                log.warning("audit repository %s:%s unreachable (%s); %d message(s) stay queued, retry in %.0f s",
                            self.host, self.port, reason, len(batch), delay)
                await self._close()
                await asyncio.to_thread(self.store.failed, ids, reason, delay)
                if self._stopping:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.sleep(delay), delay + 1)
                delay = min(delay * 2, self.retry_max)
                continue
            delay = self.retry_min
            await asyncio.to_thread(self.store.delivered, ids)
            self.sent += len(ids)
            if len(batch) < self.batch_size and not self._stopping:
                # the outbox held no more than this: wait for a record instead of claiming none
                # (a claim is a write transaction: ~1.5 ms of CPU, as much as 10 records cost)
                await self._idle()

    async def _idle(self) -> None:
        """Until something is recorded here (or ``poll`` seconds, for another process's records),
        then ``linger`` seconds more, to gather a batch."""
        assert self._wake is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll)
        if not self._stopping:
            await asyncio.sleep(self.linger)

    async def _connection(self) -> asyncio.StreamWriter:
        if self._writer is not None and (self._writer.is_closing() or (self._reader and self._reader.at_eof())):
            await self._close()
        if self._writer is None:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_connection(self.host, self.port, ssl=self.ssl_context,
                                        server_hostname=self.host if self.ssl_context else None),
                self.timeout,
            )
        return self._writer

    async def _send(self, batch: list[Pending]) -> None:
        writer = await self._connection()
        for p in batch:
            xml = p.message.encode("utf-8")
            writer.write(octet_counted(syslog_message(xml, hostname=self.hostname, app_name=self.app_name,
                                                      procid=self.procid)))
        await asyncio.wait_for(writer.drain(), self.timeout)

    async def _close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(writer.wait_closed(), 1.0)
