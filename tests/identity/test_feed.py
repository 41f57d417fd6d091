"""ITI-8 Patient Identity Feed into the identity store (ITI TF-2a 3.8; HL7 v2.5 3.3.40, 3.3.47):
couplets and HN links, merges, changes of identifier, HN corrections, resends, collisions."""

from __future__ import annotations

import pytest

from tests.hl7.conftest import corpus_file, error_code, needs_corpus
from tests.hl7.test_patient_feed import CORPUS_EXPECTATIONS, DCM4CHE, IPF_ITI8, IPF_PIX
from tests.identity.conftest import (
    HN_OID,
    HOSPA_OID,
    HOSPB_OID,
    ack_code,
    ack_fields,
    adt,
    hn,
    identity_config,
    make_env,
    pid_hn,
    pid_local,
)
from xds.config import IdentityConfig, IdentityFeedConfig
from xds.identity.schema import MERGED, REPLACED

ADT1 = IdentityFeedConfig(name="mesa", sending_facility="XYZ_RADIOLOGY", issuer="ADT1", issuer_oid="1.2.3.4.5.6")


# --- the ADT samples of the corpus -------------------------------------------------------------------


@needs_corpus
def test_corpus_samples_through_the_identity_store(store):
    """Every sample acknowledged as the feed without a store answers it (tests/hl7), and what is
    accepted is recorded: the HN a patient of the registry, the local ids couplets of it."""
    for sample, (authority, code, expected) in sorted(CORPUS_EXPECTATIONS.items()):
        env = make_env(store, IdentityConfig(), patient_assigning_authority=authority)
        ack = env.send(corpus_file(sample))
        assert ack_code(ack) == code, (sample, ack)
        if code != "AA":
            assert ack_fields(ack, "MSA")[3], "AE/AR carries a reason in MSA-3"
            assert error_code(ack) == expected, sample
            continue
        assert env.registry.store.patient(expected) is not None, sample
    row = env.store.couplet(("13278", "2.16.840.1.113883.3.37.4.1.1.2.411.1"))  # IPF A04, issuer HZLN
    assert (row.hn, row.issuer_namespace) == ("305090^^^&2.16.840.1.113883.3.37.4.1.1.2.1.1&ISO", "HZLN")


@needs_corpus
def test_ipf_merge_sample_merges_the_prior_hn_into_the_surviving_one(store):
    mpi = "2.16.840.1.113883.3.37.4.1.1.2.1.1"
    env = make_env(store, IdentityConfig(), patient_assigning_authority=mpi)
    assert ack_code(env.send(corpus_file(IPF_PIX + "A40.hl7"))) == "AA"
    prior = env.registry.store.patient(f"704686^^^&{mpi}&ISO")
    assert prior.merged_into == f"142025^^^&{mpi}&ISO"


@needs_corpus
def test_ipf_merge_with_local_ids_retires_the_prior_local_id_into_the_surviving_one(store):
    mpi = "2.16.840.1.113883.3.37.4.1.1.2.1.1"
    bbb = "2.16.840.1.113883.3.37.4.1.1.2.611.1"
    env = make_env(store, IdentityConfig(), patient_assigning_authority=mpi)
    assert ack_code(env.send(corpus_file(IPF_ITI8 + "iti8-a40.hl7"))) == "AA"
    prior, surviving = env.store.couplet(("7200117359", bbb)), env.store.couplet(("7200117317", bbb))
    assert (prior.status, prior.successor_id, prior.hn) == (MERGED, surviving.id, f"305014^^^&{mpi}&ISO")


@needs_corpus
@pytest.mark.parametrize("sample, status", [("ADT^A40-PatientMerge.hl7", MERGED),
                                            ("ADT^A47-ChangePatientID.hl7", REPLACED)])
def test_dcm4che_local_merge_and_change_of_id_from_a_listed_feed(store, sample, status):
    """From a configured feed, a message with local ids and no HN is accepted (AA)."""
    env = make_env(store, IdentityConfig(feeds=[ADT1]))
    ack = env.send(corpus_file(DCM4CHE + sample))
    assert ack_code(ack) == "AA", ack
    old, new = env.store.couplet(("OLD_PID_1", "1.2.3.4.5.6")), env.store.couplet(("NEW_PID_1", "1.2.3.4.5.6"))
    assert (old.status, old.successor_id, new.status, new.hn) == (status, new.id, "active", None)


# --- create and update ---------------------------------------------------------------------------------


