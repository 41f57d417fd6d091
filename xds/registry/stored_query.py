"""ITI-18 Registry Stored Query (ITI TF-2a 3.18): the query catalogue, parameter parsing and the
AdhocQueryResponse.

A request is ``query:AdhocQueryRequest`` holding a ``rim:AdhocQuery`` whose ``id`` names a stored
query (:data:`CATALOGUE`, ids of ITI TF-2a 3.18.4.1.2.3.7) and whose Slots carry its parameters.
Value syntax (3.18.4.1.2.3.5): a string is quoted, ``'abc'`` (``''`` for a quote inside); a number
is bare, ``200412``; a multi-valued parameter is a parenthesised list ``('a','b')`` and may be split
over several ``rim:Value`` elements (all OR). Coded values are ``code^^^scheme``. For the
parameters that allow it (event codes, confidentiality codes, folder codes, referenceIdList)
several Slots of the same name are an AND of ORs (3.18.4.1.2.3.6.2).

The parameters are checked against the query's definition, then compiled to SQL
(:mod:`xds.registry.query_sql`) and run: one statement for the objects, one for the Associations.
LeafClass answers concatenate the stored canonical fragments, ObjectRef answers are built from
ids. When the request names a ``home`` community (or the caller passes ``home_community_id``, as
the XCA Responding Gateway does for ITI-38) every returned object carries it.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from lxml import etree
from sqlalchemy import Connection, CursorResult, Engine
from sqlalchemy.exc import SQLAlchemyError

from xds.config import RegistryConfig
from xds.consent.enforcement import restrict_plan
from xds.consent.requester import Requester, requester_of
from xds.identity.mapping import resolve_query_patients
from xds.metadata import model as m
from xds.metadata.datatypes import dtm_lower_bound, is_dtm
from xds.metadata.ebrim import object_ref
from xds.metadata.errors import RegistryError, XdsError
from xds.metadata.response import adhoc_query_response
from xds.metadata.rules import Rule
from xds.namespaces import QUERY, RIM, RS
from xds.registry import query_sql as q
from xds.registry.store import ASSOCIATION
from xds.soap.message import SoapRequest, SoapResponse

log = logging.getLogger("xds.registry.stored_query")

ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
RESPONSE_ACTION = "urn:ihe:iti:2007:RegistryStoredQueryResponse"

LEAF_CLASS = "LeafClass"
OBJECT_REF = "ObjectRef"

# Stored query ids (ITI TF-2a 3.18.4.1.2.3.7, Table 3.18.4.1.2.3.7-1)
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
FIND_DOCUMENTS_BY_REFERENCE_ID = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
FIND_SUBMISSION_SETS = "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9"
FIND_FOLDERS = "urn:uuid:958f3006-baad-4929-a4de-ff1114824431"
GET_ALL = "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
GET_FOLDERS = "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4"
GET_ASSOCIATIONS = "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155"
GET_DOCUMENTS_AND_ASSOCIATIONS = "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a"
GET_SUBMISSION_SETS = "urn:uuid:51224314-5390-4169-9b91-b1980040715a"
GET_SUBMISSION_SET_AND_CONTENTS = "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83"
GET_FOLDER_AND_CONTENTS = "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7"
GET_FOLDERS_FOR_DOCUMENT = "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578"
GET_RELATED_DOCUMENTS = "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6"

_STATUS_NAMES = {
    "Approved": m.STATUS_APPROVED,
    "Deprecated": m.STATUS_DEPRECATED,
    "Submitted": m.STATUS_SUBMITTED,
}


class Kind(Enum):
    """How a parameter's values are read and what the SQL receives."""

    STRING = "string"  # one string
    STRINGS = "strings"  # OR list of strings
    STRINGS_AND_OR = "strings-and-or"  # AND (Slots) of OR lists of strings
    CODES = "codes"  # OR list of code^^^scheme
    CODES_AND_OR = "codes-and-or"  # AND (Slots) of OR lists of code^^^scheme
    TIME = "time"  # one DTM, normalised
    STATUS = "status"  # OR list of availabilityStatus URNs
    DOCUMENT_TYPE = "document-type"  # OR list of DocumentEntry objectTypes; default Stable only
    ASSOCIATION_STATUS = "association-status"  # OR list of statuses; default Approved


