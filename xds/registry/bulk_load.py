"""Bulk load: register many ITI-42 submissions straight into the registry tables (migrations).

A migration from another registry brings millions of SubmitObjectsRequests. Sending them through
ITI-42 costs a SOAP exchange and a database transaction each; the bulk loader skips the SOAP layer
and groups submissions into batches, one database transaction and one multi-row insert per table
per batch (``COPY`` on PostgreSQL, ``executemany`` on SQLite). What it does not skip is the
registry's judgement: every submission is

1. validated by the catalogue (:func:`xds.metadata.rules.validate_submission`, profile ITI-42,
   with the node's code list and affinity domain, exactly as :meth:`xds.registry.Registry.validate`);
2. registered by :func:`xds.registry.register.register_submission` and its
   :class:`~xds.registry.register.Registration`: the same registry-state checks (patient known,
   entryUUIDs and uniqueIds new, resubmission with identical hash and size, association ends) and
   the same writes (symbolic ids to UUIDs, Approved, lid and version, RPLC deprecation, folder
   lastUpdateTime) as a submission arriving over ITI-42, with the same error codes.

Only the transaction differs. :class:`BatchTransaction` hands Registration the state it asks for
from a read-ahead done once per batch (the batch's patients, ids and uniqueIds, in a few ``IN``
queries) plus what earlier submissions of the batch wrote, and keeps the inserts in memory until
the batch is written. A self-contained submission (the usual migration case: a SubmissionSet
with its DocumentEntries, Folders and HasMember associations) costs no round trip at all; one
that refers to objects already in the registry (RPLC of an earlier document, a document added to
an existing Folder) reads and locks them as ITI-42 does, after the batch's pending rows are
written, so it sees what came before it in the same batch.

A submission that fails is rejected alone, with its RegistryErrors, and the batch goes on. If
writing a batch fails in the database (a concurrent ITI-42 took a uniqueId in between), the batch
is rolled back and its submissions are registered again one per transaction, so only the one in
conflict is rejected (XDSDuplicateUniqueIdInRegistry, as ITI-42 answers a lost race).

Patients (:class:`PatientPolicy`): ``require`` (the default) rejects a submission whose patient
id the identity feed (ITI-8) has not sent, with XDSUnknownPatientId, as ITI-42 does. ``register``
adds an unknown affinity-domain patient id to the ``patient`` table, flagged by
``source = "xds-bulk-load"`` (:data:`AUTO_REGISTERED_SOURCE`) and empty demographics, so the
loaded documents are queryable at once; a later ADT feed for that id overwrites the row and with
it the flag. Ids of another assigning authority are still rejected by the catalogue, and an id
merged away (ADT^A40) is still refused.
"""

from __future__ import annotations

import enum
import logging
import os
import pickle
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from sqlalchemy import Connection, Table, select, text
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from xds.metadata import ebrim
from xds.metadata import model as m
from xds.metadata.errors import RegistryError, has_errors
from xds.metadata.rules import Rule
from xds.namespaces import SOAP12
from xds.registry import schema as s
from xds.registry import store as st
from xds.registry.db import wal_checkpoint
from xds.registry.register import (
    assign_entry_uuids,
    default_serializer,
    register_submission,
    strip_extra_metadata,
)
from xds.registry.rows import write_rows

log = logging.getLogger("xds.registry.bulk_load")

AUTO_REGISTERED_SOURCE = "xds-bulk-load"
"""``patient.source`` of a patient id the loader registered itself (:attr:`PatientPolicy.REGISTER`)."""

DEFAULT_BATCH_SIZE = 1000  # submissions per transaction
SQLITE_CACHE_KIB = 256 * 1024  # page cache of the loader's SQLite connection

_SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
_XML_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True, remove_blank_text=True)


class PatientPolicy(enum.StrEnum):
    REQUIRE = "require"  # unknown patient id: XDSUnknownPatientId, as ITI-42
    REGISTER = "register"  # unknown affinity-domain patient id: registered, flagged


