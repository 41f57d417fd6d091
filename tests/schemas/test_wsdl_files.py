"""Our WSDLs: every transaction present, SOAP 1.2 document/literal, the IHE wsa:Actions, and the same
body elements and actions as the official IHE / IPF / dcm4chee WSDLs for the same transaction."""

from __future__ import annotations

import pytest
import zeep
from lxml import etree

from tests.schemas.schema_sets import (
    DCM4CHEE_WSDL,
    IPF_WSDL,
    LCM,
    OFFICIAL_WSDL,
    OURS,
    QUERY,
    RS,
    XDSB,
    XDSI,
)

WSDL = "http://schemas.xmlsoap.org/wsdl/"
SOAP12_BINDING = "http://schemas.xmlsoap.org/wsdl/soap12/"
SOAP11_BINDING = "http://schemas.xmlsoap.org/wsdl/soap/"
WSAM = "http://www.w3.org/2007/05/addressing/metadata"
WSAW = "http://www.w3.org/2006/05/addressing/wsdl"

ADHOC_REQUEST = f"{{{QUERY}}}AdhocQueryRequest"
ADHOC_RESPONSE = f"{{{QUERY}}}AdhocQueryResponse"
REGISTRY_RESPONSE = f"{{{RS}}}RegistryResponse"
RETRIEVE_REQUEST = f"{{{XDSB}}}RetrieveDocumentSetRequest"
RETRIEVE_RESPONSE = f"{{{XDSB}}}RetrieveDocumentSetResponse"
IMAGING_REQUEST = f"{{{XDSI}}}RetrieveImagingDocumentSetRequest"

ITI18 = (
    "urn:ihe:iti:2007:RegistryStoredQuery",
    "urn:ihe:iti:2007:RegistryStoredQueryResponse",
    ADHOC_REQUEST,
    ADHOC_RESPONSE,
)
ITI43 = (
    "urn:ihe:iti:2007:RetrieveDocumentSet",
    "urn:ihe:iti:2007:RetrieveDocumentSetResponse",
    RETRIEVE_REQUEST,
    RETRIEVE_RESPONSE,
)
RAD69 = (
    "urn:ihe:rad:2009:RetrieveImagingDocumentSet",
    "urn:ihe:iti:2007:RetrieveDocumentSetResponse",
    IMAGING_REQUEST,
    RETRIEVE_RESPONSE,
)

# file -> operation name -> (input action, output action, input body element, output body element)
EXPECTED = {
    "XDS.b_DocumentRegistry.wsdl": {
        "DocumentRegistry_RegisterDocumentSet-b": (
            "urn:ihe:iti:2007:RegisterDocumentSet-b",
            "urn:ihe:iti:2007:RegisterDocumentSet-bResponse",
            f"{{{LCM}}}SubmitObjectsRequest",
            REGISTRY_RESPONSE,
        ),
        "DocumentRegistry_RegistryStoredQuery": ITI18,
    },
    "XDS.b_DocumentRepository.wsdl": {
        "DocumentRepository_ProvideAndRegisterDocumentSet-b": (
            "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b",
            "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-bResponse",
            f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest",
            REGISTRY_RESPONSE,
        ),
        "DocumentRepository_RetrieveDocumentSet": ITI43,
    },
    "XDS-I.b_ImagingDocumentSource.wsdl": {
        "RetrieveImagingDocumentSet": RAD69,
    },
    "XCARespondingGateway.wsdl": {
        "RespondingGateway_CrossGatewayQuery": (
            "urn:ihe:iti:2007:CrossGatewayQuery",
            "urn:ihe:iti:2007:CrossGatewayQueryResponse",
            ADHOC_REQUEST,
            ADHOC_RESPONSE,
        ),
        "RespondingGateway_CrossGatewayRetrieve": (
            "urn:ihe:iti:2007:CrossGatewayRetrieve",
            "urn:ihe:iti:2007:CrossGatewayRetrieveResponse",
            RETRIEVE_REQUEST,
            RETRIEVE_RESPONSE,
        ),
        # RAD TF-3 4.75; the same response action in the IPF, dcm4chee and NIST toolkit WSDLs/code
        "RespondingGateway_CrossGatewayRetrieveImagingDocumentSet": (
            "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet",
            "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSetResponse",
            IMAGING_REQUEST,
            RETRIEVE_RESPONSE,
        ),
    },
    "XCAInitiatingGateway.wsdl": {
        "DocumentRegistry_RegistryStoredQuery": ITI18,
        "DocumentRepository_RetrieveDocumentSet": ITI43,
        "ImagingDocumentSource_RetrieveImagingDocumentSet": RAD69,
    },
}

