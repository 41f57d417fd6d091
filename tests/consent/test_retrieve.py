"""Consent directives on the retrieve paths: ITI-43 (and ITI-39) per document, RAD-69 (and RAD-75)
per study. A withheld document or instance is XDSDocumentUniqueIdError, exactly as one the node
does not hold; reinstated, it comes back. The statements on SQLite and PostgreSQL; the transactions
end to end on a DIR node."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.consent.helpers import CLINIC, HOSPITAL, Province, study_ref
from tests.imaging.conftest import IMAGING_ID, ImagingNode, c_store, imaging_node  # noqa: F401 - fixture
from tests.imaging.studies import CT, MR, Patient, make_study
from tests.imaging.test_retrieve import rad69, series_of
from tests.imaging.wire import retrieve_imaging
from tests.repository.conftest import dir_node  # noqa: F401 - fixture
from tests.repository.messages import (
    PATIENT,
    REPOSITORY_ID,
    document_entry,
    provide_and_register,
    retrieve_document_set,
    submission,
)
from xds.consent import ConsentDirectives, Requester
from xds.consent.enforcement import withheld_documents, withheld_studies
from xds.repository import retrieve

STUDY, OTHER_STUDY, UNPUBLISHED = "1.2.840.99.1", "1.2.840.99.2", "1.2.840.99.3"
BY = "privacy office (test)"
EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


# --- the statements (SQLite and PostgreSQL) --------------------------------------------------------


def test_withheld_documents_by_patient_document_and_study(data: Province, consent: ConsentDirectives) -> None:
    a, b = data.document(), data.document(reference_ids=[study_ref(STUDY)])
    c = data.document(patient_id=data.other_patient)
    data.submit([a, b], source=HOSPITAL)
    data.submit([c], ss=data.submission_set(patient_id=data.other_patient, source_id=CLINIC))
    uids = [a.unique_id, b.unique_id, c.unique_id, "1.2.3.unknown"]

    def withheld(requester: Requester | None = None) -> set[str]:
        with data.engine.connect() as conn:
            return withheld_documents(conn, uids, requester)

    assert withheld() == set()
    consent.withdraw(data.patient, studies=[STUDY], set_by=BY)
    assert withheld() == {b.unique_id}
    consent.withdraw(data.patient, documents=[a.unique_id], set_by=BY)
    assert withheld() == {a.unique_id, b.unique_id}
    assert withheld(Requester.of_organisations(HOSPITAL)) == set()
    consent.reinstate(data.patient, set_by=BY)
    consent.withdraw(data.other_patient, set_by=BY)
    assert withheld() == {c.unique_id}
    assert withheld(Requester.of_organisations(HOSPITAL)) == {c.unique_id}
    assert withheld(Requester.of_organisations(CLINIC)) == set()


def test_withheld_studies_through_their_manifests(data: Province, consent: ConsentDirectives) -> None:
    kos = data.document(mime_type="application/dicom", reference_ids=[study_ref(STUDY)])
    other = data.document(mime_type="application/dicom", reference_ids=[study_ref(OTHER_STUDY)])
    data.submit([kos, other], source=HOSPITAL)
    studies = [STUDY, OTHER_STUDY, UNPUBLISHED]

    def withheld(requester: Requester | None = None) -> set[str]:
        with data.engine.connect() as conn:
            return withheld_studies(conn, studies, requester)

    assert withheld() == set()
    consent.withdraw(data.patient, studies=[STUDY], set_by=BY)
    assert withheld() == {STUDY}
    consent.reinstate(data.patient, studies=[STUDY], set_by=BY)
    consent.withdraw(data.patient, documents=[other.unique_id], set_by=BY)  # the manifest itself
    assert withheld() == {OTHER_STUDY}
    consent.withdraw(data.patient, set_by=BY)
    assert withheld() == {STUDY, OTHER_STUDY}
    assert withheld(Requester.of_organisations(HOSPITAL)) == set()
    consent.reinstate(data.patient, set_by=BY)
    assert withheld() == set()
    # a study no manifest describes yet: withheld when a directive names it, from everyone
    consent.withdraw(data.other_patient, studies=[UNPUBLISHED], set_by=BY)
    assert withheld() == {UNPUBLISHED}
    assert withheld(Requester.of_organisations(HOSPITAL)) == {UNPUBLISHED}


# --- ITI-43 on a DIR node --------------------------------------------------------------------------

DOC1, DOC2 = b"first report\n", b"second report\n"


@pytest.fixture
def two_documents(dir_node):  # noqa: F811
    d1, d2 = document_entry("Document01"), document_entry("Document02")
    out = dir_node.post(provide_and_register(submission(d1, d2), {"Document01": DOC1, "Document02": DOC2}))
    assert out.short_status == "Success", out.errors
    return d1.unique_id, d2.unique_id


def test_iti43_a_withheld_document_is_XDSDocumentUniqueIdError_until_reinstated(dir_node, two_documents) -> None:  # noqa: F811
    u1, u2 = two_documents
    consent = ConsentDirectives(dir_node.registry.engine)
    both = retrieve_document_set((REPOSITORY_ID, u1), (REPOSITORY_ID, u2))

    consent.withdraw(PATIENT, documents=[u1], set_by=BY)
    out = dir_node.post(both)
    assert out.short_status == "PartialSuccess"
    assert out.errors == [("XDSDocumentUniqueIdError", "Error", u1)]
    assert [d["content"] for d in out.documents()] == [DOC2]
    # indistinguishable from a document the repository never held
    unknown = dir_node.post(retrieve_document_set((REPOSITORY_ID, u1)))
    never = dir_node.post(retrieve_document_set((REPOSITORY_ID, "1.2.3.4.5.6.7")))
    assert (unknown.short_status, [e[:2] for e in unknown.errors]) == (never.short_status, [e[:2] for e in never.errors])

    consent.withdraw(PATIENT, set_by=BY)
    out = dir_node.post(both)
    assert out.short_status == "Failure"
    assert sorted(e[2] for e in out.errors) == sorted([u1, u2])
    assert out.documents() == []

    consent.reinstate(PATIENT, set_by=BY)
    out = dir_node.post(both)
    assert (out.short_status, out.errors) == ("Success", [])
    assert [d["content"] for d in out.documents()] == [DOC1, DOC2]


def test_iti43_the_registering_organisation_retrieves_its_own(dir_node, two_documents) -> None:  # noqa: F811
    u1, u2 = two_documents
    ConsentDirectives(dir_node.registry.engine).withdraw(PATIENT, set_by=BY)
    source_id = submission().submission_set.source_id
    requests = [retrieve.DocumentRequest(REPOSITORY_ID, u) for u in (u1, u2)]
    found, errors = retrieve.retrieve(dir_node.repository, requests, Requester.of_organisations(source_id))
    assert ([d.request.document_unique_id for d in found], errors) == ([u1, u2], [])
    found, errors = retrieve.retrieve(dir_node.repository, requests, Requester.of_organisations(CLINIC))
    assert found == [] and [e.code for e in errors] == ["XDSDocumentUniqueIdError"] * 2


# --- RAD-69 on a DIR node --------------------------------------------------------------------------


def test_rad69_a_withheld_study_is_XDSDocumentUniqueIdError_for_every_instance_until_reinstated(
    imaging_node: ImagingNode,  # noqa: F811
    tmp_path: Path,
) -> None:
    study = make_study(tmp_path / "src", Patient("MRN901", "9010000000"), "ACC901", ((CT, 2, True), (MR, 1, False)))
    imaging_node.feed(study.patient.affinity_id)
    assert set(c_store(imaging_node.port, study.files)) == {0}
    published = imaging_node.published(study)
    assert published and published.publish_error is None
    request = retrieve_imaging(IMAGING_ID, series_of(study), [EXPLICIT, IMPLICIT])
    instances = {f.stem for f in study.files}
    assert set(rad69(imaging_node, request).documents) == instances

    consent = ConsentDirectives(imaging_node.registry.engine)
    for withdraw in ({"studies": [study.uid]}, {"documents": [published.manifest_uid]}, {}):
        consent.withdraw(study.patient.affinity_id, set_by=BY, **withdraw)
        answer = rad69(imaging_node, request)
        assert (answer.status, answer.documents) == ("Failure", {}), withdraw
        assert sorted((code, location) for code, location, _ in answer.errors) == sorted(
            ("XDSDocumentUniqueIdError", uid) for uid in instances
        )
        consent.reinstate(study.patient.affinity_id, set_by=BY)
        answer = rad69(imaging_node, request)
        assert (answer.status, set(answer.documents)) == ("Success", instances)
