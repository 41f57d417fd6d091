"""The repository's own index of the documents it holds, which is also its journal.

One row per document uniqueId: the storage key, and the mimeType, size and hash ITI-43 answers
with, so a retrieve never asks the registry. ``state`` makes the row the pending marker of the
store-then-register protocol (DESIGN.md section 4):

* ``pending``: claimed before the bytes are written, kept while the registry is asked (ITI-42);
* ``registered``: the registry accepted the DocumentEntry.

A row left ``pending`` means the node stopped between storing and registering; start-up
reconciliation (:mod:`xds.repository.reconcile`) asks the registry and either keeps the document or
removes it. The table lives in the node's database (SQLite by default, PostgreSQL when several nodes
share an S3 bucket), next to the registry's tables but owned by the repository.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Engine,
    Float,
    Index,
    MetaData,
    String,
    Table,
    bindparam,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from xds.registry.db import DriverStatement

PENDING = "pending"
REGISTERED = "registered"

metadata = MetaData()

repository_document = Table(
    "repository_document",
    metadata,
    Column("unique_id", String, primary_key=True, doc="XDSDocumentEntry.uniqueId"),
    Column("storage_key", String, nullable=False, unique=True),
    Column("mime_type", String, nullable=False, default=""),
    Column("size", BigInteger, nullable=True, doc="known once stored"),
    Column("hash", String, nullable=True, doc="SHA-1, lower-case hex; known once stored"),
    Column("state", String, nullable=False),
    Column("created_at", Float, nullable=False, doc="POSIX time the row was claimed"),
    Index("ix_repository_document_state", "state", "created_at"),
    comment="Documents held by the Document Repository (ITI-41 in, ITI-43 out) and their state.",
)

_CHUNK = 500

_CLAIM = DriverStatement(
    repository_document.insert().values(
        unique_id=bindparam("unique_id"),
        storage_key=bindparam("storage_key"),
        mime_type=bindparam("mime_type"),
        state=bindparam("state"),
        created_at=bindparam("created_at"),
    )
)
_RECORD_REGISTERED = DriverStatement(
    update(repository_document)
    .where(repository_document.c.unique_id == bindparam("uid"), repository_document.c.state == bindparam("pending"))
    .values(size=bindparam("b_size"), hash=bindparam("b_hash"), state=bindparam("registered"))
)

_GET_ONE = DriverStatement(select(repository_document).where(repository_document.c.unique_id == bindparam("uid")))


@dataclass(frozen=True)
class IndexedDocument:
    unique_id: str
    storage_key: str
    mime_type: str
    size: int | None
    hash: str | None
    state: str
    created_at: float

    @property
    def registered(self) -> bool:
        return self.state == REGISTERED


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = list(dict.fromkeys(values))
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class DocumentIndex:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        from xds.registry.db import migrate

        migrate(engine)  # the tables are Alembic's (revision 0005)

    def _write(self) -> Connection:
        return self.engine.connect().execution_options(xds_write=True)

    def claim(self, unique_id: str, storage_key: str, mime_type: str) -> IndexedDocument | None:
        """Record a pending document. Returns None when claimed, or the row that already holds
        ``unique_id`` (committed, so two concurrent submissions of one uniqueId cannot both win)."""
        row = {
            "unique_id": unique_id,
            "storage_key": storage_key,
            "mime_type": mime_type,
            "state": PENDING,
            "created_at": time.time(),
        }
        integrity = (IntegrityError, self.engine.dialect.loaded_dbapi.IntegrityError)
        for _ in range(3):
            try:
                with self._write() as conn, conn.begin():
                    _CLAIM.run(conn, row)
                return None
            except integrity:
                existing = self.get(unique_id)
                if existing is not None:
                    return existing
        raise RuntimeError(f"could not claim document uniqueId {unique_id!r}")

    def stored(self, unique_id: str, size: int, sha1: str) -> None:
        with self._write() as conn, conn.begin():
            conn.execute(
                update(repository_document)
                .where(repository_document.c.unique_id == unique_id)
                .values(size=size, hash=sha1)
            )

    def record_registered(self, documents: Iterable[tuple[str, int, str]], conn: Connection | None = None) -> int:
        """Mark the pending rows of ``documents`` (uniqueId, size, SHA-1) registered, with the
        size and hash storing them found. ``conn``: in that connection's transaction, the
        registry's when it shares this database, so the rows change atomically with the
        registration. Returns how many rows changed (a row no longer pending is left alone)."""
        changed = 0
        with contextlib.ExitStack() as stack:
            if conn is None:
                conn = stack.enter_context(self._write())
                stack.enter_context(conn.begin())
            for unique_id, size, sha1 in documents:
                changed += _RECORD_REGISTERED.run(
                    conn, {"uid": unique_id, "b_size": size, "b_hash": sha1, "pending": PENDING, "registered": REGISTERED}
                )
        return changed

    def mark_registered(self, unique_ids: Iterable[str]) -> None:
        with self._write() as conn, conn.begin():
            for chunk in _chunks(unique_ids):
                conn.execute(
                    update(repository_document)
                    .where(repository_document.c.unique_id.in_(chunk))
                    .values(state=REGISTERED)
                )

    def remove(self, unique_ids: Iterable[str], only_pending: bool = True) -> None:
        with self._write() as conn, conn.begin():
            for chunk in _chunks(unique_ids):
                stmt = delete(repository_document).where(repository_document.c.unique_id.in_(chunk))
                if only_pending:
                    stmt = stmt.where(repository_document.c.state == PENDING)
                conn.execute(stmt)

    def get(self, unique_id: str) -> IndexedDocument | None:
        return self.get_many([unique_id]).get(unique_id)

    def get_many(self, unique_ids: Iterable[str]) -> dict[str, IndexedDocument]:
        out: dict[str, IndexedDocument] = {}
        with self.engine.connect() as conn:
            unique_ids = list(dict.fromkeys(unique_ids))
            if len(unique_ids) == 1:  # the usual ITI-43: one document (columns in the table's order)
                for row in _GET_ONE.rows(conn, {"uid": unique_ids[0]}):
                    out[row[0]] = IndexedDocument(*row)
                return out
            for chunk in _chunks(unique_ids):
                for row in conn.execute(select(repository_document).where(repository_document.c.unique_id.in_(chunk))):
                    out[row.unique_id] = IndexedDocument(**row._mapping)
        return out

    def pending(self, older_than: float | None = None) -> list[IndexedDocument]:
        stmt = select(repository_document).where(repository_document.c.state == PENDING)
        if older_than is not None:
            stmt = stmt.where(repository_document.c.created_at < older_than)
        with self.engine.connect() as conn:
            return [IndexedDocument(**row._mapping) for row in conn.execute(stmt)]

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        """Which of ``keys`` some row names (pending or registered)."""
        found: set[str] = set()
        col = repository_document.c.storage_key
        with self.engine.connect() as conn:
            for chunk in _chunks(keys):
                found.update(conn.scalars(select(col).where(col.in_(chunk))))
        return found

    def count(self, state: str | None = None) -> int:
        stmt = select(func.count()).select_from(repository_document)
        if state is not None:
            stmt = stmt.where(repository_document.c.state == state)
        with self.engine.connect() as conn:
            return int(conn.scalar(stmt) or 0)