_SINGLE = {Kind.STRING, Kind.TIME}
_AND_OR = {Kind.STRINGS_AND_OR, Kind.CODES_AND_OR}


@dataclass(frozen=True)
class Param:
    name: str
    kind: Kind
    required: bool = False


@dataclass(frozen=True)
class StoredQuery:
    """One entry of the catalogue: its parameters (ITI TF-2a 3.18.4.1.2.3.7.*) and its SQL."""

    name: str
    id: str
    params: tuple[Param, ...]
    plan: Callable[[q.Params, bool], q.Plan]
    # groups of which exactly one parameter must be given (entryUUID or uniqueId)
    one_of: tuple[tuple[str, ...], ...] = ()
    # a patient id parameter scopes the answer (Find*, GetAll); the others are checked for
    # XDSResultNotSinglePatient
    patient_scoped: bool = False

    def param(self, name: str) -> Param | None:
        for p in self.params:
            if p.name == name:
                return p
        return None


def _de_find_params() -> tuple[Param, ...]:
    de = "$XDSDocumentEntry"
    return (
        Param(de + "PatientId", Kind.STRING, required=True),
        Param(de + "ClassCode", Kind.CODES),
        Param(de + "TypeCode", Kind.CODES),
        Param(de + "PracticeSettingCode", Kind.CODES),
        Param(de + "CreationTimeFrom", Kind.TIME),
        Param(de + "CreationTimeTo", Kind.TIME),
        Param(de + "ServiceStartTimeFrom", Kind.TIME),
        Param(de + "ServiceStartTimeTo", Kind.TIME),
        Param(de + "ServiceStopTimeFrom", Kind.TIME),
        Param(de + "ServiceStopTimeTo", Kind.TIME),
        Param(de + "HealthcareFacilityTypeCode", Kind.CODES),
        Param(de + "EventCodeList", Kind.CODES_AND_OR),
        Param(de + "ConfidentialityCode", Kind.CODES_AND_OR),
        Param(de + "AuthorPerson", Kind.STRINGS),
        Param(de + "FormatCode", Kind.CODES),
        Param(de + "Status", Kind.STATUS, required=True),
        Param(de + "Type", Kind.DOCUMENT_TYPE),
    )


_CONTENTS_FILTERS = (
    Param("$XDSDocumentEntryFormatCode", Kind.CODES),
    Param("$XDSDocumentEntryConfidentialityCode", Kind.CODES_AND_OR),
    Param("$XDSDocumentEntryType", Kind.DOCUMENT_TYPE),
)
_ASSOCIATION_STATUS = Param("$XDSAssociationStatus", Kind.ASSOCIATION_STATUS)
_DE_UUID, _DE_UID = "$XDSDocumentEntryEntryUUID", "$XDSDocumentEntryUniqueId"
_FOL_UUID, _FOL_UID = "$XDSFolderEntryUUID", "$XDSFolderUniqueId"
_SS_UUID, _SS_UID = "$XDSSubmissionSetEntryUUID", "$XDSSubmissionSetUniqueId"


