"""Mapping at ingest: ITI-41/42 submissions under a local couplet are registered under its HN
(sourcePatientId kept), held until an ADT links an HN (or refused, as configured), released
exactly once; HN corrections and local merges move what came in through the couplet."""

from __future__ import annotations

import threading

from lxml import etree

from tests.identity.conftest import (
    HN_OID,
    HOSPA_OID,
    HOSPB_OID,
    Env,
    ack_code,
    adt,
    hn,
    identity_config,
    local,
    make_env,
    pid_hn,
    pid_local,
)
from tests.registry.builders import document_entry, submission
from xds.identity.domain import Couplet, Issuer
from xds.identity.mapping import XDS_SUBMISSION
from xds.identity.schema import FAILED, HELD, RELEASED
from xds.namespaces import RIM
from xds.registry.store import DOCUMENT_ENTRY, SUBMISSION_SET

PATIENT_ID_SCHEME = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"  # XDSDocumentEntry.patientId


def codes(errors) -> list[str]:
    return [e.code for e in errors]


def submit(env: Env, patient: str, **de: object):
    doc = document_entry(patient=patient, **{"source_patient_id": None, **de})
    return doc, env.registry.register(submission(doc, patient=patient))


def registered(env: Env, unique_id: str):
    rows = env.registry.store.document_entries_by_unique_id(unique_id)
    assert len(rows) == 1, rows
    return rows[0]


def fragment_patient(row) -> str:
    root = etree.fromstring(row.fragment)
    [ei] = [e for e in root.iter(f"{{{RIM}}}ExternalIdentifier") if e.get("identificationScheme") == PATIENT_ID_SCHEME]
    return ei.get("value")


def source_patient_id(row) -> str:
    root = etree.fromstring(row.fragment)
    [slot] = [s for s in root.iter(f"{{{RIM}}}Slot") if s.get("name") == "sourcePatientId"]
    return slot.findtext(f"{{{RIM}}}ValueList/{{{RIM}}}Value")


def test_resolve_takes_a_cx_a_dicom_pair_or_a_couplet(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}"))
    mapping = env.identity.mapping
    assert mapping.resolve(local("MRN1")) == hn("1111111111")
    assert mapping.resolve(("MRN1", "HOSPA")) == hn("1111111111")  # DICOM 0010,0020 + 0010,0021
    assert mapping.resolve(("MRN1", HOSPA_OID)) == hn("1111111111")  # issuer as a Universal Entity ID
    assert mapping.resolve(Couplet("MRN1", Issuer(HOSPA_OID, "HOSPA", HOSPA_OID))) == hn("1111111111")
    assert mapping.resolve(hn("1111111111")) == hn("1111111111")
    assert mapping.resolve(("MRN1", "HOSPB")) is None  # the same id at another hospital: nobody
    assert mapping.resolve(hn("5555555555")) is None  # never fed


def test_submission_under_a_local_id_is_registered_under_the_hn_with_source_patient_id_kept(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}"))
    doc, errors = submit(env, local("MRN1"))
    assert errors == []
    row = registered(env, doc.unique_id)
    assert row.patient_id == hn("1111111111") == fragment_patient(row)
    assert source_patient_id(row) == local("MRN1")
    assert env.registry.store.count(SUBMISSION_SET) == 1
    # a sourcePatientId the source sent is its own: kept as sent
    doc2, errors = submit(env, local("MRN1"), source_patient_id=local("MRN1-OLDSYSTEM"))
    assert errors == [] and source_patient_id(registered(env, doc2.unique_id)) == local("MRN1-OLDSYSTEM")


def test_a_local_id_with_no_hn_is_held_then_registered_when_the_adt_links_one(env):
    doc, errors = submit(env, local("MRN2"))
    assert codes(errors) == ["DocumentQueued"] and not errors[0].is_error
    assert env.registry.store.document_entries_by_unique_id(doc.unique_id) == []
    [held] = env.identity.mapping.held()
    assert (held.kind, held.patient_id, held.issuer) == (XDS_SUBMISSION, "MRN2", HOSPA_OID)
    assert env.identity.mapping.held_document_unique_ids() == {doc.unique_id}
    assert ack_code(env.send(adt("A08", f"{pid_local('MRN2')}~{pid_hn('2222222222')}"))) == "AA"
    row = registered(env, doc.unique_id)
    assert (row.patient_id, source_patient_id(row)) == (hn("2222222222"), local("MRN2"))
    assert env.identity.mapping.held(status=RELEASED)[0].id == held.id
    assert env.identity.mapping.held() == [] and env.identity.mapping.held_document_unique_ids() == set()


def test_an_adt_without_an_hn_keeps_the_submission_held(env):
    submit(env, local("MRN3"))
    assert ack_code(env.send(adt("A04", pid_local("MRN3")))) == "AA"
    assert len(env.identity.mapping.held()) == 1


def test_reject_policy_refuses_a_local_id_with_no_hn_with_XDSUnknownPatientId(store):
    env = make_env(store, identity_config(unknown_local_id="reject"))
    doc, errors = submit(env, local("MRN4"))
    assert codes(errors) == ["XDSUnknownPatientId"]
    assert env.identity.mapping.held() == []


def test_a_local_id_of_an_issuer_no_feed_sends_is_refused_not_held(env):
    _, errors = submit(env, local("X", "1.2.3.999"))
    assert codes(errors) == ["XDSUnknownPatientId"]
    assert env.identity.mapping.held() == []


def test_a_held_submission_that_is_wrong_anyway_is_refused_at_once(env):
    _, errors = submit(env, local("MRN5"), mime_type="")
    assert "XDSRegistryMetadataError" in codes(errors)
    assert env.identity.mapping.held() == []


