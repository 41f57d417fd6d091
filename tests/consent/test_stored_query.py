"""Consent directives on ITI-18 (and so ITI-38): what a directive withholds is absent from every
stored query, LeafClass and ObjectRef, with no trace in counts, ObjectRefs or Associations; the
registering organisation still sees its own documents. SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.consent.helpers import CLINIC, HOSPITAL, Province, everything, study_ref
from tests.registry.stored_query_data import Submitted, ids, q1, qs
from xds.consent import ConsentDirectives, Requester, requester_of
from xds.metadata import model as m

RETURNS = ("LeafClass", "ObjectRef")
STUDY = "1.2.840.113619.2.55.3.4.99.1"
OTHER_STUDY = "1.2.840.113619.2.55.3.4.99.2"
BY = "privacy office (test)"


@dataclass
class Record:
    """Patient P: SubmissionSet ss1 (HOSPITAL) with documents a, b and folder f holding both;
    ss2 (CLINIC) with c (study STUDY) and e (OTHER_STUDY); ss3 (HOSPITAL) with d, which replaces b
    (the RPLC in a HOSPITAL SubmissionSet of its own, rplc_set). Patient Q: ss4 with x."""

    data: Province
    a: m.DocumentEntry
    b: m.DocumentEntry
    c: m.DocumentEntry
    d: m.DocumentEntry
    e: m.DocumentEntry
    x: m.DocumentEntry
    f: m.Folder
    ss1: Submitted
    ss2: Submitted
    ss3: Submitted
    ss4: Submitted
    rplc: m.Association
    rplc_set: m.SubmissionSet

    @property
    def patient(self) -> str:
        return self.data.patient

    def patient_objects(self) -> set[str]:
        subs = (self.ss1, self.ss2, self.ss3)
        return (
            {s.submission_set.entry_uuid for s in subs}
            | ids(self.a, self.b, self.c, self.d, self.e, self.f)
            | {a.entry_uuid for s in subs for a in s.associations}
            | {self.rplc.entry_uuid, self.rplc_set.entry_uuid}
        )


@pytest.fixture
def record(data: Province) -> Record:
    a, b, d = data.document(), data.document(), data.document()
    c = data.document(reference_ids=[study_ref(STUDY)])
    e = data.document(reference_ids=[study_ref(OTHER_STUDY)])
    f = data.folder()
    ss1 = data.submit([a, b], [f], in_folder=[(f, a), (f, b)], source=HOSPITAL)
    ss2 = data.submit([c, e], source=CLINIC)
    ss3 = data.submit([d], source=HOSPITAL)
    rplc, rplc_set = data.relate(m.RPLC, d, b)
    x = data.document(patient_id=data.other_patient)
    ss4 = data.submit([x], ss=data.submission_set(patient_id=data.other_patient))
    return Record(data, a, b, c, d, e, x, f, ss1, ss2, ss3, ss4, rplc, rplc_set)


def uuid_slot(name: str, *objects: m.RegistryObject) -> tuple[str, str]:
    return (name, qs(*[o.entry_uuid for o in objects]))


def get_queries(r: Record) -> list[tuple[str, list[tuple[str, str]]]]:
    """Every Get query, each naming objects of patient P."""
    approved = qs(m.STATUS_APPROVED)
    ss_uuid = q1(r.ss1.submission_set.entry_uuid)
    return [
        ("GetDocuments", [uuid_slot("$XDSDocumentEntryEntryUUID", r.a, r.b, r.c, r.d, r.e)]),
        ("GetDocuments", [("$XDSDocumentEntryUniqueId", qs(r.a.unique_id, r.c.unique_id))]),
        ("GetFolders", [uuid_slot("$XDSFolderEntryUUID", r.f)]),
        ("GetAssociations", [uuid_slot("$uuid", r.a, r.b, r.d, r.f, r.ss1.submission_set)]),
        ("GetDocumentsAndAssociations", [uuid_slot("$XDSDocumentEntryEntryUUID", r.a, r.d)]),
        ("GetSubmissionSets", [uuid_slot("$uuid", r.a, r.c, r.d, r.f)]),
        ("GetSubmissionSetAndContents", [("$XDSSubmissionSetEntryUUID", ss_uuid)]),
        ("GetSubmissionSetAndContents", [("$XDSSubmissionSetUniqueId", q1(r.ss2.submission_set.unique_id))]),
        ("GetFolderAndContents", [("$XDSFolderEntryUUID", q1(r.f.entry_uuid))]),
        ("GetFoldersForDocument", [("$XDSDocumentEntryEntryUUID", q1(r.a.entry_uuid))]),
        ("GetRelatedDocuments", [("$XDSDocumentEntryEntryUUID", q1(r.d.entry_uuid)), ("$AssociationTypes", qs(m.RPLC))]),
        ("FindDocumentsByReferenceId", [
            ("$XDSDocumentEntryPatientId", q1(r.patient)),
            ("$XDSDocumentEntryStatus", approved),
            ("$XDSDocumentEntryReferenceIdList", qs(study_ref(STUDY))),
        ]),
        ("FindSubmissionSets", [("$XDSSubmissionSetPatientId", q1(r.patient)), ("$XDSSubmissionSetStatus", approved)]),
        ("FindFolders", [("$XDSFolderPatientId", q1(r.patient)), ("$XDSFolderStatus", approved)]),
    ]


# --- withdrawal of everything ----------------------------------------------------------------------


@pytest.mark.parametrize("returns", RETURNS)
def test_withdraw_all_hides_everything_from_get_all_and_reinstate_restores_it(
    record: Record, consent: ConsentDirectives, returns: str
) -> None:
    before = record.data.get_all(returns=returns)
    assert before.status == "Success"
    assert everything(before) == record.patient_objects()

    consent.withdraw(record.patient, set_by=BY, reason="patient request")
    during = record.data.get_all(returns=returns)
    assert (during.status, during.error_codes, during.objects) == ("Success", [], [])

    consent.reinstate(record.patient, set_by=BY, reason="patient request")
    after = record.data.get_all(returns=returns)
    assert everything(after) == record.patient_objects()
    assert [o.get("id") for o in after.objects] and sorted(everything(after)) == sorted(everything(before))


@pytest.mark.parametrize("returns", RETURNS)
def test_withdraw_all_hides_everything_from_every_find_and_get_query(
    record: Record, consent: ConsentDirectives, returns: str
) -> None:
    queries = get_queries(record)
    for name, slots in queries:  # the scenario reaches something before the withdrawal
        assert record.data.query(name, slots, returns=returns).objects, name
    consent.withdraw(record.patient, set_by=BY)
    for name, slots in [*queries, ("FindDocuments", [])]:
        answer = record.data.find_documents(returns=returns) if name == "FindDocuments" and not slots else (
            record.data.query(name, slots, returns=returns)
        )
        assert (name, answer.status, answer.error_codes, answer.objects) == (name, "Success", [], [])


def test_withdraw_all_leaves_other_patients_alone(record: Record, consent: ConsentDirectives) -> None:
    consent.withdraw(record.patient, set_by=BY)
    other = record.data.get_all(record.data.other_patient)
    assert everything(other) == (
        {record.ss4.submission_set.entry_uuid, record.x.entry_uuid} | {a.entry_uuid for a in record.ss4.associations}
    )


# --- one document ----------------------------------------------------------------------------------


@pytest.mark.parametrize("returns", RETURNS)
def test_a_withdrawn_document_and_every_association_reaching_it_are_absent(
    record: Record, consent: ConsentDirectives, returns: str
) -> None:
    r = record
    consent.withdraw(r.patient, documents=[r.a.unique_id], set_by=BY)
    reaching_a = {
        a.entry_uuid for a in r.ss1.associations if r.a.entry_uuid in (a.source, a.target)
    }
    reaching_a |= {a.entry_uuid for a in r.ss1.associations if a.target in reaching_a}  # SS -> (Folder -> a)
    assert len(reaching_a) == 3
    assert everything(r.data.get_all(returns=returns)) == r.patient_objects() - {r.a.entry_uuid} - reaching_a

    folder = r.data.query("GetFolderAndContents", [("$XDSFolderEntryUUID", q1(r.f.entry_uuid))], returns=returns)
    f_to_b = {a.entry_uuid for a in r.ss1.associations if (a.source, a.target) == (r.f.entry_uuid, r.b.entry_uuid)}
    assert everything(folder) == {r.f.entry_uuid, r.b.entry_uuid} | f_to_b

    contents = r.data.query(
        "GetSubmissionSetAndContents", [("$XDSSubmissionSetEntryUUID", q1(r.ss1.submission_set.entry_uuid))],
        returns=returns,
    )
    assert everything(contents) == (
        {r.ss1.submission_set.entry_uuid, r.b.entry_uuid, r.f.entry_uuid}
        | {a.entry_uuid for a in r.ss1.associations} - reaching_a
    )
    for name, slots in [
        ("GetDocuments", [("$XDSDocumentEntryUniqueId", qs(r.a.unique_id))]),
        ("GetAssociations", [uuid_slot("$uuid", r.a)]),
        ("GetDocumentsAndAssociations", [uuid_slot("$XDSDocumentEntryEntryUUID", r.a)]),
        ("GetSubmissionSets", [uuid_slot("$uuid", r.a)]),
        ("GetFoldersForDocument", [("$XDSDocumentEntryEntryUUID", q1(r.a.entry_uuid))]),
    ]:
        assert r.data.query(name, slots, returns=returns).objects == [], name
    # the other documents of the same submission are untouched
    found = r.data.query("GetDocuments", [uuid_slot("$XDSDocumentEntryEntryUUID", r.a, r.b)], returns=returns)
    assert everything(found) == {r.b.entry_uuid}


def test_a_submission_set_or_folder_holding_only_withheld_documents_is_absent(
    data: Province, consent: ConsentDirectives
) -> None:
    g, kept = data.document(), data.document()
    h = data.folder()
    only_g = data.submit([g], [h], in_folder=[(h, g)])
    other = data.submit([kept])
    consent.withdraw(data.patient, documents=[g.unique_id], set_by=BY)
    answer = data.get_all()
    assert everything(answer) == (
        {other.submission_set.entry_uuid, kept.entry_uuid} | {a.entry_uuid for a in other.associations}
    )
    approved = qs(m.STATUS_APPROVED)
    sets = data.query("FindSubmissionSets", [("$XDSSubmissionSetPatientId", q1(data.patient)),
                                             ("$XDSSubmissionSetStatus", approved)])
    assert sets.packages == {other.submission_set.entry_uuid}
    folders = data.query("FindFolders", [("$XDSFolderPatientId", q1(data.patient)), ("$XDSFolderStatus", approved)])
    assert folders.objects == []
    contents = data.query("GetSubmissionSetAndContents",
                          [("$XDSSubmissionSetEntryUUID", q1(only_g.submission_set.entry_uuid))])
    assert contents.objects == []


def test_an_empty_folder_stays_visible_unless_everything_is_withdrawn(data: Province, consent: ConsentDirectives) -> None:
    empty, doc = data.folder(), data.document()
    data.submit([doc], [empty])
    consent.withdraw(data.patient, documents=[doc.unique_id], set_by=BY)
    approved = qs(m.STATUS_APPROVED)
    find = [("$XDSFolderPatientId", q1(data.patient)), ("$XDSFolderStatus", approved)]
    assert data.query("FindFolders", find).packages == {empty.entry_uuid}
    consent.withdraw(data.patient, set_by=BY)
    assert data.query("FindFolders", find).objects == []


def test_a_relation_to_a_withheld_document_is_absent_from_get_related_documents(
    record: Record, consent: ConsentDirectives
) -> None:
    r = record
    slots = [("$XDSDocumentEntryEntryUUID", q1(r.d.entry_uuid)), ("$AssociationTypes", qs(m.RPLC))]
    assert everything(r.data.query("GetRelatedDocuments", slots)) == ids(r.d, r.b, r.rplc)
    consent.withdraw(r.patient, documents=[r.b.unique_id], set_by=BY)
    assert r.data.query("GetRelatedDocuments", slots).objects == []
    assert r.data.query("GetDocuments", [uuid_slot("$XDSDocumentEntryEntryUUID", r.d)]).documents == ids(r.d)
    # asked from the withheld side, nothing either
    from_b = [("$XDSDocumentEntryEntryUUID", q1(r.b.entry_uuid)), ("$AssociationTypes", qs(m.RPLC))]
    assert r.data.query("GetRelatedDocuments", from_b).objects == []


# --- one study -------------------------------------------------------------------------------------


@pytest.mark.parametrize("returns", RETURNS)
def test_a_withdrawn_study_hides_the_documents_that_reference_it(
    record: Record, consent: ConsentDirectives, returns: str
) -> None:
    r = record
    consent.withdraw(r.patient, studies=[STUDY], set_by=BY)
    assert everything(r.data.find_documents(returns=returns)) == ids(r.a, r.b, r.d, r.e)
    approved = qs(m.STATUS_APPROVED)
    by_reference = r.data.query("FindDocumentsByReferenceId", [
        ("$XDSDocumentEntryPatientId", q1(r.patient)),
        ("$XDSDocumentEntryStatus", approved),
        ("$XDSDocumentEntryReferenceIdList", qs(study_ref(STUDY), study_ref(OTHER_STUDY))),
    ], returns=returns)
    assert everything(by_reference) == ids(r.e)
    contents = r.data.query(
        "GetSubmissionSetAndContents", [("$XDSSubmissionSetEntryUUID", q1(r.ss2.submission_set.entry_uuid))],
        returns=returns,
    )
    to_e = {a.entry_uuid for a in r.ss2.associations if a.target == r.e.entry_uuid}
    assert everything(contents) == {r.ss2.submission_set.entry_uuid, r.e.entry_uuid} | to_e
    consent.reinstate(r.patient, studies=[STUDY], set_by=BY)
    assert everything(r.data.find_documents(returns=returns)) == ids(r.a, r.b, r.c, r.d, r.e)


# --- no leak through counts ------------------------------------------------------------------------


def test_withheld_documents_do_not_count_towards_XDSTooManyResults(record: Record, consent: ConsentDirectives) -> None:
    r = record
    assert r.data.find_documents(max_results=4).error_codes == ["XDSTooManyResults"]
    consent.withdraw(r.patient, documents=[r.a.unique_id], set_by=BY)
    for returns in RETURNS:
        answer = r.data.find_documents(max_results=4, returns=returns)
        assert (answer.status, answer.error_codes) == ("Success", [])
        assert everything(answer) == ids(r.b, r.c, r.d, r.e)


def test_a_withheld_document_of_another_patient_is_not_XDSResultNotSinglePatient(
    record: Record, consent: ConsentDirectives
) -> None:
    r = record
    slot = [uuid_slot("$XDSDocumentEntryEntryUUID", r.a, r.x)]
    assert r.data.query("GetDocuments", slot).error_codes == ["XDSResultNotSinglePatient"]
    consent.withdraw(r.patient, set_by=BY)
    answer = r.data.query("GetDocuments", slot)
    assert (answer.status, answer.error_codes, answer.documents) == ("Success", [], ids(r.x))


# --- the registering organisation --------------------------------------------------------------------


def test_the_registering_organisation_still_sees_its_own_documents(record: Record, consent: ConsentDirectives) -> None:
    r = record
    consent.withdraw(r.patient, set_by=BY)
    hospital = r.data.get_all(requester=Requester.of_organisations(f"urn:oid:{HOSPITAL}"))
    hospital_sets = (r.ss1, r.ss3)
    assert everything(hospital) == (
        ids(r.a, r.b, r.d, r.f, r.rplc, r.rplc_set)
        | {s.submission_set.entry_uuid for s in hospital_sets}
        | {a.entry_uuid for s in hospital_sets for a in s.associations}
    )

    clinic = r.data.get_all(requester=Requester.of_organisations(CLINIC))
    assert everything(clinic) == (
        ids(r.c, r.e) | {r.ss2.submission_set.entry_uuid} | {a.entry_uuid for a in r.ss2.associations}
    )
    assert r.data.get_all(requester=Requester.of_organisations("2.16.840.1.113883.3.239.99.3")).objects == []


def test_an_author_institution_identifies_the_registering_organisation(
    data: Province, consent: ConsentDirectives
) -> None:
    lab = "2.16.840.1.113883.3.239.99.7"
    doc = data.document(authors=[m.Author(person="^Reader^Rita", institutions=[f"Lab Imaging^^^^^^^^^{lab}"])])
    data.submit([doc], source=CLINIC)
    consent.withdraw(data.patient, set_by=BY)
    assert data.find_documents().objects == []
    assert data.find_documents(requester=Requester.of_organisations(lab)).documents == ids(doc)
    # an organisation whose id merely starts the same is not it
    assert data.find_documents(requester=Requester.of_organisations(lab[:-1])).objects == []


class _Request:
    """A SOAP request as the security layer leaves it."""

    def __init__(self, **attributes: object) -> None:
        self.__dict__.update(attributes)


def test_the_requester_is_the_xua_organisation_else_the_certificate_else_external(
    record: Record, consent: ConsentDirectives
) -> None:
    r = record
    consent.withdraw(r.patient, set_by=BY)

    class Person:
        user_id, organization = "dr.who", f"urn:oid:{HOSPITAL}"

    class Peer:
        subject = f"CN=viewer.clinic.example,O=Clinic,organizationIdentifier={CLINIC},C=CA"

    via_xua = requester_of(_Request(xua=Person(), client_certificate=Peer()))
    assert (via_xua.organisations, via_xua.via) == (frozenset({HOSPITAL}), "xua")
    via_tls = requester_of(_Request(client_certificate=Peer()))
    assert (via_tls.organisations, via_tls.via) == (frozenset({"Clinic", CLINIC}), "tls")
    assert requester_of(_Request()).external
    assert r.d.entry_uuid in everything(r.data.get_all(requester=via_xua))
    assert everything(r.data.find_documents(requester=via_tls)) == ids(r.c, r.e)
    assert r.data.get_all(requester=requester_of(_Request())).objects == []


# --- merged patients ---------------------------------------------------------------------------------


def test_a_directive_follows_an_A40_merge_both_ways(data: Province, consent: ConsentDirectives) -> None:
    prior = data.other_patient
    data.store.record_patient(data.patient, {}, "TEST", "1")
    data.store.record_patient(prior, {}, "TEST", "2")
    filed_under_prior = data.document(patient_id=prior)
    data.submit([filed_under_prior], ss=data.submission_set(patient_id=prior))
    survivor_doc = data.document()
    data.submit([survivor_doc])
    data.store.merge_patient(prior, data.patient, "3")
    assert data.find_documents().documents == ids(filed_under_prior, survivor_doc)

    consent.withdraw(prior, set_by=BY)  # given under the id merged away
    assert data.find_documents().objects == []
    consent.reinstate(prior, set_by=BY)
    consent.withdraw(data.patient, documents=[filed_under_prior.unique_id], set_by=BY)  # under the survivor
    assert data.find_documents().documents == ids(survivor_doc)
