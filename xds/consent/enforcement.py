"""Consent enforcement in SQL: what a requester may not see, as conditions of the statements that
disclose data. Nothing is fetched and then filtered in Python: a withheld object is never read, so
it cannot be counted (XDSTooManyResults), named (ObjectRef) or reached (Associations).

The rules (docs/consent.md):

* A **DocumentEntry is withheld** when an active ``withdraw`` directive of its patient covers it
  (scope ``patient``; scope ``document`` naming its uniqueId; scope ``study`` naming a Study
  Instance UID of its referenceIdList, ``<uid>^^^^urn:ihe:iti:xds:2016:studyInstanceUID``) and the
  requester is not the organisation that registered it: the sourceId of the SubmissionSet that
  brought it, or the organisation identifier (XON.10) of one of its authorInstitutions.
  "Its patient" follows ADT^A40 merges: a directive given under an HN merged into another, or
  under the surviving HN, covers the entries filed under either.
* A **SubmissionSet or Folder is withheld** when every DocumentEntry it holds (HasMember) is
  withheld and it holds at least one, or, with a patient-wide withdrawal, when it holds no
  document the requester may see (an empty Folder too). A SubmissionSet is never withheld from
  the organisation whose sourceId it carries.
* An **Association is withheld** when either end is withheld, or its target is an Association
  withheld for that reason (a SubmissionSet's HasMember of a Folder's HasMember).
* **ITI-43**: a document uniqueId is withheld when any DocumentEntry of that uniqueId is.
* **RAD-69**: a study is withheld when any DocumentEntry (its KOS manifest) referencing the study
  is withheld, or, before any manifest is registered, when a study directive names it.

Every condition starts with one uncorrelated test, "is any withdrawal active at all", so a
registry without directives pays one index probe per statement.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ColumnElement,
    Connection,
    Select,
    Table,
    Text,
    and_,
    bindparam,
    cast,
    column,
    exists,
    func,
    or_,
    select,
    table,
    union,
)
from sqlalchemy.sql.selectable import CTE, Alias, CompoundSelect, TableClause

from xds.consent.requester import EXTERNAL, Requester
from xds.consent.schema import DOCUMENT, PATIENT, STUDY, WITHDRAW, consent_directive
from xds.metadata.model import HAS_MEMBER, REF_STUDY_INSTANCE_UID
from xds.registry import schema as s

if TYPE_CHECKING:
    from xds.registry.query_sql import Plan

LIKE_ESCAPE = "\\"
_CHUNK = 500


# --- directives -------------------------------------------------------------------------------------


@functools.cache
def _alias(table: Table, name: str) -> Alias:
    """One alias per (table, name) for the life of the process: building an alias of a wide table
    (its column proxies) cost more than running the statement; an alias is immutable and may serve
    any number of statements."""
    return table.alias(name)


def _active(c: Any) -> list[ColumnElement[bool]]:
    return [c.c.superseded_by.is_(None), c.c.action == WITHDRAW]


def any_withdrawal() -> ColumnElement[bool]:
    """Uncorrelated: is any withdrawal active in this database (evaluated once per statement)."""
    c = _alias(consent_directive, "cs_any")
    return exists().where(*_active(c)).correlate_except(c)


def _directives(patients: CTE) -> Select:
    """The active withdrawals that apply to each patient id of ``patients`` (one column,
    ``patient_id``): rows (patient_id, scope, target). A directive applies when given under the id
    itself, under the id it was merged into, or under another id merged into that one (ADT^A40;
    the identity feed keeps merges one hop deep). ``patients`` is read once: SQLite plans a CTE
    again at every reference, so the chains below keep references few."""
    c = _alias(consent_directive, "cs_directive")
    me, kin = _alias(s.patient, "cs_me"), _alias(s.patient, "cs_kin")
    pid = patients.c.patient_id
    survivor = func.coalesce(me.c.merged_into, pid)
    return (
        select(pid.label("patient_id"), c.c.scope, c.c.target)
        .select_from(patients)
        .join(me, me.c.patient_id == pid, isouter=True)
        .join(kin, or_(kin.c.patient_id == survivor, kin.c.merged_into == survivor), isouter=True)
        .join(c, or_(c.c.patient_id == func.coalesce(kin.c.patient_id, pid), c.c.patient_id == pid))
        .where(*_active(c))
        .distinct()
    )


# --- the requester's own documents ------------------------------------------------------------------


def _like_literal(value: str) -> str:
    return (
        value.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
        .replace("%", LIKE_ESCAPE + "%")
        .replace("_", LIKE_ESCAPE + "_")
    )


def _registered_by(d: Any, requester: Requester) -> ColumnElement[bool] | None:
    """``d`` (a document_entry alias) was registered by one of the requester's organisations."""
    orgs = sorted(requester.organisations)
    if not orgs:
        return None
    ss = _alias(s.submission_set, "cs_own_set")
    author = _alias(s.document_author, "cs_own_author")
    # institutions is a JSON list of XON strings; XON.10 (the organisation identifier) ends one.
    institutions = cast(author.c.institutions, Text)
    # the patterns are written into the statement: SQLite prepares a statement again at each run
    # when a LIKE's pattern is a bound parameter (its LIKE optimisation), and this one is large
    xon10 = or_(*[
        institutions.like(bindparam(None, f'%^{_like_literal(o)}"%', literal_execute=True), escape=LIKE_ESCAPE)
        for o in orgs
    ])
    return or_(
        exists()
        .where(ss.c.entry_uuid == d.c.submission_set_uuid, ss.c.source_id.in_(orgs))
        .correlate_except(ss),
        exists().where(author.c.entry_uuid == d.c.entry_uuid, xon10).correlate_except(author),
    )


