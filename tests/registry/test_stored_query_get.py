"""ITI-18 GetAll and the Get queries (ITI TF-2a 3.18.4.1.2.3.7.4-13) on SQLite and PostgreSQL.
Scenarios follow the NIST tests 11901, 11902, 11983, 12000, 12000.1a, 12001, 12002, 12004."""

from __future__ import annotations

import pytest

from tests.registry.stored_query_data import (
    EVENT_B,
    FORMAT,
    NORMAL,
    OTHER_FORMAT,
    RESTRICTED,
    Data,
    association,
    code,
    has_member,
    ids,
    q1,
    qs,
)
from xds.metadata import model as m
from xds.registry.store import RegistryStore

APPROVED = qs(m.STATUS_APPROVED)
BOTH = qs(m.STATUS_APPROVED, m.STATUS_DEPRECATED)


@pytest.fixture
def db(engine) -> Data:
    return Data(RegistryStore(engine))


# --- GetAll ----------------------------------------------------------------------------------------


def get_all(db: Data, *slots, de_status: str = APPROVED, returns: str = "LeafClass"):
    base = [
        ("$patientId", q1(db.patient)),
        ("$XDSDocumentEntryStatus", de_status),
        ("$XDSSubmissionSetStatus", APPROVED),
        ("$XDSFolderStatus", APPROVED),
    ]
    return db.ask("GetAll", [*base, *slots], returns=returns)


def test_get_all_returns_the_patients_objects_and_their_associations(db: Data) -> None:
    d1, d2, f = db.document(), db.document(), db.folder()
    sub = db.submit([d1, d2], [f], in_folder=[(f, d1)])
    db.submit([db.document(patient_id=db.other_patient)], ss=db.submission_set(patient_id=db.other_patient))
    answer = get_all(db)
    assert answer.status == "Success"
    assert answer.documents == ids(d1, d2)
    assert answer.packages == ids(sub.submission_set, f)
    assert answer.associations == ids(*sub.associations)


def test_get_all_status_filters_drop_the_associations_of_excluded_objects(db: Data) -> None:
    kept, deprecated = db.document(), db.document(status=m.STATUS_DEPRECATED)
    sub = db.submit([kept, deprecated])
    answer = get_all(db)
    assert answer.documents == ids(kept)
    assert answer.associations == {a.entry_uuid for a in sub.associations if a.target == kept.entry_uuid}
    assert get_all(db, de_status=BOTH).associations == ids(*sub.associations)


def test_get_all_format_code_and_document_type_filters(db: Data) -> None:
    text, pdf = db.document(format_code=FORMAT), db.document(format_code=OTHER_FORMAT)
    on_demand = db.document(object_type=m.ON_DEMAND_DOCUMENT_ENTRY)
    db.submit([text, pdf, on_demand])
    assert get_all(db).documents == ids(text, pdf)
    assert get_all(db, ("$XDSDocumentEntryFormatCode", qs(code(OTHER_FORMAT)))).documents == ids(pdf)
    assert get_all(db, ("$XDSDocumentEntryType", qs(m.ON_DEMAND_DOCUMENT_ENTRY))).documents == ids(on_demand)


def test_get_all_confidentiality_code_and_of_ors(db: Data) -> None:
    n, nr = (
        db.document(confidentiality_codes=[NORMAL]),
        db.document(confidentiality_codes=[NORMAL, RESTRICTED]),
    )
    db.submit([n, nr])
    answer = get_all(
        db,
        ("$XDSDocumentEntryConfidentialityCode", qs(code(NORMAL))),
        ("$XDSDocumentEntryConfidentialityCode", qs(code(RESTRICTED))),
    )
    assert answer.documents == ids(nr)


def test_get_all_requires_patient_and_three_statuses(db: Data) -> None:
    answer = db.ask("GetAll", [("$patientId", q1(db.patient))])
    assert answer.error_codes == ["XDSStoredQueryMissingParam"] * 3


def test_get_all_object_ref(db: Data) -> None:
    d = db.document()
    sub = db.submit([d])
    answer = get_all(db, returns="ObjectRef")
    assert answer.object_refs == ids(d, sub.submission_set, *sub.associations)


# --- GetDocuments (NIST 11901, 12000.1a, 12004) ----------------------------------------------------


def test_get_documents_by_uuid(db: Data) -> None:
    d, other = db.document(), db.document()
    db.load(d, other)
    assert db.ask("GetDocuments", [("$XDSDocumentEntryEntryUUID", qs(d.entry_uuid))]).documents == ids(d)