CATALOGUE: dict[str, StoredQuery] = {
    sq.id: sq
    for sq in (
        StoredQuery(
            "FindDocuments", FIND_DOCUMENTS, _de_find_params(), q.find_documents, patient_scoped=True
        ),
        StoredQuery(
            "FindDocumentsByReferenceId",
            FIND_DOCUMENTS_BY_REFERENCE_ID,
            (
                *_de_find_params(),
                Param("$XDSDocumentEntryReferenceIdList", Kind.STRINGS_AND_OR, required=True),
            ),
            q.find_documents_by_reference_id,
            patient_scoped=True,
        ),
        StoredQuery(
            "FindSubmissionSets",
            FIND_SUBMISSION_SETS,
            (
                Param("$XDSSubmissionSetPatientId", Kind.STRING, required=True),
                Param("$XDSSubmissionSetSourceId", Kind.STRINGS),
                Param("$XDSSubmissionSetSubmissionTimeFrom", Kind.TIME),
                Param("$XDSSubmissionSetSubmissionTimeTo", Kind.TIME),
                Param("$XDSSubmissionSetAuthorPerson", Kind.STRING),
                Param("$XDSSubmissionSetContentType", Kind.CODES),
                Param("$XDSSubmissionSetStatus", Kind.STATUS, required=True),
            ),
            q.find_submission_sets,
            patient_scoped=True,
        ),
        StoredQuery(
            "FindFolders",
            FIND_FOLDERS,
            (
                Param("$XDSFolderPatientId", Kind.STRING, required=True),
                Param("$XDSFolderLastUpdateTimeFrom", Kind.TIME),
                Param("$XDSFolderLastUpdateTimeTo", Kind.TIME),
                Param("$XDSFolderCodeList", Kind.CODES_AND_OR),
                Param("$XDSFolderStatus", Kind.STATUS, required=True),
            ),
            q.find_folders,
            patient_scoped=True,
        ),
        StoredQuery(
            "GetAll",
            GET_ALL,
            (
                Param("$patientId", Kind.STRING, required=True),
                Param("$XDSDocumentEntryStatus", Kind.STATUS, required=True),
                Param("$XDSSubmissionSetStatus", Kind.STATUS, required=True),
                Param("$XDSFolderStatus", Kind.STATUS, required=True),
                *_CONTENTS_FILTERS,
            ),
            q.get_all,
            patient_scoped=True,
        ),
        StoredQuery(
            "GetDocuments",
            GET_DOCUMENTS,
            (Param(_DE_UUID, Kind.STRINGS), Param(_DE_UID, Kind.STRINGS)),
            q.get_documents,
            one_of=((_DE_UUID, _DE_UID),),
        ),
        StoredQuery(
            "GetFolders",
            GET_FOLDERS,
            (Param(_FOL_UUID, Kind.STRINGS), Param(_FOL_UID, Kind.STRINGS)),
            q.get_folders,
            one_of=((_FOL_UUID, _FOL_UID),),
        ),
        StoredQuery(
            "GetAssociations",
            GET_ASSOCIATIONS,
            (Param("$uuid", Kind.STRINGS, required=True), _ASSOCIATION_STATUS),
            q.get_associations,
        ),
        StoredQuery(
            "GetDocumentsAndAssociations",
            GET_DOCUMENTS_AND_ASSOCIATIONS,
            (Param(_DE_UUID, Kind.STRINGS), Param(_DE_UID, Kind.STRINGS), _ASSOCIATION_STATUS),
            q.get_documents_and_associations,
            one_of=((_DE_UUID, _DE_UID),),
        ),
        StoredQuery(
            "GetSubmissionSets",
            GET_SUBMISSION_SETS,
            (Param("$uuid", Kind.STRINGS, required=True), _ASSOCIATION_STATUS),
            q.get_submission_sets,
        ),
        StoredQuery(
            "GetSubmissionSetAndContents",
            GET_SUBMISSION_SET_AND_CONTENTS,
            (
                Param(_SS_UUID, Kind.STRING),
                Param(_SS_UID, Kind.STRING),
                *_CONTENTS_FILTERS,
                _ASSOCIATION_STATUS,
            ),
            q.get_submission_set_and_contents,
            one_of=((_SS_UUID, _SS_UID),),
        ),
        StoredQuery(
            "GetFolderAndContents",
            GET_FOLDER_AND_CONTENTS,
            (
                Param(_FOL_UUID, Kind.STRING),
                Param(_FOL_UID, Kind.STRING),
                *_CONTENTS_FILTERS,
                _ASSOCIATION_STATUS,
            ),
            q.get_folder_and_contents,
            one_of=((_FOL_UUID, _FOL_UID),),
        ),
        StoredQuery(
            "GetFoldersForDocument",
            GET_FOLDERS_FOR_DOCUMENT,
            (Param(_DE_UUID, Kind.STRING), Param(_DE_UID, Kind.STRING), _ASSOCIATION_STATUS),
            q.get_folders_for_document,
            one_of=((_DE_UUID, _DE_UID),),
        ),
        StoredQuery(
            "GetRelatedDocuments",
            GET_RELATED_DOCUMENTS,
            (
                Param(_DE_UUID, Kind.STRING),
                Param(_DE_UID, Kind.STRING),
                Param("$AssociationTypes", Kind.STRINGS, required=True),
                Param("$XDSDocumentEntryType", Kind.DOCUMENT_TYPE),
                _ASSOCIATION_STATUS,
            ),
            q.get_related_documents,
            one_of=((_DE_UUID, _DE_UID),),
        ),
    )
}
BY_NAME: dict[str, StoredQuery] = {sq.name: sq for sq in CATALOGUE.values()}


