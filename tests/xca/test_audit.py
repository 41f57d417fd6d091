"""The DI Common Service's own ATNA audit trail (issue 8): as the recipient of the consumer's ITI-18,
ITI-43 and RAD-69 (Query; Export), as the initiator of one ITI-38, ITI-39 or RAD-75 per community
(Query; Import), in its own store, which answers who accessed a patient's exams through it."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import pytest
from lxml import etree

from tests.security import flows
from tests.xca import wire
from tests.xca.conftest import Dir, ProvinceUnderTest
from tests.xca.live import LiveDics, live_dics
from xds.audit.message import validate

ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"


def community(d: Dir, **kw: object) -> dict:
    return {"name": d.name, "home_community_id": d.home, "url": d.respond_url, **kw}


@pytest.fixture(scope="module")
def audited(province: ProvinceUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveDics, dict]]:
    """A DI Common Service of its own (so its store holds this module's records only), and one
    query, one ITI-43 and one RAD-69 through it, plus a query one community cannot answer."""
    tmp = tmp_path_factory.mktemp("dics-audit")
    dirs = list(province.dirs.values())
    with live_dics(tmp, [community(d) for d in dirs]) as dics:
        patient = province.everywhere
        found = wire.read_query(wire.post(dics.url, wire.find_documents(patient.patient_id))).entries
        reports = [(e.home, e.repository_unique_id, e.unique_id) for e in found if e.mime_type != "application/dicom"]
        got = wire.read_retrieve(wire.post(dics.url, wire.retrieve_documents(reports)))
        assert got.status == "Success", got.errors
        exam = province.data.exams_of(patient)[0]
        d = province.dirs[exam.community]
        instances = [wire.InstanceRequest(d.home, d.cfg.imaging.repository_unique_id, exam.study_uid, exam.series_uid, uid)
                     for uid in exam.sop_uids]
        images = wire.read_retrieve(wire.post(dics.url, wire.retrieve_imaging(instances)))
        assert images.status == "Success", images.errors
        yield dics, {"patient": patient.patient_id, "reports": reports, "exam": exam, "dir": d, "dirs": dirs}
    # the stop is audited too: read after the service is gone


def messages(dics: LiveDics, transaction: str) -> list[etree._Element]:
    return flows.audit_messages(dics.data_dir, transaction)


def participants(message: etree._Element) -> list[tuple[str, str, str]]:
    """(UserID, UserIsRequestor, role code) of each ActiveParticipant."""
    return [(p.get("UserID"), p.get("UserIsRequestor"), p.find("RoleIDCode").get("csd-code"))
            for p in message.findall("ActiveParticipant")]


def test_every_record_validates_against_the_dicom_schema(audited):
    dics, _ = audited
    records = flows.audit_messages(dics.data_dir)
    assert len(records) >= 1 + 1 + 3 + 1 + 3 + 1  # start, ITI-18, 3 ITI-38, ITI-43, 3 ITI-39, RAD-69, RAD-75
    for m in records:
        assert validate(m) == [], etree.tostring(m)[:500]
    starts = [m for m in records if flows.event_codes(m)[:2] == ("110100", "110120")]
    assert len(starts) == 1


def test_iti18_from_the_consumer_is_audited_as_the_registry_would(audited):
    dics, t = audited
    [m] = messages(dics, "ITI-18")
    assert flows.event_codes(m) == ("110112", "ITI-18", "E", "0")
    consumer, service = participants(m)
    assert consumer == (ANONYMOUS, "true", "110153")
    assert service == (dics.url, "false", "110152")
    assert flows.objects(m)["2"] == [t["patient"]]
    assert flows.objects(m)["ITI-18"] == [flows.FIND_DOCUMENTS]
    query = [o for o in m.findall("ParticipantObjectIdentification") if o.get("ParticipantObjectTypeCodeRole") == "24"]
    asked = etree.fromstring(base64.b64decode(query[0].findtext("ParticipantObjectQuery")))
    assert asked.tag.endswith("AdhocQueryRequest") and t["patient"] in "".join(asked.itertext())


def test_one_iti38_per_community_with_the_service_as_the_requestor(audited):
    dics, t = audited
    records = messages(dics, "ITI-38")
    assert len(records) == 3
    assert {flows.event_codes(m) for m in records} == {("110112", "ITI-38", "E", "0")}
    destinations = set()
    for m in records:
        service, community = participants(m)
        assert service == (ANONYMOUS, "true", "110153")  # its wsa:ReplyTo (ITI TF-2b 3.38.5.1.1)
        assert community[1:] == ("false", "110152")
        destinations.add(community[0])
        assert flows.objects(m)["2"] == [t["patient"]]
        assert flows.objects(m)["ITI-38"] == [flows.FIND_DOCUMENTS]
    assert destinations == {d.respond_url for d in t["dirs"]}


def test_iti43_and_the_iti39_of_each_community(audited):
    dics, t = audited
    [m] = messages(dics, "ITI-43")
    assert flows.event_codes(m) == ("110106", "ITI-43", "R", "0")
    service, consumer = participants(m)
    assert service == (dics.url, "false", "110153") and consumer == (ANONYMOUS, "true", "110152")
    assert sorted(flows.objects(m)["9"]) == sorted(uid for _, _, uid in t["reports"])
    records = messages(dics, "ITI-39")
    assert len(records) == len({home for home, _, _ in t["reports"]}) == 3
    for r in records:
        assert flows.event_codes(r) == ("110107", "ITI-39", "C", "0")
        community, service = participants(r)
        assert community[1:] == ("false", "110153") and service == (ANONYMOUS, "true", "110152")
        home = next(d.home for d in t["dirs"] if d.respond_url == community[0])
        assert sorted(flows.objects(r)["9"]) == sorted(uid for h, _, uid in t["reports"] if h == home)
        for o in r.findall("ParticipantObjectIdentification"):
            details = {d.get("type"): base64.b64decode(d.get("value")).decode() for d in o.findall("ParticipantObjectDetail")}
            assert details["ihe:homeCommunityID"] == home


def test_rad69_and_its_rad75(audited):
    dics, t = audited
    exam = t["exam"]
    [m] = messages(dics, "RAD-69")
    assert flows.event_codes(m) == ("110106", "RAD-69", "R", "0")
    assert sorted(flows.objects(m)["9"]) == sorted(exam.sop_uids)
    assert flows.objects(m)["110180"] == [exam.study_uid]
    [r] = messages(dics, "RAD-75")
    assert flows.event_codes(r) == ("110107", "RAD-75", "C", "0")
    assert participants(r)[0][0] == t["dir"].respond_url
    assert flows.objects(r)["110180"] == [exam.study_uid]


def test_who_accessed_this_patients_exams_through_the_service(audited):
    """A retrieve names documents and studies only: the store ties them to the patient from the
    entries the service's own query disclosed."""
    dics, t = audited
    with flows.audit_store(dics.data_dir) as store:
        accesses = store.accesses(patient=t["patient"])
        by_hn = store.accesses(patient=t["patient"].split("^", 1)[0])
    transactions = sorted(a.transaction for a in accesses)
    assert transactions == sorted(["ITI-18", "ITI-38", "ITI-38", "ITI-38", "ITI-43", "ITI-39", "ITI-39", "ITI-39",
                                   "RAD-69", "RAD-75"])
    assert [a.id for a in by_hn] == [a.id for a in accesses]
    consumer = [a for a in accesses if a.transaction in ("ITI-18", "ITI-43", "RAD-69")]
    assert {a.address for a in consumer} == {"127.0.0.1"}


def test_a_community_that_does_not_answer_still_gets_its_iti38_record(province: ProvinceUnderTest, tmp_path):
    """ITI-18 answered PartialSuccess (minor failure, 4); the ITI-38 nobody answered: major failure
    (12), EventOutcomeDescription naming XDSUnavailableCommunity."""
    from tests.live import free_port

    hdirs = province.dirs["HDIRS"]
    dead = {"name": "GONE", "home_community_id": "urn:oid:1.2.3.4.5.404", "url": f"http://127.0.0.1:{free_port()}/xca/respond"}
    with live_dics(tmp_path, [community(hdirs), dead]) as dics:
        answer = wire.read_query(wire.post(dics.url, wire.find_documents(province.everywhere.patient_id)))
        assert answer.status == "PartialSuccess"
    [query] = messages(dics, "ITI-18")
    assert flows.event_codes(query) == ("110112", "ITI-18", "E", "4")
    outcomes = {participants(m)[1][0]: m for m in messages(dics, "ITI-38")}
    assert flows.event_codes(outcomes[hdirs.respond_url]) == ("110112", "ITI-38", "E", "0")
    assert flows.event_codes(outcomes[dead["url"]]) == ("110112", "ITI-38", "E", "12")
    assert "XDSUnavailableCommunity" in outcomes[dead["url"]].findtext("EventIdentification/EventOutcomeDescription")
