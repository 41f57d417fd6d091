"""ITI-20 delivery from the durable outbox: an audit repository that is down delays delivery and
nothing else; what was queued survives a restart and arrives, in order, once it is back."""

from __future__ import annotations

import asyncio
import time

from lxml import etree

from tests.live import free_port
from tests.security import flows
from xds.audit import events
from xds.audit.context import AuditContext
from xds.audit.store import AuditStore
from xds.audit.syslog import BOM, SyslogSender
from xds.audit.trail import AuditTrail
from xds.config import TlsConfig
from xds.security.tls import client_ssl_context

SOURCE = events.Source("HDIRS", "urn:oid:2.25.1", "127.0.0.1")


def trail(path, dev_pki, port: int) -> AuditTrail:
    store = AuditStore.open(f"sqlite:///{path}")
    tls = TlsConfig(enabled=True, cert=dev_pki.path("node"), key=dev_pki.path("node", "key"), ca=dev_pki.path("ca"))
    sender = SyslogSender(store, "127.0.0.1", port, client_ssl_context(tls), hostname="dir", app_name="xds-HDIRS",
                          procid="1", retry_min=0.1, retry_max=0.2, poll=0.1, timeout=2)
    return AuditTrail(store, SOURCE, sender, application="xds HDIRS")


def query(patient: str) -> events.AuditMessage:
    return events.transaction_message(events.TRANSACTIONS["ITI-18"], outcome=0, node=events.Party("https://dir/xds/registry"),
                                      peer=events.Party("anonymous", "10.0.0.1"), source=SOURCE,
                                      context=AuditContext([patient]))


def test_queue_survives_a_down_repository_and_a_restart(tmp_path, dev_pki):
    port = free_port()  # nothing listens there yet
    db = tmp_path / "audit.sqlite"

    async def while_down() -> tuple[float, int]:
        t = trail(db, dev_pki, port)
        await t.start()
        started = time.monotonic()
        for i in range(3):
            await asyncio.to_thread(t.record, query(f"{i}^^^&2.16.840.1.113883.4.59&ISO"))
        recording = time.monotonic() - started
        deadline = time.monotonic() + 10
        while flows.outbox_attempts(tmp_path) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        failures = t.sender.failures
        await t.stop()
        t.close()
        return recording, failures

    recording, failures = asyncio.run(while_down())
    assert recording < 2.0 and failures >= 2  # retried; recording never waited for the repository
    with flows.audit_store(tmp_path) as store:
        assert store.queued() == 5  # start, 3 queries, stop: all kept

    repo = flows.SyslogRepository(flows.syslog_server_context(dev_pki), port)
    try:
        async def after_restart() -> None:
            t = trail(db, dev_pki, port)
            await t.start()
            deadline = time.monotonic() + 10
            while t.store.queued() and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await t.stop()
            t.close()

        asyncio.run(after_restart())
        received = repo.wait_for(7)
    finally:
        repo.close()
    types = [etree.fromstring(m.partition(b" - ")[2][len(BOM):]).find("EventIdentification/EventTypeCode")
             .get("csd-code") for m in received]
    # everything queued while down, the second start and stop; a retried batch may come after
    # newer messages (its retry delay), so the count, not the order, is the contract
    assert sorted(types) == sorted(["110120", "ITI-18", "ITI-18", "ITI-18", "110121", "110120", "110121"]), types