def test_a_merged_away_local_id_is_refused_for_new_submissions(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('OLD')}"))
    env.send(adt("A40", f"{pid_hn('1111111111')}~{pid_local('NEW')}", mrg=pid_local("OLD")))
    _, errors = submit(env, local("OLD"))
    assert codes(errors) == ["XDSUnknownPatientId"]


def test_a_held_submission_follows_a_merge_that_happens_while_it_waits(env):
    doc, _ = submit(env, local("TMP"))
    env.send(adt("A40", f"{pid_hn('1111111111')}~{pid_local('NEW')}", mrg=pid_local("TMP")))
    assert registered(env, doc.unique_id).patient_id == hn("1111111111")


def test_a_held_submission_is_registered_once_however_often_it_is_released(env):
    doc, _ = submit(env, local("MRN6"))
    with env.store.transaction() as tx:  # the ADT recorded, the release not yet run
        tx.registry.record_patient(hn("6666666666"), {}, "test", "1")
        tx.add_couplet(Couplet("MRN6", Issuer(HOSPA_OID, "HOSPA", HOSPA_OID)), hn("6666666666"), {}, "t", "1")
    reports = []
    threads = [threading.Thread(target=lambda: reports.append(env.identity.mapping.release())) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(len(r.released) for r in reports) == 1
    assert sum(len(r.failed) for r in reports) == 0
    assert registered(env, doc.unique_id).patient_id == hn("6666666666")


def test_a_held_submission_refused_at_release_is_kept_failed_with_the_reason(env):
    doc, _ = submit(env, local("MRN7"))
    clash = document_entry(patient=hn("7777777777"), unique_id=doc.unique_id, hash="0" * 40, symbol="Other")
    env.registry.store.record_patient(hn("7777777777"), {}, "test", "1")
    assert env.registry.register(submission(clash, patient=hn("7777777777"))) == []
    env.send(adt("A08", f"{pid_local('MRN7')}~{pid_hn('7777777777')}"))
    [failed] = env.identity.mapping.held(status=FAILED)
    assert "XDSNonIdenticalHash" in failed.result and failed.payload  # nothing lost


def test_a_corrected_hn_moves_what_came_in_under_the_local_id(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}"))
    mine, _ = submit(env, local("MRN1"))
    env.registry.store.record_patient(hn("1111111111"), {}, "test", "1")
    others, errors = submit(env, hn("1111111111"), source_patient_id=local("B9", HOSPB_OID))
    assert errors == []
    assert ack_code(env.send(adt("A08", f"{pid_hn('9999999999')}~{pid_local('MRN1')}"))) == "AA"
    row = registered(env, mine.unique_id)
    assert row.patient_id == hn("9999999999") == fragment_patient(row)
    assert source_patient_id(row) == local("MRN1")
    assert registered(env, others.unique_id).patient_id == hn("1111111111")  # another source's: stays
    assert env.find(hn("9999999999")).documents == {row.entry_uuid}


def test_a_document_sent_under_the_hn_with_a_known_local_source_id_follows_its_corrections(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}"))
    doc, errors = submit(env, hn("1111111111"), source_patient_id=local("MRN1"))
    assert errors == []
    env.send(adt("A08", f"{pid_hn('9999999999')}~{pid_local('MRN1')}"))
    assert registered(env, doc.unique_id).patient_id == hn("9999999999")


def test_a_local_merge_moves_the_retired_ids_documents_to_the_surviving_hn(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('OLD')}"))
    env.send(adt("A01", f"{pid_hn('2222222222')}~{pid_local('NEW')}"))
    doc, _ = submit(env, local("OLD"))
    assert ack_code(env.send(adt("A40", pid_local("NEW"), mrg=pid_local("OLD")))) == "AA"
    assert registered(env, doc.unique_id).patient_id == hn("2222222222")
    kinds = {e.event for e in env.store.history(hn=hn("2222222222"))}
    assert "merged" in kinds


def test_other_held_kinds_are_released_through_their_handler(env):
    """What the imaging source does for a DICOM study with a local Patient ID + Issuer."""
    mapping = env.identity.mapping
    got = []
    mapping.on_release("dicom-study", lambda item, hn_: got.append((item.payload, hn_)))
    couplet = mapping.couplet("MRN8", "HOSPA")
    mapping.hold("dicom-study", couplet, b"1.2.840.99.8", "study 1.2.840.99.8")
    env.send(adt("A01", f"{pid_local('MRN8')}~{pid_hn('8888888888')}"))
    assert got == [(b"1.2.840.99.8", f"8888888888^^^&{HN_OID}&ISO")]
    assert mapping.held() == [] and mapping.held(status=HELD) == []


def test_registry_objects_under_a_couplet_are_linked_for_later_moves(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}"))
    submit(env, local("MRN1"))
    from sqlalchemy import select

    from xds.identity.schema import registered as links

    with env.registry.engine.connect() as conn:
        kinds = sorted(k for (k,) in conn.execute(select(links.c.kind)))
    assert kinds == sorted([DOCUMENT_ENTRY, SUBMISSION_SET])


def test_repository_reconciliation_keeps_the_document_of_a_held_submission(env):
    from xds.repository.registry_client import LocalRegistry

    doc = document_entry(patient=local("MRN7"), source_patient_id=None)
    doc.repository_unique_id, doc.hash = "1.2.3.4", "da39a3ee5e6b4b0d3255bfef95601890afd80709"
    errors = env.registry.register(submission(doc, patient=local("MRN7")))
    assert codes(errors) == ["DocumentQueued"]
    found = LocalRegistry(env.registry).lookup([doc.unique_id, "1.2.3.999"])
    assert [(e.repository_unique_id, e.hash) for e in found[doc.unique_id]] == [("1.2.3.4", doc.hash)]
    assert "1.2.3.999" not in found