# --- value syntax (ITI TF-2a 3.18.4.1.2.3.5) -------------------------------------------------------


def parse_value(text: str) -> list[str]:
    """The values one ``rim:Value`` carries: ``'a'`` -> ``["a"]``, ``('a', 'b')`` -> ``["a", "b"]``,
    ``200412`` -> ``["200412"]``. A bare word is taken as it stands. Raises ValueError."""
    s = text.strip()
    if not s:
        raise ValueError("the value is empty")
    if s[0] == "(":
        if s[-1] != ")":
            raise ValueError("a list must end with ')'")
        items = _split_list(s[1:-1])
        if not items:
            raise ValueError("the list is empty")
        return items
    if s[0] == "'":
        value, end = _quoted(s, 0)
        if s[end:].strip():
            raise ValueError("text after the closing quote")
        return [value]
    if "'" in s:
        raise ValueError("unbalanced quote")
    return [s]


def _quoted(s: str, start: int) -> tuple[str, int]:
    """The string quoted at ``s[start]`` (``''`` is one quote) and the index after it."""
    out = []
    i = start + 1
    while i < len(s):
        c = s[i]
        if c == "'":
            if i + 1 < len(s) and s[i + 1] == "'":
                out.append("'")
                i += 2
                continue
            return "".join(out), i + 1
        out.append(c)
        i += 1
    raise ValueError("unterminated quoted string")


def _split_list(s: str) -> list[str]:
    items: list[str] = []
    i, n = 0, len(s)
    while True:
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            if items:
                raise ValueError("a list item is empty")
            return items
        if s[i] == "'":
            value, i = _quoted(s, i)
        else:
            j = i
            while j < n and s[j] not in ",'":
                j += 1
            value = s[i:j].strip()
            if not value:
                raise ValueError("a list item is empty")
            i = j
        items.append(value)
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            return items
        if s[i] != ",":
            raise ValueError(f"expected ',' between list items, found {s[i]!r}")
        i += 1


def parse_code(value: str) -> q.CodeValue:
    """``code^^^scheme`` (ITI TF-2a 3.18.4.1.2.3.5). The scheme is the last non-empty component,
    so the ``code^^scheme`` form some clients send (NIST 11898, 11899) reads the same."""
    parts = value.split("^")
    code = parts[0]
    if not code:
        raise ValueError("the code is empty")
    schemes = [p for p in parts[1:] if p]
    return q.CodeValue(code, schemes[-1] if schemes else None)


# --- the request ----------------------------------------------------------------------------------


@dataclass
class QueryRequest:
    """An AdhocQueryRequest as read from XML: each slot name with its Slots' raw Value texts."""

    query_id: str
    return_type: str
    home: str | None
    slots: dict[str, list[list[str]]]


def read_request(request: etree._Element) -> QueryRequest:
    """The query id, returnType, home and slots of a ``query:AdhocQueryRequest``. Raises XdsError
    (XDSRegistryError) when it is not one."""
    if request.tag != f"{{{QUERY}}}AdhocQueryRequest":
        raise Rule.REGISTRY_ERROR.exception(reason=f"expected query:AdhocQueryRequest, got {request.tag}")
    option = request.find(f"{{{QUERY}}}ResponseOption")
    return_type = option.get("returnType", "RegistryObject") if option is not None else "RegistryObject"
    query = request.find(f"{{{RIM}}}AdhocQuery")
    if query is None:
        raise Rule.REGISTRY_ERROR.exception(reason="the request has no rim:AdhocQuery")
    slots: dict[str, list[list[str]]] = {}
    for slot in query.iterfind(f"{{{RIM}}}Slot"):
        name = (slot.get("name") or "").strip()
        values = [v.text or "" for v in slot.iterfind(f"{{{RIM}}}ValueList/{{{RIM}}}Value")]
        slots.setdefault(name, []).append(values)
    return QueryRequest(query.get("id", ""), return_type, query.get("home") or None, slots)


