"""Mapping at ingest and at query: local couplets become the HN (DESIGN.md section 7).

:meth:`PatientMapping.resolve` answers which HN a local id (an XDS/HL7 CX, a DICOM
``(Patient ID, Issuer of Patient ID)`` pair or a :class:`~xds.identity.domain.Couplet`) maps to now.

Ingest. An ITI-41/42 submission whose patientId is a couplet is registered under the couplet's HN,
the couplet kept as DocumentEntry.sourcePatientId (ITI TF-3 4.2.3.2.23) and remembered, so a later
HN correction or local merge moves what came in under it (:func:`register`). A couplet with no HN
yet is, per ``identity.unknown_local_id``, refused (XDSUnknownPatientId) or *held*: the request is
kept in ``identity_held`` (it survives restarts), the source gets Success with a DocumentQueued
warning, and it is registered when an ADT links the couplet to an HN: right after that ADT, or by
the start-up sweep (:meth:`PatientMapping.release`). Registration and release are one database
transaction, so a held submission is registered exactly once. Other kinds of held items (DICOM
studies) are released through the handler their owner registers with :meth:`PatientMapping.on_release`.

Query. :func:`resolve_query_patients` turns a couplet given as an ITI-18 patient id parameter into
its HN, and applies ``registry.merged_patient_policy`` to retired ids (ITI TF-2a 3.18.4.1.2.3.7).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lxml import etree
from sqlalchemy import Connection, Engine

from xds.config import RegistryConfig
from xds.identity import schema as t
from xds.identity.domain import HOLD, Couplet, IdentityDomain, Issuer
from xds.identity.store import AlreadyReleased, HeldRow, IdentityStore, IdentityTransaction
from xds.metadata import model as m
from xds.metadata.datatypes import CX
from xds.metadata.errors import RegistryError, has_errors
from xds.metadata.rules import Rule
from xds.registry.store import DOCUMENT_ENTRY, FOLDER, SUBMISSION_SET

if TYPE_CHECKING:
    from xds.registry import Registry
    from xds.registry.register import AfterWrite

log = logging.getLogger("xds.identity.mapping")

XDS_SUBMISSION = "xds-submission"  # held kind: an lcm:SubmitObjectsRequest (ITI-41 or ITI-42)

# ITI-18 parameters naming the patient (ITI TF-2a 3.18.4.1.2.3.7)
PATIENT_PARAMETERS = ("$XDSDocumentEntryPatientId", "$XDSSubmissionSetPatientId", "$XDSFolderPatientId",
                      "$patientId")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


class StillHeld(Exception):
    """A held item names another couplet that has no HN yet: it stays held, under that couplet."""

    def __init__(self, couplet: Couplet) -> None:
        super().__init__(str(couplet))
        self.couplet = couplet


@dataclass(frozen=True)
class HeldItem:
    """What a release handler gets: the item, and ``claim`` to mark it released inside the
    handler's own database transaction (exactly once); unclaimed, it is marked released after the
    handler returns without errors."""

    id: int
    kind: str
    patient_id: str
    issuer: str
    payload: bytes
    summary: str

    def claim(self, conn: Connection) -> None:
        IdentityTransaction(conn).claim_held(self.id)


ReleaseHandler = Callable[[HeldItem, str], "list[RegistryError] | None"]


@dataclass
class ReleaseReport:
    released: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    waiting: int = 0


class PatientMapping:
    """Couplet -> HN resolution and the held-item queue of one node."""

    def __init__(self, store: IdentityStore, domain: IdentityDomain) -> None:
        self.store = store
        self.domain = domain
        self._handlers: dict[str, ReleaseHandler] = {}

    # --- resolution ---

    def resolve(self, patient_id_or_couplet: str | tuple[str, str] | Couplet, *,
                follow_retired: bool = True) -> str | None:
        """The HN (``hn^^^&OID&ISO``) a local id maps to now, or None (no HN yet, unknown, or
        retired by A40/A47 when ``follow_retired`` is false). An HN maps to itself, or to the HN it
        was merged into; an HN the feed never sent maps to None."""
        parsed = self.domain.parse(patient_id_or_couplet)
        if parsed is None:
            return None
        with self.store.reading() as tx:
            if isinstance(parsed, Couplet):
                return tx.resolve(parsed, follow_retired=follow_retired)
            if not follow_retired:
                row = tx.registry.patient(parsed)
                return parsed if row is not None and not row.merged_into else None
            return tx.surviving_hn(parsed)

    def couplet(self, patient_id: str, issuer: str) -> Couplet | None:
        """The couplet of DICOM Patient ID (0010,0020) + Issuer of Patient ID (0010,0021)."""
        return self.domain.couplet(patient_id, issuer)

    def issuer_known(self, tx: IdentityTransaction, issuer: Issuer) -> bool:
        """Configured for a feed, or named by a couplet some feed sent: worth waiting for."""
        if any(i.key == issuer.key for i in self.domain.known_issuers()):
            return True
        return tx.conn.scalar(
            t.couplet.select().with_only_columns(t.couplet.c.id).where(t.couplet.c.issuer == issuer.key).limit(1)
        ) is not None

    # --- the held queue ---

    def hold(self, kind: str, couplet: Couplet, payload: bytes, summary: str = "") -> int:
        """Keep ``payload`` until ``couplet`` has an HN; returns the held item's id."""
        with self.store.transaction() as tx:
            held_id = tx.hold(kind, couplet, payload, summary)
        log.info("held %s #%d (%s) until its local patient id has an HN", kind, held_id, summary)
        return held_id

    def on_release(self, kind: str, handler: ReleaseHandler) -> None:
        """``handler(item, hn)`` registers a held item of ``kind`` under ``hn``; it returns the
        errors that make the release fail for good (none: released), raises :class:`StillHeld`
        to wait for another couplet, or raises anything else to be retried at the next sweep."""
        self._handlers[kind] = handler

    def held(self, status: str | None = t.HELD) -> list[HeldRow]:
        return self.store.held(status=status)

    def held_document_entries(self) -> list[m.DocumentEntry]:
        """The DocumentEntries of the submissions still held: documents a repository stored and
        must keep (its start-up reconciliation must not take them for orphans)."""
        from xds.metadata import ebrim

        out: list[m.DocumentEntry] = []
        for row in self.store.held(status=t.HELD):
            if row.kind == XDS_SUBMISSION:
                sub = ebrim.parse_submit_objects_request(etree.fromstring(row.payload, _PARSER))
                out.extend(sub.document_entries)
        return out

    def held_document_unique_ids(self) -> set[str]:
        return {de.unique_id for de in self.held_document_entries()}

    def release(self, keys: Iterable[tuple[str, str]] | None = None) -> ReleaseReport:
        """Release the held items of ``keys`` (couplet keys; all held items when None) whose couplet
        has an HN now."""
        report = ReleaseReport()
        with self.store.reading() as tx:
            items = tx.held(keys=None if keys is None else list(keys))
        hns: dict[tuple[str, str], str | None] = {}
        for row in items:
            key = (row.patient_id, row.issuer)
            if key not in hns:
                hns[key] = self.store.resolve(key)
            hn, handler = hns[key], self._handlers.get(row.kind)
            if hn is None or handler is None:
                report.waiting += 1
                continue
            item = HeldItem(row.id, row.kind, row.patient_id, row.issuer, row.payload, row.summary)
            self._release_one(item, hn, handler, report)
        if report.released or report.failed:
            log.info("released %d held item(s), %d failed, %d still waiting", len(report.released),
                     len(report.failed), report.waiting)
        return report

    def _release_one(self, item: HeldItem, hn: str, handler: ReleaseHandler, report: ReleaseReport) -> None:
        with self.store.reading() as tx:
            if not tx.held(ids=[item.id]):
                return  # released by a concurrent sweep meanwhile
        try:
            errors = handler(item, hn) or []
        except AlreadyReleased:
            return
        except StillHeld as still:
            with self.store.transaction() as tx:
                tx.set_held(item.id, patient_id=still.couplet.patient_id, issuer=still.couplet.issuer.key)
            report.waiting += 1
            return
        except Exception as exc:
            log.error("release of held %s #%d failed (%s); kept for the next sweep", item.kind, item.id,
                      type(exc).__name__)
            log.debug("release failure", exc_info=True)
            report.waiting += 1
            return
        with self.store.transaction() as tx:
            if has_errors(errors):
                if not tx.fail_held(item.id, "; ".join(f"{e.code}: {e.context}" for e in errors)):
                    return  # a concurrent release registered it: these errors are its duplicate's
                report.failed.append(item.id)
                log.error("held %s #%d could not be registered: %s", item.kind, item.id,
                          ", ".join(sorted({e.code for e in errors})))
                return
            try:
                tx.claim_held(item.id)
            except AlreadyReleased:
                pass  # claimed by the handler in its own transaction
        report.released.append(item.id)


