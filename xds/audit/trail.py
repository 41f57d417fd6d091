"""The node's audit trail: every audit message goes into the local store (and its outbox) before the
transaction's answer leaves; the syslog sender delivers the outbox in the background."""

from __future__ import annotations

import asyncio
import getpass
import logging
import os
import socket
from collections.abc import Iterable
from urllib.parse import urlsplit

from xds.audit import events
from xds.audit.message import AuditMessage
from xds.audit.store import AuditStore
from xds.audit.syslog import SyslogSender
from xds.config import NodeConfig

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
        """Store ``message`` (queued for the audit repository when one is configured). Never raises:
        a failure is logged (the event type only, no patient data) and counted."""
        try:
            event = self.store.append(message, queue=self.sender is not None, links=links)
        except Exception as exc:
            self.lost += 1
            log.error("audit record %s %s NOT stored: %s", message.event_id.text, message.transaction, exc)
            return None
        if self.sender is not None:
            self.sender.wake()
        return event

    def submit(self, message: AuditMessage) -> None:
        """Record from anywhere: off the event loop when called on it (TLS refusals)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.record(message)
            return
        loop.run_in_executor(None, self.record, message)

    async def start(self) -> None:
        if self.sender is not None:
            self.sender.start()
        await asyncio.to_thread(self.record, events.application_activity(
            started=True, application=self.application, source=self.source, launcher=_launcher()))

    async def stop(self) -> None:
        await asyncio.to_thread(self.record, events.application_activity(
            started=False, application=self.application, source=self.source, launcher=_launcher()))
        if self.sender is not None:
            await self.sender.stop()

    def close(self) -> None:
        self.store.close()


def _launcher() -> str:
    try:
        return getpass.getuser()
    except Exception:
        return str(os.getuid()) if hasattr(os, "getuid") else ""
