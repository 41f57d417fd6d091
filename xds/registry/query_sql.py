"""The SQL of the ITI-18 stored queries (ITI TF-2a 3.18.4.1.2.3.7) over the typed registry tables.

Each stored query becomes a :class:`Plan`: one SELECT for the XDS objects it returns (a UNION ALL
when they come from several tables) and, for the queries that return Associations, one SELECT for
those. Sets an answer depends on (a SubmissionSet's members, a document's relations) are
sub-queries of the same statement, never ids fetched first and sent back, so a query costs one or
two round trips whatever the size of its answer.

Both statements have the same columns: ``kind`` (:data:`~xds.registry.store.DOCUMENT_ENTRY`,
...), ``entry_uuid``, ``patient_id`` (NULL for Associations) and ``fragment`` (NULL for ObjectRef
answers, which need ids only).

Parameters arrive checked and typed (:class:`Params`, built by :mod:`xds.registry.stored_query`):
lists are OR, a list of lists (codes given in several Slots) is an AND of ORs (ITI TF-2a
3.18.4.1.2.3.5), time bounds are normalised DTMs compared as strings (From ``>=``, To ``<``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    cast,
    exists,
    func,
    literal,
    null,
    or_,
    select,
    union,
    union_all,
)
from sqlalchemy.sql.selectable import CompoundSelect

from xds.metadata.model import HAS_MEMBER
from xds.registry import schema as s
from xds.registry.store import ASSOCIATION, DOCUMENT_ENTRY, FOLDER, SUBMISSION_SET

DE = s.document_entry
SS = s.submission_set
FOL = s.folder
A = s.association

LIKE_ESCAPE = "\\"


@dataclass(frozen=True)
class CodeValue:
    """One ``code^^^scheme`` query value; ``scheme`` None matches the code in any scheme."""

    code: str
    scheme: str | None = None


@dataclass
class Params:
    """Checked query parameters by slot name: ``str`` (single values, normalised DTMs),
    ``list[str]`` (OR lists), ``list[list[CodeValue]]`` / ``list[list[str]]`` (AND of ORs)."""

    values: dict[str, Any] = field(default_factory=dict)
    merged_patient_policy: str = "surviving"
    requester: Any = None  # xds.consent.Requester the answer is for; None: external

    def get(self, name: str, default: Any = None) -> Any:
        return self.values.get(name, default)

    def __contains__(self, name: str) -> bool:
        return name in self.values


@dataclass
class Plan:
    objects: Select | CompoundSelect | None = None
    associations: Select | None = None


# --- building blocks -------------------------------------------------------------------------------


def _rows(table: Any, kind: str, where: Sequence[ColumnElement[bool]], leaf: bool) -> Select:
    patient = table.c.patient_id if "patient_id" in table.c else cast(null(), String)
    fragment = table.c.fragment if leaf else cast(null(), String)
    return select(
        literal(kind, String).label("kind"),
        table.c.entry_uuid.label("entry_uuid"),
        patient.label("patient_id"),
        fragment.label("fragment"),
    ).where(*where)


def _union(*parts: Select) -> Select | CompoundSelect:
    return parts[0] if len(parts) == 1 else union_all(*parts)


def patient_match(column: Any, patient_id: str, policy: str) -> ColumnElement[bool]:
    """``column`` names the queried patient, or a patient merged into it by ADT^A40 (whose
    entries keep their old id). Asked for a merged-away id, policy ``surviving`` answers for the
    surviving patient, ``unknown`` answers nothing."""
    p = s.patient
    pid = literal(patient_id, String)
    if policy == "surviving":
        merged = select(p.c.merged_into).where(p.c.patient_id == pid).scalar_subquery()
        target: Any = func.coalesce(merged, pid)
        ids = union(select(target.label("pid")), select(p.c.patient_id).where(p.c.merged_into == target))
    else:
        merged_away = exists().where(p.c.patient_id == pid, p.c.merged_into.is_not(None))
        ids = union(
            select(pid.label("pid")).where(~merged_away), select(p.c.patient_id).where(p.c.merged_into == pid)
        )
    return column.in_(ids)


def _code_match(code: Any, scheme: Any, values: Sequence[CodeValue]) -> ColumnElement[bool]:
    return or_(
        *[code == v.code if v.scheme is None else and_(code == v.code, scheme == v.scheme) for v in values]
    )


def _codes_in(table: Any, name: str, values: Sequence[CodeValue]) -> ColumnElement[bool]:
    return _code_match(table.c[name], table.c[name + "_scheme"], values)


def _child_codes(owner: Any, child: Any, groups: Sequence[Sequence[CodeValue]]) -> list[ColumnElement[bool]]:
    """AND over Slots, OR within one. Correlated EXISTS: probed through the child table's primary
    key for the few rows the patient already selected, whatever the code's frequency overall."""
    return [
        exists().where(child.c.entry_uuid == owner, _code_match(child.c.code, child.c.scheme, g))
        for g in groups
    ]