# --- ITI-41 / ITI-42: registering a submission under the HN ------------------------------------------


@dataclass
class _Mapped:
    objects: list[tuple[m.RegistryObject, str, str, int]] = field(default_factory=list)  # obj, old, hn, couplet
    waiting: list[Couplet] = field(default_factory=list)  # couplets with no HN yet
    refused: list[RegistryError] = field(default_factory=list)


def _patient_objects(submission: m.Submission) -> list[m.RegistryObject]:
    objs: list[m.RegistryObject] = [submission.submission_set] if submission.submission_set else []
    return objs + list(submission.document_entries) + list(submission.folders)


def _kind(obj: m.RegistryObject) -> str:
    if isinstance(obj, m.DocumentEntry):
        return DOCUMENT_ENTRY
    return SUBMISSION_SET if isinstance(obj, m.SubmissionSet) else FOLDER


def _map(mapping: PatientMapping, submission: m.Submission, follow_retired: bool) -> _Mapped:
    out = _Mapped()
    refused: set[str] = set()
    local: list[tuple[m.RegistryObject, str, Couplet]] = []
    for obj in _patient_objects(submission):
        pid = getattr(obj, "patient_id", "") or ""
        couplet = mapping.domain.parse(pid) if pid else None
        if isinstance(couplet, Couplet):
            local.append((obj, pid, couplet))
        # else an HN (or nothing usable): the registry's own checks apply
    if not local:
        return out
    with mapping.store.reading() as tx:
        for obj, pid, couplet in local:
            if pid in refused:
                continue
            row = tx.couplet(couplet)
            why = None
            if row is not None and not row.active and not follow_retired:
                why = f"that was {row.status} (ADT^A40/A47)"
            elif row is None and not mapping.issuer_known(tx, couplet.issuer):
                why = f"of issuer {couplet.issuer.key}, which no identity feed of this DIR sends"
            if why is not None:
                refused.add(pid)
                out.refused.append(Rule.LOCAL_PATIENT_ID_UNMAPPED.error(location=obj.entry_uuid, patient_id=pid,
                                                                        why=why))
                continue
            hn = tx.resolve(couplet) if row is not None else None
            if hn is not None and row is not None:
                out.objects.append((obj, pid, hn, row.id))
            elif couplet not in out.waiting:
                out.waiting.append(couplet)
    return out