def test_get_documents_by_uuid_list(db: Data) -> None:
    a, b = db.document(), db.document()
    db.load(a, b)
    answer = db.ask("GetDocuments", [("$XDSDocumentEntryEntryUUID", qs(a.entry_uuid, b.entry_uuid))])
    assert answer.documents == ids(a, b)


def test_get_documents_uuid_values_split_over_value_elements(db: Data) -> None:
    a, b = db.document(), db.document()
    db.load(a, b)
    answer = db.ask("GetDocuments", [("$XDSDocumentEntryEntryUUID", [qs(a.entry_uuid), qs(b.entry_uuid)])])
    assert answer.documents == ids(a, b)


def test_get_documents_by_unique_id(db: Data) -> None:
    a, b = db.document(), db.document()
    db.load(a, b)
    assert db.ask("GetDocuments", [("$XDSDocumentEntryUniqueId", qs(a.unique_id))]).documents == ids(a)
    both = db.ask("GetDocuments", [("$XDSDocumentEntryUniqueId", qs(a.unique_id, b.unique_id))])
    assert both.documents == ids(a, b)


def test_get_documents_unique_id_of_a_resubmitted_document_gives_both_entries(db: Data) -> None:
    first = db.document()
    again = db.document(unique_id=first.unique_id)
    db.load(first, again)
    answer = db.ask("GetDocuments", [("$XDSDocumentEntryUniqueId", qs(first.unique_id))], returns="ObjectRef")
    assert answer.object_refs == ids(first, again)


def test_get_documents_returns_any_status_and_type(db: Data) -> None:
    deprecated = db.document(status=m.STATUS_DEPRECATED)
    on_demand = db.document(object_type=m.ON_DEMAND_DOCUMENT_ENTRY)
    db.load(deprecated, on_demand)
    uuids = qs(deprecated.entry_uuid, on_demand.entry_uuid)
    assert db.ask("GetDocuments", [("$XDSDocumentEntryEntryUUID", uuids)]).documents == ids(
        deprecated, on_demand
    )


def test_get_documents_with_uuid_of_other_object_types_finds_nothing(db: Data) -> None:
    d, f = db.document(), db.folder()
    sub = db.submit([d], [f])
    for other in (sub.submission_set, f):
        answer = db.ask("GetDocuments", [("$XDSDocumentEntryEntryUUID", qs(other.entry_uuid))])
        assert answer.status == "Success"
        assert answer.objects == []


def test_get_documents_with_both_uuid_and_uniqueid_gives_XDSStoredQueryParamNumber(db: Data) -> None:
    d = db.document()
    db.load(d)
    answer = db.ask(
        "GetDocuments",
        [("$XDSDocumentEntryEntryUUID", qs(d.entry_uuid)), ("$XDSDocumentEntryUniqueId", qs(d.unique_id))],
    )
    assert answer.status == "Failure"
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]
    assert answer.objects == []


def test_get_documents_with_neither_uuid_nor_uniqueid_gives_XDSStoredQueryMissingParam(db: Data) -> None:
    assert db.ask("GetDocuments", []).error_codes == ["XDSStoredQueryMissingParam"]


def test_get_documents_echoes_home_community_id_on_each_object(db: Data) -> None:
    a, b = db.document(), db.document()
    db.load(a, b)
    slots = [("$XDSDocumentEntryEntryUUID", qs(a.entry_uuid, b.entry_uuid))]
    leaf = db.ask("GetDocuments", slots, home="urn:oid:1.1.1")
    assert [o.get("home") for o in leaf.objects] == ["urn:oid:1.1.1"] * 2
    refs = db.ask("GetDocuments", slots, home="urn:oid:1.1.1", returns="ObjectRef")
    assert [o.get("home") for o in refs.objects] == ["urn:oid:1.1.1"] * 2
    assert all(o.get("home") is None for o in db.ask("GetDocuments", slots).objects)


def test_get_documents_spanning_patients_gives_XDSResultNotSinglePatient(db: Data) -> None:
    mine, theirs = db.document(), db.document(patient_id=db.other_patient)
    db.load(mine, theirs)
    slots = [("$XDSDocumentEntryEntryUUID", qs(mine.entry_uuid, theirs.entry_uuid))]
    answer = db.ask("GetDocuments", slots)
    assert answer.status == "Failure"
    assert answer.error_codes == ["XDSResultNotSinglePatient"]
    # ObjectRefs disclose no metadata: no single-patient restriction (NIST 12368)
    assert db.ask("GetDocuments", slots, returns="ObjectRef").object_refs == ids(mine, theirs)