def test_a01_links_the_local_id_to_the_hn_with_demographics_and_source(env):
    ack = env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}", name="TREMBLAY^MARIE"))
    assert ack_code(ack) == "AA"
    row = env.store.couplet(("MRN1", HOSPA_OID))
    assert (row.hn, row.issuer_namespace, row.source) == (hn("1111111111"), "HOSPA", "hospa-adt")
    assert row.demographics["name"] == "TREMBLAY^MARIE"
    assert env.registry.store.patient(hn("1111111111")).demographics["name"] == "TREMBLAY^MARIE"
    assert [e.event for e in env.store.history(couplet_id=row.id)] == ["A01", "hn-linked"]


def test_a_listed_feed_may_send_a_patient_with_no_hn_yet_and_link_one_later(env):
    assert ack_code(env.send(adt("A04", pid_local("NEWBORN7")))) == "AA"
    assert env.store.couplet(("NEWBORN7", HOSPA_OID)).hn is None
    assert ack_code(env.send(adt("A08", f"{pid_local('NEWBORN7')}~{pid_hn('3333333333')}"))) == "AA"
    assert env.store.couplet(("NEWBORN7", HOSPA_OID)).hn == hn("3333333333")


def test_a_bare_id_from_a_listed_feed_is_of_the_feed_issuer(env):
    assert ack_code(env.send(adt("A01", f"{pid_hn('1111111111')}~MRN9", facility="HOSPB",
                                 application="ANY"))) == "AA"
    assert env.store.couplet(("MRN9", HOSPB_OID)).hn == hn("1111111111")


def test_a_feed_does_not_link_ids_of_another_issuer(env):
    pid3 = f"{pid_hn('1111111111')}~{pid_local('MRN1')}~{pid_local('B77', 'HOSPB')}"
    assert ack_code(env.send(adt("A01", pid3))) == "AA"
    assert env.store.couplet(("B77", HOSPB_OID)) is None


def test_an_unlisted_sender_needs_an_hn_and_is_refused_when_configured(store):
    env = make_env(store)
    ack = env.send(adt("A01", pid_local("X1", "OTHER"), facility="ELSEWHERE"))
    assert (ack_code(ack), error_code(ack)) == ("AE", "101")
    assert ack_code(env.send(adt("A01", f"{pid_hn('1111111111')}~X1^^^OTHER", facility="ELSEWHERE"))) == "AA"
    assert env.store.couplet(("X1", "OTHER")).hn == hn("1111111111")
    strict = make_env(store, identity_config(unlisted_feeds="reject"))
    ack = strict.send(adt("A01", pid_hn("1111111111"), facility="ELSEWHERE"))
    assert (ack_code(ack), error_code(ack)) == ("AR", "103")
    assert "ELSEWHERE" in ack_fields(ack, "MSA")[3]


def test_the_same_message_resent_is_acknowledged_and_applied_once(env):
    raw = adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}", control_id="DUP-1")
    resent = raw.replace(b"20250101120000||ADT", b"20250101120500||ADT")  # a new MSH-7 only
    assert ack_code(env.send(raw)) == "AA"
    assert ack_code(env.send(resent)) == "AA"
    row = env.store.couplet(("MRN1", HOSPA_OID))
    assert [e.event for e in env.store.history(couplet_id=row.id)] == ["A01", "hn-linked"]
    # the same MSH-10 with other content is another message: applied
    assert ack_code(env.send(adt("A08", f"{pid_hn('1111111111')}~{pid_local('MRN1')}", name="X^Y",
                                 control_id="DUP-1"))) == "AA"
    assert env.store.couplet(("MRN1", HOSPA_OID)).demographics["name"] == "X^Y"


# --- collisions -------------------------------------------------------------------------------------------


def test_the_same_patient_id_from_two_issuers_never_merges_two_people(env):
    assert ack_code(env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('123')}", name="ALPHA^A"))) == "AA"
    assert ack_code(env.send(adt("A01", f"{pid_hn('2222222222')}~123", facility="HOSPB", name="BETA^B"))) == "AA"
    a, b = env.store.couplet(("123", HOSPA_OID)), env.store.couplet(("123", HOSPB_OID))
    assert (a.hn, b.hn) == (hn("1111111111"), hn("2222222222"))
    # HOSPA merges its 123 away: HOSPB's 123 is another person and stays as it is
    assert ack_code(env.send(adt("A40", f"{pid_hn('1111111111')}~{pid_local('456')}",
                                 mrg=pid_local("123")))) == "AA"
    assert env.store.couplet(("123", HOSPA_OID)).status == MERGED
    b_after = env.store.couplet(("123", HOSPB_OID))
    assert (b_after.status, b_after.hn, b_after.demographics["name"]) == ("active", hn("2222222222"), "BETA^B")


