"""zeep clients built from the official IHE WSDLs, and what they put on the wire compared with a
zeep client built from ours: the same body, valid under both schema sets."""

from __future__ import annotations

import pytest
import zeep
from lxml import etree

from tests.interop import clients
from tests.schemas.schema_sets import DCM4CHEE_WSDL, IPF_WSDL, OFFICIAL_WSDL, OURS, official, ours

# rahulsom's XDS.b_DocumentRegistry.wsdl includes HL7v3 schemas that are not in the corpus; IPF's
# per-transaction WSDLs cover the registry's ITI-18 and ITI-42 instead.
OFFICIAL_LOADABLE = [
    p for p in sorted(OFFICIAL_WSDL.glob("*.wsdl")) if p.name != "XDS.b_DocumentRegistry.wsdl"
] + [
    IPF_WSDL / "iti18.wsdl",
    IPF_WSDL / "iti42.wsdl",
]


@pytest.mark.parametrize("path", OFFICIAL_LOADABLE, ids=lambda p: p.name)
def test_zeep_builds_a_client_from_the_official_wsdl(path):
    client = clients.build_client(path)
    operations = [op for binding in client.wsdl.bindings.values() for op in binding._operations.values()]
    assert operations
    assert all(op.abstract.wsa_action.startswith("urn:ihe:") for op in operations)


PATIENT = "7c5a8f2e1b^^^&1.2.840.113619.6.197&ISO"
DOCUMENTS = [
    {"HomeCommunityId": "urn:oid:1.3.6.1.4.1.21367.13.70.101", "RepositoryUniqueId": "1.3.6.1.4.1.21367.13.71.101",
     "DocumentUniqueId": "1.2.3.4.5.6"},
    {"RepositoryUniqueId": "1.3.6.1.4.1.21367.13.71.101", "DocumentUniqueId": "1.2.3.4.5.7"},
]  # fmt: skip
IMAGING = {
    "StudyRequest": [
        {
            "studyInstanceUID": "1.3.6.1.4.1.21367.201599.1.201606021454002",
            "SeriesRequest": [
                {
                    "seriesInstanceUID": "1.3.6.1.4.1.21367.201599.2.201606021454003",
                    "DocumentRequest": DOCUMENTS,
                }
            ],
        }
    ],
    "TransferSyntaxUIDList": {"TransferSyntaxUID": ["1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.70"]},
}


def stored_query(client: zeep.Client) -> dict:
    return clients.adhoc_query_request(client, clients.FIND_DOCUMENTS, clients.find_documents_slots(PATIENT))


# (action, official WSDL, our WSDL, request arguments)
REQUESTS = [
    (clients.ITI18, IPF_WSDL / "iti18.wsdl", "XDS.b_DocumentRegistry.wsdl", stored_query),
    (
        clients.ITI18,
        OFFICIAL_WSDL / "XCAInitiatingGatewayQuery.wsdl",
        "XCAInitiatingGateway.wsdl",
        stored_query,
    ),
    (
        clients.ITI38,
        OFFICIAL_WSDL / "XCARespondingGatewayQuery.wsdl",
        "XCARespondingGateway.wsdl",
        stored_query,
    ),
    (
        "urn:ihe:iti:2007:RetrieveDocumentSet",
        OFFICIAL_WSDL / "XDS.b_DocumentRepository.wsdl",
        "XDS.b_DocumentRepository.wsdl",
        lambda client: {"DocumentRequest": DOCUMENTS},
    ),
    (
        "urn:ihe:iti:2007:CrossGatewayRetrieve",
        OFFICIAL_WSDL / "XCARespondingGatewayRetrieve.wsdl",
        "XCARespondingGateway.wsdl",
        lambda client: {"DocumentRequest": DOCUMENTS},
    ),
    (
        "urn:ihe:rad:2009:RetrieveImagingDocumentSet",
        OFFICIAL_WSDL / "XDS-I.b_ImagingDocumentSource.wsdl",
        "XDS-I.b_ImagingDocumentSource.wsdl",
        lambda client: IMAGING,
    ),
    (
        "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet",
        DCM4CHEE_WSDL / "XCAIRespondingGateway.wsdl",
        "XCARespondingGateway.wsdl",
        lambda client: IMAGING,
    ),
]


def body_sent(wsdl, action: str, arguments) -> tuple[etree._Element, str | None]:
    client = clients.build_client(wsdl)
    service, name = clients.service_for(client, action, address="http://localhost/unused")
    envelope = client.create_message(service, name, **arguments(client))
    header_action = envelope.findtext(f"{{{clients.SOAP12}}}Header/{{{clients.WSA}}}Action")
    return envelope.find(f"{{{clients.SOAP12}}}Body")[0], header_action


@pytest.mark.parametrize(
    "action, official_wsdl, our_wsdl, arguments", REQUESTS, ids=[f"{r[0]}-{r[1].name}" for r in REQUESTS]
)
def test_zeep_sends_the_same_body_from_the_official_wsdl_and_ours(action, official_wsdl, our_wsdl, arguments):
    theirs, their_action = body_sent(official_wsdl, action, arguments)
    mine, my_action = body_sent(OURS / our_wsdl, action, arguments)
    assert their_action == my_action == action
    assert etree.tostring(theirs, method="c14n") == etree.tostring(mine, method="c14n")
    for body in (theirs, mine):
        tree = etree.ElementTree(etree.fromstring(etree.tostring(body)))
        assert ours().validate(tree), ours().error_log
        assert official().validate(tree), official().error_log


def test_iti18_message_helper_builds_a_find_documents_query():
    envelope = clients.iti18_message(clients.build_client(OURS / "XDS.b_DocumentRegistry.wsdl"), PATIENT)
    query = envelope.find(f".//{{{clients.RIM}}}AdhocQuery")
    assert query.get("id") == clients.FIND_DOCUMENTS
    slots = {s.get("name"): [v.text for v in s.iter(f"{{{clients.RIM}}}Value")] for s in query}
    assert slots == {
        "$XDSDocumentEntryPatientId": [f"'{PATIENT}'"],
        "$XDSDocumentEntryStatus": ["('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')"],
    }
    assert envelope.find(f".//{{{clients.WSA}}}MessageID") is not None