# --- what is withheld -----------------------------------------------------------------------------


def _materialized(stmt: Select | CompoundSelect, name: str) -> CTE:
    """``WITH name AS MATERIALIZED (stmt)``: computed and planned once, however often the chain
    reads it (SQLite >= 3.35 and PostgreSQL >= 12 would otherwise inline it at each reference)."""
    return stmt.cte(name).prefix_with("MATERIALIZED")


def _withheld_documents(
    directives: CTE, requester: Requester, *conditions: ColumnElement[bool], d: Any = None
) -> Select:
    """The DocumentEntries (``d``, entry_uuid and unique_id) of the ``directives`` patients that
    a directive covers and the requester did not register, among those matching ``conditions``."""
    d = d if d is not None else _alias(s.document_entry, "cs_d")
    ref = _alias(s.document_reference_id, "cs_study_ref")
    w = directives.c
    covers = or_(
        w.scope == PATIENT,
        and_(w.scope == DOCUMENT, w.target == d.c.unique_id),
        and_(
            w.scope == STUDY,
            exists()
            .where(
                ref.c.entry_uuid == d.c.entry_uuid,
                ref.c.id == w.target,
                ref.c.id_type == REF_STUDY_INSTANCE_UID,
            )
            .correlate_except(ref),
        ),
    )
    own = _registered_by(d, requester)
    where = [covers, *conditions] + ([~own] if own is not None else [])
    return (
        select(d.c.entry_uuid.label("uuid"), d.c.unique_id.label("unique_id"))
        .join_from(directives, d, d.c.patient_id == w.patient_id)
        .where(*where)
        .distinct()
    )


def _withheld_holders(holder: Any, directives: CTE, documents: CTE, requester: Requester | None) -> Select:
    """The SubmissionSets or Folders (``holder``) of the ``directives`` patients whose documents
    are all withheld (holding one at least, unless the withdrawal is patient-wide). A SubmissionSet
    is never withheld from the organisation whose sourceId it carries (``requester``)."""
    name = holder.name
    member, doc = _alias(s.association, f"{name}_member"), _alias(s.document_entry, f"{name}_doc")
    seen, seen_doc = _alias(s.association, f"{name}_seen"), _alias(s.document_entry, f"{name}_seen_doc")
    holds_documents = (
        exists()
        .where(
            member.c.source_uuid == holder.c.entry_uuid,
            member.c.association_type == HAS_MEMBER,
            doc.c.entry_uuid == member.c.target_uuid,
        )
        .correlate_except(member, doc)
    )
    holds_visible = (
        exists()
        .where(
            seen.c.source_uuid == holder.c.entry_uuid,
            seen.c.association_type == HAS_MEMBER,
            seen_doc.c.entry_uuid == seen.c.target_uuid,
            seen_doc.c.entry_uuid.not_in(select(documents.c.uuid)),
        )
        .correlate_except(seen, seen_doc)
    )
    where = [or_(directives.c.scope == PATIENT, holds_documents), ~holds_visible]
    orgs = sorted(requester.organisations) if requester is not None else []
    if orgs:
        where.append(holder.c.source_id.not_in(orgs))
    return (
        select(holder.c.entry_uuid.label("uuid"))
        .join_from(directives, holder, holder.c.patient_id == directives.c.patient_id)
        .where(*where)
    )


