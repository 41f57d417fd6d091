"""Replay detection of XUA identity assertions (ITI-40; SAML 2.0 Core 1.3.4 and 2.5.1.5): the node's
memory of the assertions it has accepted, shared by all its processes.

An assertion is remembered by its Issuer and ID (an assertion ID names one assertion only, SAML
Core 1.3.4) together with a fingerprint of the message that first presented it, until it expires
(``NotOnOrAfter`` plus the allowed clock skew: after that the verifier refuses it anyway, so the
row can go). Presenting it again in *another* message within that time is a replay; the same
message again (same ``wsa:MessageID``, Body and client certificate) is a retransmission, which
WS-Addressing 1.0 Core 3.2 allows, and is served.

The memory is a table, ``xua_assertion``, in a database every worker process of the node opens:
by default a SQLite file of its own (``<data_dir>/xua.sqlite``), or a PostgreSQL URL when the
node runs on several hosts (``[xua] replay_database_url``). Not the registry's database: the
check writes a row on every request of an XUA-protected endpoint, and in the registry's SQLite
file each of those writes would queue behind the registry's write transactions (ITI-41/42,
RAD-68) and turn every query into a writer. The table is a cache with no history worth keeping
(losing it reopens the replay window of the assertions alive at that moment, no more), so it needs
neither the registry's migrations nor its backups.

One statement per presentation: ``INSERT ... ON CONFLICT DO NOTHING`` on the primary key (issuer,
ID); only when it inserted nothing is the earlier row read. Each process deletes the expired rows
at its first presentation after ``purge_seconds`` (index on ``expires``).

A SQLite memory is written without fsync (``synchronous=OFF``): the registry's engines sync at
each WAL checkpoint, every 20 commits, which put 10-300 ms on one request in twenty on a slow disk.
What that costs is durability against an operating-system crash or power loss, which can lose the
last rows (a replay window, no more) or leave the file unreadable: a memory that does not pass
``PRAGMA quick_check`` when the node starts is set aside (``*.unreadable``) and a new one begun.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Column,
    Engine,
    Float,
    Index,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    event,
    func,
    select,
    update,
)
from sqlalchemy.exc import DBAPIError

log = logging.getLogger("xds.security.replay")

metadata = MetaData()

xua_assertion = Table(
    "xua_assertion",
    metadata,
    Column("issuer", String, primary_key=True, doc="saml2:Issuer"),
    Column("assertion_id", String, primary_key=True, doc="saml2:Assertion/@ID"),
    Column("message", String(64), nullable=False, doc="fingerprint of the message that first presented it"),
    Column("first_seen", Float, nullable=False, doc="POSIX time"),
    Column("expires", Float, nullable=False, doc="NotOnOrAfter + clock skew, POSIX time"),
    Index("ix_xua_assertion_expires", "expires"),
)


_KEY = (xua_assertion.c.issuer == bindparam("k_issuer")) & (xua_assertion.c.assertion_id == bindparam("k_id"))
_EARLIER = select(xua_assertion.c.message, xua_assertion.c.first_seen, xua_assertion.c.expires).where(_KEY)
_RENEW = update(xua_assertion).where(_KEY).values(message=bindparam("new_message"),
                                                  first_seen=bindparam("new_first_seen"),
                                                  expires=bindparam("new_expires"))


@dataclass(frozen=True)
class Sighting:
    """The first presentation of an assertion that has just been presented again."""

    first_seen: float
    message: str


class _Unreadable(Exception):
    pass


def _engine(url: str) -> Engine:
    from xds.registry.db import create_registry_engine

    engine = create_registry_engine(url, pool_size=5)
    if engine.dialect.name == "sqlite":
        @event.listens_for(engine, "connect")
        def _no_fsync(dbapi_conn: Any, _record: Any) -> None:  # after the engine's own pragmas
            dbapi_conn.execute("PRAGMA synchronous=OFF")
    return engine


def message_fingerprint(message_id: str, body: bytes, client_certificate: str = "") -> str:
    """What makes two presentations "the same message": its wsa:MessageID, its Body as received
    and the TLS client certificate it came with (SHA-256, hex)."""
    h = hashlib.sha256()
    for part in (message_id.encode(), client_certificate.encode()):
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    h.update(body)
    return h.hexdigest()


class ReplayCache:
    def __init__(self, engine: Engine, *, purge_seconds: float = 60.0) -> None:
        self.engine = engine
        self.purge_seconds = purge_seconds
        self._next_purge = 0.0
        self._insert = self._insert_ignoring_duplicates()

    @classmethod
    def open(cls, url: str, *, purge_seconds: float = 60.0) -> ReplayCache:
        cache = cls(_engine(url), purge_seconds=purge_seconds)
        try:
            cache._create()
        except (DBAPIError, _Unreadable) as e:
            path = cache.engine.url.database if cache.engine.dialect.name == "sqlite" else None
            if not path or path == ":memory:":
                raise
            log.warning("XUA replay memory %s unreadable (%s): set aside, starting a new one", path,
                        type(getattr(e, "orig", e)).__name__)
            cache.engine.dispose()
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.replace(path + suffix, f"{path}{suffix}.unreadable")
            cache = cls(_engine(url), purge_seconds=purge_seconds)
            cache._create()
        return cache

    def _create(self) -> None:
        with self.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
            metadata.create_all(conn)
            if conn.dialect.name == "sqlite" and conn.exec_driver_sql("PRAGMA quick_check").scalar() != "ok":
                raise _Unreadable("PRAGMA quick_check")

    def close(self) -> None:
        self.engine.dispose()

    def _insert_ignoring_duplicates(self) -> Any:
        if self.engine.dialect.name == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as dialect_insert
        else:  # SQLite (the node supports these two)
            from sqlalchemy.dialects.sqlite import insert as dialect_insert
        return dialect_insert(xua_assertion).on_conflict_do_nothing()

    def present(self, issuer: str, assertion_id: str, message: str, expires: float,
                now: float | None = None) -> Sighting | None:
        """Record that ``message`` presents the assertion (valid until ``expires``). Returns the
        earlier sighting when another message presented it before (a replay), None otherwise."""
        now = time.time() if now is None else now
        row = {"issuer": issuer, "assertion_id": assertion_id, "message": message, "first_seen": now,
               "expires": expires}
        with self.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
            earlier = None
            if conn.execute(self._insert, row).rowcount != 1:
                key = {"k_issuer": issuer, "k_id": assertion_id}
                earlier = conn.execute(_EARLIER, key).first()
                if earlier is not None and earlier.expires <= now:
                    # a row its purge has not reached yet, of an assertion no longer valid then
                    conn.execute(_RENEW, {**key, "new_message": message, "new_first_seen": now, "new_expires": expires})
                    earlier = None
        if now >= self._next_purge:
            self._next_purge = now + self.purge_seconds
            self.purge(now)
        if earlier is None or earlier.message == message:
            return None
        return Sighting(float(earlier.first_seen), earlier.message)

    def purge(self, now: float | None = None) -> int:
        """Forget the assertions that have expired; how many."""
        now = time.time() if now is None else now
        try:
            with self.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
                removed = conn.execute(delete(xua_assertion).where(xua_assertion.c.expires <= now)).rowcount
        except Exception as e:  # the next purge will do; the check itself must not fail for it
            log.warning("XUA replay memory: purge failed (%s)", type(e).__name__)
            return 0
        if removed:
            log.debug("XUA replay memory: %d expired assertion(s) forgotten", removed)
        return int(removed or 0)

    def __len__(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(xua_assertion)).scalar() or 0)
