"""RegistryResponse and AdhocQueryResponse: status rule, error list, schema validity."""

from __future__ import annotations

import pytest
from lxml import etree

from tests.metadata import factory as f
from xds.metadata.ebrim import (
    object_ref,
    parse_registry_object_list,
    serialize_document_entry,
    serialize_fragment,
)
from xds.metadata.errors import WARNING
from xds.metadata.response import (
    FAILURE,
    PARTIAL_SUCCESS,
    SUCCESS,
    adhoc_query_response,
    registry_error_list,
    registry_response,
    response_status,
)
from xds.metadata.rules import Rule
from xds.namespaces import RIM, RS

NS = {"rs": RS, "rim": RIM}


@pytest.fixture(scope="module")
def rs_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(f.EBRS / "rs.xsd")))


@pytest.fixture(scope="module")
def query_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(f.EBRS / "query.xsd")))


def test_success_without_errors_has_no_error_list(rs_schema):
    el = registry_response()
    rs_schema.assertValid(el)
    assert el.get("status") == SUCCESS
    assert el.find("rs:RegistryErrorList", NS) is None


def test_warnings_alone_leave_success_with_highest_severity_warning(rs_schema):
    el = registry_response(
        [
            Rule.EXTRA_METADATA_NOT_SAVED.error(
                location="Document01", object="DocumentEntry", id="Document01", name="urn:x"
            )
        ]
    )
    rs_schema.assertValid(el)
    assert el.get("status") == SUCCESS
    assert el.find("rs:RegistryErrorList", NS).get("highestSeverity") == WARNING


def test_any_error_makes_failure_and_is_listed_with_its_code(rs_schema):
    errors = [
        Rule.EXTRA_METADATA_NOT_SAVED.error(location="Document01"),
        Rule.DOC_ENTRY_PATIENT_ID_MISMATCH.error(
            location="Document01", id="Document01", value="a", expected="b"
        ),
    ]
    el = registry_response(errors, request_id="urn:uuid:11111111-2222-3333-4444-555555555555")
    rs_schema.assertValid(el)
    assert el.get("status") == FAILURE
    lst = el.find("rs:RegistryErrorList", NS)
    assert lst.get("highestSeverity") == "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    second = lst.findall("rs:RegistryError", NS)[1]
    assert second.get("errorCode") == "XDSPatientIdDoesNotMatch"
    assert second.get("severity") == "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"
    assert second.get("location") == "Document01"
    assert "Document01" in second.get("codeContext")


def test_partial_success_is_set_by_the_caller(rs_schema):
    el = registry_response(
        [Rule.UNAVAILABLE_COMMUNITY.error(value="urn:oid:1.2", reason="timeout")], status=PARTIAL_SUCCESS
    )
    rs_schema.assertValid(el)
    assert el.get("status") == "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"


def test_unknown_status_is_refused():
    with pytest.raises(ValueError):
        registry_response(status="Success")


def test_response_status_rule():
    assert response_status([]) == SUCCESS
    assert response_status([Rule.DOCUMENT_QUEUED.error()]) == SUCCESS
    assert response_status([Rule.REGISTRY_ERROR.error()]) == FAILURE


def test_error_list_without_location_omits_it():
    (e,) = registry_error_list([Rule.REGISTRY_BUSY.error(reason="x")])
    assert "location" not in e.attrib


def test_adhoc_query_response_from_elements_and_stored_fragments_keeps_order(query_schema):
    entries = [
        f.document_entry(f"urn:uuid:11111111-2222-3333-4444-55555555555{i}", f"1.2.3.{i}") for i in range(4)
    ]
    objects = [
        serialize_fragment(entries[0]),
        serialize_fragment(entries[1]),
        serialize_document_entry(entries[2]),
        b'<?xml version="1.0" encoding="UTF-8"?>\n' + serialize_fragment(entries[3]),
    ]
    el = adhoc_query_response(objects, total_result_count=4)
    query_schema.assertValid(el)
    assert el.get("status") == SUCCESS and el.get("totalResultCount") == "4"
    assert parse_registry_object_list(el).objects == entries


def test_empty_failed_query_response_is_valid(query_schema):
    el = adhoc_query_response(errors=[Rule.UNKNOWN_STORED_QUERY.error(value="urn:uuid:0")])
    query_schema.assertValid(el)
    assert el.get("status") == FAILURE
    assert (
        el.find("rim:RegistryObjectList", NS) is not None and len(el.find("rim:RegistryObjectList", NS)) == 0
    )
    assert el.find("rs:RegistryErrorList/rs:RegistryError", NS).get("errorCode") == "XDSUnknownStoredQuery"


def test_object_ref_query_response_is_valid(query_schema):
    refs = [object_ref(f"urn:uuid:11111111-2222-3333-4444-55555555555{i}") for i in range(3)]
    query_schema.assertValid(adhoc_query_response(refs, status=PARTIAL_SUCCESS))