def _withheld_objects(patients: CTE, requester: Requester, prefix: str) -> CTE:
    """DocumentEntries, SubmissionSets and Folders of ``patients`` withheld from ``requester``."""
    directives = _materialized(_directives(patients), f"{prefix}_directives")
    documents = _materialized(_withheld_documents(directives, requester), f"{prefix}_documents")
    return _materialized(
        union(
            select(documents.c.uuid),
            _withheld_holders(_alias(s.submission_set, "cs_ss"), directives, documents, requester),
            _withheld_holders(_alias(s.folder, "cs_fol"), directives, documents, None),
        ),
        f"{prefix}_objects",
    )


# --- ITI-18: a stored query's plan ------------------------------------------------------------------
#
# The answer's rows become a CTE; a chain of CTEs, each flat (SQLite's parser has a small stack, and
# its planner plans a CTE again at every reference, so references are kept few), finds what in it is
# withheld, looking only at the records of the patients the answer touches:
#
#   cs_rows          the stored query's own statement (kind, entry_uuid, patient_id, fragment)
#   cs_end_patients  for Associations: the patients of the objects at their ends
#   cs_patients      the patient ids of the objects, or of the Associations' ends
#   cs_directives    the active withdrawals of those patients (A40 merges followed)
#   cs_documents     their DocumentEntries that are withheld
#   cs_objects       cs_documents, and their SubmissionSets and Folders that are withheld
#
# The objects are cs_rows less cs_objects; the Associations are cs_rows less those with a withheld
# object at an end or at an end of the Association they target (a SubmissionSet's HasMember of a
# Folder's HasMember). Three queries return objects *because of* an Association or a document; there
# an object stays only when what it was found through stays (the anchor, CTEs prefixed ``ca``):
# GetSubmissionSets and GetRelatedDocuments keep an object at an end of a returned Association,
# GetFoldersForDocument keeps a Folder holding a named document that is not withheld.

_THROUGH_ASSOCIATIONS = {"GetSubmissionSets": ("source",), "GetRelatedDocuments": ("source", "target")}
_THROUGH_DOCUMENTS = "GetFoldersForDocument"
_ROW_COLUMNS = ("kind", "entry_uuid", "patient_id", "fragment")


def _rows_of(stmt: Select | CompoundSelect, name: str) -> CTE:
    """The stored query's statement as ``WITH name AS NOT MATERIALIZED``: read twice (its patients,
    then the answer) rather than copied with its fragments into a temporary table on every query,
    most of which meet no directive at all."""
    return stmt.cte(name).prefix_with("NOT MATERIALIZED")


def _rows(name: str) -> TableClause:
    """Where the consent conditions read the answer's rows: a CTE of that name the caller adds to
    the statement (``Select.add_cte``), so the conditions are built once per requester and query
    kind (building them cost more than running them), not once per query."""
    return table(name, *(column(c) for c in _ROW_COLUMNS))


def _answer(rows: TableClause, *where: ColumnElement[bool]) -> Select:
    return select(rows.c.kind, rows.c.entry_uuid, rows.c.patient_id, rows.c.fragment).where(*where)


@functools.lru_cache(maxsize=512)
def _objects_filter(prefix: str, organisations: tuple[str, ...], anchor: str = "") -> Select:
    """The objects of ``{prefix}_rows`` less the withheld ones (and, per ``anchor``, less the ones
    found through what is withheld)."""
    requester = Requester(frozenset(organisations))
    rows = _rows(f"{prefix}_rows")
    patients = _materialized(
        select(rows.c.patient_id).where(rows.c.patient_id.is_not(None)).distinct(), f"{prefix}_patients"
    )
    objects = _withheld_objects(patients, requester, prefix)
    where = [~and_(any_withdrawal(), rows.c.entry_uuid.in_(select(objects.c.uuid)))]
    if anchor in _THROUGH_ASSOCIATIONS:
        where.append(_through_associations(_associations_filter("ca", organisations), anchor, rows))
    elif anchor == _THROUGH_DOCUMENTS:
        where.append(_through_documents(_objects_filter("ca", organisations), rows))
    return _answer(rows, *where)


