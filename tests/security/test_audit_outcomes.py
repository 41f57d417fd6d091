"""EventOutcomeIndicator (DICOM PS3.15 A.5.1) of every audited transaction says what the transaction
came to: 0 done, 4 partly done, 8 refused (the request was wrong), 12 the service failed. ITI-8 ACKs
and SOAP responses here; C-STORE transfers in test_dicom, XUA refusals in test_xua."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from lxml import etree
from starlette.requests import Request

from tests.hl7.conftest import ONTARIO_HN, MemorySink, ack_code, error_code, run
from tests.repository import messages as rm
from xds.audit import events
from xds.audit.message import AuditMessage, validate
from xds.config import NodeConfig
from xds.hl7.patient_feed import PatientIdentityFeed
from xds.metadata import ebrim
from xds.namespaces import RS
from xds.security.guard import EndpointGuard, NodeSecurity, response_outcome
from xds.soap import envelope as soap_envelope
from xds.soap.fault import SoapFault
from xds.soap.message import Addressing, SoapRequest, SoapResponse

HN = f"9876543210^^^&{ONTARIO_HN}&ISO"


@dataclass
class Trail:
    """What the node's AuditTrail is to the code that records: a source and ``record``."""

    source: events.Source = field(default_factory=lambda: events.Source("test-node"))
    messages: list[AuditMessage] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)

    def record(self, message: AuditMessage, links=()) -> int:
        self.messages.append(message)
        self.links += list(links)
        return len(self.messages)

    submit = record

    async def record_async(self, message: AuditMessage, links=()) -> int:
        return self.record(message, links)


def adt(event: str, pid: str) -> bytes:
    return (f"MSH|^~\\&|HIS|HOSP|XDSREG|DIR|20240101120000||ADT^{event}^ADT_A01|CTRL{event}|P|2.5\r"
            f"EVN|{event}|20240101120000\rPID|1||{pid}||DOE^JANE||19700101|F\rPV1|1|O\r").encode()


class BrokenSink(MemorySink):
    def record_patient(self, *args, **kwargs) -> None:
        raise OSError("database unavailable")


@pytest.mark.parametrize(("message", "sink", "ack", "indicator"), [
    (adt("A01", HN), MemorySink(), "AA", 0),
    (adt("A01", "12345"), MemorySink(), "AE", 8),  # no HN: refused, nothing recorded
    (adt("A31", HN), MemorySink(), "AR", 8),  # an event the feed does not take
    (adt("A01", HN), BrokenSink(), "AR", 12),  # the registry could not record it (207)
], ids=["accepted", "AE-refused", "AR-unsupported", "AR-internal-error"])
def test_iti8_outcome_follows_the_ack(message, sink, ack, indicator):
    trail = Trail()
    feed = PatientIdentityFeed(ONTARIO_HN, sink, "XDSREG", "DIR", audit=trail)
    reply = run(feed.handle(message))
    assert ack_code(reply) == ack
    [m] = trail.messages
    assert m.outcome == indicator and validate(m.to_xml()) == []
    if indicator:
        assert error_code(reply) in m.outcome_description and "DOE" not in m.outcome_description


def test_iti8_messages_refused_unread_are_audited_as_refused():
    """A message whose MSH is readable but whose rest is not (two MSH segments), and one too large
    to read: AR, and one Patient Record record each, outcome 8, no patient."""
    trail = Trail()
    feed = PatientIdentityFeed(ONTARIO_HN, MemorySink(), "XDSREG", "DIR", audit=trail)
    batch = adt("A01", HN) + adt("A04", HN)
    assert ack_code(run(feed.handle(batch))) == "AR"
    assert ack_code(feed.reject_oversize(adt("A08", HN)[:80], 64)) == "AR"
    assert [(m.outcome, m.action) for m in trail.messages] == [(8, "C"), (8, "U")]
    for m in trail.messages:
        assert validate(m.to_xml()) == [] and m.objects == []
    assert "larger than 64 bytes" in trail.messages[1].outcome_description


def registry_response(status: str, *errors: tuple[str, str]) -> SoapResponse:
    rr = etree.Element(f"{{{RS}}}RegistryResponse", status=f"urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:{status}")
    if errors:
        el = etree.SubElement(rr, f"{{{RS}}}RegistryErrorList")
        for code, severity in errors:
            etree.SubElement(el, f"{{{RS}}}RegistryError", errorCode=code, codeContext="...",
                             severity=f"urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:{severity}")
    return SoapResponse(rr, "urn:x")


@pytest.mark.parametrize(("response", "expected"), [
    (registry_response("Success"), (0, "")),
    (registry_response("Success", ("XDSExtraMetadataNotSaved", "Warning")), (0, "")),
    (registry_response("PartialSuccess", ("XDSDocumentUniqueIdError", "Error")), (4, "XDSDocumentUniqueIdError")),
    (registry_response("Failure", ("XDSRegistryMetadataError", "Error")), (8, "XDSRegistryMetadataError")),
    (registry_response("Failure", ("XDSRegistryBusy", "Error")), (12, "XDSRegistryBusy")),
    (registry_response("Failure", ("XDSRepositoryOutOfResources", "Error")), (12, "XDSRepositoryOutOfResources")),
    (registry_response("Failure", ("XDSRegistryNotAvailable", "Error"), ("XDSUnknownPatientId", "Error")),
     (8, "XDSRegistryNotAvailable, XDSUnknownPatientId")),
], ids=["success", "warning", "partial", "refused", "busy", "out-of-resources", "refused-and-unavailable"])
def test_soap_outcome_follows_the_registry_response(response, expected):
    assert response_outcome(response) == expected


# --- an ITI-42 that failed ties nothing to the patient ---------------------------------------------


@pytest.fixture
def guard() -> tuple[EndpointGuard, Trail]:
    trail = Trail()
    security = NodeSecurity(NodeConfig(), trail, None)  # type: ignore[arg-type]
    return EndpointGuard(security, "registry", "/xds/registry"), trail


def iti42(patient: str) -> SoapRequest:
    entry = rm.document_entry(patient=patient)
    root = etree.fromstring(rm.envelope("urn:ihe:iti:2007:RegisterDocumentSet-b",
                                        ebrim.serialize_submit_objects_request(rm.submission(entry, patient=patient))))
    header, body = soap_envelope.split_envelope(root)
    return SoapRequest(root, header, body, Addressing(action="urn:ihe:iti:2007:RegisterDocumentSet-b"),
                       endpoint="/xds/registry")


def http_request() -> Request:
    return Request({"type": "http", "method": "POST", "path": "/xds/registry", "headers": [],
                    "client": ("10.0.0.9", 40000)})


@pytest.mark.parametrize(("result", "indicator", "linked"), [
    (registry_response("Success"), 0, True),
    (registry_response("Failure", ("XDSUnknownPatientId", "Error")), 8, False),
    (SoapFault("Receiver", "Internal error while processing the request (incident 1)"), 12, False),
], ids=["registered", "refused", "receiver-fault"])
def test_iti42_links_its_documents_to_the_patient_only_when_registered(guard, result, indicator, linked):
    endpoint_guard, trail = guard
    run(endpoint_guard.record(http_request(), iti42(HN), "urn:ihe:iti:2007:RegisterDocumentSet-b", result, None))
    [m] = trail.messages
    assert (m.transaction, m.outcome) == ("ITI-42", indicator)
    assert bool(trail.links) == linked
    if linked:
        assert {p for _, _, p in trail.links} == {HN}
