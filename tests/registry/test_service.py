"""ITI-42 over SOAP 1.2: the registry endpoint as a Document Source sees it (ITI TF-2b 3.42)."""

from __future__ import annotations

import uuid

import pytest
from lxml import etree
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.registry.builders import nist_metadata
from tests.registry.conftest import NIST, node_config
from xds.namespaces import RS, SOAP12, WSA
from xds.registry import Registry
from xds.registry.service import ITI42_ACTION, ITI42_RESPONSE_ACTION, register_operations
from xds.registry.store import DOCUMENT_ENTRY, RegistryStore
from xds.soap.dispatch import Endpoint

SINGLE_DOC = NIST / "12051" / "submit" / "single_doc.xml"
SELF_5 = "SELF-5^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
NS = {"env": SOAP12, "wsa": WSA, "rs": RS}


@pytest.fixture
def client(store: RegistryStore) -> TestClient:
    registry = Registry(store, node_config(patient_assigning_authority="1.3.6.1.4.1.21367.2005.3.7").registry)
    endpoint = Endpoint("registry", "/xds/registry")
    register_operations(endpoint, registry)
    return TestClient(Starlette(routes=[Route(endpoint.path, endpoint, methods=["GET", "POST"])]))


def envelope(body: bytes, action: str = ITI42_ACTION) -> bytes:
    if body.lstrip().startswith(b"<?xml"):
        body = body[body.index(b"?>") + 2 :]
    return (
        (
            f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
            f'<wsa:Action env:mustUnderstand="true">{action}</wsa:Action>'
            f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID>"
            "<wsa:To>http://testserver/xds/registry</wsa:To></env:Header><env:Body>"
        ).encode()
        + body
        + b"</env:Body></env:Envelope>"
    )


def post(client: TestClient, body: bytes) -> etree._Element:
    r = client.post("/xds/registry", content=envelope(body), headers={"content-type": "application/soap+xml"})
    assert r.status_code == 200, r.text
    root = etree.fromstring(r.content)
    assert root.findtext("env:Header/wsa:Action", namespaces=NS) == ITI42_RESPONSE_ACTION
    response = root.find("env:Body/rs:RegistryResponse", NS)
    assert response is not None
    return response


def error_codes(response: etree._Element) -> list[str]:
    return [e.get("errorCode", "") for e in response.iterfind("rs:RegistryErrorList/rs:RegistryError", NS)]


def test_register_document_set_b_nist_12051_single_document(client: TestClient, store: RegistryStore) -> None:
    store.record_patient(SELF_5, {}, "test", "1")
    response = post(client, nist_metadata(SINGLE_DOC))
    assert response.get("status") == "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success", (
        error_codes(response)
    )
    assert store.count(DOCUMENT_ENTRY) == 1


def test_register_document_set_b_unknown_patient_is_a_failure_response(
    client: TestClient, store: RegistryStore
) -> None:
    response = post(client, nist_metadata(SINGLE_DOC))
    assert response.get("status") == "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
    assert error_codes(response) == ["XDSUnknownPatientId"]
    assert store.count(DOCUMENT_ENTRY) == 0


def test_register_document_set_b_same_request_twice_is_rejected(
    client: TestClient, store: RegistryStore
) -> None:
    store.record_patient(SELF_5, {}, "test", "1")
    body = nist_metadata(SINGLE_DOC)
    post(client, body)
    assert error_codes(post(client, body)) == ["XDSDuplicateUniqueIdInRegistry"]


def test_register_document_set_b_wrong_body_is_a_failure_response(client: TestClient) -> None:
    response = post(client, b"<foo xmlns='urn:x'/>")
    assert error_codes(response) == ["XDSRegistryMetadataError"]