# the official WSDLs in the corpus that declare each transaction (some are not loadable by zeep,
# e.g. rahulsom's registry WSDL, whose HL7v3 imports are absent: they are read as XML here)
OFFICIAL_WSDLS = (
    sorted(OFFICIAL_WSDL.glob("*.wsdl"))
    + sorted(DCM4CHEE_WSDL.glob("*.wsdl"))
    + [p for p in sorted(IPF_WSDL.glob("*.wsdl")) if "async" not in p.name]
)


def operations_in(path) -> dict[str, tuple[str | None, str | None, str, str]]:
    """Operation name -> (input action, output action, input element, output element), read as XML."""
    root = etree.parse(str(path)).getroot()
    messages = {}
    for message in root.iterfind(f"{{{WSDL}}}message"):
        part = message.find(f"{{{WSDL}}}part")
        prefix, _, local = part.get("element").rpartition(":")
        messages[message.get("name")] = f"{{{part.nsmap[prefix or None]}}}{local}"

    def action(node):
        return node.get(f"{{{WSAM}}}Action") or node.get(f"{{{WSAW}}}Action")

    found = {}
    for operation in root.iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation"):
        into = operation.find(f"{{{WSDL}}}input")
        out = operation.find(f"{{{WSDL}}}output")
        if into is None or out is None:
            continue
        found[operation.get("name")] = (
            action(into),
            action(out),
            messages[into.get("message").rpartition(":")[2]],
            messages[out.get("message").rpartition(":")[2]],
        )
    return found


def test_every_wsdl_in_schemas_is_expected():
    assert sorted(p.name for p in OURS.glob("*.wsdl")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_wsdl_loads_in_zeep_from_the_file_with_every_operation(name):
    client = zeep.Client(str(OURS / name))
    (service,) = client.wsdl.services.values()
    (port,) = service.ports.values()
    operations = port.binding._operations
    assert sorted(operations) == sorted(EXPECTED[name])
    for op_name, (in_action, _, in_element, out_element) in EXPECTED[name].items():
        operation = operations[op_name]
        assert operation.abstract.wsa_action == in_action
        assert operation.soapaction == in_action
        assert operation.input.body.qname.text == in_element
        assert operation.output.body.qname.text == out_element
        # the body types are resolved schema types, not placeholders
        assert operation.input.body.type.elements or operation.input.body.type.attributes


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_input_and_output_carries_its_wsam_action(name):
    assert operations_in(OURS / name) == EXPECTED[name]
    root = etree.parse(str(OURS / name)).getroot()
    for message in root.iterfind(f"{{{WSDL}}}portType/{{{WSDL}}}operation/*"):
        if message.tag in (f"{{{WSDL}}}input", f"{{{WSDL}}}output"):
            assert message.get(f"{{{WSAM}}}Action")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_binding_is_soap12_document_literal_with_one_address(name):
    root = etree.parse(str(OURS / name)).getroot()
    (binding,) = root.iterfind(f"{{{WSDL}}}binding")
    soap_binding = binding.find(f"{{{SOAP12_BINDING}}}binding")
    assert soap_binding.get("style") == "document"
    assert soap_binding.get("transport") == "http://schemas.xmlsoap.org/soap/http"
    for operation in binding.iterfind(f"{{{WSDL}}}operation"):
        bodies = operation.findall(f"*/{{{SOAP12_BINDING}}}body")
        assert [b.get("use") for b in bodies] == ["literal", "literal"]
    assert not list(root.iter(f"{{{SOAP11_BINDING}}}*"))
    assert len(list(root.iter(f"{{{SOAP12_BINDING}}}address"))) == 1


def official_transactions() -> dict[str, set[tuple[str | None, str, str]]]:
    """input action -> {(output action, input element, output element)} over all official WSDLs."""
    table: dict[str, set[tuple[str | None, str, str]]] = {}
    for path in OFFICIAL_WSDLS:
        for in_action, out_action, in_element, out_element in operations_in(path).values():
            table.setdefault(in_action, set()).add((out_action, in_element, out_element))
    return table


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_actions_and_bodies_are_those_of_the_official_wsdls(name):
    official = official_transactions()
    for in_action, out_action, in_element, out_element in EXPECTED[name].values():
        assert in_action in official, f"no official WSDL declares {in_action}"
        assert official[in_action] == {(out_action, in_element, out_element)}