# --- merge, change of id, correction -------------------------------------------------------------------


def test_a40_on_the_hn_merges_it_and_relinks_its_local_ids(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('A1')}"))
    env.send(adt("A01", f"{pid_hn('2222222222')}~B1", facility="HOSPB"))
    ack = env.send(adt("A40", pid_hn("2222222222"), mrg=pid_hn("1111111111")))
    assert ack_code(ack) == "AA"
    assert env.registry.store.patient(hn("1111111111")).merged_into == hn("2222222222")
    assert env.store.couplet(("A1", HOSPA_OID)).hn == hn("2222222222")
    assert env.store.resolve(("A1", HOSPA_OID)) == hn("2222222222")


def test_a40_local_merge_into_a_couplet_of_another_hn_moves_the_person(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('OLD')}"))
    env.send(adt("A01", f"{pid_hn('2222222222')}~{pid_local('NEW')}"))
    assert ack_code(env.send(adt("A40", pid_local("NEW"), mrg=pid_local("OLD")))) == "AA"
    old = env.store.couplet(("OLD", HOSPA_OID))
    assert (old.status, old.hn) == (MERGED, hn("2222222222"))
    assert env.store.resolve(("OLD", HOSPA_OID)) == hn("2222222222")
    assert env.store.resolve(("OLD", HOSPA_OID), follow_retired=False) is None


def test_a47_replaces_the_local_id_keeping_its_hn(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('TEMP-1')}"))
    assert ack_code(env.send(adt("A47", pid_local("MRN-1"), mrg=pid_local("TEMP-1")))) == "AA"
    old, new = env.store.couplet(("TEMP-1", HOSPA_OID)), env.store.couplet(("MRN-1", HOSPA_OID))
    assert (old.status, old.successor_id) == (REPLACED, new.id)
    assert new.hn == hn("1111111111")


def test_a47_onto_an_id_in_use_is_AE_205_and_changes_nothing(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('A')}"))
    env.send(adt("A01", f"{pid_hn('2222222222')}~{pid_local('B')}"))
    ack = env.send(adt("A47", pid_local("B"), mrg=pid_local("A")))
    assert (ack_code(ack), error_code(ack)) == ("AE", "205")
    assert env.store.couplet(("A", HOSPA_OID)).status == "active"


@pytest.mark.parametrize(
    "event, pid3, mrg, code, where",
    [
        ("A40", pid_hn("2222222222"), None, "100", "MRG^1"),  # no MRG segment
        ("A40", pid_hn("2222222222"), "X^^^NOBODY", "101", "MRG^1^1"),  # MRG-1: nothing usable
        ("A40", pid_local("NEW"), pid_hn("1111111111"), "101", "PID^1^3"),  # HN merged into nothing
        ("A47", pid_hn("2222222222"), pid_local("OLD"), "101", "PID^1^3"),  # no new id of that issuer
    ],
)
def test_merge_and_change_messages_missing_ids_are_AE_with_the_field(env, event, pid3, mrg, code, where):
    raw = adt(event, pid3, mrg=mrg)
    if mrg is None:
        raw = raw.replace(b"PV1|1|O\r", b"")
    ack = env.send(raw)
    assert (ack_code(ack), error_code(ack)) == ("AE", code), ack
    assert ack_fields(ack, "ERR")[2] == where


def test_a_new_hn_for_a_local_id_is_a_correction_in_its_history(env):
    env.send(adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}"))
    assert ack_code(env.send(adt("A08", f"{pid_hn('9999999999')}~{pid_local('MRN1')}"))) == "AA"
    row = env.store.couplet(("MRN1", HOSPA_OID))
    assert row.hn == hn("9999999999")
    [correction] = [e for e in env.store.history(couplet_id=row.id) if e.event == "hn-corrected"]
    assert correction.detail["from"] == hn("1111111111")


def test_the_hn_namespace_alias_is_the_hn(store):
    env = make_env(store, identity_config(hn_namespaces=["ON"]))
    assert ack_code(env.send(adt("A01", f"5551112222^^^ON^JHN~{pid_local('M5')}"))) == "AA"
    assert env.store.couplet(("M5", HOSPA_OID)).hn == f"5551112222^^^&{HN_OID}&ISO"