def _links(mapped: _Mapped, submission: m.Submission, domain: IdentityDomain,
           tx: IdentityTransaction) -> list[tuple[int, str, str]]:
    """(couplet id, entry_uuid, kind) of the objects registered through a couplet: those mapped,
    and DocumentEntries sent under the HN whose sourcePatientId is a couplet linked to that HN."""
    out = [(cid, obj.entry_uuid, _kind(obj)) for obj, _, _, cid in mapped.objects]
    mapped_ids = {id(obj) for obj, *_ in mapped.objects}
    for de in submission.document_entries:
        if id(de) in mapped_ids or not de.source_patient_id:
            continue
        source = domain.parse(de.source_patient_id)
        row = tx.couplet(source) if isinstance(source, Couplet) else None
        if row is not None and row.active and row.hn and tx.surviving_hn(row.hn) == de.patient_id:
            out.append((row.id, de.entry_uuid, DOCUMENT_ENTRY))
    return out


def register(registry: Registry, mapping: PatientMapping, submission: m.Submission, *,
             held: HeldItem | None = None, after_write: AfterWrite | None = None) -> list[RegistryError]:
    """ITI-42 with local ids: map, then register (or hold, or refuse). ``held``: releasing a held
    submission (its couplets are followed through merges; it is claimed in the same transaction).
    ``after_write``: the caller's, run in the registration's transaction after the links."""
    from xds.registry.register import register_submission

    mapped = _map(mapping, submission, follow_retired=held is not None)
    if mapped.refused:
        return mapped.refused
    if mapped.waiting:
        if held is not None:
            raise StillHeld(mapped.waiting[0])
        return _hold_or_refuse(registry, mapping, submission, mapped.waiting)
    for obj, old, hn, _ in mapped.objects:
        obj.patient_id = hn  # type: ignore[attr-defined]
        if isinstance(obj, m.DocumentEntry) and not obj.source_patient_id:
            obj.source_patient_id = old

    def link_couplets(rtx: Any, sub: m.Submission) -> None:
        itx = IdentityTransaction(rtx.conn)
        by_couplet: dict[int, list[tuple[str, str]]] = {}
        for cid, entry_uuid, kind in _links(mapped, sub, mapping.domain, itx):
            by_couplet.setdefault(cid, []).append((entry_uuid, kind))
        for cid, objs in by_couplet.items():
            itx.link_registered(cid, objs)
        if held is not None:
            itx.claim_held(held.id)
        if after_write is not None:
            after_write(rtx, sub)

    return register_submission(registry.store, submission, registry.settings, validate=registry.validate,
                               after_write=link_couplets)