def check_params(sq: StoredQuery, slots: dict[str, list[list[str]]]) -> q.Params:
    """The typed parameters of ``sq`` from the request's slots, or XdsError listing every problem
    (ITI TF-2a 3.18.4.1.3: XDSStoredQueryMissingParam, XDSStoredQueryParamNumber; a malformed
    value is XDSRegistryError). Slots the query does not define are ignored."""
    errors: list[RegistryError] = []
    params = q.Params()
    for param in sq.params:
        raw = slots.get(param.name)
        if raw is None:
            if param.required:
                errors.append(Rule.STORED_QUERY_MISSING_PARAM.error(query=sq.name, param=param.name))
            continue
        try:
            params.values[param.name] = _typed(sq, param, raw)
        except XdsError as e:
            errors.extend(e.errors)
    for group in sq.one_of:
        given = [name for name in group if name in slots]
        if not given:
            errors.append(Rule.STORED_QUERY_MISSING_PARAM.error(query=sq.name, param=" or ".join(group)))
        elif len(given) > 1:
            errors.append(
                Rule.STORED_QUERY_PARAM_NUMBER.error(
                    query=sq.name, param=" and ".join(given), why="are mutually exclusive; give exactly one"
                )
            )
    if errors:
        raise XdsError(errors)
    for param in sq.params:
        if param.name not in params.values:
            if param.kind is Kind.DOCUMENT_TYPE:
                # ITI TF-2a 3.18.4.1.2.3.6.2: without $XDSDocumentEntryType, Stable entries only
                params.values[param.name] = [m.STABLE_DOCUMENT_ENTRY]
            elif param.kind is Kind.ASSOCIATION_STATUS:
                params.values[param.name] = [m.STATUS_APPROVED]
    return params


def _typed(sq: StoredQuery, param: Param, raw: list[list[str]]) -> Any:
    def invalid(value: str, why: str) -> XdsError:
        return Rule.STORED_QUERY_PARAM_INVALID.exception(
            query=sq.name, param=param.name, value=value, why=why
        )

    if len(raw) > 1 and param.kind not in _AND_OR:
        raise Rule.STORED_QUERY_PARAM_NUMBER.exception(
            query=sq.name, param=param.name, why=f"is given in {len(raw)} Slots; only one is allowed"
        )
    groups: list[list[str]] = []
    for texts in raw:
        values: list[str] = []
        for text in texts:
            try:
                values += parse_value(text)
            except ValueError as e:
                raise invalid(text, str(e)) from None
        if not values:
            raise invalid("", "the Slot has no value")
        groups.append(values)
    if param.kind in _SINGLE:
        values = groups[0]
        if len(values) > 1:
            raise Rule.STORED_QUERY_PARAM_NUMBER.exception(
                query=sq.name, param=param.name, why=f"takes one value, got {len(values)}"
            )
        value = values[0]
        if param.kind is Kind.TIME:
            if not is_dtm(value):
                raise invalid(value, "not a DTM YYYY[MM[DD[hh[mm[ss]]]]]")
            return dtm_lower_bound(value)
        return value
    if param.kind in (Kind.CODES, Kind.CODES_AND_OR):
        try:
            codes = [[parse_code(v) for v in g] for g in groups]
        except ValueError as e:
            raise invalid(", ".join(groups[0]), str(e)) from None
        return codes if param.kind is Kind.CODES_AND_OR else codes[0]
    if param.kind is Kind.STRINGS_AND_OR:
        return groups
    if param.kind in (Kind.STATUS, Kind.ASSOCIATION_STATUS):
        return [_STATUS_NAMES.get(v, v) for v in groups[0]]
    return groups[0]


