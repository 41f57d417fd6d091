"""Consent through the DI Common Service and the DIRs' responding gateways (ITI-18 -> ITI-38,
ITI-43 -> ITI-39, RAD-69 -> RAD-75) over the live province of tests/xca: a withdrawal recorded in
each DIR's database makes the patient's exams vanish from every query and retrieve path; a study
withdrawn in one DIR takes only that study; reinstated, everything is back."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.xca import wire
from tests.xca.conftest import ProvinceUnderTest, province  # noqa: F401 - fixture
from tests.xca.live import LiveDics, live_dics
from xds.consent import ConsentDirectives
from xds.registry.db import create_registry_engine

BY = "privacy office (test)"


@pytest.fixture(scope="module")
def dics(province: ProvinceUnderTest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveDics]:  # noqa: F811
    communities = [{"name": d.name, "home_community_id": d.home, "url": d.respond_url} for d in province.dirs.values()]
    with live_dics(tmp_path_factory.mktemp("consent-dics"), communities) as service:
        yield service


@pytest.fixture
def directives(province: ProvinceUnderTest) -> Iterator[dict[str, ConsentDirectives]]:  # noqa: F811
    """Each DIR's directives, over the database its node serves from; every directive a test leaves
    is reinstated afterwards (the province is shared)."""
    engines = {name: create_registry_engine(d.cfg.database_url) for name, d in province.dirs.items()}
    out = {name: ConsentDirectives(engine) for name, engine in engines.items()}
    try:
        yield out
    finally:
        patient = province.everywhere.patient_id
        for consent in out.values():
            if consent.active(patient):
                consent.reinstate(patient, set_by=BY, reason="end of test")
        for engine in engines.values():
            engine.dispose()


def test_a_withdrawal_in_every_dir_empties_every_path_through_the_di_common_service(
    province: ProvinceUnderTest,  # noqa: F811
    dics: LiveDics,
    directives: dict[str, ConsentDirectives],
) -> None:
    patient = province.everywhere
    found = wire.read_query(wire.post(dics.url, wire.find_documents(patient.patient_id)))
    assert found.status == "Success" and len({e.home for e in found.entries}) == 3
    documents = [(e.home, e.repository_unique_id, e.unique_id) for e in found.entries]
    homes = {d.name: d.home for d in province.dirs.values()}
    instances = [
        wire.InstanceRequest(homes[e.community], province.dirs[e.community].cfg.imaging.repository_unique_id,
                             e.study_uid, e.series_uid, uid)
        for e in province.data.exams_of(patient) for uid in e.sop_uids
    ]

    for consent in directives.values():
        consent.withdraw(patient.patient_id, set_by=BY, reason="patient request")
    query = wire.read_query(wire.post(dics.url, wire.find_documents(patient.patient_id)))
    assert (query.status, query.errors, query.objects) == ("Success", [], [])
    retrieved = wire.read_retrieve(wire.post(dics.url, wire.retrieve_documents(documents)))
    assert (retrieved.status, retrieved.documents) == ("Failure", {})
    assert sorted(retrieved.codes()) == ["XDSDocumentUniqueIdError"] * len(documents)
    imaging = wire.read_retrieve(wire.post(dics.url, wire.retrieve_imaging(instances)))
    assert (imaging.status, imaging.documents) == ("Failure", {})
    assert set(imaging.codes()) == {"XDSDocumentUniqueIdError"}
    # and on each DIR's own endpoints
    for d in province.dirs.values():
        direct = wire.read_query(wire.post(d.node.url("/xds/registry"), wire.find_documents(patient.patient_id)))
        assert direct.entries == []
        respond = wire.read_query(wire.post(d.respond_url, wire.find_documents(patient.patient_id, wire.ITI38)))
        assert respond.entries == []

    for consent in directives.values():
        consent.reinstate(patient.patient_id, set_by=BY, reason="patient consents again")
    again = wire.read_query(wire.post(dics.url, wire.find_documents(patient.patient_id)))
    assert {e.unique_id for e in again.entries} == {e.unique_id for e in found.entries}
    retrieved = wire.read_retrieve(wire.post(dics.url, wire.retrieve_documents(documents)))
    assert (retrieved.status, set(retrieved.documents)) == ("Success", {uid for _, _, uid in documents})
    imaging = wire.read_retrieve(wire.post(dics.url, wire.retrieve_imaging(instances)))
    assert (imaging.status, set(imaging.documents)) == ("Success", {r.instance for r in instances})


def test_a_study_withdrawn_in_one_dir_takes_only_that_study(
    province: ProvinceUnderTest,  # noqa: F811
    dics: LiveDics,
    directives: dict[str, ConsentDirectives],
) -> None:
    patient = province.everywhere
    exam = province.exams_in("SWODIN", patient)[0]
    swodin = province.dirs["SWODIN"]
    before = wire.read_query(wire.post(dics.url, wire.find_documents(patient.patient_id))).entries

    directives["SWODIN"].withdraw(patient.patient_id, studies=[exam.study_uid], set_by=BY)
    after = wire.read_query(wire.post(dics.url, wire.find_documents(patient.patient_id))).entries
    gone = {e.unique_id for e in before} - {e.unique_id for e in after}
    assert gone and {e.study_uid for e in before if e.unique_id in gone} == {exam.study_uid}
    assert {e.home for e in before if e.unique_id in gone} == {swodin.home}
    instances = [
        wire.InstanceRequest(swodin.home, swodin.cfg.imaging.repository_unique_id, exam.study_uid, exam.series_uid, uid)
        for uid in exam.sop_uids
    ]
    imaging = wire.read_retrieve(wire.post(dics.url, wire.retrieve_imaging(instances)))
    assert (imaging.status, imaging.documents) == ("Failure", {})
