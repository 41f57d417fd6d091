"""ITI-18 with a local id, and the merge and change-of-id scenarios end to end: feed, register
under the old id, merge (or change), query (ITI TF-2a 3.18.4.1.2.3.7; 3.8.4.2)."""

from __future__ import annotations

import pytest

from tests.identity.conftest import (
    HN_OID,
    HOSPB_OID,
    Env,
    ack_code,
    adt,
    hn,
    local,
    pid_hn,
    pid_local,
)
from tests.registry.builders import document_entry, submission
from tests.registry.stored_query_data import ask, q1, qs
from xds.metadata import model as m


def submit(env: Env, patient: str) -> m.DocumentEntry:
    """A document under ``patient``; under a local id, sourcePatientId left for the registry."""
    doc = document_entry(patient=patient, **({} if HN_OID in patient else {"source_patient_id": None}))
    errors = env.registry.register(submission(doc, patient=patient))
    assert not [e for e in errors if e.is_error], errors
    return doc


def uuids(env: Env, *docs: m.DocumentEntry) -> set[str]:
    return {env.registry.store.document_entries_by_unique_id(d.unique_id)[0].entry_uuid for d in docs}


@pytest.fixture
def two_hospitals(env: Env) -> Env:
    """One person (HN 1111111111) known as MRN1 at hospital A and as XYZ at hospital B."""
    assert ack_code(env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}"))) == "AA"
    assert ack_code(env.send(adt("A01", f"{pid_hn('1111111111')}~XYZ", facility="HOSPB"))) == "AA"
    return env


def test_find_documents_by_a_local_id_returns_the_longitudinal_record(two_hospitals):
    env = two_hospitals
    a, b = submit(env, local("MRN1")), submit(env, local("XYZ", HOSPB_OID))
    everything = uuids(env, a, b)
    assert env.find(local("MRN1")).documents == everything
    assert env.find(local("XYZ", HOSPB_OID)).documents == everything
    assert env.find(hn("1111111111")).documents == everything


def test_get_all_and_find_submission_sets_by_a_local_id(two_hospitals):
    env = two_hospitals
    submit(env, local("MRN1"))
    submit(env, local("XYZ", HOSPB_OID))
    settings = env.registry.settings
    approved = qs(m.STATUS_APPROVED)
    sets = ask(env.registry.engine, "FindSubmissionSets",
               [("$XDSSubmissionSetPatientId", q1(local("XYZ", HOSPB_OID))), ("$XDSSubmissionSetStatus", approved)],
               config=settings)
    assert len(sets.packages) == 2
    everything = ask(env.registry.engine, "GetAll",
                     [("$patientId", q1(local("MRN1"))), ("$XDSDocumentEntryStatus", approved),
                      ("$XDSSubmissionSetStatus", approved), ("$XDSFolderStatus", approved)], config=settings)
    assert (everything.status, len(everything.documents), len(everything.packages)) == ("Success", 2, 2)


def test_the_same_patient_id_at_another_hospital_finds_nothing_of_this_person(two_hospitals):
    env = two_hospitals
    submit(env, local("MRN1"))
    answer = env.find(local("MRN1", HOSPB_OID))
    assert (answer.status, answer.documents) == ("Success", set())


def test_merge_end_to_end_feed_register_under_the_old_id_merge_query(env):
    env.send(adt("A01", pid_hn("1111111111")))
    env.send(adt("A01", pid_hn("2222222222")))
    old = submit(env, hn("1111111111"))
    assert ack_code(env.send(adt("A40", pid_hn("2222222222"), mrg=pid_hn("1111111111")))) == "AA"
    assert env.find(hn("2222222222")).documents == uuids(env, old)
    assert env.find(hn("1111111111"), merged_patient_policy="surviving").documents == uuids(env, old)
    refused = env.find(hn("1111111111"), merged_patient_policy="unknown")
    assert (refused.status, refused.error_codes) == ("Failure", ["XDSUnknownPatientId"])
    errors = env.registry.register(submission(document_entry(patient=hn("1111111111")), patient=hn("1111111111")))
    assert [e.code for e in errors] == ["XDSUnknownPatientId"]


def test_local_merge_end_to_end(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('OLD')}"))
    env.send(adt("A01", f"{pid_hn('2222222222')}~{pid_local('NEW')}"))
    old = submit(env, local("OLD"))
    assert ack_code(env.send(adt("A40", pid_local("NEW"), mrg=pid_local("OLD")))) == "AA"
    assert env.find(local("NEW")).documents == uuids(env, old)
    assert env.find(hn("2222222222")).documents == uuids(env, old)
    assert env.find(hn("1111111111")).documents == set()
    assert env.find(local("OLD"), merged_patient_policy="surviving").documents == uuids(env, old)
    assert env.find(local("OLD"), merged_patient_policy="unknown").error_codes == ["XDSUnknownPatientId"]


def test_change_of_id_end_to_end(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('TEMP-7')}"))
    before = submit(env, local("TEMP-7"))
    assert ack_code(env.send(adt("A47", pid_local("MRN-7"), mrg=pid_local("TEMP-7")))) == "AA"
    after = submit(env, local("MRN-7"))
    assert env.find(local("MRN-7")).documents == uuids(env, before, after)
    assert env.find(local("TEMP-7"), merged_patient_policy="surviving").documents == uuids(env, before, after)
    assert env.find(local("TEMP-7"), merged_patient_policy="unknown").error_codes == ["XDSUnknownPatientId"]
