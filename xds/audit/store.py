"""The node's local audit store: an append-only table of audit messages, their subjects, and the
queue of messages still to be sent to the Audit Record Repository.

It is its own database (``audit.database_url``; default SQLite ``<data_dir>/audit.sqlite``), not a
revision of the registry's schema: the audit trail has its own retention and access rules under
PHIPA, a node without a registry still audits, and a registry restore must never rewrite who looked
at what. Rows of ``audit_event`` and ``audit_object`` can be inserted, never updated or deleted
(triggers refuse it, in SQLite and PostgreSQL alike); ``audit_outbox`` is a queue and shrinks as
messages are delivered.

"Who accessed this patient's / this study's exams, when, from where": :meth:`AuditStore.accesses`.
A document or study is tied to its patient by the import that brought it (ITI-41/42, RAD-68), so a
retrieve that names only document or study ids is found by the patient as well.
"""

from __future__ import annotations

import datetime as dt
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache

from sqlalchemy import (
    Column,
    Connection,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    and_,
    delete,
    insert,
    or_,
    select,
    update,
)

from xds.audit.message import AuditMessage

metadata = MetaData()

audit_event = Table(
    "audit_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_time", String, nullable=False, doc="EventDateTime, ISO 8601 UTC"),
    Column("recorded_at", Float, nullable=False),
    Column("event_id", String, nullable=False, doc="EventID csd-code, e.g. 110112"),
    Column("event_type", String, nullable=False, default="", doc="first EventTypeCode csd-code"),
    Column("event_name", String, nullable=False, default="", doc="its originalText"),
    Column("transaction_name", String, nullable=False, default="", doc="ITI-18, RAD-69, ... or empty"),
    Column("action", String, nullable=False, default=""),
    Column("outcome", Integer, nullable=False),
    Column("user_id", String, nullable=False, default="", doc="the human requestor, else the requesting system"),
    Column("user_name", String, nullable=False, default=""),
    Column("roles", String, nullable=False, default=""),
    Column("purposes", String, nullable=False, default=""),
    Column("system", String, nullable=False, default="", doc="the requesting system: certificate subject or UserID"),
    Column("address", String, nullable=False, default="", doc="the requestor's network access point"),
    Column("message", Text, nullable=False, doc="the AuditMessage XML as sent"),
    Index("ix_audit_event_time", "event_time"),
)

audit_object = Table(
    "audit_object",
    metadata,
    Column("event", Integer, ForeignKey("audit_event.id"), nullable=False),
    Column("kind", String, nullable=False, doc="patient, document, study, submission, query, resource"),
    Column("object_id", String, nullable=False),
    Index("ix_audit_object_kind_id", "kind", "object_id"),
)

audit_link = Table(
    "audit_link",
    metadata,
    Column("kind", String, primary_key=True, doc="document or study"),
    Column("object_id", String, primary_key=True),
    Column("patient_id", String, primary_key=True),
    Index("ix_audit_link_patient", "patient_id"),
)