# --- GetFolders (NIST 11902) -----------------------------------------------------------------------


def test_get_folders_by_uuid_and_by_unique_id(db: Data) -> None:
    f1, f2, f3 = db.folder(), db.folder(), db.folder()
    db.load(f1, f2, f3)
    by_uuid = db.ask("GetFolders", [("$XDSFolderEntryUUID", qs(f1.entry_uuid, f2.entry_uuid))])
    assert by_uuid.packages == ids(f1, f2)
    assert by_uuid.documents == by_uuid.associations == set()
    by_uid = db.ask("GetFolders", [("$XDSFolderUniqueId", qs(f1.unique_id, f2.unique_id))])
    assert by_uid.packages == ids(f1, f2)


def test_get_folders_single_quoted_value(db: Data) -> None:
    f = db.folder()
    db.load(f)
    assert db.ask("GetFolders", [("$XDSFolderEntryUUID", q1(f.entry_uuid))]).packages == ids(f)


def test_get_folders_with_both_uuid_and_uniqueid_gives_XDSStoredQueryParamNumber(db: Data) -> None:
    answer = db.ask(
        "GetFolders", [("$XDSFolderEntryUUID", qs("urn:uuid:x")), ("$XDSFolderUniqueId", qs("1.2"))]
    )
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


# --- GetAssociations -------------------------------------------------------------------------------


def test_get_associations_by_source_or_target(db: Data) -> None:
    d, f = db.document(), db.folder()
    sub = db.submit([d], [f], in_folder=[(f, d)])
    ss_de, ss_f, f_de, ss_fde = sub.associations
    answer = db.ask("GetAssociations", [("$uuid", qs(d.entry_uuid))])
    assert answer.associations == ids(ss_de, f_de)
    assert answer.documents == answer.packages == set()
    assert db.ask("GetAssociations", [("$uuid", qs(f.entry_uuid))]).associations == ids(ss_f, f_de)
    assert db.ask("GetAssociations", [("$uuid", qs(f_de.entry_uuid))]).associations == ids(ss_fde)


def test_get_associations_association_status_defaults_to_approved(db: Data) -> None:
    d, rplc = db.document(status=m.STATUS_DEPRECATED), db.document()
    approved = association(m.RPLC, rplc.entry_uuid, d.entry_uuid)
    deprecated = association(m.APND, rplc.entry_uuid, d.entry_uuid, status=m.STATUS_DEPRECATED)
    db.load(d, rplc, approved, deprecated)
    assert db.ask("GetAssociations", [("$uuid", qs(d.entry_uuid))]).associations == ids(approved)
    answer = db.ask("GetAssociations", [("$uuid", qs(d.entry_uuid)), ("$XDSAssociationStatus", BOTH)])
    assert answer.associations == ids(approved, deprecated)


def test_get_associations_requires_uuid(db: Data) -> None:
    assert db.ask("GetAssociations", []).error_codes == ["XDSStoredQueryMissingParam"]


# --- GetDocumentsAndAssociations -------------------------------------------------------------------


def test_get_documents_and_associations(db: Data) -> None:
    d, f, unrelated = db.document(), db.folder(), db.document()
    sub = db.submit([d, unrelated], [f], in_folder=[(f, d)])
    ss_de, _, _, f_de, _ = sub.associations
    for slot in (
        ("$XDSDocumentEntryEntryUUID", qs(d.entry_uuid)),
        ("$XDSDocumentEntryUniqueId", qs(d.unique_id)),
    ):
        answer = db.ask("GetDocumentsAndAssociations", [slot])
        assert answer.documents == ids(d)
        assert answer.associations == ids(ss_de, f_de)


def test_get_documents_and_associations_with_both_ids_gives_XDSStoredQueryParamNumber(db: Data) -> None:
    answer = db.ask(
        "GetDocumentsAndAssociations",
        [("$XDSDocumentEntryEntryUUID", qs("urn:uuid:a")), ("$XDSDocumentEntryUniqueId", qs("1.2"))],
    )
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


# --- GetSubmissionSets (NIST 11983) ----------------------------------------------------------------