# --- running a query -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Found:
    kind: str
    entry_uuid: str
    patient_id: str | None
    # str, or on PostgreSQL the UTF-8 bytes as they came over the wire (never decoded: a
    # LeafClass answer copies them into the response as they are)
    fragment: str | bytes | None


def run_query(
    conn: Connection, sq: StoredQuery, params: q.Params, *, leaf: bool, max_results: int
) -> list[Found]:
    """The objects, then the Associations, a stored query returns, less what consent directives
    withhold from ``params.requester`` (in the same statements, :mod:`xds.consent.enforcement`).
    Raises XdsError for XDSTooManyResults and, on a LeafClass answer spanning patients,
    XDSResultNotSinglePatient."""
    return _run_plan(conn, sq, _plan(sq, params, leaf), leaf=leaf, max_results=max_results)


def _plan(sq: StoredQuery, params: q.Params, leaf: bool) -> q.Plan:
    return restrict_plan(sq.plan(params, leaf), params.requester, sq.name, params)


def _run_plan(
    conn: Connection, sq: StoredQuery, plan: q.Plan, *, leaf: bool, max_results: int
) -> list[Found]:
    found: list[Found] = []
    for stmt in (plan.objects, plan.associations):
        if stmt is None:
            continue
        room = max_results + 1 - len(found)
        found += _fetch(conn.execute(stmt.limit(room)))
        if len(found) > max_results:
            raise Rule.TOO_MANY_RESULTS.exception(count=f"more than {max_results}", limit=max_results)
    if leaf and not sq.patient_scoped and len({f.patient_id for f in found if f.kind != ASSOCIATION}) > 1:
        # ITI TF-2a 3.18.4.1.3; an ObjectRef answer discloses no metadata, so it may span patients
        raise Rule.RESULT_NOT_SINGLE_PATIENT.exception()
    return found


def _fetch(result: CursorResult[Any]) -> list[Found]:
    """The rows of a plan statement. On psycopg the values are read from the libpq result as the
    UTF-8 bytes they arrived as: a FindDocuments answer is hundreds of fragments of several KB,
    which decoding to str only to encode them again for the response cost about a millisecond."""
    pgresult = getattr(result.cursor, "pgresult", None)
    if pgresult is None or result.cursor.connection.info.encoding != "utf-8":
        return [Found(*row) for row in result.all()]
    try:
        get = pgresult.get_value
        if pgresult.nfields != 4 or any(pgresult.fformat(i) for i in range(4)):  # binary: the driver loads
            return [Found(*row) for row in result.all()]
        out = []
        for i in range(pgresult.ntuples):
            kind, uuid, patient = get(i, 0), get(i, 1), get(i, 2)
            out.append(
                Found(
                    kind.decode(),  # type: ignore[union-attr]
                    uuid.decode(),  # type: ignore[union-attr]
                    None if patient is None else patient.decode(),
                    get(i, 3),
                )
            )
        return out
    finally:
        result.close()


def stored_query(
    engine_or_connection: Engine | Connection,
    request_element: etree._Element,
    *,
    config: RegistryConfig,
    home_community_id: str | None = None,
    requester: Requester | None = None,
) -> etree._Element:
    """Answer one AdhocQueryRequest with a ``query:AdhocQueryResponse``: Success with the
    matching objects (possibly none), or Failure with the RegistryErrors. ``home_community_id``
    forces the ``home`` attribute of every returned object (ITI-38); otherwise the request's
    AdhocQuery/@home is echoed when it has one. Objects consent directives withhold from
    ``requester`` (None: an external requester) are absent, as if they did not exist."""
    try:
        found, leaf, home = _execute(
            engine_or_connection, request_element, config, home_community_id=home_community_id, requester=requester
        )
    except XdsError as e:
        return adhoc_query_response(errors=e.errors)
    return _answer(found, leaf, home)


