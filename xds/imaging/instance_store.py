"""The Imaging Document Source's own store of the DICOM instances it received (XDS-I.b, RAD TF-1 18).

Each instance is kept as a DICOM PS3.10 file whose data set is the one received, byte for byte
(RAD-69 returns it unchanged when its transfer syntax is asked for). The files live in the node's
document store, in a key space of their own (:mod:`xds.imaging.storage`): the repository's keys are
not shared, because its reconciliation removes objects its index does not name. An object is
stored before its index rows are written and removed when they cannot be; the start-up repair of
:mod:`xds.imaging.storage` removes what a crash left in between.

Three tables, in the node's database next to the registry's and the repository's, index them by the
DICOM information model (PS3.3 A.1.2): study -> series -> SOP instance. A study row also tracks
publication: ``last_received`` drives the quiet period, ``revision`` counts changes since the study
was first seen and ``published_revision`` the revision its current manifest describes, so a study
with ``revision > published_revision`` needs a (replacement) manifest.
"""

from __future__ import annotations

import hashlib
import io
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import pydicom
from pydicom.dataset import Dataset
from sqlalchemy import (
    BigInteger,
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
    bindparam,
    func,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from xds.repository.store import DocumentStore

log = logging.getLogger("xds.imaging")

metadata = MetaData()

imaging_study = Table(
    "imaging_study",
    metadata,
    Column("study_instance_uid", String(64), primary_key=True),
    Column("patient_id", String, nullable=False, default="", doc="(0010,0020)"),
    Column("issuer_of_patient_id", String, nullable=False, default="", doc="(0010,0021)"),
    Column("accession_number", String, nullable=False, default="", doc="(0008,0050)"),
    Column("first_received", Float, nullable=False),
    Column("last_received", Float, nullable=False),
    Column("revision", Integer, nullable=False, default=1),
    Column("published_revision", Integer, nullable=False, default=0),
    Column("manifest_uid", String(64), nullable=True, doc="SOP Instance UID of the current KOS"),
    Column("manifest_entry_uuid", String, nullable=True, doc="its DocumentEntry entryUUID"),
    Column("published_at", Float, nullable=True),
    Column("publish_error", String, nullable=True, doc="why the last publication failed"),
    Index("ix_imaging_study_patient", "patient_id", "issuer_of_patient_id"),
    Index("ix_imaging_study_accession", "accession_number"),
    Index("ix_imaging_study_pending", "published_revision", "last_received"),
    comment="Studies received by the Imaging Document Source and their KOS publication state.",
)

imaging_series = Table(
    "imaging_series",
    metadata,
    Column("series_instance_uid", String(64), primary_key=True),
    Column("study_instance_uid", String(64), ForeignKey("imaging_study.study_instance_uid"), nullable=False),
    Column("modality", String, nullable=False, default=""),
    Index("ix_imaging_series_study", "study_instance_uid"),
)

imaging_instance = Table(
    "imaging_instance",
    metadata,
    Column("sop_instance_uid", String(64), primary_key=True),
    Column("series_instance_uid", String(64), ForeignKey("imaging_series.series_instance_uid"), nullable=False),
    Column("study_instance_uid", String(64), nullable=False),
    Column("sop_class_uid", String(64), nullable=False),
    Column("transfer_syntax_uid", String(64), nullable=False),
    Column("instance_number", Integer, nullable=True),
    Column("storage_key", String, nullable=False, unique=True),
    Column("size", BigInteger, nullable=False),
    Column("sha1", String(40), nullable=False),
    Column("calling_ae", String, nullable=False, default=""),
    Column("received_at", Float, nullable=False),
    Index("ix_imaging_instance_series", "series_instance_uid"),
    Index("ix_imaging_instance_study", "study_instance_uid"),
)

# One transaction per instance, so the statements are built once (construction and cache-key cost
# was a third of the index write).
_st, _se, _it = imaging_study.c, imaging_series.c, imaging_instance.c
_STUDY_REVISION = select(_st.revision).where(_st.study_instance_uid == bindparam("study"))
_SERIES_EXISTS = select(_se.series_instance_uid).where(_se.series_instance_uid == bindparam("series"))
_OLD_INSTANCE = select(_it.storage_key, _it.sha1).where(_it.sop_instance_uid == bindparam("sop"))
_INSERT_INSTANCE = imaging_instance.insert()
_UPDATE_INSTANCE = update(imaging_instance).where(_it.sop_instance_uid == bindparam("sop"))
_STUDY_RECEIVED = (
    update(imaging_study).where(_st.study_instance_uid == bindparam("study")).values(last_received=bindparam("at"))
)
_STUDY_CHANGED = (
    update(imaging_study)
    .where(_st.study_instance_uid == bindparam("study"))
    .values(last_received=bindparam("at"), revision=_st.revision + 1)
)

# What the index needs from a header; everything else is read from the file when needed.
_HEADER_TAGS = [
    "SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality",
    "PatientID", "IssuerOfPatientID", "AccessionNumber", "InstanceNumber",
]
# What an admission check (:attr:`InstanceStore.admit`) needs besides: the patient's other ids.
_PATIENT_TAGS = [
    "StudyInstanceUID", "PatientID", "IssuerOfPatientID", "IssuerOfPatientIDQualifiersSequence",
    "OtherPatientIDsSequence",
]


class InstanceError(ValueError):
    """A received data set that cannot be indexed (not DICOM, or without its identifying UIDs), or
    that :attr:`InstanceStore.admit` refuses."""


@dataclass(frozen=True)
class StoredInstance:
    sop_instance_uid: str
    series_instance_uid: str
    study_instance_uid: str
    sop_class_uid: str
    transfer_syntax_uid: str
    instance_number: int | None
    storage_key: str
    size: int
    sha1: str
    calling_ae: str
    received_at: float


@dataclass(frozen=True)
class Study:
    study_instance_uid: str
    patient_id: str
    issuer_of_patient_id: str
    accession_number: str
    first_received: float
    last_received: float
    revision: int
    published_revision: int
    manifest_uid: str | None
    manifest_entry_uuid: str | None
    published_at: float | None
    publish_error: str | None

    @property
    def needs_manifest(self) -> bool:
        return self.revision > self.published_revision


def part10(file_meta: Dataset, encoded_dataset: bytes) -> bytes:
    """A PS3.10 file: preamble, ``DICM``, the file meta information, then the data set unchanged."""
    from pydicom.filewriter import write_file_meta_info

    out = io.BytesIO()
    out.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(out, file_meta, enforce_standard=True)  # type: ignore[arg-type]
    out.write(encoded_dataset)
    return out.getvalue()


def study_key(study_instance_uid: str) -> str:
    """A fresh storage key whose first four hex digits come from the Study Instance UID, so the
    filesystem store keeps a study's instances in one directory, created (and fsynced) once."""
    return hashlib.sha1(study_instance_uid.encode()).hexdigest()[:4] + uuid.uuid4().hex[:28]


def read_header(stream: BinaryIO) -> Dataset:
    try:
        ds = pydicom.dcmread(stream, stop_before_pixels=True, specific_tags=_HEADER_TAGS)
        for _ in ds:  # a value is decoded when first read: a malformed one must fail here, not later
            pass
    except Exception as e:  # pydicom raises many kinds on garbage; its messages may quote values
        raise InstanceError(f"not a DICOM data set ({type(e).__name__})") from None
    return ds


class _Rewindable(io.RawIOBase):
    """A forward-only stream (an S3 object body) made seekable over what has been read of it, which
    is what pydicom's header reader needs: it steps back a few bytes at a time and re-reads the
    file meta information. Only the bytes up to where reading stopped are kept."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._buffer = bytearray()
        self._pos = 0
        self._eof = False

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def _fill(self, upto: int) -> None:
        while len(self._buffer) < upto and not self._eof:
            block = self._stream.read(min(max(upto - len(self._buffer), 64 * 1024), 1024 * 1024))
            if not block:
                self._eof = True
            self._buffer += block

    def readinto(self, b: Any) -> int:
        self._fill(self._pos + len(b))
        n = max(0, min(len(b), len(self._buffer) - self._pos))
        b[:n] = self._buffer[self._pos : self._pos + n]
        self._pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        if whence == io.SEEK_CUR:
            offset += self._pos
        elif whence == io.SEEK_END:
            self._fill(1 << 62)
            offset += len(self._buffer)
        self._pos = max(0, offset)
        return self._pos

    def tell(self) -> int:
        return self._pos

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            super().close()


def seekable(stream: BinaryIO) -> BinaryIO:
    """``stream`` itself when it can seek (a file), else a :class:`_Rewindable` over it."""
    try:
        if stream.seekable():
            return stream
    except (AttributeError, OSError, ValueError):
        pass
    return _Rewindable(stream)  # type: ignore[return-value]


def _patient_header(data: bytes) -> Dataset | None:
    """The patient's ids of a PS3.10 file, or None when they do not decode (an instance is stored
    as received even then: only its identifying UIDs must decode)."""
    try:
        ds = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True, specific_tags=_PATIENT_TAGS)
        for _ in ds.iterall():  # decoded when first read
            pass
    except Exception:
        return None
    return ds


def _str(ds: Dataset, keyword: str) -> str:
    value = ds.get(keyword)
    return "" if value is None else str(value).strip()


class InstanceStore:
    """Received instances: files in ``store``, index rows in ``engine``'s database."""

    def __init__(self, engine: Engine, store: DocumentStore) -> None:
        self.engine = engine
        self.store = store
        # called with each header before anything is stored; raises InstanceError to refuse it
        self.admit: Callable[[Dataset], None] | None = None
        self._known_series: set[str] = set()  # series (and so their study) with index rows
        from xds.registry.db import migrate

        migrate(engine)  # the tables are Alembic's (revision 0005)

    def _write(self) -> Connection:
        return self.engine.connect().execution_options(xds_write=True)

    def add(self, data: bytes, calling_ae: str = "", received_at: float | None = None) -> StoredInstance:
        """Store one PS3.10 file and index it. A SOP Instance UID received again replaces the
        earlier copy; its study is marked changed only when the bytes differ."""
        header = read_header(io.BytesIO(data))
        uids = {k: _str(header, k) for k in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "SOPClassUID")}
        missing = [k for k, v in uids.items() if not v]
        if missing:
            raise InstanceError(f"the data set has no {', '.join(missing)}")
        if self.admit is not None:
            self.admit(_patient_header(data) or header)
        ts = str(header.file_meta.get("TransferSyntaxUID", "")) if hasattr(header, "file_meta") else ""
        now = received_at if received_at is not None else time.time()
        key = study_key(uids["StudyInstanceUID"])
        stored = self.store.put(io.BytesIO(data), key, size_hint=len(data))
        try:
            instance = StoredInstance(
                sop_instance_uid=uids["SOPInstanceUID"],
                series_instance_uid=uids["SeriesInstanceUID"],
                study_instance_uid=uids["StudyInstanceUID"],
                sop_class_uid=uids["SOPClassUID"],
                transfer_syntax_uid=ts,
                instance_number=_int(header.get("InstanceNumber")),
                storage_key=key,
                size=stored.size,
                sha1=stored.sha1,
                calling_ae=calling_ae,
                received_at=now,
            )
            replaced = self._index(instance, header)
        except BaseException:
            self.store.delete(key)
            raise
        if replaced is not None:
            self.store.delete(replaced)
        return instance

    def _index(self, inst: StoredInstance, header: Dataset) -> str | None:
        """Insert or replace the rows of ``inst``; returns the storage key it replaced."""
        for attempt in range(3):
            try:
                with self._write() as conn, conn.begin():
                    replaced = self._index_in(conn, inst, header)
                self._known_series.add(inst.series_instance_uid)
                return replaced
            except IntegrityError:  # a concurrent association created the same study or series
                self._known_series.discard(inst.series_instance_uid)
                if attempt == 2:
                    raise
        return None

    def _index_in(self, conn: Connection, inst: StoredInstance, header: Dataset) -> str | None:
        study_created = False
        if inst.series_instance_uid not in self._known_series:
            study_created = self._add_study_and_series(conn, inst, header)
        old = conn.execute(_OLD_INSTANCE, {"sop": inst.sop_instance_uid}).first()
        values = {k: getattr(inst, k) for k in StoredInstance.__dataclass_fields__}
        if old is None:
            conn.execute(_INSERT_INSTANCE, values)
        else:
            conn.execute(_UPDATE_INSTANCE.values(**values), {"sop": inst.sop_instance_uid})
        if not study_created:
            changed = old is None or old.sha1 != inst.sha1
            conn.execute(_STUDY_CHANGED if changed else _STUDY_RECEIVED,
                         {"study": inst.study_instance_uid, "at": inst.received_at})
        return None if old is None else old.storage_key

    def _add_study_and_series(self, conn: Connection, inst: StoredInstance, header: Dataset) -> bool:
        """Insert the study and series rows ``inst`` needs; True when the study is new."""
        study = conn.execute(_STUDY_REVISION, {"study": inst.study_instance_uid}).first()
        if study is None:
            conn.execute(
                imaging_study.insert().values(
                    study_instance_uid=inst.study_instance_uid,
                    patient_id=_str(header, "PatientID"),
                    issuer_of_patient_id=_str(header, "IssuerOfPatientID"),
                    accession_number=_str(header, "AccessionNumber"),
                    first_received=inst.received_at,
                    last_received=inst.received_at,
                    revision=1,
                    published_revision=0,
                )
            )
        if conn.execute(_SERIES_EXISTS, {"series": inst.series_instance_uid}).first() is None:
            conn.execute(
                imaging_series.insert().values(
                    series_instance_uid=inst.series_instance_uid,
                    study_instance_uid=inst.study_instance_uid,
                    modality=_str(header, "Modality"),
                )
            )
        return study is None

    # --- reads ---

    def study(self, study_instance_uid: str) -> Study | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(imaging_study).where(imaging_study.c.study_instance_uid == study_instance_uid)
            ).first()
        return None if row is None else Study(**row._mapping)

    def studies_due(self, quiet_seconds: float, now: float | None = None) -> list[Study]:
        """Studies with changes no manifest describes yet and no instance for ``quiet_seconds``."""
        now = time.time() if now is None else now
        st = imaging_study.c
        stmt = select(imaging_study).where(st.revision > st.published_revision, st.last_received <= now - quiet_seconds)
        with self.engine.connect() as conn:
            return [Study(**row._mapping) for row in conn.execute(stmt.order_by(st.last_received))]

    def next_due(self, quiet_seconds: float) -> float | None:
        """When the earliest study with changes no manifest describes falls due (its last arrival
        plus ``quiet_seconds``), or None when there is none."""
        st = imaging_study.c
        stmt = select(func.min(st.last_received)).where(st.revision > st.published_revision)
        with self.engine.connect() as conn:
            last = conn.scalar(stmt)
        return None if last is None else float(last) + quiet_seconds

    def instances(self, study_instance_uid: str) -> list[StoredInstance]:
        it = imaging_instance.c
        stmt = (
            select(imaging_instance)
            .where(it.study_instance_uid == study_instance_uid)
            .order_by(it.series_instance_uid, it.instance_number, it.sop_instance_uid)
        )
        with self.engine.connect() as conn:
            return [StoredInstance(**row._mapping) for row in conn.execute(stmt)]

    def get_many(self, sop_instance_uids: list[str]) -> dict[str, StoredInstance]:
        out: dict[str, StoredInstance] = {}
        it = imaging_instance.c
        with self.engine.connect() as conn:
            for i in range(0, len(sop_instance_uids), 500):
                chunk = sop_instance_uids[i : i + 500]
                for row in conn.execute(select(imaging_instance).where(it.sop_instance_uid.in_(chunk))):
                    out[row.sop_instance_uid] = StoredInstance(**row._mapping)
        return out

    def series_modalities(self, study_instance_uid: str) -> dict[str, str]:
        se = imaging_series.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(se.series_instance_uid, se.modality).where(se.study_instance_uid == study_instance_uid))
            return {r.series_instance_uid: r.modality for r in rows}

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(select(func.count()).select_from(imaging_instance)) or 0)

    def open(self, instance: StoredInstance) -> BinaryIO:
        return self.store.open(instance.storage_key)

    def read_dataset(self, instance: StoredInstance, *, stop_before_pixels: bool = True) -> Dataset:
        """The instance's data set, read up to its pixel data (all of it with ``stop_before_pixels``
        false); from an object store, only the bytes read are fetched."""
        with seekable(self.open(instance)) as f:
            return pydicom.dcmread(f, stop_before_pixels=stop_before_pixels)

    def known_keys(self, storage_keys: list[str]) -> set[str]:
        """Those of ``storage_keys`` an indexed instance names (for the start-up repair)."""
        it = imaging_instance.c
        with self.engine.connect() as conn:
            return set(conn.scalars(select(it.storage_key).where(it.storage_key.in_(storage_keys))))

    def iter_headers(self, instances: list[StoredInstance]) -> Iterator[tuple[StoredInstance, Dataset]]:
        for inst in instances:
            yield inst, self.read_dataset(inst)

    # --- publication state ---

    def mark_published(self, study_instance_uid: str, revision: int, manifest_uid: str, entry_uuid: str) -> None:
        st = imaging_study.c
        with self._write() as conn, conn.begin():
            conn.execute(
                update(imaging_study)
                .where(st.study_instance_uid == study_instance_uid)
                .values(
                    published_revision=revision,
                    manifest_uid=manifest_uid,
                    manifest_entry_uuid=entry_uuid,
                    published_at=time.time(),
                    publish_error=None,
                )
            )

    def mark_failed(self, study_instance_uid: str, reason: str, retry_after: float) -> None:
        """Record why publication failed and push the study's next attempt ``retry_after`` seconds
        into the future (by moving its quiet period)."""
        st = imaging_study.c
        with self._write() as conn, conn.begin():
            conn.execute(
                update(imaging_study)
                .where(st.study_instance_uid == study_instance_uid)
                .values(publish_error=reason[:2000], last_received=time.time() + retry_after)
            )

    def make_due(self, study_instance_uid: str, quiet_seconds: float,
                 claim: Callable[[Connection], None] | None = None) -> None:
        """Make a study that waited (a held one) due now, its quiet period over; ``claim`` runs in
        the same transaction (the identity layer marking the held item released, exactly once)."""
        st = imaging_study.c
        with self._write() as conn, conn.begin():
            if claim is not None:
                claim(conn)
            conn.execute(
                update(imaging_study)
                .where(st.study_instance_uid == study_instance_uid)
                .values(publish_error=None, last_received=time.time() - quiet_seconds)
            )

    def close(self) -> None:
        self.store.close()
        self.engine.dispose()


def _int(value: object) -> int | None:
    try:
        return int(str(value)) if value not in (None, "") else None
    except ValueError:
        return None
