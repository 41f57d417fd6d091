"""The Responding Gateway of a DIR (/xca/respond) over real HTTP: ITI-38, ITI-39, RAD-75 and the
homeCommunityId rules of ITI TF-2b 3.38.4.1.2.1 / 3.39.4.1.2."""

from __future__ import annotations

import io

from pydicom import dcmread

from tests.xca import wire
from tests.xca.conftest import ProvinceUnderTest


def test_cross_gateway_query_returns_the_patients_documents_with_the_home_community_id(province: ProvinceUnderTest):
    hdirs = province.dirs["HDIRS"]
    patient = province.everywhere
    answer = wire.read_query(wire.post(hdirs.respond_url, wire.find_documents(patient.patient_id, wire.ITI38)))
    assert answer.action == "urn:ihe:iti:2007:CrossGatewayQueryResponse"
    assert answer.status == "Success", answer.errors
    exams = province.exams_in("HDIRS", patient)
    # a report and a KOS manifest per exam
    assert len(answer.entries) == 2 * len(exams)
    assert {e.home for e in answer.entries} == {hdirs.home}
    assert all(o.get("home") == hdirs.home for o in answer.objects)
    assert {e.unique_id for e in answer.entries} >= {x.report_uid for x in exams}


def test_get_documents_without_home_is_XDSMissingHomeCommunityId(province: ProvinceUnderTest):
    hdirs = province.dirs["HDIRS"]
    uid = province.exams_in("HDIRS")[0].report_uid
    answer = wire.read_query(wire.post(hdirs.respond_url, wire.get_documents([uid], wire.ITI38)))
    assert answer.status == "Failure"
    assert answer.codes() == ["XDSMissingHomeCommunityId"]
    answer = wire.read_query(wire.post(hdirs.respond_url, wire.get_documents([uid], wire.ITI38, home=hdirs.home)))
    assert answer.status == "Success"
    assert [(e.unique_id, e.home) for e in answer.entries] == [(uid, hdirs.home)]


def test_query_naming_another_community_is_XDSUnknownCommunity(province: ProvinceUnderTest):
    hdirs, swodin = province.dirs["HDIRS"], province.dirs["SWODIN"]
    answer = wire.read_query(
        wire.post(hdirs.respond_url, wire.find_documents(province.everywhere.patient_id, wire.ITI38, home=swodin.home))
    )
    assert answer.status == "Failure"
    assert answer.codes() == ["XDSUnknownCommunity"]
    assert answer.entries == []


def test_cross_gateway_retrieve_returns_the_report_as_provided(province: ProvinceUnderTest):
    swodin = province.dirs["SWODIN"]
    exam = province.exams_in("SWODIN")[0]
    repository = swodin.cfg.repository.repository_unique_id
    response = wire.post(swodin.respond_url, wire.retrieve_documents([(swodin.home, repository, exam.report_uid)], wire.ITI39))
    answer = wire.read_retrieve(response)
    assert answer.action == "urn:ihe:iti:2007:CrossGatewayRetrieveResponse"
    assert answer.status == "Success", answer.errors
    content, mime_type = exam.report()
    assert answer.documents == {exam.report_uid: content}
    assert answer.homes[exam.report_uid] == swodin.home
    assert answer.mime_types[exam.report_uid] == mime_type


def test_cross_gateway_retrieve_without_home_is_XDSMissingHomeCommunityId(province: ProvinceUnderTest):
    swodin = province.dirs["SWODIN"]
    exams = province.exams_in("SWODIN")
    repository = swodin.cfg.repository.repository_unique_id
    answer = wire.read_retrieve(
        wire.post(swodin.respond_url, wire.retrieve_documents([(None, repository, exams[0].report_uid)], wire.ITI39))
    )
    assert answer.status == "Failure"
    assert answer.codes() == ["XDSMissingHomeCommunityId"]
    assert answer.documents == {}
    # one good, one for another community: PartialSuccess
    answer = wire.read_retrieve(wire.post(swodin.respond_url, wire.retrieve_documents(
        [(swodin.home, repository, exams[0].report_uid), (province.dirs["NEODIN"].home, repository, exams[1].report_uid)],
        wire.ITI39)))
    assert answer.status == "PartialSuccess"
    assert answer.codes() == ["XDSUnknownCommunity"]
    assert list(answer.documents) == [exams[0].report_uid]


def test_cross_gateway_retrieve_imaging_returns_the_instances_byte_identical_to_rad69(province: ProvinceUnderTest):
    neodin = province.dirs["NEODIN"]
    exam = province.exams_in("NEODIN")[0]
    source = neodin.cfg.imaging.repository_unique_id
    requests = [wire.InstanceRequest(neodin.home, source, exam.study_uid, exam.series_uid, uid) for uid in exam.sop_uids]
    answer = wire.read_retrieve(wire.post(neodin.respond_url, wire.retrieve_imaging(requests, wire.RAD75)))
    assert answer.action == "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSetResponse"
    assert answer.status == "Success", answer.errors
    assert set(answer.documents) == set(exam.sop_uids)
    assert set(answer.homes.values()) == {neodin.home}
    direct = wire.read_retrieve(wire.post(neodin.node.url("/xds/imaging"), wire.retrieve_imaging(requests)))
    assert direct.documents == answer.documents
    for sent in exam.instances():
        got = dcmread(io.BytesIO(answer.documents[sent.SOPInstanceUID]))
        assert got.PixelData == sent.PixelData
        assert got.OtherPatientIDsSequence[0].PatientID == exam.patient.hn

    missing = [wire.InstanceRequest(None, source, exam.study_uid, exam.series_uid, exam.sop_uids[0])]
    answer = wire.read_retrieve(wire.post(neodin.respond_url, wire.retrieve_imaging(missing, wire.RAD75)))
    assert (answer.status, answer.codes()) == ("Failure", ["XDSMissingHomeCommunityId"])
