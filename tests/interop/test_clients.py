"""The interop helpers against a bare SOAP endpoint over real HTTP: zeep, built from our served
``?wsdl`` or from an official IHE WSDL, sends ITI-18 / ITI-38 and reads the answer.

The endpoint's handlers are stubs that record the request and answer a fixed AdhocQueryResponse;
the registry itself is not involved (its live interop tests come with the node server).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lxml import etree
from starlette.applications import Starlette
from starlette.routing import Route

from tests.interop import clients
from tests.interop.conftest import serving
from tests.schemas.schema_sets import official, ours
from xds.soap.dispatch import Endpoint
from xds.soap.message import SoapRequest, SoapResponse

QUERY = "urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0"
RIM = clients.RIM
PATIENT = "7c5a8f2e1b^^^&1.2.840.113619.6.197&ISO"
CLASS_CODE = "urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a"

ANSWER = f"""
<query:AdhocQueryResponse xmlns:query="{QUERY}" xmlns:rim="{RIM}"
    status="urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success">
  <rim:RegistryObjectList>
    <rim:ExtrinsicObject id="urn:uuid:0c2a4a4e-6b8b-4b3f-9d0e-5a1f2f6c1d11" mimeType="application/dicom"
        objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1"
        status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved">
      <rim:Slot name="creationTime"><rim:ValueList><rim:Value>20240102030405</rim:Value></rim:ValueList></rim:Slot>
      <rim:Name><rim:LocalizedString xml:lang="en-CA" value="CT chest"/></rim:Name>
      <rim:Classification id="urn:uuid:0c2a4a4e-6b8b-4b3f-9d0e-5a1f2f6c1d12" classificationScheme="{CLASS_CODE}"
          classifiedObject="urn:uuid:0c2a4a4e-6b8b-4b3f-9d0e-5a1f2f6c1d11" nodeRepresentation="IMG">
        <rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1.3.6.1.4.1.19376.1.2.6.1</rim:Value></rim:ValueList></rim:Slot>
        <rim:Name><rim:LocalizedString value="Imaging"/></rim:Name>
      </rim:Classification>
      <rim:ExternalIdentifier id="urn:uuid:0c2a4a4e-6b8b-4b3f-9d0e-5a1f2f6c1d13"
          registryObject="urn:uuid:0c2a4a4e-6b8b-4b3f-9d0e-5a1f2f6c1d11"
          identificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" value="{PATIENT}">
        <rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Name>
      </rim:ExternalIdentifier>
    </rim:ExtrinsicObject>
    <rim:ObjectRef id="urn:uuid:0c2a4a4e-6b8b-4b3f-9d0e-5a1f2f6c1d14"/>
  </rim:RegistryObjectList>
</query:AdhocQueryResponse>
""".replace("&", "&amp;")


class Recorder:
    def __init__(self) -> None:
        self.requests: list[SoapRequest] = []

    def answer(self, response_action: str):
        def handler(request: SoapRequest) -> SoapResponse:
            self.requests.append(request)
            return SoapResponse(etree.fromstring(ANSWER.encode()), response_action)

        return handler


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def base_url(recorder: Recorder) -> Iterator[str]:
    registry = Endpoint("registry", "/xds/registry", "XDS.b_DocumentRegistry.wsdl")
    registry.add_operation(
        clients.ITI18, clients.ITI18 + "Response", recorder.answer(clients.ITI18 + "Response")
    )
    gateway = Endpoint("respond", "/xca/respond", "XCARespondingGateway.wsdl")
    gateway.add_operation(
        clients.ITI38, clients.ITI38 + "Response", recorder.answer(clients.ITI38 + "Response")
    )
    app = Starlette(
        routes=[
            Route(registry.path, registry, methods=["GET", "POST"]),
            Route(gateway.path, gateway, methods=["GET", "POST"]),
        ]
    )
    with serving(app) as url:
        yield url


def check_exchange(reply: clients.SoapReply, recorder: Recorder, response_action: str) -> None:
    assert reply.status_code == 200
    assert reply.content_type.startswith("application/soap+xml")
    assert reply.action == response_action
    received = recorder.requests[-1]
    assert reply.relates_to == received.addressing.message_id
    assert reply.body.tag == f"{{{QUERY}}}AdhocQueryResponse"
    assert len(reply.body.find(f"{{{RIM}}}RegistryObjectList")) == 2
    # what zeep sent is a valid AdhocQueryRequest under both schema sets
    body = etree.ElementTree(etree.fromstring(etree.tostring(received.body_element)))
    assert ours().validate(body)
    assert official().validate(body)
    patient = received.body_element.find(f".//{{{RIM}}}Slot[@name='$XDSDocumentEntryPatientId']")
    assert patient.findtext(f".//{{{RIM}}}Value") == f"'{PATIENT}'"


def test_iti18_from_a_zeep_client_built_from_the_served_wsdl(base_url, recorder):
    client = clients.build_client(f"{base_url}/xds/registry?wsdl")
    reply = clients.send_iti18(client, PATIENT)
    check_exchange(reply, recorder, clients.ITI18 + "Response")
    assert recorder.requests[-1].addressing.action == clients.ITI18


def test_zeep_reads_the_whole_response_through_our_wsdl(base_url, recorder):
    client = clients.build_client(f"{base_url}/xds/registry?wsdl")
    service, name = clients.service_for(client, clients.ITI18)
    request = clients.adhoc_query_request(
        client, clients.FIND_DOCUMENTS, clients.find_documents_slots(PATIENT)
    )
    result = service[name](**request)
    first, second = result.RegistryObjectList._value_1
    entry = first["ExtrinsicObject"]
    assert entry.Slot[0].ValueList.Value == ["20240102030405"]
    assert entry.Classification[0].Slot[0].name == "codingScheme"
    assert entry.Classification[0].nodeRepresentation == "IMG"
    assert entry.ExternalIdentifier[0].value == PATIENT
    assert second["ObjectRef"].id == "urn:uuid:0c2a4a4e-6b8b-4b3f-9d0e-5a1f2f6c1d14"


def test_iti18_from_a_zeep_client_built_from_the_official_ipf_wsdl(base_url, recorder):
    client = clients.build_client(clients.IPF_WSDL / "iti18.wsdl")
    reply = clients.send_iti18(client, PATIENT, address=f"{base_url}/xds/registry")
    check_exchange(reply, recorder, clients.ITI18 + "Response")


def test_iti38_from_a_zeep_client_built_from_the_official_xca_wsdl(base_url, recorder):
    client = clients.build_client(clients.OFFICIAL_WSDL / "XCARespondingGatewayQuery.wsdl")
    reply = clients.send_iti18(
        client, PATIENT, address=f"{base_url}/xca/respond", action=clients.ITI38, home="urn:oid:1.2.3"
    )
    check_exchange(reply, recorder, clients.ITI38 + "Response")
    assert recorder.requests[-1].body_element.find(f"{{{RIM}}}AdhocQuery").get("home") == "urn:oid:1.2.3"


@pytest.mark.skipif(not clients.node_available(), reason="node is not installed")
def test_iti18_from_node_soap_built_from_the_served_wsdl(base_url, recorder):
    reply = clients.node_soap_stored_query(
        f"{base_url}/xds/registry?wsdl",
        "DocumentRegistry_RegistryStoredQuery",
        clients.find_documents_slots(PATIENT),
    )
    check_exchange(reply, recorder, clients.ITI18 + "Response")
    assert reply.request is not None
