"""ATNA audit trail of a live node (ITI-20): one audit message per transaction with the event codes of
the IHE audit message definitions, kept in the local store, answering who accessed a patient's
exams, and delivered as RFC 5424 syslog over TLS to an audit repository (test_audit_delivery: when it was down)."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from tests.security import flows
from xds.audit.message import validate
from xds.audit.syslog import BOM


@pytest.fixture(scope="module")
def audited(secure_node, dev_pki):
    """One of each transaction against the session's node (mutual TLS, audited to a repository)."""
    node = secure_node
    hn = flows.new_hn()
    patient = flows.cx(hn)
    with node.client(timeout=30) as client:
        control_id = flows.feed_patient(node.mllp_port, hn, dev_pki.client_context())
        document, submission_set = flows.provide(client, node.base_url, patient)
        registered_set = flows.register(client, node.base_url, patient)
        found = flows.find_documents(client, node.base_url, patient)
        assert b"ResponseStatusType:Success" in found.content
        got = flows.get_documents(client, node.base_url, document)
        assert b"ResponseStatusType:Success" in got.content and document.encode() in got.content
        assert flows.retrieve(client, node.base_url, document).short_status == "Success"
        missing = flows.retrieve(client, node.base_url, "2.25.404")
        assert missing.short_status == "Failure"
    return node, {"hn": hn, "patient": patient, "control_id": control_id, "document": document,
                  "submission_set": submission_set, "registered_set": registered_set}


def one(audited_, transaction: str) -> list[etree._Element]:
    """This module's audit messages of ``transaction`` (the session's node serves other tests too)."""
    node, t = audited_
    mine = {t["patient"], t["document"], "2.25.404", t["registered_set"], t["submission_set"]}
    return [m for m in flows.audit_messages(node.data_dir, transaction)
            if mine & {v for ids in flows.objects(m).values() for v in ids}]


def test_every_audit_message_validates_against_the_dicom_schema(audited):
    node, _ = audited
    messages = flows.audit_messages(node.data_dir)
    assert len(messages) >= 8  # start, ITI-8, ITI-41, ITI-42, ITI-18 twice, ITI-43 twice
    for m in messages:
        assert validate(m) == [], etree.tostring(m)[:500]


def test_iti8_patient_identity_feed(audited):
    node, t = audited
    [m] = one(audited, "ITI-8")
    assert flows.event_codes(m) == ("110110", "ITI-8", "C", "0")
    patient = m.find("ParticipantObjectIdentification")
    assert patient.get("ParticipantObjectID") == t["patient"]
    detail = patient.find("ParticipantObjectDetail")
    assert detail.get("type") == "MSH-10"
    source = m.find("ActiveParticipant")
    assert source.get("UserID") == "RIS|HOSP" and source.get("NetworkAccessPointID") == "127.0.0.1"


def test_iti41_provide_and_register(audited):
    node, t = audited
    [m] = one(audited, "ITI-41")
    assert flows.event_codes(m) == ("110107", "ITI-41", "C", "0")
    assert flows.objects(m) == {"2": [t["patient"]], "urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd": [t["submission_set"]]}
    source, destination = m.findall("ActiveParticipant")
    assert (source.get("UserIsRequestor"), source.find("RoleIDCode").get("csd-code")) == ("true", "110153")
    assert destination.get("UserID") == node.url("/xds/repository")


def test_iti42_register(audited):
    node, t = audited
    [m] = one(audited, "ITI-42")  # the repository's in-process registration is no ITI-42 on the wire
    assert flows.event_codes(m) == ("110107", "ITI-42", "C", "0")
    assert flows.objects(m)["urn:uuid:a54d6aa5-d40d-43f9-88c5-b4633d873bdd"] == [t["registered_set"]]


def test_iti18_registry_stored_query(audited):
    node, t = audited
    [m] = [m for m in one(audited, "ITI-18") if flows.FIND_DOCUMENTS in flows.objects(m)["ITI-18"]]
    assert flows.event_codes(m) == ("110112", "ITI-18", "E", "0")
    patient, query = m.findall("ParticipantObjectIdentification")
    assert patient.get("ParticipantObjectID") == t["patient"]
    assert (query.get("ParticipantObjectTypeCodeRole"), query.get("ParticipantObjectID")) == ("24", flows.FIND_DOCUMENTS)
    asked = etree.fromstring(base64.b64decode(query.findtext("ParticipantObjectQuery")))
    assert asked.tag.endswith("AdhocQueryRequest") and t["patient"] in "".join(asked.itertext())


def test_iti18_get_documents_names_the_patient_whose_documents_it_disclosed(audited):
    node, t = audited
    [m] = [m for m in one(audited, "ITI-18") if flows.GET_DOCUMENTS in flows.objects(m)["ITI-18"]]
    assert flows.event_codes(m) == ("110112", "ITI-18", "E", "0")
    assert flows.objects(m)["2"] == [t["patient"]]


def test_iti43_retrieve_success_and_failure(audited):
    node, t = audited
    success, failure = one(audited, "ITI-43")
    assert flows.event_codes(success) == ("110106", "ITI-43", "R", "0")
    assert flows.event_codes(failure) == ("110106", "ITI-43", "R", "8")
    assert flows.objects(success) == {"9": [t["document"]]}
    source, destination = success.findall("ActiveParticipant")
    assert source.get("UserIsRequestor") == "false" and destination.get("UserIsRequestor") == "true"
    assert "XDSDocumentUniqueIdError" in failure.findtext("EventIdentification/EventOutcomeDescription")


def test_application_start_is_audited(audited):
    node, _ = audited
    starts = [m for m in flows.audit_messages(node.data_dir) if flows.event_codes(m)[:2] == ("110100", "110120")]
    assert len(starts) == 1
    assert starts[0].find("ActiveParticipant/RoleIDCode").get("csd-code") == "110150"


def test_who_accessed_this_patients_exams(audited):
    node, t = audited
    with flows.audit_store(node.data_dir) as store:
        accesses = store.accesses(patient=t["hn"])
    assert [a.transaction for a in accesses] == ["ITI-8", "ITI-41", "ITI-42", "ITI-18", "ITI-18", "ITI-43"]
    assert all(a.address == "127.0.0.1" for a in accesses)
    assert accesses[-1].system.startswith("CN=client")  # the TLS client certificate's subject


def test_cli_audit_query(audited):
    import subprocess
    import sys

    from tests.live import ROOT

    node, t = audited
    r = subprocess.run([sys.executable, "-m", "xds.cli", "audit", "query", "--database",
                        str(node.data_dir / "audit.sqlite"), "--patient", t["patient"]],
                       cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 1 + 6 and "ITI-43" in lines[-1] and "127.0.0.1" in lines[-1]


def test_messages_reach_the_audit_repository_as_rfc5424_over_tls(audited, audit_repository):
    node, t = audited
    stored = len(flows.audit_messages(node.data_dir))
    received = audit_repository.wait_for(stored)
    assert len(received) >= stored and "node" in audit_repository.peers
    header, _, payload = received[0].partition(b" - ")
    assert header.startswith(b"<85>1 ") and header.endswith(b" IHE+RFC-3881")
    assert payload.startswith(BOM)
    xml = etree.fromstring(payload[len(BOM):])
    assert xml.tag == "AuditMessage" and validate(xml) == []
    assert flows.wait_until(lambda: flows.audit_store_queued(node.data_dir) == 0)