def stored_query_serialized(
    engine_or_connection: Engine | Connection,
    request_element: etree._Element,
    *,
    config: RegistryConfig,
    requester: Requester | None = None,
) -> tuple[etree._Element, bytes | None, list[Found]]:
    """:func:`stored_query` for the SOAP operation: (response element, response bytes, objects).
    A LeafClass answer (with no ``home`` to stamp) comes as the AdhocQueryResponse element without
    its objects, and the whole response serialised with the stored fragments copied in as they
    are: a FindDocuments of a few hundred entries is megabytes of XML, which parsing into a tree
    only to serialise it again cost tens of milliseconds. Otherwise the bytes are None and the
    element is the whole answer."""
    try:
        found, leaf, home = _execute(engine_or_connection, request_element, config, requester=requester)
    except XdsError as e:
        return adhoc_query_response(errors=e.errors), None, []
    if not leaf or home or not found:
        return _answer(found, leaf, home), None, found
    response = adhoc_query_response()
    head = etree.tostring(response, encoding="UTF-8")
    at = head.rindex(_EMPTY_OBJECT_LIST)
    body = b"".join(
        [
            head[:at],
            _OBJECT_LIST_START,
            *(_fragment_bytes(f.fragment or "") for f in found),
            _OBJECT_LIST_END,
            head[at + len(_EMPTY_OBJECT_LIST) :],
        ]
    )
    return response, body, found


_EMPTY_OBJECT_LIST = b"<rim:RegistryObjectList/>"
_OBJECT_LIST_START = b"<rim:RegistryObjectList>"
_OBJECT_LIST_END = b"</rim:RegistryObjectList>"


def _fragment_bytes(fragment: str | bytes) -> bytes:
    data = fragment.encode() if isinstance(fragment, str) else fragment
    return data[data.index(b"?>") + 2 :] if data.startswith(b"<?xml") else data


def _execute(
    engine_or_connection: Engine | Connection,
    request_element: etree._Element,
    config: RegistryConfig,
    *,
    home_community_id: str | None = None,
    requester: Requester | None = None,
) -> tuple[list[Found], bool, str | None]:
    """The objects a request finds, whether the answer is LeafClass, and the ``home`` to stamp;
    raises XdsError with the RegistryErrors of a Failure."""
    try:
        request = read_request(request_element)
        home = home_community_id or request.home
        sq = CATALOGUE.get(request.query_id)
        if sq is None:
            raise Rule.UNKNOWN_STORED_QUERY.exception(value=request.query_id)
        if request.return_type not in (
            LEAF_CLASS,
            OBJECT_REF,
            "RegistryObject",
            "LeafClassWithRepositoryItem",
        ):
            raise Rule.REGISTRY_ERROR.exception(reason=f"returnType {request.return_type!r} is not supported")
        leaf = request.return_type != OBJECT_REF
        params = check_params(sq, request.slots)
        params.merged_patient_policy = config.merged_patient_policy
        params.requester = requester
        # a local couplet queries its HN's longitudinal record (DESIGN.md 7); merged ids per policy
        resolve_query_patients(engine_or_connection, params, config)
        found = _run(engine_or_connection, sq, params, leaf=leaf, max_results=config.max_results)
    except SQLAlchemyError:
        log.exception("stored query failed")
        raise Rule.REGISTRY_ERROR.exception(reason="the registry database failed") from None
    return found, leaf, home


def _run(
    engine_or_connection: Engine | Connection,
    sq: StoredQuery,
    params: q.Params,
    *,
    leaf: bool,
    max_results: int,
) -> list[Found]:
    if isinstance(engine_or_connection, Connection):
        return run_query(engine_or_connection, sq, params, leaf=leaf, max_results=max_results)
    plan = _plan(sq, params, leaf)
    conn = engine_or_connection.connect()
    try:
        if conn.dialect.name == "postgresql":
            if plan.objects is None or plan.associations is None:
                # one statement sees one snapshot by itself: no BEGIN / COMMIT round trips
                conn = conn.execution_options(isolation_level="AUTOCOMMIT")
                return _run_plan(conn, sq, plan, leaf=leaf, max_results=max_results)
            # the objects and their Associations from one snapshot
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            return _run_plan(conn, sq, plan, leaf=leaf, max_results=max_results)
    finally:
        conn.close()


