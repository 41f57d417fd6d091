"""ITI-18 as a whole (ITI TF-2a 3.18): the catalogue's query ids, the parameter value syntax, the
errors every query shares, the response shape, the SQL budget and the SOAP operation."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest
from lxml import etree
from sqlalchemy import event
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.registry.stored_query_data import (
    Answer,
    Data,
    adhoc_query_request,
    association,
    code,
    fragment,
    q1,
    qs,
    query_schema,
)
from xds.config import RegistryConfig
from xds.metadata import model as m
from xds.namespaces import QUERY, RIM, SOAP12, WSA
from xds.registry import query_sql
from xds.registry.store import RegistryStore
from xds.registry.stored_query import (
    ACTION,
    BY_NAME,
    CATALOGUE,
    RESPONSE_ACTION,
    iti18_handler,
    parse_code,
    parse_value,
    stored_query,
)
from xds.soap.dispatch import Endpoint

APPROVED = qs(m.STATUS_APPROVED)


@pytest.fixture
def db(engine) -> Data:
    return Data(RegistryStore(engine))


# --- the catalogue (ITI TF-2a 3.18.4.1.2.3.7) ------------------------------------------------------


def test_catalogue_has_every_stored_query_with_its_id() -> None:
    assert {name: sq.id for name, sq in BY_NAME.items()} == {
        "FindDocuments": "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d",
        "FindDocumentsByReferenceId": "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492",
        "FindSubmissionSets": "urn:uuid:f26abbcb-ac74-4422-8a30-edb644bbc1a9",
        "FindFolders": "urn:uuid:958f3006-baad-4929-a4de-ff1114824431",
        "GetAll": "urn:uuid:10b545ea-725c-446d-9b95-8aeb444eddf3",
        "GetDocuments": "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4",
        "GetFolders": "urn:uuid:5737b14c-8a1a-4539-b659-e03a34a5e1e4",
        "GetAssociations": "urn:uuid:a7ae438b-4bc2-4642-93e9-be891f7bb155",
        "GetDocumentsAndAssociations": "urn:uuid:bab9529a-4a10-40b3-a01f-f68a615d247a",
        "GetSubmissionSets": "urn:uuid:51224314-5390-4169-9b91-b1980040715a",
        "GetSubmissionSetAndContents": "urn:uuid:e8e3cb2c-e39c-46b9-99e4-c12f57260b83",
        "GetFolderAndContents": "urn:uuid:b909a503-523d-4517-8acf-8e5834dfc4c7",
        "GetFoldersForDocument": "urn:uuid:10cae35a-c7f9-4cf5-b61e-fc3278ffb578",
        "GetRelatedDocuments": "urn:uuid:d90e5407-b356-4d91-a89f-873917b4b0e6",
    }
    assert set(CATALOGUE) == {sq.id for sq in BY_NAME.values()}


# --- value syntax (ITI TF-2a 3.18.4.1.2.3.5) -------------------------------------------------------


@pytest.mark.parametrize(
    "text, values",
    [
        ("'abc'", ["abc"]),
        ("  'a b'  ", ["a b"]),
        ("('a','b')", ["a", "b"]),
        ("( 'a' , 'b' )", ["a", "b"]),
        ("('O''Brien')", ["O'Brien"]),
        ("('a,b')", ["a,b"]),
        ("('(x)')", ["(x)"]),
        ("200412", ["200412"]),
        ("(200412, 2005)", ["200412", "2005"]),
        (
            "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved",
            ["urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"],
        ),
        ("''", [""]),
    ],
)
def test_parse_value(text: str, values: list[str]) -> None:
    assert parse_value(text) == values


@pytest.mark.parametrize(
    "text", ["", "   ", "('a'", "'a", "('a' 'b')", "('a',)", "()", "(,'a')", "'a' 'b'", "a'b"]
)
def test_parse_value_rejects_malformed_values(text: str) -> None:
    with pytest.raises(ValueError):
        parse_value(text)


@pytest.mark.parametrize(
    "value, parsed",
    [
        ("T-D4909^^^SNM3", query_sql.CodeValue("T-D4909", "SNM3")),
        ("Referrals^^1.3.6.1.4.1.21367.2017.3", query_sql.CodeValue("Referrals", "1.3.6.1.4.1.21367.2017.3")),
        ("N^Normal^2.16.840.1.113883.5.25", query_sql.CodeValue("N", "2.16.840.1.113883.5.25")),
        ("N", query_sql.CodeValue("N", None)),
    ],
)
def test_parse_code(value: str, parsed: query_sql.CodeValue) -> None:
    assert parse_code(value) == parsed


def test_code_without_scheme_matches_any_scheme(db: Data) -> None:
    d = db.document(class_code=m.Code("Consult", "1.2.3"))
    db.load(d)
    answer = db.ask(
        "FindDocuments",
        [
            ("$XDSDocumentEntryPatientId", q1(db.patient)),
            ("$XDSDocumentEntryStatus", APPROVED),
            ("$XDSDocumentEntryClassCode", qs("Consult")),
        ],
    )
    assert answer.documents == {d.entry_uuid}


def test_status_short_names_are_accepted(db: Data) -> None:
    d = db.document()
    db.load(d)
    answer = db.ask(
        "FindDocuments",
        [("$XDSDocumentEntryPatientId", q1(db.patient)), ("$XDSDocumentEntryStatus", "('Approved')")],
    )
    assert answer.documents == {d.entry_uuid}


# --- errors shared by every query (ITI TF-2a 3.18.4.1.3) -------------------------------------------


def test_unknown_query_id_gives_XDSUnknownStoredQuery(db: Data) -> None:
    answer = db.ask(f"urn:uuid:{uuid.uuid4()}", [])
    assert answer.status == "Failure"
    assert answer.error_codes == ["XDSUnknownStoredQuery"]
    assert answer.objects == []


def test_malformed_value_gives_XDSRegistryError(db: Data) -> None:
    answer = db.ask(
        "FindDocuments",
        [("$XDSDocumentEntryPatientId", "'unterminated"), ("$XDSDocumentEntryStatus", APPROVED)],
    )
    assert answer.error_codes == ["XDSRegistryError"]


def test_empty_slot_gives_XDSRegistryError(db: Data) -> None:
    answer = db.ask(
        "FindDocuments", [("$XDSDocumentEntryPatientId", []), ("$XDSDocumentEntryStatus", APPROVED)]
    )
    assert answer.error_codes == ["XDSRegistryError"]


def test_single_valued_parameter_in_two_slots_gives_XDSStoredQueryParamNumber(db: Data) -> None:
    answer = db.ask(
        "FindDocuments",
        [
            ("$XDSDocumentEntryPatientId", q1(db.patient)),
            ("$XDSDocumentEntryPatientId", q1(db.patient)),
            ("$XDSDocumentEntryStatus", APPROVED),
        ],
    )
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


def test_not_an_adhoc_query_request_gives_XDSRegistryError(db: Data) -> None:
    response = stored_query(db.engine, etree.Element(f"{{{QUERY}}}Other"), config=RegistryConfig())
    assert query_schema().validate(response)
    assert Answer(response).error_codes == ["XDSRegistryError"]


def test_request_without_adhoc_query_gives_XDSRegistryError(db: Data) -> None:
    request = etree.Element(f"{{{QUERY}}}AdhocQueryRequest")
    etree.SubElement(request, f"{{{QUERY}}}ResponseOption", returnType="LeafClass")
    response = stored_query(db.engine, request, config=RegistryConfig())
    assert Answer(response).error_codes == ["XDSRegistryError"]


def test_too_many_results_gives_XDSTooManyResults(db: Data) -> None:
    docs = [db.document() for _ in range(3)]
    db.load(*docs)
    slots = [("$XDSDocumentEntryPatientId", q1(db.patient)), ("$XDSDocumentEntryStatus", APPROVED)]
    assert len(db.ask("FindDocuments", slots, config=RegistryConfig(max_results=3)).documents) == 3
    for returns in ("LeafClass", "ObjectRef"):
        answer = db.ask("FindDocuments", slots, config=RegistryConfig(max_results=2), returns=returns)
        assert answer.status == "Failure"
        assert answer.error_codes == ["XDSTooManyResults"]
        assert answer.objects == []


def test_too_many_results_counts_associations(db: Data) -> None:
    d = db.document()
    sub = db.submit([d])
    slots = [("$XDSSubmissionSetEntryUUID", q1(sub.submission_set.entry_uuid))]
    assert (
        db.ask("GetSubmissionSetAndContents", slots, config=RegistryConfig(max_results=3)).status == "Success"
    )
    answer = db.ask("GetSubmissionSetAndContents", slots, config=RegistryConfig(max_results=2))
    assert answer.error_codes == ["XDSTooManyResults"]


def test_failure_response_shape(db: Data) -> None:
    answer = db.ask("GetDocuments", [])
    el = answer.element
    assert el.get("status") == "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    errors = el.find("{*}RegistryErrorList")
    assert errors.get("highestSeverity") == "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    error = errors[0]
    assert error.get("severity") == "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    assert "$XDSDocumentEntryEntryUUID" in error.get("codeContext")
    assert el.find(f"{{{RIM}}}RegistryObjectList") is not None


# --- answers ---------------------------------------------------------------------------------------


def test_leaf_class_answer_is_the_stored_fragment(db: Data) -> None:
    d = db.document(title="Chest X-ray", event_codes=[m.Code("T-D4909", "SNM3", "Kidney")])
    db.load(d)
    answer = db.ask("GetDocuments", [("$XDSDocumentEntryEntryUUID", qs(d.entry_uuid))])
    (obj,) = answer.objects
    stored = etree.fromstring(fragment(d))
    assert etree.tostring(obj, method="c14n", exclusive=True) == etree.tostring(
        stored, method="c14n", exclusive=True
    )


def test_home_community_id_parameter_is_set_on_every_object(db: Data) -> None:
    """ITI-38 reuse: the Responding Gateway passes its homeCommunityId for every object."""
    d = db.document()
    sub = db.submit([d])
    for returns in ("LeafClass", "ObjectRef"):
        answer = db.ask(
            "GetSubmissionSetAndContents",
            [("$XDSSubmissionSetEntryUUID", q1(sub.submission_set.entry_uuid))],
            returns=returns,
            home="urn:oid:1.2.3",
            home_community_id="urn:oid:9.9.9",
        )
        assert len(answer.objects) == 3
        assert {o.get("home") for o in answer.objects} == {"urn:oid:9.9.9"}


# --- one SQL statement per query, one more for Associations (DESIGN.md section 3) ------------------


def _requests(db: Data) -> dict[str, list[tuple[str, str]]]:
    order = "X1^^^&1.2.3&ISO^urn:ihe:iti:xds:2013:order"
    d, r, f = db.document(reference_ids=[order]), db.document(), db.folder()
    sub = db.submit([d, r], [f], in_folder=[(f, d)])
    db.load(association(m.RPLC, r.entry_uuid, d.entry_uuid))
    pid = q1(db.patient)
    de = [("$XDSDocumentEntryPatientId", pid), ("$XDSDocumentEntryStatus", APPROVED)]
    return {
        "FindDocuments": [
            *de,
            ("$XDSDocumentEntryClassCode", qs(code(d.class_code))),
            ("$XDSDocumentEntryEventCodeList", qs(code(d.event_codes[0]))),
            ("$XDSDocumentEntryEventCodeList", qs(code(d.event_codes[0]))),
            ("$XDSDocumentEntryAuthorPerson", qs("%Smitty%")),
            ("$XDSDocumentEntryCreationTimeFrom", "2004"),
        ],
        "FindDocumentsByReferenceId": [
            *de,
            ("$XDSDocumentEntryReferenceIdList", qs(order)),
        ],
        "FindSubmissionSets": [("$XDSSubmissionSetPatientId", pid), ("$XDSSubmissionSetStatus", APPROVED)],
        "FindFolders": [("$XDSFolderPatientId", pid), ("$XDSFolderStatus", APPROVED)],
        "GetAll": [
            ("$patientId", pid),
            ("$XDSDocumentEntryStatus", APPROVED),
            ("$XDSSubmissionSetStatus", APPROVED),
            ("$XDSFolderStatus", APPROVED),
        ],
        "GetDocuments": [("$XDSDocumentEntryUniqueId", qs(d.unique_id, r.unique_id))],
        "GetFolders": [("$XDSFolderEntryUUID", qs(f.entry_uuid))],
        "GetAssociations": [("$uuid", qs(d.entry_uuid, f.entry_uuid))],
        "GetDocumentsAndAssociations": [("$XDSDocumentEntryEntryUUID", qs(d.entry_uuid, r.entry_uuid))],
        "GetSubmissionSets": [("$uuid", qs(d.entry_uuid, r.entry_uuid))],
        "GetSubmissionSetAndContents": [("$XDSSubmissionSetUniqueId", q1(sub.submission_set.unique_id))],
        "GetFolderAndContents": [("$XDSFolderUniqueId", q1(f.unique_id))],
        "GetFoldersForDocument": [("$XDSDocumentEntryUniqueId", q1(d.unique_id))],
        "GetRelatedDocuments": [
            ("$XDSDocumentEntryUniqueId", q1(d.unique_id)),
            ("$AssociationTypes", qs(m.RPLC)),
        ],
    }


def test_each_query_is_one_statement_plus_one_for_associations(db: Data) -> None:
    statements: list[str] = []

    def count(conn, cursor, statement, *args) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            statements.append(statement)

    counts: dict[str, int] = {}
    requests = _requests(db)
    event.listen(db.engine, "before_cursor_execute", count)
    try:
        for name, slots in requests.items():
            statements.clear()
            answer = db.ask(name, slots)
            assert answer.status == "Success", (name, answer.error_codes)
            assert answer.objects, name
            counts[name] = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    objects_and_associations = {
        "GetAll",
        "GetDocumentsAndAssociations",
        "GetSubmissionSets",
        "GetSubmissionSetAndContents",
        "GetFolderAndContents",
        "GetRelatedDocuments",
    }
    assert counts == {name: 2 if name in objects_and_associations else 1 for name in BY_NAME}


# --- the SOAP operation ----------------------------------------------------------------------------


def test_iti18_handler_answers_over_soap(db: Data) -> None:
    d = db.document()
    db.load(d)
    endpoint = Endpoint("registry", "/xds/registry")
    endpoint.add_operation(
        ACTION, RESPONSE_ACTION, iti18_handler(SimpleNamespace(engine=db.engine, settings=RegistryConfig()))
    )
    client = TestClient(Starlette(routes=[Route("/xds/registry", endpoint, methods=["GET", "POST"])]))
    body = etree.tostring(
        adhoc_query_request("GetDocuments", [("$XDSDocumentEntryEntryUUID", qs(d.entry_uuid))])
    ).decode()
    envelope = (
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
        f'<wsa:Action env:mustUnderstand="true">{ACTION}</wsa:Action>'
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
        "<wsa:To>http://testserver/xds/registry</wsa:To>"
        f"</env:Header><env:Body>{body}</env:Body></env:Envelope>"
    )
    r = client.post(
        "/xds/registry",
        content=envelope.encode(),
        headers={"content-type": "application/soap+xml; charset=UTF-8"},
    )
    assert r.status_code == 200
    root = etree.fromstring(r.content)
    assert root.findtext(f"{{{SOAP12}}}Header/{{{WSA}}}Action") == RESPONSE_ACTION
    response = root.find(f"{{{SOAP12}}}Body/{{{QUERY}}}AdhocQueryResponse")
    assert query_schema().validate(response)
    assert Answer(response).documents == {d.entry_uuid}