def _hold_or_refuse(registry: Registry, mapping: PatientMapping, submission: m.Submission,
                    waiting: list[Couplet]) -> list[RegistryError]:
    from xds.metadata import ebrim

    ss = submission.submission_set
    where = ss.entry_uuid if ss is not None else ""
    if mapping.domain.unknown_local_id != HOLD:
        return [Rule.LOCAL_PATIENT_ID_UNMAPPED.error(location=where, patient_id=str(c.xds_cx() or c),
                                                     why="with no health number (no ADT has linked one)")
                for c in waiting]
    for de in submission.document_entries:
        if not de.source_patient_id and isinstance(mapping.domain.parse(de.patient_id), Couplet):
            de.source_patient_id = de.patient_id  # as registering will (ITI TF-3 4.2.3.2.23)
    # what the registry would refuse anyway is refused now, not after the ADT
    found = registry.validate(submission, check_patient_authority=False)
    if has_errors(found):
        return found
    payload = etree.tostring(ebrim.serialize_submit_objects_request(submission))
    summary = f"SubmissionSet {ss.unique_id if ss else '?'}, {len(submission.document_entries)} DocumentEntries"
    mapping.hold(XDS_SUBMISSION, waiting[0], payload, summary)
    return [*found, Rule.SUBMISSION_HELD.error(location=where, patient_id=str(waiting[0].xds_cx() or waiting[0]))]


def registry_release_handler(registry: Registry, mapping: PatientMapping) -> ReleaseHandler:
    """The release handler of held ITI-41/42 submissions: register them as received."""
    from xds.metadata import ebrim

    def release(item: HeldItem, hn: str) -> list[RegistryError]:
        submission = ebrim.parse_submit_objects_request(etree.fromstring(item.payload, _PARSER))
        return register(registry, mapping, submission, held=item)

    return release


# --- ITI-18: querying with a local id -------------------------------------------------------------


@contextmanager
def _connection(engine_or_connection: Engine | Connection) -> Iterator[Connection]:
    if isinstance(engine_or_connection, Connection):
        yield engine_or_connection
    else:
        with engine_or_connection.connect() as conn:
            yield conn


def resolve_query_patients(engine_or_connection: Engine | Connection, params: Any, config: RegistryConfig) -> None:
    """Replace an ITI-18 patient id parameter that is a local couplet by its HN (the longitudinal
    record of every source). A retired id (HN merged away by A40, couplet merged or replaced)
    answers per ``merged_patient_policy``: ``surviving`` for the surviving patient, ``unknown``
    with XDSUnknownPatientId. An HN in the default policy costs no statement."""
    authority = config.patient_assigning_authority
    unknown_policy = config.merged_patient_policy == "unknown"
    pending = []
    for name in PATIENT_PARAMETERS:
        value = params.get(name)
        if value is None:
            continue
        hd = CX.parse(value).assigning_authority
        hn = not authority or hd.universal_id == authority
        if unknown_policy or not hn:
            pending.append((name, value, hd, hn))
    if not pending:
        return
    with _connection(engine_or_connection) as conn:
        tx = IdentityTransaction(conn)
        for name, value, hd, hn in pending:
            if hn:
                patient = tx.registry.patient(value)
                if patient is not None and patient.merged_into:
                    raise Rule.UNKNOWN_PATIENT_ID.exception(location=value, patient_id=value)
                continue
            key = (CX.parse(value).id_number, hd.universal_id or hd.namespace_id)
            row = tx.couplet(key)
            if row is None:
                continue  # not a local id anyone sent: answers nothing, as any unknown id
            if not row.active and unknown_policy:
                raise Rule.LOCAL_PATIENT_ID_UNMAPPED.exception(
                    location=value, patient_id=value, why=f"that was {row.status} (ADT^A40/A47)")
            hn = tx.resolve(key)
            if hn is not None:
                params.values[name] = hn


__all__ = [
    "PATIENT_PARAMETERS",
    "XDS_SUBMISSION",
    "HeldItem",
    "PatientMapping",
    "ReleaseReport",
    "StillHeld",
    "register",
    "registry_release_handler",
    "resolve_query_patients",
]
