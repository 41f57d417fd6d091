"""ITI-42 Register Document Set-b, then ITI-18 Registry Stored Query (FindDocuments), against a real
node process (`xds serve`, tests/live.py), from WSDL clients that are not ours:

* zeep built from the WSDL the node serves (``<base>/xds/registry?wsdl``);
* zeep built from IPF's official per-transaction WSDLs (iti42.wsdl, iti18.wsdl), the service
  address overridden to the node;
* node-soap (npm ``soap``) built from the served WSDL.

Each exchange is a well-formed SOAP 1.2 answer (ITI TF-2x V.3.2) whose wsa:Action is the
response action of the transaction and whose wsa:RelatesTo is the request's wsa:MessageID
(WS-Addressing 1.0 Core 3.4), and the document registered is then found. The patient is fed over
ITI-8 (MLLP) first: the registry accepts only patients of its affinity domain that it knows.
"""

from __future__ import annotations

import hashlib

import pytest
from lxml import etree

from tests.interop import clients
from tests.interop.conftest import REPOSITORY_ID

ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
RIM = clients.RIM


def check_soap12(exchange: clients.Exchange, request_action: str) -> None:
    """A SOAP 1.2 answer to the request, addressed back to it (ITI TF-2x V.3.2.1)."""
    assert exchange.received_headers["Content-Type"].startswith("application/soap+xml")
    assert exchange.received.tag == f"{{{clients.SOAP12}}}Envelope"
    assert exchange.header(exchange.sent, "Action") == request_action
    assert exchange.action == request_action + "Response"
    assert exchange.message_id and exchange.relates_to == exchange.message_id
    answer_id = exchange.header(exchange.received, "MessageID")
    assert answer_id and answer_id != exchange.message_id


def unique_ids(body: etree._Element) -> list[str]:
    """DocumentEntry.uniqueId of every ExtrinsicObject in a query answer, read with lxml."""
    return [
        ei.get("value")
        for ei in body.iter(f"{{{RIM}}}ExternalIdentifier")
        if ei.get("identificationScheme") == clients.DE_UNIQUE_ID
    ]


def zeep_unique_ids(result) -> list[str]:
    """The same, read from zeep's own deserialisation of the answer (a choice in our schema, typed
    rim:Identifiable values in the OASIS one)."""
    items = result.RegistryObjectList
    objects = [v["ExtrinsicObject"] for v in items._value_1] if "_value_1" in items else items.Identifiable
    return [
        ei.value
        for obj in objects
        for ei in obj.ExternalIdentifier
        if ei.identificationScheme == clients.DE_UNIQUE_ID
    ]


def registered_entry() -> clients.DocumentEntry:
    content = b"an interop test document\r\n"
    return clients.DocumentEntry(
        clients.new_oid(),
        hash=hashlib.sha1(content).hexdigest(),
        size=len(content),
        repository_unique_id=REPOSITORY_ID,
    )


@pytest.fixture(params=["served", "official"])
def registry_clients(request, node):
    """(ITI-42 client, ITI-18 client, address override) for the served or the official WSDLs."""
    if request.param == "served":
        client = clients.build_client(node.url("/xds/registry?wsdl"))
        return client, client, None
    return (
        clients.build_client(clients.IPF_WSDL / "iti42.wsdl"),
        clients.build_client(clients.IPF_WSDL / "iti18.wsdl"),
        node.url("/xds/registry"),
    )


def test_register_then_find_documents_with_zeep(node, patient, registry_clients):
    register_client, query_client, address = registry_clients
    entry = registered_entry()

    registered = clients.call(
        register_client,
        ITI42,
        clients.submit_objects_request(register_client, patient, [entry]),
        address=address,
    )
    check_soap12(registered, ITI42)
    assert registered.body.tag == "{urn:oasis:names:tc:ebxml-regrep:xsd:rs:3.0}RegistryResponse"
    assert registered.result.status == SUCCESS, etree.tostring(registered.body).decode()

    request = clients.adhoc_query_request(
        query_client, clients.FIND_DOCUMENTS, clients.find_documents_slots(patient)
    )
    found = clients.call(query_client, clients.ITI18, request, address=address)
    check_soap12(found, clients.ITI18)
    assert found.result.status == SUCCESS
    assert unique_ids(found.body) == [entry.unique_id]
    assert zeep_unique_ids(found.result) == [entry.unique_id]


def test_official_wsdl_without_substitution_groups_is_refused_not_misread(node, patient):
    """zeep's own rendering of the OASIS schema (rim:Identifiable xsi:type=...) is not XDS metadata:
    the registry says so in a Failure (ITI TF-3 4.2), it does not register half of it."""
    client = clients.build_client(clients.IPF_WSDL / "iti42.wsdl")
    client.plugins[:] = [p for p in client.plugins if not isinstance(p, clients.RimSubstitutionGroups)]
    request = clients.submit_objects_request(client, patient, [registered_entry()])
    refused = clients.call(client, ITI42, request, address=node.url("/xds/registry"))
    check_soap12(refused, ITI42)
    assert refused.result.status.endswith(":Failure")
    assert {e.errorCode for e in refused.result.RegistryErrorList.RegistryError} == {
        "XDSRegistryMetadataError"
    }


@pytest.mark.skipif(not clients.node_available(), reason="node is not installed")
def test_find_documents_with_node_soap_built_from_the_served_wsdl(node, patient):
    client = clients.build_client(node.url("/xds/registry?wsdl"))
    entry = registered_entry()
    registered = clients.call(client, ITI42, clients.submit_objects_request(client, patient, [entry]))
    assert registered.result.status == SUCCESS

    reply = clients.node_soap_stored_query(
        node.url("/xds/registry?wsdl"),
        "DocumentRegistry_RegistryStoredQuery",
        clients.find_documents_slots(patient),
    )
    assert reply.status_code == 200
    assert reply.content_type.startswith("application/soap+xml")
    assert reply.action == clients.ITI18 + "Response"
    sent_id = reply.request.findtext(f"{{{clients.SOAP12}}}Header/{{{clients.WSA}}}MessageID")
    assert sent_id and reply.relates_to == sent_id
    assert reply.body.get("status") == SUCCESS
    assert unique_ids(reply.body) == [entry.unique_id]