@functools.lru_cache(maxsize=512)
def _associations_filter(prefix: str, organisations: tuple[str, ...]) -> Select:
    """The Associations of ``{prefix}_rows`` less those with a withheld object at an end."""
    requester = Requester(frozenset(organisations))
    rows = _rows(f"{prefix}_rows")
    a = _alias(s.association, "cs_a")
    ends = {
        name: (
            _alias(s.document_entry, f"cs_{name}_de"),
            _alias(s.submission_set, f"cs_{name}_ss"),
            _alias(s.folder, f"cs_{name}_fol"),
        )
        for name in ("source", "target")
    }
    joined = select(
        *[
            func.coalesce(de.c.patient_id, ss.c.patient_id, fol.c.patient_id).label(f"{name}_patient")
            for name, (de, ss, fol) in ends.items()
        ]
    ).join_from(rows, a, a.c.entry_uuid == rows.c.entry_uuid)
    for name, (de, ss, fol) in ends.items():
        uuid = a.c.source_uuid if name == "source" else a.c.target_uuid
        joined = (
            joined.join(de, de.c.entry_uuid == uuid, isouter=True)
            .join(ss, ss.c.entry_uuid == uuid, isouter=True)
            .join(fol, fol.c.entry_uuid == uuid, isouter=True)
        )
    # every Association has a DocumentEntry, SubmissionSet or Folder at one end at least (a
    # SubmissionSet's HasMember of an Association has its SubmissionSet), of the same patient
    ends_patients = _materialized(joined, f"{prefix}_end_patients")
    patients = _materialized(
        union(
            select(ends_patients.c.source_patient.label("patient_id")).where(
                ends_patients.c.source_patient.is_not(None)
            ),
            select(ends_patients.c.target_patient).where(ends_patients.c.target_patient.is_not(None)),
        ),
        f"{prefix}_patients",
    )
    objects = _withheld_objects(patients, requester, prefix)
    row, inner, o = _alias(s.association, "cs_row"), _alias(s.association, "cs_row_target"), objects
    reached = row.join(inner, inner.c.entry_uuid == row.c.target_uuid, isouter=True).join(
        o, o.c.uuid.in_([row.c.source_uuid, row.c.target_uuid, inner.c.source_uuid, inner.c.target_uuid])
    )
    withheld = (
        select(row.c.entry_uuid)
        .select_from(reached)
        .where(row.c.entry_uuid == rows.c.entry_uuid)
        .correlate_except(row, inner, o)
        .exists()
    )
    return _answer(rows, ~and_(any_withdrawal(), withheld))


def _through_associations(associations: Select, query: str, rows: TableClause) -> ColumnElement[bool]:
    """Anchor: the object is at an end of an Association the (restricted) answer keeps."""
    kept = associations.subquery("ca_kept")
    a = _alias(s.association, "ca_a")
    reached = union(
        *[
            select(a.c.source_uuid if end == "source" else a.c.target_uuid).where(
                a.c.entry_uuid.in_(select(kept.c.entry_uuid))
            )
            for end in _THROUGH_ASSOCIATIONS[query]
        ]
    )
    return rows.c.entry_uuid.in_(reached)


def _through_documents(documents: Select, rows: TableClause) -> ColumnElement[bool]:
    """Anchor: the Folder holds (HasMember) a document the (restricted) GetDocuments keeps."""
    kept = documents.subquery("ca_kept")
    member = _alias(s.association, "ca_member")
    holders = select(member.c.source_uuid).where(
        member.c.association_type == HAS_MEMBER, member.c.target_uuid.in_(select(kept.c.entry_uuid))
    )
    return rows.c.entry_uuid.in_(holders)


def restrict_plan(
    plan: Plan, requester: Requester | None = None, query: str = "", params: Any = None
) -> Plan:
    """The plan of stored query ``query`` answering only what ``requester`` may see: its objects
    and Associations statements, each wrapped in the consent conditions (still one statement
    each). ``params`` (:class:`xds.registry.query_sql.Params`) are the query's, for the queries
    whose objects are found through a named document."""
    from xds.registry import query_sql

    organisations = tuple(sorted((requester or EXTERNAL).organisations))
    associations = None
    if plan.associations is not None:
        associations = _associations_filter("cs", organisations).add_cte(
            _rows_of(plan.associations, "cs_rows")
        )
    objects = None
    if plan.objects is not None:
        anchor, anchor_rows = "", None
        if query in _THROUGH_ASSOCIATIONS and plan.associations is not None:
            anchor, anchor_rows = query, plan.associations
        elif query == _THROUGH_DOCUMENTS and params is not None:
            anchor, anchor_rows = query, query_sql.get_documents(params, False).objects
        objects = _objects_filter("cs", organisations, anchor).add_cte(_rows_of(plan.objects, "cs_rows"))
        if anchor_rows is not None:
            objects = objects.add_cte(_rows_of(anchor_rows, "ca_rows"))
    return query_sql.Plan(objects=objects, associations=associations)


