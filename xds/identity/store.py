"""Reads and writes of the identity tables (:mod:`xds.identity.schema`), in the registry's database.

An :class:`IdentityTransaction` works on one connection in one database transaction, next to a
:class:`~xds.registry.store.RegistryTransaction` on the same connection: an ADT message changes
couplets, the registry's ``patient`` rows and, when an HN is corrected or a local id merged, the
registry entries registered under it, all or nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, and_, bindparam, or_, select, update
from sqlalchemy.exc import IntegrityError

from xds.identity import schema as t
from xds.identity.domain import Couplet, Issuer
from xds.registry import schema as rs
from xds.registry.db import DriverStatement
from xds.registry.store import DOCUMENT_ENTRY, FOLDER, SUBMISSION_SET, RegistryTransaction

MAX_CHAIN = 32  # successor / merged_into hops followed before giving up (a loop is a bug)

_REGISTRY_TABLES = {DOCUMENT_ENTRY: rs.document_entry, SUBMISSION_SET: rs.submission_set, FOLDER: rs.folder}


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CoupletRow:
    id: int
    patient_id: str
    issuer: str
    issuer_namespace: str
    issuer_oid: str
    hn: str | None
    status: str
    successor_id: int | None
    demographics: dict[str, str]
    source: str
    message_control_id: str

    @property
    def couplet(self) -> Couplet:
        return Couplet(self.patient_id, Issuer(self.issuer, self.issuer_namespace, self.issuer_oid))

    @property
    def key(self) -> tuple[str, str]:
        return (self.patient_id, self.issuer)

    @property
    def active(self) -> bool:
        return self.status == t.ACTIVE


@dataclass(frozen=True)
class HeldRow:
    id: int
    kind: str
    patient_id: str
    issuer: str
    payload: bytes
    summary: str
    status: str
    result: str | None
    received_at: datetime
    released_at: datetime | None


@dataclass(frozen=True)
class EventRow:
    id: int
    couplet_id: int | None
    hn: str | None
    event: str
    detail: dict[str, Any]
    source: str
    message_control_id: str
    at: datetime


def _row(cls: type, row: Any) -> Any:
    m = row._mapping
    return cls(**{name: m[name] for name in cls.__dataclass_fields__})


def _cols(table: Any, cls: type) -> list[Any]:
    return [table.c[name] for name in cls.__dataclass_fields__]


def _insert(table: Any, columns: Iterable[str], returning: Any = None) -> DriverStatement:
    stmt = table.insert().values({c: bindparam(c) for c in columns})
    return DriverStatement(stmt.returning(returning) if returning is not None else stmt)


# the statements of every ADT message, built once (bound parameters; compiled once per dialect)
_MESSAGE_DIGEST = DriverStatement(select(t.message.c.digest).where(
    t.message.c.sender == bindparam("sender"), t.message.c.control_id == bindparam("control_id")
))
_COUPLET = select(*_cols(t.couplet, CoupletRow)).where(
    t.couplet.c.patient_id == bindparam("patient_id"), t.couplet.c.issuer == bindparam("issuer")
)
_COUPLET_FOR_UPDATE = _COUPLET.with_for_update()
_COUPLET_BY_ID = select(*_cols(t.couplet, CoupletRow)).where(t.couplet.c.id == bindparam("id"))
_INSERT_COUPLET = _insert(t.couplet, ("patient_id", "issuer", "issuer_namespace", "issuer_oid", "hn", "status",
                                      "successor_id", "demographics", "source", "message_control_id",
                                      "created_at", "updated_at"), returning=t.couplet.c.id)
_INSERT_EVENT = _insert(t.event, ("couplet_id", "hn", "event", "detail", "source", "message_control_id", "at"))
_INSERT_MESSAGE = _insert(t.message, ("sender", "control_id", "digest", "ack_code", "received_at"))
_UPDATE_MESSAGE = update(t.message).where(
    t.message.c.sender == bindparam("key_sender"), t.message.c.control_id == bindparam("key_control_id")
)
# is anything held for one couplet (ix_identity_held_couplet answers it)
_HELD_FOR = DriverStatement(select(t.held.c.id).where(
    t.held.c.patient_id == bindparam("patient_id"), t.held.c.issuer == bindparam("issuer"),
    t.held.c.status == bindparam("status"),
).limit(1))


@functools.cache
def _update_couplet(columns: frozenset[str]) -> Any:
    """UPDATE identity_couplet SET <columns> WHERE id = :key_id, built once per set of columns."""
    c = t.couplet
    return update(c).where(c.c.id == bindparam("key_id")).values({k: bindparam(k) for k in sorted(columns)})


def event_values(event: str, *, couplet_id: int | None = None, hn: str | None = None,
                 detail: dict[str, Any] | None = None, source: str = "", control_id: str = "") -> dict[str, Any]:
    """One row of ``identity_event``."""
    return {"couplet_id": couplet_id, "hn": hn, "event": event, "detail": detail or {}, "source": source,
            "message_control_id": control_id, "at": _now()}


class AlreadyReleased(Exception):
    """A held item was released by someone else first."""


class IdentityTransaction:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.registry = RegistryTransaction(conn)

    # --- messages (idempotent feed) ---

    def message_digest(self, sender: str, control_id: str) -> str | None:
        return _MESSAGE_DIGEST.scalar(self.conn, {"sender": sender, "control_id": control_id})

    def remember_message(self, sender: str, control_id: str, digest: str, ack_code: str, *, exists: bool) -> None:
        """Record an applied message; ``exists``: its MSH-10 was seen before (other content)."""
        values = {"digest": digest, "ack_code": ack_code, "received_at": _now()}
        if exists:
            self.conn.execute(_UPDATE_MESSAGE, {"key_sender": sender, "key_control_id": control_id, **values})
        else:
            _INSERT_MESSAGE.run_many(self.conn, [{"sender": sender, "control_id": control_id, **values}])

    # --- couplets ---

    def couplet(self, couplet: Couplet | tuple[str, str], *, lock: bool = False) -> CoupletRow | None:
        patient_id, issuer = couplet.key if isinstance(couplet, Couplet) else couplet
        stmt = _COUPLET_FOR_UPDATE if lock and self.conn.dialect.name == "postgresql" else _COUPLET
        row = self.conn.execute(stmt, {"patient_id": patient_id, "issuer": issuer}).first()
        return _row(CoupletRow, row) if row is not None else None

    def couplet_by_id(self, couplet_id: int) -> CoupletRow | None:
        row = self.conn.execute(_COUPLET_BY_ID, {"id": couplet_id}).first()
        return _row(CoupletRow, row) if row is not None else None

    def couplets_of(self, hns: Iterable[str], *, active_only: bool = True) -> list[CoupletRow]:
        c = t.couplet
        cond = [c.c.hn.in_(list(hns))]
        if active_only:
            cond.append(c.c.status == t.ACTIVE)
        rows = self.conn.execute(select(*_cols(c, CoupletRow)).where(*cond).order_by(c.c.id))
        return [_row(CoupletRow, r) for r in rows]

    def add_couplet(
        self, couplet: Couplet, hn: str | None, demographics: dict[str, str], source: str, control_id: str,
        status: str = t.ACTIVE,
    ) -> CoupletRow:
        now = _now()
        couplet_id = _INSERT_COUPLET.scalar(
            self.conn,
            {
                "patient_id": couplet.patient_id,
                "issuer": couplet.issuer.key,
                "issuer_namespace": couplet.issuer.namespace,
                "issuer_oid": couplet.issuer.oid,
                "hn": hn,
                "status": status,
                "successor_id": None,
                "demographics": dict(demographics),
                "source": source,
                "message_control_id": control_id,
                "created_at": now,
                "updated_at": now,
            },
        )
        return CoupletRow(int(couplet_id), couplet.patient_id, couplet.issuer.key,
                          couplet.issuer.namespace, couplet.issuer.oid, hn, status, None, dict(demographics),
                          source, control_id)

    def update_couplet(self, couplet_id: int, **values: Any) -> None:
        values["updated_at"] = _now()
        self.conn.execute(_update_couplet(frozenset(values)), {"key_id": couplet_id, **values})

    def retire_couplet(self, row: CoupletRow, status: str, successor: CoupletRow | None, hn: str | None,
                       source: str, control_id: str) -> None:
        """Mark ``row`` merged or replaced; couplets that pointed at it follow its successor, and so
        do the registry entries and held items linked to it."""
        c = t.couplet
        self.update_couplet(row.id, status=status, successor_id=successor.id if successor else None, hn=hn,
                            source=source, message_control_id=control_id)
        if successor is not None:
            self.conn.execute(
                update(c).where(c.c.successor_id == row.id).values(successor_id=successor.id, updated_at=_now())
            )
            self.conn.execute(
                update(t.registered).where(t.registered.c.couplet_id == row.id).values(couplet_id=successor.id)
            )

    def resolve(self, couplet: Couplet | tuple[str, str], *, follow_retired: bool = True) -> str | None:
        """The HN a couplet maps to now, following successors (A40/A47) and HN merges, or None."""
        row = self.couplet(couplet)
        hops = 0
        while row is not None and not row.active and hops < MAX_CHAIN:
            if not follow_retired:
                return None
            if row.successor_id is None:
                break
            row = self.couplet_by_id(row.successor_id)
            hops += 1
        if row is None or not row.hn:
            return None
        return self.surviving_hn(row.hn)

    def surviving_hn(self, hn: str) -> str | None:
        """``hn`` or the HN it was merged into; None when the registry does not know it."""
        for _ in range(MAX_CHAIN):
            patient = self.registry.patient(hn)
            if patient is None:
                return None
            if not patient.merged_into:
                return hn
            hn = patient.merged_into
        return None

    # --- HNs (the registry's patient table) ---

    def merge_hn(self, prior: str, surviving: str, control_id: str) -> None:
        """ADT^A40 on the affinity-domain id: ``prior`` is merged into ``surviving``. Ids merged into
        ``prior`` earlier follow (one hop, what the stored queries resolve); ``surviving`` is active
        again if it had been merged away; a ``prior`` never fed is recorded as merged, so it is
        refused from now on."""
        p = rs.patient
        now = _now()
        if self.registry.patient(prior) is None:
            self.conn.execute(
                p.insert().values(patient_id=prior, demographics={}, source="", message_control_id=control_id,
                                  merged_into=surviving, updated_at=now)
            )
        else:
            self.registry.merge_patient(prior, surviving, control_id)
        self.conn.execute(update(p).where(p.c.patient_id == surviving).values(merged_into=None))
        self.conn.execute(update(p).where(p.c.merged_into == prior).values(merged_into=surviving, updated_at=now))
        self.conn.execute(
            update(t.couplet).where(t.couplet.c.hn == prior).values(hn=surviving, updated_at=now)
        )

    # --- registry entries registered through a couplet ---

    def link_registered(self, couplet_id: int, objects: Iterable[tuple[str, str]]) -> None:
        rows = [{"entry_uuid": uuid, "kind": kind, "couplet_id": couplet_id} for uuid, kind in objects]
        if rows:
            self.conn.execute(t.registered.insert(), rows)

    def move_registered(self, couplet_id: int, hn: str) -> int:
        """Put every registry object registered through the couplet under ``hn`` (an HN corrected,
        a local id merged): the patientId column and the stored ebRIM fragment. Returns how many."""
        from xds.registry.register import default_reparser, default_serializer

        links = self.conn.execute(
            select(t.registered.c.entry_uuid, t.registered.c.kind).where(t.registered.c.couplet_id == couplet_id)
        ).all()
        moved = 0
        for kind, table in _REGISTRY_TABLES.items():
            uuids = [u for u, k in links if k == kind]
            if not uuids:
                continue
            rows = self.conn.execute(
                select(table.c.entry_uuid, table.c.fragment).where(
                    table.c.entry_uuid.in_(uuids), table.c.patient_id != hn
                )
            ).all()
            for entry_uuid, fragment in rows:
                obj = default_reparser(kind, fragment)
                obj.patient_id = hn  # type: ignore[attr-defined]
                self.conn.execute(
                    update(table).where(table.c.entry_uuid == entry_uuid).values(
                        patient_id=hn, fragment=default_serializer(obj)
                    )
                )
                moved += 1
        return moved

    # --- history ---

    def record_event(self, event: str, *, couplet_id: int | None = None, hn: str | None = None,
                     detail: dict[str, Any] | None = None, source: str = "", control_id: str = "") -> None:
        self.record_events([event_values(event, couplet_id=couplet_id, hn=hn, detail=detail, source=source,
                                         control_id=control_id)])

    def record_events(self, rows: list[dict[str, Any]]) -> None:
        """Several history events (:func:`event_values`) in one statement."""
        if rows:
            _INSERT_EVENT.run_many(self.conn, rows)

    def history(self, *, couplet_id: int | None = None, hn: str | None = None) -> list[EventRow]:
        e = t.event
        cond = []
        if couplet_id is not None:
            cond.append(e.c.couplet_id == couplet_id)
        if hn is not None:
            cond.append(e.c.hn == hn)
        rows = self.conn.execute(select(*_cols(e, EventRow)).where(or_(*cond)).order_by(e.c.id))
        return [_row(EventRow, r) for r in rows]

    # --- held items ---

    def hold(self, kind: str, couplet: Couplet, payload: bytes, summary: str) -> int:
        result = self.conn.execute(
            t.held.insert().values(kind=kind, patient_id=couplet.patient_id, issuer=couplet.issuer.key,
                                   payload=payload, summary=summary, status=t.HELD, received_at=_now())
        )
        return int(result.inserted_primary_key[0])

    def held(self, *, status: str | None = t.HELD, keys: Iterable[tuple[str, str]] | None = None,
             ids: Iterable[int] | None = None) -> list[HeldRow]:
        h = t.held
        cond = []
        if status is not None:
            cond.append(h.c.status == status)
        if keys is not None:
            pairs = list(keys)
            if not pairs:
                return []
            cond.append(or_(*[and_(h.c.patient_id == p, h.c.issuer == i) for p, i in pairs]))
        if ids is not None:
            cond.append(h.c.id.in_(list(ids)))
        rows = self.conn.execute(select(*_cols(h, HeldRow)).where(*cond).order_by(h.c.id))
        return [_row(HeldRow, r) for r in rows]

    def any_held(self, keys: Iterable[tuple[str, str]]) -> bool:
        """Is anything held for one of these couplets? One indexed lookup per couplet."""
        return any(_HELD_FOR.scalar(self.conn, {"patient_id": p, "issuer": i, "status": t.HELD}) is not None
                   for p, i in dict.fromkeys(keys))

    def held_keys(self) -> list[tuple[str, str]]:
        h = t.held
        return [tuple(r) for r in self.conn.execute(  # type: ignore[misc]
            select(h.c.patient_id, h.c.issuer).where(h.c.status == t.HELD).distinct()
        )]

    def claim_held(self, held_id: int) -> None:
        """Mark a held item released; raises :class:`AlreadyReleased` when it no longer is held.
        Called inside the transaction that registers it, so it is registered exactly once."""
        h = t.held
        result = self.conn.execute(
            update(h).where(h.c.id == held_id, h.c.status == t.HELD).values(status=t.RELEASED, released_at=_now())
        )
        if result.rowcount != 1:
            raise AlreadyReleased(held_id)

    def fail_held(self, held_id: int, reason: str) -> bool:
        """Mark a held item failed (kept, with why); False when it is no longer held."""
        h = t.held
        result = self.conn.execute(
            update(h).where(h.c.id == held_id, h.c.status == t.HELD).values(status=t.FAILED, result=reason)
        )
        return result.rowcount == 1

    def set_held(self, held_id: int, **values: Any) -> None:
        self.conn.execute(update(t.held).where(t.held.c.id == held_id).values(values))


class IdentityStore:
    """The identity tables over the registry's engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator[IdentityTransaction]:
        with self.engine.connect().execution_options(xds_write=True) as conn:
            with conn.begin():
                yield IdentityTransaction(conn)

    @contextmanager
    def reading(self) -> Iterator[IdentityTransaction]:
        with self.engine.connect() as conn:
            yield IdentityTransaction(conn)

    def couplet(self, couplet: Couplet | tuple[str, str]) -> CoupletRow | None:
        with self.reading() as tx:
            return tx.couplet(couplet)

    def resolve(self, couplet: Couplet | tuple[str, str], *, follow_retired: bool = True) -> str | None:
        with self.reading() as tx:
            return tx.resolve(couplet, follow_retired=follow_retired)

    def held(self, **kw: Any) -> list[HeldRow]:
        with self.reading() as tx:
            return tx.held(**kw)

    def history(self, **kw: Any) -> list[EventRow]:
        with self.reading() as tx:
            return tx.history(**kw)


__all__ = [
    "AlreadyReleased",
    "CoupletRow",
    "EventRow",
    "HeldRow",
    "IdentityStore",
    "IdentityTransaction",
    "IntegrityError",
]