@dataclass
class Rejected:
    """A submission the registry refused, with the errors ITI-42 would have answered."""

    source: str
    errors: list[RegistryError]


@dataclass
class LoadReport:
    submissions: int = 0
    document_entries: int = 0
    folders: int = 0
    associations: int = 0
    patients_registered: int = 0
    batches: int = 0
    retried_batches: int = 0
    seconds: float = 0.0
    rejected: list[Rejected] = field(default_factory=list)
    warnings: list[Rejected] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected

    def summary(self) -> str:
        rate = self.document_entries / self.seconds if self.seconds else 0.0
        return (
            f"loaded {self.submissions} submissions ({self.document_entries} DocumentEntries, "
            f"{self.folders} Folders, {self.associations} Associations) in {self.seconds:.1f} s "
            f"({rate:,.0f} DocumentEntries/s); {len(self.rejected)} rejected; "
            f"{self.patients_registered} patients registered"
        )


@dataclass
class _Item:
    """One submission on its way in: validated, its symbolic ids already replaced."""

    source: str
    submission: m.Submission
    warnings: list[RegistryError]
    fresh_ids: frozenset[str]  # ids the loader generated: cannot be in the registry
    fragments: _Fragments | None = None


# --- reading sources ------------------------------------------------------------------------------


def submission_files(sources: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """The files named, and the ``*.xml`` files under the directories named, in path order."""
    for source in sources:
        p = Path(source)
        if p.is_dir():
            yield from sorted(f for f in p.rglob("*.xml") if f.is_file())
        elif p.is_file():
            yield p
        else:
            raise FileNotFoundError(f"no such file or directory: {p}")


def read_submission(path: str | os.PathLike[str]) -> m.Submission:
    """One submission from a file: an ``lcm:SubmitObjectsRequest`` (or the
    ProvideAndRegisterDocumentSetRequest / RegistryObjectList forms
    :func:`~xds.metadata.ebrim.parse_submit_objects_request` reads), bare or in a SOAP envelope.
    Parse problems are in ``parse_errors`` (the catalogue reports them); XML that is not
    well-formed raises ``etree.XMLSyntaxError``."""
    root = etree.parse(os.fspath(path), _XML_PARSER).getroot()
    if etree.QName(root).localname == "Envelope" and etree.QName(root).namespace in (SOAP12, _SOAP11):
        body = root.find(f"{{{etree.QName(root).namespace}}}Body")
        children = [] if body is None else [c for c in body if isinstance(c.tag, str)]
        if children:
            root = children[0]
    return ebrim.parse_submit_objects_request(root)


def file_submissions(sources: Iterable[str | os.PathLike[str]]) -> Iterator[tuple[str, str]]:
    """(file name, file name) for every file of ``sources``, for :meth:`BulkLoader.load`, which
    reads each (in a worker process when it has some). A file that cannot be read or is not
    well-formed XML is rejected with XDSRegistryError, not fatal."""
    for path in submission_files(sources):
        yield str(path), str(path)


# --- the batch transaction ------------------------------------------------------------------------


class _BatchFailed(Exception):
    """Writing the batch failed in the database; the caller rolls back and retries one by one.
    Not an SQLAlchemyError, so register_submission does not take it for its own."""


class BatchTransaction(st.RegistryTransaction):
    """A :class:`~xds.registry.store.RegistryTransaction` whose inserts wait in memory until
    :meth:`flush`, and whose existence checks are answered from a read-ahead of the batch
    (:meth:`read_ahead`) and from the batch's own pending rows. Any other read, and every update,
    first writes the pending rows, then goes to the database: what Registration sees is always
    the registry as if each submission had been committed in turn."""

    def __init__(self, conn: Connection, patients: PatientPolicy) -> None:
        super().__init__(conn)
        self.patients = patients
        self.now = datetime.now(UTC)
        self.pending: dict[Table, list[dict[str, Any]]] = {}
        self._log: list[tuple[Table, dict[str, Any]]] = []  # pending rows in insertion order
        self.updates = 0  # UPDATE statements sent (they cannot be taken back without a rollback)
        self.flushed = 0  # how many rows of _log are in the database
        # read-ahead: what the database held when the batch started
        self._patients: dict[str, st.PatientRow] = {}
        self._kinds: dict[str, str] = {}
        self._unique_ids: dict[str, set[str]] = {st.SUBMISSION_SET: set(), st.FOLDER: set()}
        self._entries_by_unique_id: dict[str, list[st.DocumentEntryRow]] = {}
        self._asked: set[tuple[str, str]] = set()  # (what, key) answered by the read-ahead
        # written by the batch (pending or flushed)
        self._new_patients: dict[str, st.PatientRow] = {}
        self._new_kinds: dict[str, str] = {}
        self._new_unique_ids: dict[str, set[str]] = {st.SUBMISSION_SET: set(), st.FOLDER: set()}
        self._new_entries: dict[str, list[dict[str, Any]]] = {}  # document_entry rows by uniqueId
        self.fresh_ids: set[str] = set()

    # -- read-ahead --

    def read_ahead(self, items: Sequence[_Item]) -> None:
        """Everything the registration of ``items`` will ask about the database, in a few
        ``IN`` queries per kind instead of several statements per submission."""
        patient_ids: set[str] = set()
        uuids: set[str] = set()
        unique_ids: dict[str, set[str]] = {st.SUBMISSION_SET: set(), st.FOLDER: set()}
        doc_unique_ids: set[str] = set()
        for item in items:
            sub = item.submission
            self.fresh_ids |= item.fresh_ids
            ss = sub.submission_set
            if ss is not None:
                patient_ids.add(ss.patient_id)
                unique_ids[st.SUBMISSION_SET].add(ss.unique_id)
            for de in sub.document_entries:
                patient_ids.add(de.patient_id)
                doc_unique_ids.add(de.unique_id)
            for f in sub.folders:
                patient_ids.add(f.patient_id)
                unique_ids[st.FOLDER].add(f.unique_id)
            uuids.update(o.entry_uuid for o in sub.objects() if o.entry_uuid not in item.fresh_ids)
        patient_ids.discard("")
        p = s.patient
        for chunk in st._chunks(patient_ids):
            for row in self.conn.execute(select(*p.c).where(p.c.patient_id.in_(chunk))).mappings():
                self._patients[row["patient_id"]] = _record(st.PatientRow, row)
        self._asked.update(("patient", p) for p in patient_ids)
        self._kinds.update(super().object_kinds(uuids))
        self._asked.update(("uuid", u) for u in uuids)
        for kind, values in unique_ids.items():
            self._unique_ids[kind] |= super().existing_unique_ids(kind, values)
            self._asked.update((kind, v) for v in values)
        for uid, rows in super().document_entries_by_unique_id(doc_unique_ids).items():
            self._entries_by_unique_id[uid] = list(rows)
        self._asked.update(("unique_id", u) for u in doc_unique_ids)

    def _unasked(self, what: str, keys: Iterable[str]) -> list[str]:
        return [k for k in keys if (what, k) not in self._asked and k not in self.fresh_ids]

    # -- existence checks, from the read-ahead and the batch --

    def known_patients(self, patient_ids: Iterable[str]) -> set[str]:
        ids = set(patient_ids)
        known = {p for p in ids if p in self._patients or p in self._new_patients}
        rest = self._unasked("patient", ids - known)
        if rest:
            known |= super().known_patients(rest)
        if self.patients is PatientPolicy.REGISTER:
            for pid in sorted(ids - known):
                self._register_patient(pid)
                known.add(pid)
        return known

    def _register_patient(self, patient_id: str) -> None:
        self._insert_many(
            s.patient,
            [
                {
                    "patient_id": patient_id,
                    "demographics": {},
                    "source": AUTO_REGISTERED_SOURCE,
                    "message_control_id": "",
                    "merged_into": None,
                    "updated_at": self.now,
                }
            ],
        )

    def patient(self, patient_id: str) -> st.PatientRow | None:
        row = self._new_patients.get(patient_id) or self._patients.get(patient_id)
        if row is None and self._unasked("patient", [patient_id]):
            row = super().patient(patient_id)
        return row

    def object_kinds(self, uuids: Iterable[str]) -> dict[str, str]:
        ids = set(uuids)
        out = {u: k for u in ids if (k := self._new_kinds.get(u) or self._kinds.get(u)) is not None}
        rest = self._unasked("uuid", ids - out.keys())
        if rest:
            self.flush()
            out.update(super().object_kinds(rest))
        return out

    def existing_unique_ids(self, kind: str, unique_ids: Iterable[str]) -> set[str]:
        ids = set(unique_ids)
        out = ids & (self._unique_ids[kind] | self._new_unique_ids[kind])
        rest = [u for u in ids - out if (kind, u) not in self._asked]
        if rest:
            self.flush()
            out |= super().existing_unique_ids(kind, rest)
        return out

    def document_entries_by_unique_id(
        self, unique_ids: Iterable[str]
    ) -> dict[str, list[st.DocumentEntryRow]]:
        ids = set(unique_ids)
        out: dict[str, list[st.DocumentEntryRow]] = {}
        rest = []
        for uid in ids:
            rows = self._entries_by_unique_id.get(uid, []) + [
                _record(st.DocumentEntryRow, r) for r in self._new_entries.get(uid, [])
            ]
            if rows:
                out[uid] = rows
            elif ("unique_id", uid) not in self._asked:
                rest.append(uid)
        if rest:
            self.flush()
            out.update(super().document_entries_by_unique_id(rest))
        return out

    # -- everything else reads the database as it is once the batch's rows are in --

    def _by_uuid(self, table: Table, cls: type, uuids: Iterable[str], lock: bool = False) -> dict[str, Any]:
        ids = list(uuids)
        if not ids:
            return {}
        self.flush()
        return super()._by_uuid(table, cls, ids, lock=lock)

    def associations_of(self, **kwargs: Any) -> list[st.AssociationRow]:
        self.flush()
        return super().associations_of(**kwargs)

    def set_status(self, kind: str, entry_uuid: str, status: str, fragment: str) -> None:
        self.flush()
        self.updates += 1
        super().set_status(kind, entry_uuid, status, fragment)

    def set_folder_last_update_time(self, entry_uuid: str, last_update_time: str, fragment: str) -> None:
        self.flush()
        self.updates += 1
        super().set_folder_last_update_time(entry_uuid, last_update_time, fragment)

    def count(self, kind: str) -> int:
        self.flush()
        return super().count(kind)

    # -- pending inserts --

    def _insert_many(self, table: Table, rows: list[dict[str, Any]]) -> None:
        self.pending.setdefault(table, []).extend(rows)
        self._log.extend((table, row) for row in rows)
        if table in _INDEXED:
            for row in rows:
                self._index(table, row, add=True)

    def _index(self, table: Table, row: dict[str, Any], *, add: bool) -> None:
        if table is s.patient:
            if add:
                self._new_patients[row["patient_id"]] = _record(st.PatientRow, row)
            else:
                self._new_patients.pop(row["patient_id"], None)
            return
        kind = _KIND_OF.get(table)
        if kind is None:
            return
        if add:
            self._new_kinds[row["entry_uuid"]] = kind
        else:
            self._new_kinds.pop(row["entry_uuid"], None)
        if kind in self._new_unique_ids:
            (self._new_unique_ids[kind].add if add else self._new_unique_ids[kind].discard)(row["unique_id"])
        elif kind == st.DOCUMENT_ENTRY:
            rows = self._new_entries.setdefault(row["unique_id"], [])
            if add:
                rows.append(row)
            else:
                rows[:] = [r for r in rows if r["entry_uuid"] != row["entry_uuid"]]

    def mark(self) -> tuple[int, int]:
        return len(self._log), self.updates

    def undo(self, mark: tuple[int, int]) -> None:
        """Forget the pending rows added since ``mark`` (a submission that failed half-way)."""
        n = mark[0]
        if n < self.flushed:
            raise _BatchFailed("rows of a failed submission were already written")
        for table, row in reversed(self._log[n:]):
            self.pending[table].pop()
            self._index(table, row, add=False)
        del self._log[n:]

    def flush(self) -> None:
        """Write the pending rows, a multi-row statement per table in foreign-key order."""
        if not self.pending:
            return
        try:
            for table in s.metadata.sorted_tables:
                rows = self.pending.get(table)
                if rows:
                    write_rows(self.conn, table, rows, copy=True)
        except SQLAlchemyError as e:
            raise _BatchFailed(str(e)) from e
        self.pending.clear()
        self.flushed = len(self._log)


_KIND_OF = {
    s.document_entry: st.DOCUMENT_ENTRY,
    s.submission_set: st.SUBMISSION_SET,
    s.folder: st.FOLDER,
    s.association: st.ASSOCIATION,
}
_INDEXED = frozenset((*_KIND_OF, s.patient))


# --- writing rows ---------------------------------------------------------------------------------


def _record(cls: type, row: Any) -> Any:
    """A store row record (:class:`~xds.registry.store.DocumentEntryRow`, ...) from a mapping."""
    return cls(**{name: row.get(name) for name in cls.__dataclass_fields__})


def analyze(conn: Connection) -> None:
    """Fresh planner statistics after a load (the query plans depend on them)."""
    if conn.dialect.name == "postgresql":
        for t in s.metadata.sorted_tables:
            conn.execute(text(f'ANALYZE "{t.name}"'))
    else:
        conn.exec_driver_sql("ANALYZE")


# --- the loader -----------------------------------------------------------------------------------


class _BatchStore:
    """What register_submission needs of a store: a transaction, here the batch's, each
    submission in it undone alone if it fails."""

    def __init__(self, tx: BatchTransaction) -> None:
        self.tx = tx

    @contextmanager
    def transaction(self) -> Iterator[BatchTransaction]:
        mark = self.tx.mark()
        try:
            yield self.tx
        except _BatchFailed:
            raise
        except BaseException:
            if self.tx.flushed > mark[0] or self.tx.updates != mark[1]:
                # rows or updates of this submission reached the database: only a rollback undoes them
                raise _BatchFailed("a submission failed after writing to the registry") from None
            self.tx.undo(mark)
            raise


Source = m.Submission | str | Callable[[], m.Submission]
"""What :meth:`BulkLoader.load` takes for each submission: the Submission, the path of a file
holding it, or a picklable recipe making it (run in a worker process when there are some)."""


class _Preparer:
    """The stateless half of ITI-42, run in the loader or in its worker processes: read the
    file, validate the submission with the catalogue, replace its symbolic ids, drop extra
    metadata if so configured. With ``pre_serialize`` (workers), it also serialises each object
    in the state a successful registration leaves it in, so the main process need not: the
    fragment is used only if the object is still exactly in that state when Registration asks
    for it (:class:`_Fragments`)."""

    def __init__(self, settings: Any, codes: Any, pre_serialize: bool) -> None:
        from xds.registry import Registry

        self.validator = Registry(None, settings, codes)  # type: ignore[arg-type]
        self.settings = settings
        self.pre_serialize = pre_serialize

    def __call__(self, source: str, sub: Source) -> _Item | Rejected:
        if isinstance(sub, str):
            sub = _read_or_report(sub)
        elif not isinstance(sub, m.Submission):
            sub = sub()
        found = self.validator.validate(sub)
        if has_errors(found):
            return Rejected(source, found)
        if sub.submission_set is None:
            return Rejected(source, [Rule.SUBMISSION_SET_MISSING.error()])
        warnings = [e for e in found if not e.is_error]
        fresh = frozenset(assign_entry_uuids(sub).values())
        if self.settings.extra_metadata != "store":
            warnings += strip_extra_metadata(sub)
        item = _Item(source, sub, warnings, fresh)
        if self.pre_serialize:
            item.fragments = _Fragments.of(sub)
        return item


class _Fragments:
    """Fragments serialised ahead (in a worker), each with the pickled state of the object it
    was made from; :meth:`__call__` is the ``serialize`` of register_submission and falls back
    to the real serialiser whenever the object changed since."""

    def __init__(self, made: dict[str, tuple[bytes, str]]) -> None:
        self.made = made
        self.reused = 0

    @classmethod
    def of(cls, sub: m.Submission) -> _Fragments:
        made = {}
        for obj in sub.objects():
            if isinstance(obj, m.Folder):
                continue  # lastUpdateTime is the time of registration
            # what Registration.write sets on every submitted object before serialising it
            obj.status = m.STATUS_APPROVED
            if isinstance(obj, m.DocumentEntry):
                obj.lid = obj.entry_uuid
                obj.version_name = "1"
            made[obj.entry_uuid] = (pickle.dumps(obj, _PICKLE), default_serializer(obj))
        return cls(made)

    def __call__(self, obj: m.RegistryObject) -> str:
        ahead = self.made.get(obj.entry_uuid)
        if ahead is not None and ahead[0] == pickle.dumps(obj, _PICKLE):
            self.reused += 1
            return ahead[1]
        return default_serializer(obj)


_PICKLE = 4


def _read_or_report(path: str) -> m.Submission:
    try:
        return read_submission(path)
    except (OSError, etree.XMLSyntaxError) as e:
        return m.Submission(parse_errors=[Rule.REGISTRY_ERROR.error(reason=f"{path}: {e}")])


_worker_preparer: _Preparer | None = None


def _worker_init(settings: Any, codes: Any) -> None:
    global _worker_preparer
    _worker_preparer = _Preparer(settings, codes, pre_serialize=True)


def _worker_prepare(chunk: list[tuple[str, Source]]) -> list[_Item | Rejected]:
    assert _worker_preparer is not None
    return [_worker_preparer(source, sub) for source, sub in chunk]


class BulkLoader:
    """Registers submissions into ``registry`` (a :class:`xds.registry.Registry`) in batches of
    ``batch_size`` submissions per transaction. :meth:`load` takes any iterable of ``(source
    label, Source)``, consumed in order. ``workers`` > 0 reads, validates and
    serialises in that many processes while this one registers and writes; the order of
    registration is still the order of the input."""

    def __init__(
        self,
        registry: Any,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        patients: PatientPolicy | str = PatientPolicy.REQUIRE,
        workers: int = 0,
        progress: Callable[[LoadReport], None] | None = None,
    ) -> None:
        self.registry = registry
        self.batch_size = max(1, batch_size)
        self.patients = PatientPolicy(patients)
        self.workers = max(0, workers)
        self.progress = progress
        self.fragments_reused = 0

    def load(self, submissions: Iterable[tuple[str, Source]], *, analyze_after: bool = True) -> LoadReport:
        report = LoadReport()
        started = time.perf_counter()
        batch: list[_Item] = []
        for prepared in self._prepared(submissions):
            if isinstance(prepared, Rejected):
                report.rejected.append(prepared)
                continue
            batch.append(prepared)
            if len(batch) >= self.batch_size:
                self._batch(batch, report)
                batch = []
        if batch:
            self._batch(batch, report)
        if analyze_after and report.submissions:
            with self.registry.store.engine.begin() as conn:
                analyze(conn)
        report.seconds = time.perf_counter() - started
        return report

    def _prepared(self, submissions: Iterable[tuple[str, Source]]) -> Iterator[_Item | Rejected]:
        settings, codes = self.registry.settings, self.registry.codes
        if self.workers == 0:
            prepare = _Preparer(settings, codes, pre_serialize=False)
            for source, sub in submissions:
                yield prepare(source, sub)
            return
        import multiprocessing
        from collections import deque
        from concurrent.futures import ProcessPoolExecutor

        chunk_size = max(1, min(200, self.batch_size // self.workers))
        chunks = _chunked(submissions, chunk_size)
        with ProcessPoolExecutor(
            self.workers,
            mp_context=multiprocessing.get_context(
                "fork"
            ),  # workers only compute: no database handle is used
            initializer=_worker_init,
            initargs=(settings, codes),
        ) as pool:
            inflight: deque[Any] = deque()
            for chunk in chunks:  # at most 3 chunks a worker ahead: memory stays bounded
                inflight.append(pool.submit(_worker_prepare, chunk))
                if len(inflight) >= 3 * self.workers:
                    yield from inflight.popleft().result()
            while inflight:
                yield from inflight.popleft().result()

    def _batch(self, items: list[_Item], report: LoadReport) -> None:
        try:
            outcomes = self._transaction(items)
        except _BatchFailed as e:
            log.warning("bulk load: batch of %d failed (%s); registering one by one", len(items), e)
            report.retried_batches += 1
            outcomes = []
            for item in items:
                try:
                    outcomes += self._transaction([item])
                except _BatchFailed as e1:
                    cause = e1.__cause__
                    rule = Rule.DUPLICATE_UNIQUE_ID_IN_REGISTRY if isinstance(cause, IntegrityError) else None
                    assert item.submission.submission_set is not None
                    err = (
                        rule.error(value=item.submission.submission_set.unique_id)
                        if rule
                        else Rule.REGISTRY_ERROR.error(reason=f"the registry database failed: {e1}")
                    )
                    outcomes.append((item, [err], 0))
        report.batches += 1
        for item, errors, registered in outcomes:
            if has_errors(errors):
                report.rejected.append(Rejected(item.source, errors))
                continue
            if errors:
                report.warnings.append(Rejected(item.source, errors))
            sub = item.submission
            report.submissions += 1
            report.document_entries += len(sub.document_entries)
            report.folders += len(sub.folders)
            report.associations += len(sub.associations)
            report.patients_registered += registered
        if self.progress is not None:
            self.progress(report)

    def _transaction(self, items: list[_Item]) -> list[tuple[_Item, list[RegistryError], int]]:
        store = self.registry.store
        settings = self.registry.settings
        outcomes = []
        with store.engine.connect().execution_options(xds_write=True) as conn:
            if conn.dialect.name == "sqlite":
                # the indexes of a large registry do not fit SQLite's default 2 MB page cache
                conn.connection.dbapi_connection.execute(f"PRAGMA cache_size = -{SQLITE_CACHE_KIB}")  # type: ignore[union-attr]
            with conn.begin():
                tx = BatchTransaction(conn, self.patients)
                tx.read_ahead(items)
                batch_store = _BatchStore(tx)
                for item in items:
                    before = len(tx._new_patients)
                    errors = register_submission(
                        batch_store,  # type: ignore[arg-type]
                        item.submission,
                        settings,
                        validate=lambda _sub, w=item.warnings: list(w),
                        serialize=item.fragments or default_serializer,
                    )
                    if item.fragments is not None:
                        self.fragments_reused += item.fragments.reused
                    outcomes.append((item, errors, len(tx._new_patients) - before))
                tx.flush()
            if conn.dialect.name == "sqlite":
                wal_checkpoint(conn.connection.dbapi_connection)  # a batch is thousands of WAL pages
        return outcomes


def _chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk: list[Any] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def load_files(
    registry: Any,
    sources: Sequence[str | os.PathLike[str]],
    **kwargs: Any,
) -> LoadReport:
    """Bulk-load the SubmitObjectsRequest files of ``sources`` (files or directories)."""
    return BulkLoader(registry, **kwargs).load(file_submissions(sources))


__all__ = [
    "AUTO_REGISTERED_SOURCE",
    "BatchTransaction",
    "BulkLoader",
    "LoadReport",
    "PatientPolicy",
    "Rejected",
    "file_submissions",
    "load_files",
    "read_submission",
]