def _answer(found: Sequence[Found], leaf: bool, home: str | None) -> etree._Element:
    if not leaf:
        return adhoc_query_response([object_ref(f.entry_uuid, home) for f in found])
    response = adhoc_query_response(_fragment_bytes(f.fragment or b"") for f in found)
    if home:
        for obj in response.find(f"{{{RIM}}}RegistryObjectList"):
            obj.set("home", home)
    return response


# --- the SOAP operation ----------------------------------------------------------------------------


def iti18_handler(registry: Any) -> Callable[[SoapRequest], SoapResponse]:
    """The ITI-18 operation of a registry (:class:`xds.registry.Registry`: ``engine``,
    ``settings``), to register on the registry endpoint under :data:`ACTION`."""

    def registry_stored_query(request: SoapRequest) -> SoapResponse:
        return answer(registry, request)

    return registry_stored_query


_M_TRIM_THRESHOLD, _M_TOP_PAD = -1, -2  # glibc mallopt parameters
HEAP_TRIM_THRESHOLD = 16 * 1024 * 1024
HEAP_TOP_PAD = 8 * 1024 * 1024
_heap_tuned = False


def keep_heap_for_large_answers() -> None:
    """Have glibc keep up to 16 MiB of freed heap (and grow it 8 MiB at a time) rather than give
    it back to the kernel after every request. A LeafClass answer of a few hundred entries
    allocates and frees megabytes (the driver's result, the fragments, the joined answer, the
    envelope); with glibc's defaults the freed heap top is trimmed and the next answer faults
    every page in again: 2.5 ms of CPU of a 5.5 ms FindDocuments (200 entries) went to that.
    Once per process; a ``MALLOC_TRIM_THRESHOLD_`` / ``MALLOC_TOP_PAD_`` set by the operator
    wins; nothing off glibc."""
    global _heap_tuned
    if _heap_tuned:
        return
    _heap_tuned = True
    if os.environ.get("MALLOC_TRIM_THRESHOLD_") or os.environ.get("MALLOC_TOP_PAD_"):
        return
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl, macOS)
        return
    mallopt(_M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD)
    mallopt(_M_TOP_PAD, HEAP_TOP_PAD)


def answer(registry: Any, request: SoapRequest) -> SoapResponse:
    """ITI-18 over SOAP: the AdhocQueryResponse of ``request`` for a registry (``engine``,
    ``settings``). A LeafClass answer goes out as serialised bytes
    (:func:`stored_query_serialized`) with its audit context: the query, and the patients whose
    objects it discloses, taken from the rows rather than searched for in the XML."""
    from xds.audit.context import query_context

    if not _heap_tuned:
        keep_heap_for_large_answers()
    started = time.monotonic()
    response, body, found = stored_query_serialized(
        registry.engine, request.body_element, config=registry.settings, requester=requester_of(request)
    )
    audit = None
    if body is not None:
        audit = query_context(request.body_element)
        disclosed = dict.fromkeys(f.patient_id for f in found if f.kind != ASSOCIATION and f.patient_id)
        audit.patient_ids += [p for p in disclosed if p not in audit.patient_ids]
    errors = [e.get("errorCode", "") for e in response.iter(f"{{{RS}}}RegistryError")]
    log.info(
        "ITI-18 from %s: %s, %d objects%s in %.0f ms",
        request.client_host or "-",
        response.get("status", "").rsplit(":", 1)[-1],
        len(found) if body is not None else len(response.find(f"{{{RIM}}}RegistryObjectList")),
        f" ({', '.join(sorted(set(errors)))})" if errors else "",
        (time.monotonic() - started) * 1000,
    )
    return SoapResponse(response, RESPONSE_ACTION, audit=audit, body_bytes=body)


__all__ = [
    "ACTION",
    "BY_NAME",
    "CATALOGUE",
    "RESPONSE_ACTION",
    "StoredQuery",
    "answer",
    "iti18_handler",
    "parse_code",
    "parse_value",
    "stored_query",
    "stored_query_serialized",
]
