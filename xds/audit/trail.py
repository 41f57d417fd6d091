"""The node's audit trail: every audit message goes into the local store (and its outbox) before the
transaction's answer leaves; the syslog sender delivers the outbox in the background. Records are
written by one thread, which commits whatever has been queued at once (:class:`AuditWriter`)."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import queue
import socket
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from xds.audit import events
from xds.audit.message import AuditMessage
from xds.audit.store import AuditStore, Record
from xds.audit.syslog import SyslogSender
from xds.config import NodeConfig

if TYPE_CHECKING:
    from sqlalchemy import Connection

log = logging.getLogger("xds.audit")


def database_url(cfg: NodeConfig) -> str:
    return cfg.audit.database_url or f"sqlite:///{cfg.data_path('audit.sqlite').resolve()}"


class AuditTrail:
    def __init__(self, store: AuditStore, source: events.Source, sender: SyslogSender | None = None,
                 application: str = "xds") -> None:
        self.store = store
        self.source = source
        self.sender = sender
        self.application = application
        self.lost = 0  # messages the store refused (logged; never raised into clinical traffic)
        self._writer: AuditWriter | None = None
        self._writer_lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> AuditTrail:
        a = cfg.audit
        store = AuditStore.open(database_url(cfg))
        host = urlsplit(cfg.base_url).hostname or cfg.http.host
        source = events.Source(a.source_id or cfg.name, a.enterprise_site_id or cfg.home_community_id, host)
        sender = None
        if a.repository:
            from xds.security.tls import client_ssl_context

            repo_host, _, repo_port = a.repository.rpartition(":")
            context = None
            if a.transport == "tls":
                context = client_ssl_context(cfg.tls, ca=a.ca, cert=a.cert, key=a.key)
            sender = SyslogSender(
                store, repo_host.strip("[]"), int(repo_port), context, hostname=socket.gethostname(),
                app_name=f"xds-{cfg.name}", procid=source.process_id, batch_size=a.batch_size,
                retry_min=a.retry_min_seconds, retry_max=a.retry_max_seconds, poll=a.poll_seconds,
            )
        return cls(store, source, sender, application=f"xds {cfg.name}")

    def record(self, message: AuditMessage, links: Iterable[tuple[str, str, str]] = ()) -> int | None:
        """Store ``message`` (queued for the audit repository when one is configured) and wait until
        it is committed; its event id. Never raises: a failure is logged (the event type only, no
        patient data) and counted, and gives None."""
        return self.writer.put(self._record(message, links)).result()

    async def record_async(self, message: AuditMessage, links: Iterable[tuple[str, str, str]] = ()) -> int | None:
        """:meth:`record` for the event loop: the caller's coroutine waits for the commit (the answer
        of a transaction leaves after its audit record is stored), the loop does not."""
        return await self.committed(message, links)

    def committed(self, message: AuditMessage, links: Iterable[tuple[str, str, str]] = ()) -> asyncio.Future:
        """Hand ``message`` to the writer now (on the event loop); the future resolves once it is
        committed, to its event id or None (see :meth:`record`)."""
        return asyncio.wrap_future(self.writer.put(self._record(message, links)))

    def submit(self, message: AuditMessage) -> None:
        """Record from anywhere, without waiting (TLS refusals: no answer depends on it)."""
        self.writer.put(self._record(message, ()))

    def _record(self, message: AuditMessage, links: Iterable[tuple[str, str, str]]) -> Record:
        return Record(message, self.sender is not None, tuple(links))

    @property
    def writer(self) -> AuditWriter:
        writer = self._writer
        if writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = AuditWriter(self.store, self._stored, self._failed)
                writer = self._writer
        return writer

    def _stored(self, records: list[Record]) -> None:
        if self.sender is not None:
            self.sender.wake()

    def _failed(self, record: Record, exc: BaseException) -> None:
        self.lost += 1
        log.error("audit record %s %s NOT stored: %s", record.message.event_id.text, record.message.transaction, exc)

    async def start(self) -> None:
        if self.sender is not None:
            self.sender.start()
        await self.record_async(events.application_activity(
            started=True, application=self.application, source=self.source, launcher=_launcher()))

    async def stop(self) -> None:
        await self.record_async(events.application_activity(
            started=False, application=self.application, source=self.source, launcher=_launcher()))
        if self.sender is not None:
            await self.sender.stop()

    def close(self) -> None:
        """Store what is still queued, stop the writer, close the store."""
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        self.store.close()


class AuditWriter:
    """The thread that writes the node's audit records: group commit.

    Callers queue a :class:`Record` and get a future of its event id; the thread takes everything
    queued at that moment and stores it in one transaction (:meth:`AuditStore.append_batch`), then
    resolves the futures. No record waits for a timer: one that arrives while a transaction is being
    written goes into the next one, so under load several requests share a transaction, and alone a
    record is committed at once. Durability is the store's, per record, before its future
    resolves: a transaction's answer that awaits it leaves after its audit record is committed, as
    with one transaction per record. A batch the store refuses is written again record by record,
    so that one bad record does not take the others with it; a record that still fails resolves
    to None (``on_failed``), never to an exception."""

    MAX_BATCH = 256

    def __init__(self, store: AuditStore, on_stored: Callable[[list[Record]], None],
                 on_failed: Callable[[Record, BaseException], None]) -> None:
        self.store = store
        self.on_stored = on_stored
        self.on_failed = on_failed
        self._queue: queue.SimpleQueue[tuple[Record, Future] | None] = queue.SimpleQueue()
        self._closed = False
        self._connection: Connection | None = None  # the writer thread's own
        self._thread = threading.Thread(target=self._run, name="audit-writer", daemon=True)
        self._thread.start()

    def put(self, record: Record) -> Future:
        future: Future = Future()
        if self._closed:
            future.set_result(self._write_one(record))
            return future
        self._queue.put((record, future))
        return future

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, then stop (later records are written by the caller's thread)."""
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            stop = item is None
            batch = [] if item is None else [item]
            while len(batch) < self.MAX_BATCH:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stop = True
                    break
                batch.append(item)
            if batch:
                try:
                    self._write(batch)
                except Exception:  # the writer outlives any one batch: every later answer waits on it
                    log.exception("audit writer: a batch of %d records failed", len(batch))
                    for _, future in batch:
                        _resolve(future, None)
            if stop:
                self._drop_connection()
                return

    def _write(self, batch: list[tuple[Record, Future]]) -> None:
        records = [r for r, _ in batch]
        try:
            if self._connection is None:
                self._connection = self.store.writer_connection()
            ids: list[int | None] = list(self.store.append_batch(records, self._connection))
        except Exception:
            self._drop_connection()
            if len(batch) == 1:
                ids = [self._write_one(records[0])]
            else:
                log.warning("audit batch of %d records refused; storing them one by one", len(batch))
                ids = [self._write_one(r) for r in records]
        stored = [r for r, i in zip(records, ids, strict=True) if i is not None]
        if stored:
            try:
                self.on_stored(stored)
            except Exception:
                log.exception("audit: waking the sender failed")
        for (_, future), event in zip(batch, ids, strict=True):
            _resolve(future, event)

    def _drop_connection(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:
                log.debug("audit writer: closing its connection failed", exc_info=True)

    def _write_one(self, record: Record) -> int | None:
        try:
            return self.store.append_batch([record])[0]
        except Exception as exc:
            self.on_failed(record, exc)
            return None


def _resolve(future: Future, event: int | None) -> None:
    """Resolve a waiter's future unless it was cancelled (its request went away: the record is
    stored all the same). Once running, a concurrent future can no longer be cancelled."""
    if future.done():
        return
    if future.set_running_or_notify_cancel():
        future.set_result(event)


def _launcher() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid()) if hasattr(os, "getuid") else ""
