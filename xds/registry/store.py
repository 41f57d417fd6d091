"""Typed reads and writes of the registry tables (:mod:`xds.registry.schema`).

:class:`RegistryStore` owns the engine. Work that must be atomic runs in a
:class:`RegistryTransaction` (``with store.transaction() as tx:``): ITI-42 checks the registry's
state and writes the whole submission on one connection, in one database transaction, so on any
error nothing is written. Reads outside a submission use ``store.reading()``.

Objects go in as :mod:`xds.metadata.model` objects plus their canonical ebRIM fragment; they come
out as small row records (:class:`DocumentEntryRow`, ...) carrying the columns the registry logic
decides on and the stored fragment. Nothing here parses or builds XML.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, bindparam, func, literal, select, union_all, update

from xds.metadata.datatypes import CX, dtm_lower_bound
from xds.metadata.model import (
    STATUS_APPROVED,
    Association,
    Author,
    Code,
    DocumentEntry,
    Folder,
    SubmissionSet,
)
from xds.registry import schema as s
from xds.registry.rows import write_rows

DOCUMENT_ENTRY = "DocumentEntry"
SUBMISSION_SET = "SubmissionSet"
FOLDER = "Folder"
ASSOCIATION = "Association"

_TABLES: dict[str, Table] = {
    DOCUMENT_ENTRY: s.document_entry,
    SUBMISSION_SET: s.submission_set,
    FOLDER: s.folder,
    ASSOCIATION: s.association,
}

_CHUNK = 500  # ids per IN (...) list: well under SQLite's bound-parameter limit


def _chunks(values: Iterable[str]) -> Iterator[list[str]]:
    items = list(dict.fromkeys(values))
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def dtm_key(value: str | None) -> str | None:
    """A DTM as stored: the first second it covers, 14 digits (:func:`dtm_lower_bound`), so string
    order is time order whatever precision was sent (``2004`` -> ``20040101000000``). The value as
    submitted stays in the fragment."""
    if not value:
        return None
    try:
        return dtm_lower_bound(value)
    except ValueError:
        # not a valid DTM (only reachable when validation is relaxed): keep the leading digits
        digits = value[: len(value) - len(value.lstrip("0123456789"))] if value[:1].isdigit() else ""
        return digits[:14].ljust(14, "0") if digits else None


def _reference_id_parts(value: str) -> tuple[str, str]:
    """CXi.1 (the id) and CXi.5 (its type) of a referenceIdList value (ITI TF-3 4.2.3.2.28)."""
    cx = CX.parse(value)
    return cx.id_number, cx.identifier_type_code


@dataclass(frozen=True)
class DocumentEntryRow:
    entry_uuid: str
    unique_id: str
    logical_id: str
    version: int
    patient_id: str
    status: str
    object_type: str
    hash: str | None
    size: int | None
    repository_unique_id: str | None
    home_community_id: str | None
    document_availability: str | None
    submission_set_uuid: str | None
    fragment: str


@dataclass(frozen=True)
class SubmissionSetRow:
    entry_uuid: str
    unique_id: str
    patient_id: str
    source_id: str
    submission_time: str | None
    status: str
    fragment: str


@dataclass(frozen=True)
class FolderRow:
    entry_uuid: str
    unique_id: str
    logical_id: str
    version: int
    patient_id: str
    status: str
    last_update_time: str | None
    fragment: str


@dataclass(frozen=True)
class AssociationRow:
    entry_uuid: str
    association_type: str
    source_uuid: str
    target_uuid: str
    status: str
    submission_set_status: str | None
    submission_set_uuid: str | None
    fragment: str


@dataclass(frozen=True)
class PatientRow:
    patient_id: str
    demographics: dict[str, str]
    source: str
    message_control_id: str
    merged_into: str | None
    updated_at: datetime


def _row(cls: type, row: Any) -> Any:
    m = row._mapping
    return cls(**{name: m[name] for name in cls.__dataclass_fields__})


def _columns(table: Table, cls: type) -> list[Any]:
    return [table.c[name] for name in cls.__dataclass_fields__]


def _code(code: Code | None) -> tuple[str | None, str | None]:
    return (code.code, code.scheme) if code is not None else (None, None)


def _author_rows(owner: str, authors: Sequence[Author]) -> list[dict[str, Any]]:
    return [
        {
            "entry_uuid": owner,
            "position": i,
            "person": a.person,
            "institutions": list(a.institutions),
            "roles": list(a.roles),
            "specialties": list(a.specialties),
        }
        for i, a in enumerate(authors)
    ]


def _code_rows(owner: str, codes: Sequence[Code]) -> list[dict[str, Any]]:
    return [
        {
            "entry_uuid": owner,
            "position": i,
            "code": c.code,
            "scheme": c.scheme,
            "display_name": c.display_name,
        }
        for i, c in enumerate(codes)
    ]


@functools.cache
def _statement(name: str, *args: Any) -> Any:
    """The statements of every ITI-42 built once, their values bound at execution (``ids``: an
    expanding IN list), so a submission does not pay SQLAlchemy's statement construction and
    cache-key computation a dozen times over."""
    ids = bindparam("ids", expanding=True)
    if name == "patient":
        return select(*_columns(s.patient, PatientRow)).where(s.patient.c.patient_id == bindparam("id"))
    if name == "known_patients":
        return select(s.patient.c.patient_id).where(s.patient.c.patient_id.in_(ids))
    if name == "patient_merges":
        return select(s.patient.c.patient_id, s.patient.c.merged_into).where(s.patient.c.patient_id.in_(ids))
    if name == "object_kinds":
        return union_all(
            *[
                select(t.c.entry_uuid, literal(kind).label("kind")).where(t.c.entry_uuid.in_(ids))
                for kind, t in _TABLES.items()
            ]
        )
    if name == "document_entries_by_unique_id":
        t = s.document_entry
        return select(*_columns(t, DocumentEntryRow)).where(t.c.unique_id.in_(ids)).order_by(t.c.version)
    if name == "existing_unique_ids":
        t = _TABLES[args[0]]
        return select(t.c.unique_id).where(t.c.unique_id.in_(ids))
    if name == "by_uuid":
        table_name, cls, lock = args
        t = s.metadata.tables[table_name]
        stmt = select(*_columns(t, cls)).where(t.c.entry_uuid.in_(ids))
        return stmt.order_by(t.c.entry_uuid).with_for_update() if lock else stmt
    if name == "record_patient":  # ADT A01/A04/A05/A08: insert or update, by dialect
        if args[0] == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        stmt = insert(s.patient)
        updated = ("demographics", "source", "message_control_id", "updated_at")
        return stmt.on_conflict_do_update(index_elements=[s.patient.c.patient_id],
                                          set_={k: stmt.excluded[k] for k in updated})
    raise KeyError(name)


class RegistryTransaction:
    """Reads and writes on one connection inside one database transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    # --- patients (ITI-8 sink) ---

    def record_patient(
        self, patient_id: str, demographics: dict[str, str], source: str, message_control_id: str
    ) -> None:
        values = {
            "patient_id": patient_id,
            "demographics": dict(demographics),
            "source": source,
            "message_control_id": message_control_id,
            "updated_at": datetime.now(UTC),
        }
        self.conn.execute(_statement("record_patient", self.conn.dialect.name), values)

    def merge_patient(self, prior_id: str, surviving_id: str, message_control_id: str = "") -> None:
        """Mark ``prior_id`` as merged into ``surviving_id`` (ADT^A40)."""
        self.conn.execute(
            update(s.patient)
            .where(s.patient.c.patient_id == prior_id)
            .values(
                merged_into=surviving_id, message_control_id=message_control_id, updated_at=datetime.now(UTC)
            )
        )

    def patient(self, patient_id: str) -> PatientRow | None:
        row = self.conn.execute(_statement("patient"), {"id": patient_id}).first()
        return _row(PatientRow, row) if row is not None else None

    def known_patients(self, patient_ids: Iterable[str]) -> set[str]:
        out: set[str] = set()
        for chunk in _chunks(patient_ids):
            out.update(self.conn.scalars(_statement("known_patients"), {"ids": chunk}))
        return out

    def patient_merges(self, patient_ids: Iterable[str]) -> dict[str, str | None]:
        """The known ones of ``patient_ids``, each with the id it was merged into (None: not
        merged), in one statement: what ITI-42 checks of every patient it is sent."""
        if type(self).known_patients is not RegistryTransaction.known_patients:
            # a subclass keeps its own view of the patients (the bulk loader's): ask through it
            known = self.known_patients(patient_ids)
            return {pid: row.merged_into for pid in known if (row := self.patient(pid)) is not None}
        out: dict[str, str | None] = {}
        for chunk in _chunks(patient_ids):
            out.update((pid, merged) for pid, merged in self.conn.execute(_statement("patient_merges"), {"ids": chunk}))
        return out

    def patient_known(self, patient_id: str) -> bool:
        return bool(self.known_patients([patient_id]))

    # --- reads ---

    def object_kinds(self, uuids: Iterable[str]) -> dict[str, str]:
        """Which table holds each of ``uuids`` (absent ones are left out), in one statement."""
        out: dict[str, str] = {}
        for chunk in _chunks(uuids):
            for uuid, kind in self.conn.execute(_statement("object_kinds"), {"ids": chunk}):
                out[uuid] = kind
        return out

    def document_entries(self, uuids: Iterable[str], *, lock: bool = False) -> dict[str, DocumentEntryRow]:
        """DocumentEntries by entryUUID. ``lock``: hold their rows until the transaction ends
        (SELECT ... FOR UPDATE on PostgreSQL; SQLite's writer lock already serialises), so two
        submissions cannot both replace the same Approved document."""
        return self._by_uuid(s.document_entry, DocumentEntryRow, uuids, lock=lock)

    def document_entries_by_unique_id(self, unique_ids: Iterable[str]) -> dict[str, list[DocumentEntryRow]]:
        out: dict[str, list[DocumentEntryRow]] = {}
        for chunk in _chunks(unique_ids):
            for row in self.conn.execute(_statement("document_entries_by_unique_id"), {"ids": chunk}):
                out.setdefault(row.unique_id, []).append(_row(DocumentEntryRow, row))
        return out

    def submission_sets(self, uuids: Iterable[str]) -> dict[str, SubmissionSetRow]:
        return self._by_uuid(s.submission_set, SubmissionSetRow, uuids)

    def folders(self, uuids: Iterable[str], *, lock: bool = False) -> dict[str, FolderRow]:
        return self._by_uuid(s.folder, FolderRow, uuids, lock=lock)

    def associations(self, uuids: Iterable[str]) -> dict[str, AssociationRow]:
        return self._by_uuid(s.association, AssociationRow, uuids)

    def existing_unique_ids(self, kind: str, unique_ids: Iterable[str]) -> set[str]:
        """Which of ``unique_ids`` a SubmissionSet or Folder (``kind``) already has."""
        out: set[str] = set()
        for chunk in _chunks(unique_ids):
            out.update(self.conn.scalars(_statement("existing_unique_ids", kind), {"ids": chunk}))
        return out

    def associations_of(
        self,
        *,
        sources: Iterable[str] = (),
        targets: Iterable[str] = (),
        types: Sequence[str] = (),
        status: str | None = STATUS_APPROVED,
    ) -> list[AssociationRow]:
        """Associations whose source is in ``sources`` or whose target is in ``targets``."""
        t = s.association
        out: dict[str, AssociationRow] = {}
        for column, values in ((t.c.source_uuid, sources), (t.c.target_uuid, targets)):
            for chunk in _chunks(values):
                cond = [column.in_(chunk)]
                if types:
                    cond.append(t.c.association_type.in_(list(types)))
                if status is not None:
                    cond.append(t.c.status == status)
                for row in self.conn.execute(select(*_columns(t, AssociationRow)).where(and_(*cond))):
                    out[row.entry_uuid] = _row(AssociationRow, row)
        return list(out.values())

    def _by_uuid(self, table: Table, cls: type, uuids: Iterable[str], lock: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        lock = lock and self.conn.dialect.name == "postgresql"
        for chunk in _chunks(sorted(set(uuids))):  # sorted: concurrent lockers take rows in one order
            for row in self.conn.execute(_statement("by_uuid", table.name, cls, lock), {"ids": chunk}):
                out[row.entry_uuid] = _row(cls, row)
        return out

    # --- writes ---

    def add_submission_set(self, ss: SubmissionSet, fragment: str) -> None:
        ct, ct_scheme = _code(ss.content_type_code)
        row = {
            "entry_uuid": ss.entry_uuid,
            "unique_id": ss.unique_id,
            "patient_id": ss.patient_id,
            "source_id": ss.source_id,
            "submission_time": dtm_key(ss.submission_time),
            "content_type_code": ct,
            "content_type_code_scheme": ct_scheme,
            "status": ss.status or STATUS_APPROVED,
            "home_community_id": ss.home_community_id,
            "fragment": fragment,
        }
        self._insert_many(s.submission_set, [row])
        self._insert_many(s.submission_set_author, _author_rows(ss.entry_uuid, ss.authors))

    def add_document_entries(
        self, entries: Sequence[tuple[DocumentEntry, str]], submission_set_uuid: str | None
    ) -> None:
        """Insert DocumentEntries with their fragments, and their child rows, a statement per table."""
        if not entries:
            return
        rows = []
        events: list[dict[str, Any]] = []
        confidentiality: list[dict[str, Any]] = []
        authors: list[dict[str, Any]] = []
        refs: list[dict[str, Any]] = []
        for de, fragment in entries:
            rows.append(self._document_entry_row(de, fragment, submission_set_uuid))
            events += _code_rows(de.entry_uuid, de.event_codes)
            confidentiality += _code_rows(de.entry_uuid, de.confidentiality_codes)
            authors += _author_rows(de.entry_uuid, de.authors)
            for i, value in enumerate(de.reference_ids):
                ident, id_type = _reference_id_parts(value)
                refs.append(
                    {
                        "entry_uuid": de.entry_uuid,
                        "position": i,
                        "value": value,
                        "id": ident,
                        "id_type": id_type,
                    }
                )
        self._insert_many(s.document_entry, rows)
        self._insert_many(s.document_event_code, events)
        self._insert_many(s.document_confidentiality_code, confidentiality)
        self._insert_many(s.document_author, authors)
        self._insert_many(s.document_reference_id, refs)

    @staticmethod
    def _document_entry_row(
        de: DocumentEntry, fragment: str, submission_set_uuid: str | None
    ) -> dict[str, Any]:
        row: dict[str, Any] = {
            "entry_uuid": de.entry_uuid,
            "unique_id": de.unique_id,
            "logical_id": de.lid or de.entry_uuid,
            "version": int(de.version_name) if de.version_name and de.version_name.isdigit() else 1,
            "patient_id": de.patient_id,
            "status": de.status or STATUS_APPROVED,
            "object_type": de.object_type,
            "creation_time": dtm_key(de.creation_time),
            "service_start_time": dtm_key(de.service_start_time),
            "service_stop_time": dtm_key(de.service_stop_time),
            "mime_type": de.mime_type or "",
            "hash": de.hash.lower() if de.hash else None,
            "size": de.size,
            "repository_unique_id": de.repository_unique_id,
            "home_community_id": de.home_community_id,
            "document_availability": de.document_availability,
            "submission_set_uuid": submission_set_uuid,
            "fragment": fragment,
        }
        for name in (
            "class_code",
            "type_code",
            "format_code",
            "healthcare_facility_type_code",
            "practice_setting_code",
        ):
            row[name], row[name + "_scheme"] = _code(getattr(de, name))
        return row

    def add_document_entry(
        self, de: DocumentEntry, fragment: str, submission_set_uuid: str | None = None
    ) -> None:
        self.add_document_entries([(de, fragment)], submission_set_uuid)

    def add_folders(self, folders: Sequence[tuple[Folder, str]]) -> None:
        rows = []
        codes: list[dict[str, Any]] = []
        for f, fragment in folders:
            rows.append(
                {
                    "entry_uuid": f.entry_uuid,
                    "unique_id": f.unique_id,
                    "logical_id": f.lid or f.entry_uuid,
                    "version": int(f.version_name) if f.version_name and f.version_name.isdigit() else 1,
                    "patient_id": f.patient_id,
                    "status": f.status or STATUS_APPROVED,
                    "last_update_time": dtm_key(f.last_update_time),
                    "home_community_id": f.home_community_id,
                    "fragment": fragment,
                }
            )
            codes += _code_rows(f.entry_uuid, f.codes)
        self._insert_many(s.folder, rows)
        self._insert_many(s.folder_code, codes)

    def add_folder(self, folder: Folder, fragment: str) -> None:
        self.add_folders([(folder, fragment)])

    def add_associations(
        self, associations: Sequence[tuple[Association, str]], submission_set_uuid: str | None
    ) -> None:
        self._insert_many(
            s.association,
            [
                {
                    "entry_uuid": a.entry_uuid,
                    "association_type": a.association_type,
                    "source_uuid": a.source,
                    "target_uuid": a.target,
                    "status": a.status or STATUS_APPROVED,
                    "submission_set_status": a.submission_set_status,
                    "submission_set_uuid": submission_set_uuid,
                    "home_community_id": a.home_community_id,
                    "fragment": fragment,
                }
                for a, fragment in associations
            ],
        )

    def add_association(
        self, association: Association, fragment: str, submission_set_uuid: str | None = None
    ) -> None:
        self.add_associations([(association, fragment)], submission_set_uuid)

    def set_status(self, kind: str, entry_uuid: str, status: str, fragment: str) -> None:
        """Change an object's availabilityStatus, with its fragment rewritten to match."""
        t = _TABLES[kind]
        self.conn.execute(
            update(t).where(t.c.entry_uuid == entry_uuid).values(status=status, fragment=fragment)
        )

    def set_folder_last_update_time(self, entry_uuid: str, last_update_time: str, fragment: str) -> None:
        t = s.folder
        self.conn.execute(
            update(t)
            .where(t.c.entry_uuid == entry_uuid)
            .values(last_update_time=dtm_key(last_update_time), fragment=fragment)
        )

    def _insert_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        """Every insert goes through here (the bulk loader buffers them); straight to the driver
        (:mod:`xds.registry.rows`), without SQLAlchemy's per-row parameter handling."""
        if rows:
            write_rows(self.conn, table, rows)

    # --- counts (operations, tests) ---

    def count(self, kind: str) -> int:
        return int(self.conn.scalar(select(func.count()).select_from(_TABLES[kind])) or 0)


class RegistryStore:
    """The registry's persistence over one SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def transaction(self) -> Iterator[RegistryTransaction]:
        """A write transaction: committed when the block ends, rolled back if it raises. On SQLite it
        starts with BEGIN IMMEDIATE, so concurrent submissions queue instead of deadlocking."""
        with self.engine.connect().execution_options(xds_write=True) as conn:
            with conn.begin():
                yield RegistryTransaction(conn)

    @contextmanager
    def reading(self) -> Iterator[RegistryTransaction]:
        """A read-only transaction (one consistent snapshot on PostgreSQL and in SQLite WAL)."""
        with self.engine.connect() as conn:
            yield RegistryTransaction(conn)  # closing the connection rolls the transaction back

    # ITI-8 sink used by the HL7 patient identity feed (xds.hl7)

    def record_patient(
        self, patient_id: str, demographics: dict[str, str], source: str, message_control_id: str
    ) -> None:
        """Create or update an affinity-domain patient id (ADT A01/A04/A05/A08)."""
        with self.transaction() as tx:
            tx.record_patient(patient_id, demographics, source, message_control_id)

    def merge_patient(self, prior_id: str, surviving_id: str, message_control_id: str = "") -> None:
        with self.transaction() as tx:
            tx.merge_patient(prior_id, surviving_id, message_control_id)

    def patient_known(self, patient_id: str) -> bool:
        with self.reading() as tx:
            return tx.patient_known(patient_id)

    def patient(self, patient_id: str) -> PatientRow | None:
        with self.reading() as tx:
            return tx.patient(patient_id)

    def document_entry(self, entry_uuid: str) -> DocumentEntryRow | None:
        with self.reading() as tx:
            return tx.document_entries([entry_uuid]).get(entry_uuid)

    def document_entries_by_unique_id(self, unique_id: str) -> list[DocumentEntryRow]:
        with self.reading() as tx:
            return tx.document_entries_by_unique_id([unique_id]).get(unique_id, [])

    def folder(self, entry_uuid: str) -> FolderRow | None:
        with self.reading() as tx:
            return tx.folders([entry_uuid]).get(entry_uuid)

    def submission_set(self, entry_uuid: str) -> SubmissionSetRow | None:
        with self.reading() as tx:
            return tx.submission_sets([entry_uuid]).get(entry_uuid)

    def association(self, entry_uuid: str) -> AssociationRow | None:
        with self.reading() as tx:
            return tx.associations([entry_uuid]).get(entry_uuid)

    def count(self, kind: str) -> int:
        with self.reading() as tx:
            return tx.count(kind)

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = [
    "ASSOCIATION",
    "DOCUMENT_ENTRY",
    "FOLDER",
    "SUBMISSION_SET",
    "AssociationRow",
    "DocumentEntryRow",
    "FolderRow",
    "PatientRow",
    "RegistryStore",
    "RegistryTransaction",
    "SubmissionSetRow",
]