def like_pattern(value: str) -> str:
    """An authorPerson query value as a LIKE pattern: ``%`` and ``_`` are the wildcards
    (ITI TF-2a 3.18.4.1.2.3.5); the escape character itself is taken literally."""
    return value.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)


def _authors(owner: Any, child: Any, patterns: Sequence[str]) -> ColumnElement[bool]:
    # ILIKE on PostgreSQL, lower() LIKE lower() on SQLite: case-insensitive on both backends.
    match = or_(*[child.c.person.ilike(like_pattern(p), escape=LIKE_ESCAPE) for p in patterns])
    return exists().where(child.c.entry_uuid == owner, match)


def _time_range(column: Any, low: str | None, high: str | None) -> list[ColumnElement[bool]]:
    out = []
    if low is not None:
        out.append(column >= low)
    if high is not None:
        out.append(column < high)
    return out


def _id_match(table: Any, p: Params, uuid_param: str, unique_id_param: str) -> ColumnElement[bool]:
    """Objects named by entryUUID or by uniqueId (exactly one of them is present)."""
    uuids = p.get(uuid_param)
    if uuids is not None:
        return table.c.entry_uuid.in_(_as_list(uuids))
    return table.c.unique_id.in_(_as_list(p.get(unique_id_param)))


def _as_list(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _association_status(p: Params) -> list[ColumnElement[bool]]:
    return [A.c.status.in_(p.get("$XDSAssociationStatus"))]


def _document_contents_filters(p: Params) -> list[ColumnElement[bool]]:
    """$XDSDocumentEntryType, $XDSDocumentEntryFormatCode and $XDSDocumentEntryConfidentialityCode,
    the DocumentEntry filters of GetAll, GetSubmissionSetAndContents, GetFolderAndContents."""
    out: list[ColumnElement[bool]] = [DE.c.object_type.in_(p.get("$XDSDocumentEntryType"))]
    if "$XDSDocumentEntryFormatCode" in p:
        out.append(_codes_in(DE, "format_code", p.get("$XDSDocumentEntryFormatCode")))
    if "$XDSDocumentEntryConfidentialityCode" in p:
        out += _child_codes(
            DE.c.entry_uuid, s.document_confidentiality_code, p.get("$XDSDocumentEntryConfidentialityCode")
        )
    return out


_DE_CODES = (
    ("$XDSDocumentEntryClassCode", "class_code"),
    ("$XDSDocumentEntryTypeCode", "type_code"),
    ("$XDSDocumentEntryPracticeSettingCode", "practice_setting_code"),
    ("$XDSDocumentEntryHealthcareFacilityTypeCode", "healthcare_facility_type_code"),
    ("$XDSDocumentEntryFormatCode", "format_code"),
)
_DE_TIMES = (
    ("$XDSDocumentEntryCreationTime", "creation_time"),
    ("$XDSDocumentEntryServiceStartTime", "service_start_time"),
    ("$XDSDocumentEntryServiceStopTime", "service_stop_time"),
)


def _find_documents_where(p: Params) -> list[ColumnElement[bool]]:
    where = [
        patient_match(DE.c.patient_id, p.get("$XDSDocumentEntryPatientId"), p.merged_patient_policy),
        DE.c.status.in_(p.get("$XDSDocumentEntryStatus")),
        DE.c.object_type.in_(p.get("$XDSDocumentEntryType")),
    ]
    for param, column in _DE_CODES:
        if param in p:
            where.append(_codes_in(DE, column, p.get(param)))
    for param, column in _DE_TIMES:
        where += _time_range(DE.c[column], p.get(param + "From"), p.get(param + "To"))
    if "$XDSDocumentEntryEventCodeList" in p:
        where += _child_codes(DE.c.entry_uuid, s.document_event_code, p.get("$XDSDocumentEntryEventCodeList"))
    if "$XDSDocumentEntryConfidentialityCode" in p:
        where += _child_codes(
            DE.c.entry_uuid, s.document_confidentiality_code, p.get("$XDSDocumentEntryConfidentialityCode")
        )
    if "$XDSDocumentEntryAuthorPerson" in p:
        where.append(_authors(DE.c.entry_uuid, s.document_author, p.get("$XDSDocumentEntryAuthorPerson")))
    return where


# --- the stored queries (ITI TF-2a 3.18.4.1.2.3.7.*) ----------------------------------------------


def find_documents(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.1: DocumentEntries of one patient matching every given parameter."""
    return Plan(objects=_rows(DE, DOCUMENT_ENTRY, _find_documents_where(p), leaf))


def find_documents_by_reference_id(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.14: FindDocuments, and a referenceIdList value among the ones asked for."""
    where = _find_documents_where(p)
    ref = s.document_reference_id
    for group in p.get("$XDSDocumentEntryReferenceIdList"):
        where.append(DE.c.entry_uuid.in_(select(ref.c.entry_uuid).where(ref.c.value.in_(group))))
    return Plan(objects=_rows(DE, DOCUMENT_ENTRY, where, leaf))


def find_submission_sets(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.2."""
    where = [
        patient_match(SS.c.patient_id, p.get("$XDSSubmissionSetPatientId"), p.merged_patient_policy),
        SS.c.status.in_(p.get("$XDSSubmissionSetStatus")),
    ]
    if "$XDSSubmissionSetSourceId" in p:
        where.append(SS.c.source_id.in_(p.get("$XDSSubmissionSetSourceId")))
    where += _time_range(
        SS.c.submission_time,
        p.get("$XDSSubmissionSetSubmissionTimeFrom"),
        p.get("$XDSSubmissionSetSubmissionTimeTo"),
    )
    if "$XDSSubmissionSetAuthorPerson" in p:
        where.append(
            _authors(SS.c.entry_uuid, s.submission_set_author, [p.get("$XDSSubmissionSetAuthorPerson")])
        )
    if "$XDSSubmissionSetContentType" in p:
        where.append(_codes_in(SS, "content_type_code", p.get("$XDSSubmissionSetContentType")))
    return Plan(objects=_rows(SS, SUBMISSION_SET, where, leaf))


def find_folders(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.3."""
    where = [
        patient_match(FOL.c.patient_id, p.get("$XDSFolderPatientId"), p.merged_patient_policy),
        FOL.c.status.in_(p.get("$XDSFolderStatus")),
    ]
    where += _time_range(
        FOL.c.last_update_time, p.get("$XDSFolderLastUpdateTimeFrom"), p.get("$XDSFolderLastUpdateTimeTo")
    )
    if "$XDSFolderCodeList" in p:
        where += _child_codes(FOL.c.entry_uuid, s.folder_code, p.get("$XDSFolderCodeList"))
    return Plan(objects=_rows(FOL, FOLDER, where, leaf))


def get_all(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.4: a patient's SubmissionSets, DocumentEntries and Folders of the given
    statuses, and the Associations between them (with SubmissionSet -> Association HasMembers
    for folder additions)."""
    pid, policy = p.get("$patientId"), p.merged_patient_policy
    ss_where = [
        patient_match(SS.c.patient_id, pid, policy),
        SS.c.status.in_(p.get("$XDSSubmissionSetStatus")),
    ]
    de_where = [
        patient_match(DE.c.patient_id, pid, policy),
        DE.c.status.in_(p.get("$XDSDocumentEntryStatus")),
        *_document_contents_filters(p),
    ]
    fol_where = [patient_match(FOL.c.patient_id, pid, policy), FOL.c.status.in_(p.get("$XDSFolderStatus"))]
    objects = _union(
        _rows(SS, SUBMISSION_SET, ss_where, leaf),
        _rows(DE, DOCUMENT_ENTRY, de_where, leaf),
        _rows(FOL, FOLDER, fol_where, leaf),
    )
    ids = union_all(
        select(SS.c.entry_uuid).where(*ss_where),
        select(DE.c.entry_uuid).where(*de_where),
        select(FOL.c.entry_uuid).where(*fol_where),
    ).cte("returned")
    returned = select(ids.c.entry_uuid)
    inner = A.alias("inner_association")
    linking = select(inner.c.entry_uuid).where(
        inner.c.source_uuid.in_(returned), inner.c.target_uuid.in_(returned)
    )
    associations = _rows(
        A,
        ASSOCIATION,
        [A.c.source_uuid.in_(returned), or_(A.c.target_uuid.in_(returned), A.c.target_uuid.in_(linking))],
        leaf,
    )
    return Plan(objects=objects, associations=associations)


def get_documents(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.5: DocumentEntries by entryUUID or uniqueId, whatever their status."""
    where = [_id_match(DE, p, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")]
    return Plan(objects=_rows(DE, DOCUMENT_ENTRY, where, leaf))


def get_folders(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.6."""
    where = [_id_match(FOL, p, "$XDSFolderEntryUUID", "$XDSFolderUniqueId")]
    return Plan(objects=_rows(FOL, FOLDER, where, leaf))


def get_associations(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.7: Associations with one of ``$uuid`` as source or target."""
    uuids = p.get("$uuid")
    where = [or_(A.c.source_uuid.in_(uuids), A.c.target_uuid.in_(uuids)), *_association_status(p)]
    return Plan(associations=_rows(A, ASSOCIATION, where, leaf))


def get_documents_and_associations(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.8: GetDocuments plus the Associations with those documents at an end."""
    match = _id_match(DE, p, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")
    ids = select(DE.c.entry_uuid).where(match)
    where = [or_(A.c.source_uuid.in_(ids), A.c.target_uuid.in_(ids)), *_association_status(p)]
    return Plan(
        objects=_rows(DE, DOCUMENT_ENTRY, [match], leaf), associations=_rows(A, ASSOCIATION, where, leaf)
    )


def get_submission_sets(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.9: the SubmissionSets holding (HasMember) the objects in ``$uuid``, and
    those HasMember Associations."""
    has_member = [
        A.c.association_type == HAS_MEMBER,
        A.c.target_uuid.in_(p.get("$uuid")),
        A.c.source_uuid.in_(select(SS.c.entry_uuid)),
        *_association_status(p),
    ]
    objects = _rows(
        SS, SUBMISSION_SET, [SS.c.entry_uuid.in_(select(A.c.source_uuid).where(*has_member))], leaf
    )
    return Plan(objects=objects, associations=_rows(A, ASSOCIATION, has_member, leaf))


def get_submission_set_and_contents(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.10: a SubmissionSet, its members (DocumentEntries passing the document
    filters, Folders, Associations) and its HasMember Associations. A DocumentEntry filtered out
    takes the Associations that reach it along."""
    ss_match = _id_match(SS, p, "$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId")
    members = (
        select(A.c.entry_uuid, A.c.target_uuid)
        .where(
            A.c.source_uuid.in_(select(SS.c.entry_uuid).where(ss_match)),
            A.c.association_type == HAS_MEMBER,
            *_association_status(p),
        )
        .cte("members")
    )
    targets = select(members.c.target_uuid)
    de_where = [DE.c.entry_uuid.in_(targets), *_document_contents_filters(p)]
    objects = _union(
        _rows(SS, SUBMISSION_SET, [ss_match], leaf),
        _rows(DE, DOCUMENT_ENTRY, de_where, leaf),
        _rows(FOL, FOLDER, [FOL.c.entry_uuid.in_(targets)], leaf),
    )
    kept = select(DE.c.entry_uuid).where(*de_where)
    dropped_docs = select(DE.c.entry_uuid).where(DE.c.entry_uuid.in_(targets), DE.c.entry_uuid.not_in(kept))
    inner = A.alias("member_association")
    dropped = union(
        dropped_docs,
        select(inner.c.entry_uuid).where(
            inner.c.entry_uuid.in_(targets),
            or_(inner.c.source_uuid.in_(dropped_docs), inner.c.target_uuid.in_(dropped_docs)),
        ),
    )
    where = [
        or_(
            and_(A.c.entry_uuid.in_(select(members.c.entry_uuid)), A.c.target_uuid.not_in(dropped)),
            and_(A.c.entry_uuid.in_(targets), A.c.entry_uuid.not_in(dropped), *_association_status(p)),
        )
    ]
    return Plan(objects=objects, associations=_rows(A, ASSOCIATION, where, leaf))


def get_folder_and_contents(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.11: a Folder, its DocumentEntries passing the document filters, and the
    Folder's HasMember Associations to them."""
    fol_match = _id_match(FOL, p, "$XDSFolderEntryUUID", "$XDSFolderUniqueId")
    has_member = [
        A.c.source_uuid.in_(select(FOL.c.entry_uuid).where(fol_match)),
        A.c.association_type == HAS_MEMBER,
        *_association_status(p),
    ]
    de_where = [
        DE.c.entry_uuid.in_(select(A.c.target_uuid).where(*has_member)),
        *_document_contents_filters(p),
    ]
    objects = _union(_rows(FOL, FOLDER, [fol_match], leaf), _rows(DE, DOCUMENT_ENTRY, de_where, leaf))
    kept = select(DE.c.entry_uuid).where(*de_where)
    return Plan(
        objects=objects, associations=_rows(A, ASSOCIATION, [*has_member, A.c.target_uuid.in_(kept)], leaf)
    )


def get_folders_for_document(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.12: the Folders holding a document (HasMember Folder -> DocumentEntry)."""
    docs = select(DE.c.entry_uuid).where(
        _id_match(DE, p, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")
    )
    holders = select(A.c.source_uuid).where(
        A.c.association_type == HAS_MEMBER, A.c.target_uuid.in_(docs), *_association_status(p)
    )
    return Plan(objects=_rows(FOL, FOLDER, [FOL.c.entry_uuid.in_(holders)], leaf))


def get_related_documents(p: Params, leaf: bool) -> Plan:
    """3.18.4.1.2.3.7.13: the Associations of ``$AssociationTypes`` between a document and other
    DocumentEntries (of ``$XDSDocumentEntryType``), and the documents at both ends. A document
    without such relations gives an empty answer, not the document alone."""
    origin = select(DE.c.entry_uuid).where(
        _id_match(DE, p, "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId")
    )
    related = select(DE.c.entry_uuid).where(DE.c.object_type.in_(p.get("$XDSDocumentEntryType")))
    relation = and_(
        A.c.association_type.in_(p.get("$AssociationTypes")),
        *_association_status(p),
        or_(
            and_(A.c.source_uuid.in_(origin), A.c.target_uuid.in_(related)),
            and_(A.c.target_uuid.in_(origin), A.c.source_uuid.in_(related)),
        ),
    )
    ends = union(select(A.c.source_uuid).where(relation), select(A.c.target_uuid).where(relation))
    return Plan(
        objects=_rows(DE, DOCUMENT_ENTRY, [DE.c.entry_uuid.in_(ends)], leaf),
        associations=_rows(A, ASSOCIATION, [relation], leaf),
    )


PlanBuilder = Callable[[Params, bool], Plan]