def test_get_submission_sets_of_documents_and_folders(db: Data) -> None:
    d1, d2, f = db.document(), db.document(), db.folder()
    one = db.submit([d1], [f])
    two = db.submit([d2])
    answer = db.ask("GetSubmissionSets", [("$uuid", qs(d1.entry_uuid, d2.entry_uuid))])
    assert answer.packages == ids(one.submission_set, two.submission_set)
    assert answer.documents == set()
    assert answer.associations == {
        a.entry_uuid
        for a in (*one.associations, *two.associations)
        if a.target in (d1.entry_uuid, d2.entry_uuid)
    }
    folder_ss = db.ask("GetSubmissionSets", [("$uuid", qs(f.entry_uuid))])
    assert folder_ss.packages == ids(one.submission_set)


def test_get_submission_sets_ignores_folder_membership(db: Data) -> None:
    d, f = db.document(), db.folder()
    sub = db.submit([d], [f], in_folder=[(f, d)])
    answer = db.ask("GetSubmissionSets", [("$uuid", qs(d.entry_uuid))])
    assert answer.packages == ids(sub.submission_set)
    assert answer.associations == ids(sub.associations[0])


def test_get_submission_sets_of_a_submission_set_is_empty(db: Data) -> None:
    sub = db.submit([db.document()])
    answer = db.ask("GetSubmissionSets", [("$uuid", qs(sub.submission_set.entry_uuid))], returns="ObjectRef")
    assert answer.status == "Success"
    assert answer.objects == []


# --- GetSubmissionSetAndContents (NIST 12000, 12022) -----------------------------------------------


def ss_and_contents(db: Data, sub, *slots, returns: str = "LeafClass"):
    ss = ("$XDSSubmissionSetEntryUUID", q1(sub.submission_set.entry_uuid))
    return db.ask("GetSubmissionSetAndContents", [ss, *slots], returns=returns)


def test_get_submission_set_and_contents_with_one_document_and_one_folder(db: Data) -> None:
    d, f = db.document(), db.folder()
    sub = db.submit([d], [f], in_folder=[(f, d)])
    db.submit([db.document()])
    answer = ss_and_contents(db, sub)
    assert answer.packages == ids(sub.submission_set, f)
    assert answer.documents == ids(d)
    assert answer.associations == ids(*sub.associations)


def test_get_submission_set_and_contents_by_unique_id(db: Data) -> None:
    d = db.document()
    sub = db.submit([d])
    answer = db.ask(
        "GetSubmissionSetAndContents", [("$XDSSubmissionSetUniqueId", q1(sub.submission_set.unique_id))]
    )
    assert answer.packages == ids(sub.submission_set)
    assert answer.documents == ids(d)


def test_get_submission_set_and_contents_includes_deprecated_documents(db: Data) -> None:
    d = db.document(status=m.STATUS_DEPRECATED)
    sub = db.submit([d])
    assert ss_and_contents(db, sub).documents == ids(d)


def test_get_submission_set_and_contents_format_filter_drops_document_and_its_associations(db: Data) -> None:
    text, pdf, f = db.document(format_code=FORMAT), db.document(format_code=OTHER_FORMAT), db.folder()
    sub = db.submit([text, pdf], [f], in_folder=[(f, pdf)])
    ss_text, ss_pdf, ss_f, f_pdf, ss_fpdf = sub.associations
    answer = ss_and_contents(db, sub, ("$XDSDocumentEntryFormatCode", qs(code(FORMAT))))
    assert answer.documents == ids(text)
    assert answer.packages == ids(sub.submission_set, f)
    assert answer.associations == ids(ss_text, ss_f)


def test_get_submission_set_and_contents_default_type_is_stable(db: Data) -> None:
    stable, on_demand = db.document(), db.document(object_type=m.ON_DEMAND_DOCUMENT_ENTRY)
    sub = db.submit([stable, on_demand])
    assert ss_and_contents(db, sub).documents == ids(stable)
    both = ss_and_contents(
        db, sub, ("$XDSDocumentEntryType", qs(m.STABLE_DOCUMENT_ENTRY, m.ON_DEMAND_DOCUMENT_ENTRY))
    )
    assert both.documents == ids(stable, on_demand)


def test_get_submission_set_and_contents_confidentiality_filter(db: Data) -> None:
    n, r = db.document(confidentiality_codes=[NORMAL]), db.document(confidentiality_codes=[RESTRICTED])
    sub = db.submit([n, r])
    answer = ss_and_contents(db, sub, ("$XDSDocumentEntryConfidentialityCode", qs(code(RESTRICTED))))
    assert answer.documents == ids(r)