audit_outbox = Table(
    "audit_outbox",
    metadata,
    Column("event", Integer, ForeignKey("audit_event.id"), primary_key=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt", Float, nullable=False, default=0.0),
    Column("claimed_until", Float, nullable=False, default=0.0),
    Column("claim", String, nullable=False, default=""),
    Column("last_error", String, nullable=False, default=""),
)

_APPEND_ONLY = ("audit_event", "audit_object")


def _append_only_ddl(dialect: str) -> list[str]:
    if dialect == "sqlite":
        return [
            f"CREATE TRIGGER IF NOT EXISTS {t}_no_{op.lower()} BEFORE {op} ON {t} "
            f"BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
            for t in _APPEND_ONLY
            for op in ("UPDATE", "DELETE")
        ]
    if dialect == "postgresql":
        ddl = [
            "CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$"
        ]
        for t in _APPEND_ONLY:
            ddl += [
                f"DROP TRIGGER IF EXISTS {t}_append_only ON {t}",
                f"CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t} "
                f"FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
            ]
        return ddl
    return []


@dataclass(frozen=True)
class Access:
    """One audited event touching the subject asked about."""

    id: int
    time: str
    transaction: str
    event: str
    action: str
    outcome: int
    user: str  # the human requestor (XUA) if known, else the requesting system's UserID
    roles: str
    purposes: str
    system: str
    address: str


@dataclass(frozen=True)
class Pending:
    event: int
    message: str
    attempts: int


def _objects(message: AuditMessage) -> list[tuple[str, str]]:
    kinds = {"2": "patient", "9": "document", "110180": "study", "12": "resource"}
    out: list[tuple[str, str]] = []
    for o in message.objects:
        if o.role == "24":
            kind = "query"
        elif o.role == "20":
            kind = "submission"
        else:
            kind = kinds.get(o.id_type.code, o.id_type.code)
        out.append((kind, o.object_id))
    return out


def _index_fields(message: AuditMessage) -> dict[str, str]:
    human = next((p for p in message.participants if p.kind == "person"), None)
    system = next((p for p in message.participants if p.kind == "system"), None)
    first = human or system
    return {
        "user_id": first.user_id if first else "",
        "user_name": first.user_name if first else "",
        "roles": "; ".join(f"{r.code}^{r.text}^{r.system}" for r in (human.roles if human else [])),
        "purposes": "; ".join(f"{p.code}^{p.text}^{p.system}" for p in message.purposes_of_use),
        "system": (system.user_name or system.user_id) if system else "",
        "address": (system or first).network_access_point if (system or first) else "",
    }


@dataclass(frozen=True)
class Record:
    """One message to store: queued for the audit repository or not, and the (kind, object id,
    patient id) links an import taught."""

    message: AuditMessage
    queue: bool = True
    links: tuple[tuple[str, str, str], ...] = ()


_EVENT_COLUMNS = ("event_time", "recorded_at", "event_id", "event_type", "event_name", "transaction_name", "action",
                  "outcome", "user_id", "user_name", "roles", "purposes", "system", "address", "message")


def _event_row(message: AuditMessage) -> tuple:
    """The ``audit_event`` values of ``message``, in :data:`_EVENT_COLUMNS` order."""
    index = _index_fields(message)
    first_type = message.event_types[0] if message.event_types else None
    return (
        message.time.astimezone(dt.UTC).isoformat(timespec="milliseconds"),
        time.time(),
        message.event_id.code,
        first_type.code if first_type else "",
        first_type.text if first_type else message.event_id.text,
        message.transaction,
        message.action,
        message.outcome,
        index["user_id"], index["user_name"], index["roles"], index["purposes"], index["system"], index["address"],
        message.to_text(),
    )


@dataclass(frozen=True)
class _Statements:
    event: str
    object: str
    outbox: str
    lastrowid: bool  # the event's id from cursor.lastrowid (SQLite), else from RETURNING


@cache
def _statements(paramstyle: str, dialect: str) -> _Statements:
    def marks(n: int) -> str:
        return ", ".join(["?" if paramstyle == "qmark" else "%s"] * n)

    lastrowid = dialect == "sqlite"
    return _Statements(
        event=f"INSERT INTO audit_event ({', '.join(_EVENT_COLUMNS)}) VALUES ({marks(len(_EVENT_COLUMNS))})"
              + ("" if lastrowid else " RETURNING id"),
        object=f"INSERT INTO audit_object (event, kind, object_id) VALUES ({marks(3)})",
        outbox=f"INSERT INTO audit_outbox (event, attempts, next_attempt, claimed_until, claim, last_error) "
               f"VALUES ({marks(1)}, 0, 0, 0, '', '')",
        lastrowid=lastrowid,
    )


class AuditStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, url: str) -> AuditStore:
        from xds.registry.db import create_registry_engine

        store = cls(create_registry_engine(url, pool_size=5))
        store.create()
        return store

    def create(self) -> None:
        with self.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
            metadata.create_all(conn)
            for statement in _append_only_ddl(conn.dialect.name):
                conn.exec_driver_sql(statement)

    def close(self) -> None:
        self.engine.dispose()

    # --- writing ---------------------------------------------------------------------------------

    def append(self, message: AuditMessage, *, queue: bool, links: Iterable[tuple[str, str, str]] = ()) -> int:
        """Store ``message`` (and queue it for the audit repository); ``links`` are (kind, object
        id, patient id) learned from an import. One transaction; returns the event's id."""
        return self.append_batch([Record(message, queue, tuple(links))])[0]

    def append_batch(self, records: Sequence[Record], connection: Connection | None = None) -> list[int]:
        """Store ``records`` in one transaction (all or none); their event ids, in order.
        ``connection``: one of :meth:`writer_connection`, kept by a writer thread (a connection
        taken from the pool and given back per transaction costs about as much as the INSERTs).

        The rows are written with the driver's own statements (``INSERT`` per event for its id,
        ``executemany`` for objects and outbox rows), inside the engine's write transaction: the
        SQLAlchemy Core statements cost three times as much for the same three INSERTs."""
        rows = [_event_row(r.message) for r in records]
        if connection is None:
            with self.writer_connection() as conn:
                return self._insert(conn, records, rows)
        return self._insert(connection, records, rows)

    def writer_connection(self) -> Connection:
        return self.engine.connect().execution_options(xds_write=True)

    def _insert(self, conn: Connection, records: Sequence[Record], rows: list[tuple]) -> list[int]:
        with conn.begin():
            dbapi = conn.connection.dbapi_connection
            sql = _statements(conn.dialect.paramstyle, conn.dialect.name)
            cursor = dbapi.cursor()
            try:
                ids: list[int] = []
                objects: list[tuple[int, str, str]] = []
                outbox: list[tuple[int]] = []
                for record, row in zip(records, rows, strict=True):
                    cursor.execute(sql.event, row)
                    event = int(cursor.lastrowid) if sql.lastrowid else int(cursor.fetchone()[0])
                    ids.append(event)
                    objects += [(event, kind, object_id) for kind, object_id in _objects(record.message)]
                    if record.queue:
                        outbox.append((event,))
                if objects:
                    cursor.executemany(sql.object, objects)
                if outbox:
                    cursor.executemany(sql.outbox, outbox)
            finally:
                cursor.close()
            links = list(dict.fromkeys(link for r in records for link in r.links))
            if links:
                known = {
                    tuple(r)
                    for r in conn.execute(
                        select(audit_link.c.kind, audit_link.c.object_id, audit_link.c.patient_id).where(
                            or_(*(and_(audit_link.c.kind == k, audit_link.c.object_id == o) for k, o, _ in links))
                        )
                    )
                }
                fresh = [dict(kind=k, object_id=o, patient_id=p) for k, o, p in links if (k, o, p) not in known]
                if fresh:
                    conn.execute(insert(audit_link), fresh)
        return ids

    # --- the delivery queue ----------------------------------------------------------------------

    def claim(self, limit: int = 100, lease: float = 60.0) -> list[Pending]:
        """Take up to ``limit`` messages due for delivery, for ``lease`` seconds (another process's
        sender skips them meanwhile)."""
        now = time.time()
        token = uuid.uuid4().hex
        due = and_(audit_outbox.c.next_attempt <= now, audit_outbox.c.claimed_until <= now)
        with self.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
            ids = select(audit_outbox.c.event).where(due).order_by(audit_outbox.c.event).limit(limit)
            conn.execute(
                update(audit_outbox)
                .where(audit_outbox.c.event.in_(ids.scalar_subquery()), due)
                .values(claimed_until=now + lease, claim=token)
            )
            rows = conn.execute(
                select(audit_outbox.c.event, audit_event.c.message, audit_outbox.c.attempts)
                .join(audit_event, audit_event.c.id == audit_outbox.c.event)
                .where(audit_outbox.c.claim == token)
                .order_by(audit_outbox.c.event)
            ).all()
        return [Pending(int(r[0]), r[1], int(r[2])) for r in rows]

    def delivered(self, events: Sequence[int]) -> None:
        if not events:
            return
        with self.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
            conn.execute(delete(audit_outbox).where(audit_outbox.c.event.in_(list(events))))

    def failed(self, events: Sequence[int], error: str, retry_in: float) -> None:
        """Back to the queue, due again in ``retry_in`` seconds."""
        if not events:
            return
        with self.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
            conn.execute(
                update(audit_outbox)
                .where(audit_outbox.c.event.in_(list(events)))
                .values(attempts=audit_outbox.c.attempts + 1, next_attempt=time.time() + retry_in,
                        claimed_until=0.0, claim="", last_error=error[:500])
            )

    def queued(self) -> int:
        with self.engine.connect() as conn:
            return len(conn.execute(select(audit_outbox.c.event)).all())

    # --- questions -------------------------------------------------------------------------------

    def accesses(
        self,
        *,
        patient: str | None = None,
        study: str | None = None,
        document: str | None = None,
        since: str | None = None,
        until: str | None = None,
        limit: int = 1000,
    ) -> list[Access]:
        """Every audited event about ``patient`` (a CX ``id^^^&OID&ISO``, or the bare id), ``study``
        (Study Instance UID) or ``document`` (uniqueId), oldest first; ``since``/``until`` bound
        EventDateTime (ISO 8601, UTC)."""
        o = audit_object
        conditions = []
        if patient:
            if "^" in patient:
                patient_match = o.c.object_id == patient
                link_match = audit_link.c.patient_id == patient
            else:
                patient_match = o.c.object_id.like(_like_prefix(patient + "^^^"), escape="\\")
                link_match = audit_link.c.patient_id.like(_like_prefix(patient + "^^^"), escape="\\")
            conditions.append(
                or_(
                    audit_event.c.id.in_(select(o.c.event).where(o.c.kind == "patient", patient_match)),
                    audit_event.c.id.in_(
                        select(o.c.event).join(
                            audit_link, and_(audit_link.c.kind == o.c.kind, audit_link.c.object_id == o.c.object_id)
                        ).where(link_match)
                    ),
                )
            )
        if study:
            conditions.append(audit_event.c.id.in_(select(o.c.event).where(o.c.kind == "study", o.c.object_id == study)))
        if document:
            conditions.append(
                audit_event.c.id.in_(select(o.c.event).where(o.c.kind == "document", o.c.object_id == document))
            )
        if since:
            conditions.append(audit_event.c.event_time >= since)
        if until:
            conditions.append(audit_event.c.event_time <= until)
        e = audit_event.c
        stmt = (
            select(e.id, e.event_time, e.transaction_name, e.event_name, e.action, e.outcome, e.user_id, e.roles,
                   e.purposes, e.system, e.address, e.user_name)
            .where(*conditions)
            .order_by(e.event_time, e.id)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            Access(int(r[0]), r[1], r[2], r[3], r[4], int(r[5]), r[11] or r[6], r[7], r[8], r[9], r[10]) for r in rows
        ]

    def messages(self, ids: Iterable[int] | None = None, *, transaction: str | None = None) -> list[str]:
        """The stored AuditMessage XML texts (by event id, or of one transaction), oldest first."""
        stmt = select(audit_event.c.message).order_by(audit_event.c.id)
        if ids is not None:
            stmt = stmt.where(audit_event.c.id.in_(list(ids)))
        if transaction is not None:
            stmt = stmt.where(audit_event.c.transaction_name == transaction)
        with self.engine.connect() as conn:
            return [r[0] for r in conn.execute(stmt)]


def _like_prefix(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