# --- ITI-43 and RAD-69 --------------------------------------------------------------------------------


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    items = sorted({v for v in values if v})
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def withheld_documents(
    conn: Connection, unique_ids: Iterable[str], requester: Requester | None = None
) -> set[str]:
    """Which of the document ``unique_ids`` are withheld from ``requester`` (ITI-43): those of
    which a DocumentEntry is withheld."""
    statement = _withheld_documents_statement((requester or EXTERNAL).organisations)
    out: set[str] = set()
    for chunk in _chunks(unique_ids):
        out.update(conn.scalars(statement, {"ids": chunk}))
    return out


# The retrieve paths' statements are built once per requesting organisation set, the ids bound
# (expanding): building one cost ~3 ms of CPU per ITI-43 / RAD-69, running the built one ~0.15 ms.
@functools.lru_cache(maxsize=256)
def _withheld_documents_statement(organisations: frozenset[str]) -> Select:
    ids = bindparam("ids", expanding=True)
    de = s.document_entry
    patients = _materialized(
        select(de.c.patient_id).where(any_withdrawal(), de.c.unique_id.in_(ids)).distinct(),
        "cs_patients",
    )
    directives = _materialized(_directives(patients), "cs_directives")
    d = _alias(s.document_entry, "cs_d")
    who = Requester(organisations)
    withheld = _withheld_documents(directives, who, d.c.unique_id.in_(ids), d=d).subquery("cs_withheld")
    return select(withheld.c.unique_id)


def withheld_studies(
    conn: Connection, study_uids: Iterable[str], requester: Requester | None = None
) -> set[str]:
    """Which of the Study Instance UIDs are withheld from ``requester`` (RAD-69): a manifest of the
    study (a DocumentEntry whose referenceIdList names it) is withheld, or no manifest is
    registered and a study directive names it."""
    statement = _withheld_studies_statement((requester or EXTERNAL).organisations)
    out: set[str] = set()
    for chunk in _chunks(study_uids):
        out.update(conn.scalars(statement, {"ids": chunk}))
    return out


@functools.lru_cache(maxsize=256)
def _withheld_studies_statement(organisations: frozenset[str]) -> CompoundSelect:
    ids = bindparam("ids", expanding=True)
    ref, de = _alias(s.document_reference_id, "cs_kos_ref"), _alias(s.document_entry, "cs_kos_de")
    manifests = _materialized(
        select(ref.c.id.label("study"), de.c.entry_uuid, de.c.patient_id)
        .join_from(ref, de, de.c.entry_uuid == ref.c.entry_uuid)
        .where(any_withdrawal(), ref.c.id.in_(ids), ref.c.id_type == REF_STUDY_INSTANCE_UID),
        "cs_manifests",
    )
    patients = _materialized(select(manifests.c.patient_id).distinct(), "cs_patients")
    directives = _materialized(_directives(patients), "cs_directives")
    d = _alias(s.document_entry, "cs_d")
    who = Requester(organisations)
    withheld = _materialized(
        _withheld_documents(directives, who, d.c.entry_uuid.in_(select(manifests.c.entry_uuid)), d=d),
        "cs_withheld",
    )
    by_manifest = select(manifests.c.study).where(manifests.c.entry_uuid.in_(select(withheld.c.uuid)))
    c, any_ref = (
        _alias(consent_directive, "cs_study_directive"),
        _alias(s.document_reference_id, "cs_any_ref"),
    )
    unpublished = select(c.c.target).where(
        *_active(c),
        c.c.scope == STUDY,
        c.c.target.in_(ids),
        ~exists()
        .where(any_ref.c.id == c.c.target, any_ref.c.id_type == REF_STUDY_INSTANCE_UID)
        .correlate_except(any_ref),
    )
    return union(by_manifest, unpublished)


def consent_tables_present(conn: Connection) -> bool:
    """Whether this database holds the registry's tables and consent directives (a repository or
    imaging source whose database is not the registry's has none to read)."""
    from sqlalchemy import inspect

    inspector = inspect(conn)
    return inspector.has_table(consent_directive.name) and inspector.has_table(s.document_entry.name)