def test_get_submission_set_and_contents_takes_one_submission_set(db: Data) -> None:
    answer = db.ask(
        "GetSubmissionSetAndContents", [("$XDSSubmissionSetEntryUUID", qs("urn:uuid:a", "urn:uuid:b"))]
    )
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]
    assert db.ask("GetSubmissionSetAndContents", []).error_codes == ["XDSStoredQueryMissingParam"]


def test_get_submission_set_and_contents_object_ref(db: Data) -> None:
    d = db.document()
    sub = db.submit([d])
    answer = ss_and_contents(db, sub, returns="ObjectRef")
    assert answer.object_refs == ids(sub.submission_set, d, *sub.associations)


# --- GetFolderAndContents (NIST 12000, 12001, 12002) -----------------------------------------------


def folder_and_contents(db: Data, f: m.Folder, *slots):
    return db.ask("GetFolderAndContents", [("$XDSFolderEntryUUID", q1(f.entry_uuid)), *slots])


def test_get_folder_and_contents(db: Data) -> None:
    d, f, outside = db.document(), db.folder(), db.document()
    sub = db.submit([d, outside], [f], in_folder=[(f, d)])
    answer = folder_and_contents(db, f)
    assert answer.packages == ids(f)
    assert answer.documents == ids(d)
    assert answer.associations == {a.entry_uuid for a in sub.associations if a.source == f.entry_uuid}
    by_uid = db.ask("GetFolderAndContents", [("$XDSFolderUniqueId", q1(f.unique_id))])
    assert by_uid.documents == ids(d)


def test_get_folder_and_contents_of_an_empty_folder(db: Data) -> None:
    f = db.folder()
    db.submit([], [f])
    answer = folder_and_contents(db, f)
    assert answer.packages == ids(f)
    assert answer.documents == answer.associations == set()


def test_get_folder_and_contents_document_filters(db: Data) -> None:
    text = db.document(format_code=FORMAT)
    pdf = db.document(format_code=OTHER_FORMAT, confidentiality_codes=[RESTRICTED], event_codes=[EVENT_B])
    f = db.folder()
    sub = db.submit([text, pdf], [f], in_folder=[(f, text), (f, pdf)])
    f_text = next(a for a in sub.associations if a.source == f.entry_uuid and a.target == text.entry_uuid)
    answer = folder_and_contents(db, f, ("$XDSDocumentEntryFormatCode", qs(code(FORMAT))))
    assert answer.documents == ids(text)
    assert answer.associations == ids(f_text)
    restricted = folder_and_contents(db, f, ("$XDSDocumentEntryConfidentialityCode", qs(code(RESTRICTED))))
    assert restricted.documents == ids(pdf)


def test_get_folder_and_contents_with_both_ids_gives_XDSStoredQueryParamNumber(db: Data) -> None:
    f = db.folder()
    db.load(f)
    answer = folder_and_contents(db, f, ("$XDSFolderUniqueId", q1(f.unique_id)))
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


# --- GetFoldersForDocument -------------------------------------------------------------------------


def test_get_folders_for_document(db: Data) -> None:
    d, f1, f2, f3 = db.document(), db.folder(), db.folder(), db.folder()
    db.submit([d], [f1, f2, f3], in_folder=[(f1, d), (f2, d)])
    assert db.ask(
        "GetFoldersForDocument", [("$XDSDocumentEntryEntryUUID", q1(d.entry_uuid))]
    ).packages == ids(f1, f2)
    by_uid = db.ask("GetFoldersForDocument", [("$XDSDocumentEntryUniqueId", q1(d.unique_id))])
    assert by_uid.packages == ids(f1, f2)
    assert by_uid.associations == by_uid.documents == set()


def test_get_folders_for_document_not_in_a_folder(db: Data) -> None:
    d = db.document()
    db.submit([d])
    assert db.ask("GetFoldersForDocument", [("$XDSDocumentEntryEntryUUID", q1(d.entry_uuid))]).objects == []


def test_get_folders_for_document_takes_one_document(db: Data) -> None:
    answer = db.ask("GetFoldersForDocument", [("$XDSDocumentEntryEntryUUID", qs("urn:uuid:a", "urn:uuid:b"))])
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


# --- GetRelatedDocuments ---------------------------------------------------------------------------


def related(db: Data, d: m.DocumentEntry, types: str, *slots, by_unique_id: bool = False):
    ident = (
        ("$XDSDocumentEntryUniqueId", q1(d.unique_id))
        if by_unique_id
        else ("$XDSDocumentEntryEntryUUID", q1(d.entry_uuid))
    )
    return db.ask("GetRelatedDocuments", [ident, ("$AssociationTypes", types), *slots])


def test_get_related_documents_of_a_replaced_document(db: Data) -> None:
    original = db.document(status=m.STATUS_DEPRECATED)
    replacement = db.document()
    rplc = association(m.RPLC, replacement.entry_uuid, original.entry_uuid)
    db.load(original, replacement, rplc)
    for start in (original, replacement):
        answer = related(db, start, qs(m.RPLC))
        assert answer.documents == ids(original, replacement)
        assert answer.associations == ids(rplc)
    assert related(db, original, qs(m.RPLC), by_unique_id=True).documents == ids(original, replacement)


def test_get_related_documents_association_types_are_or(db: Data) -> None:
    d, addendum, transform, signature = db.document(), db.document(), db.document(), db.document()
    apnd = association(m.APND, addendum.entry_uuid, d.entry_uuid)
    xfrm = association(m.XFRM, transform.entry_uuid, d.entry_uuid)
    signs = association(m.SIGNS, signature.entry_uuid, d.entry_uuid)
    db.load(d, addendum, transform, signature, apnd, xfrm, signs)
    answer = related(db, d, qs(m.APND, m.XFRM))
    assert answer.documents == ids(d, addendum, transform)
    assert answer.associations == ids(apnd, xfrm)


def test_get_related_documents_without_relations_is_empty(db: Data) -> None:
    d, addendum = db.document(), db.document()
    db.load(d, addendum, association(m.APND, addendum.entry_uuid, d.entry_uuid))
    answer = related(db, d, qs(m.RPLC))
    assert answer.status == "Success"
    assert answer.objects == []


def test_get_related_documents_ignores_membership(db: Data) -> None:
    d = db.document()
    db.submit([d])
    assert related(db, d, qs(m.HAS_MEMBER)).objects == []


def test_get_related_documents_document_type_filters_related_documents(db: Data) -> None:
    on_demand = db.document(object_type=m.ON_DEMAND_DOCUMENT_ENTRY)
    snapshot = db.document()
    snap = association(m.IS_SNAPSHOT_OF, snapshot.entry_uuid, on_demand.entry_uuid)
    db.load(on_demand, snapshot, snap)
    assert related(db, snapshot, qs(m.IS_SNAPSHOT_OF)).objects == []
    answer = related(
        db, snapshot, qs(m.IS_SNAPSHOT_OF), ("$XDSDocumentEntryType", qs(m.ON_DEMAND_DOCUMENT_ENTRY))
    )
    assert answer.documents == ids(on_demand, snapshot)
    assert related(db, on_demand, qs(m.IS_SNAPSHOT_OF)).documents == ids(on_demand, snapshot)


def test_get_related_documents_association_status(db: Data) -> None:
    d, replacement = db.document(), db.document()
    rplc = association(m.RPLC, replacement.entry_uuid, d.entry_uuid, status=m.STATUS_DEPRECATED)
    db.load(d, replacement, rplc)
    assert related(db, d, qs(m.RPLC)).objects == []
    answer = related(db, d, qs(m.RPLC), ("$XDSAssociationStatus", BOTH))
    assert answer.associations == ids(rplc)


def test_get_related_documents_requires_association_types(db: Data) -> None:
    answer = db.ask("GetRelatedDocuments", [("$XDSDocumentEntryEntryUUID", q1("urn:uuid:a"))])
    assert answer.error_codes == ["XDSStoredQueryMissingParam"]


def test_get_related_documents_with_both_ids_gives_XDSStoredQueryParamNumber(db: Data) -> None:
    answer = db.ask(
        "GetRelatedDocuments",
        [
            ("$XDSDocumentEntryEntryUUID", q1("urn:uuid:a")),
            ("$XDSDocumentEntryUniqueId", q1("1.2")),
            ("$AssociationTypes", qs(m.RPLC)),
        ],
    )
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


def test_get_related_documents_object_ref(db: Data) -> None:
    d, replacement = db.document(), db.document()
    rplc = association(m.RPLC, replacement.entry_uuid, d.entry_uuid)
    db.load(d, replacement, rplc, has_member(d, replacement))
    answer = db.ask(
        "GetRelatedDocuments",
        [("$XDSDocumentEntryEntryUUID", q1(d.entry_uuid)), ("$AssociationTypes", qs(m.RPLC))],
        returns="ObjectRef",
    )
    assert answer.object_refs == ids(d, replacement, rplc)
