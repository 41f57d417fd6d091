"""ITI-18 Find queries (ITI TF-2a 3.18.4.1.2.3.7.1-3, .14), one behaviour of one parameter per
test, on SQLite and PostgreSQL. Scenarios follow the NIST SQ.b tests 11898 and 11899."""

from __future__ import annotations

import pytest

from tests.registry.stored_query_data import (
    CLASS,
    EVENT_A,
    EVENT_B,
    EVENT_C,
    FORMAT,
    NORMAL,
    OTHER_CLASS,
    OTHER_FORMAT,
    RESTRICTED,
    Data,
    ask,
    code,
    ids,
    q1,
    qs,
)
from xds.metadata import model as m
from xds.registry.store import RegistryStore


@pytest.fixture
def db(engine) -> Data:
    return Data(RegistryStore(engine))


APPROVED = qs(m.STATUS_APPROVED)


def find_documents(db: Data, *slots, returns: str = "LeafClass", patient: str | None = None):
    base = [("$XDSDocumentEntryPatientId", q1(patient or db.patient)), ("$XDSDocumentEntryStatus", APPROVED)]
    return db.ask("FindDocuments", [*base, *slots], returns=returns)


# --- FindDocuments ---------------------------------------------------------------------------------


def test_find_documents_by_patient_and_status(db: Data) -> None:
    mine = db.document()
    deprecated = db.document(status=m.STATUS_DEPRECATED)
    theirs = db.document(patient_id=db.other_patient)
    db.load(mine, deprecated, theirs)
    answer = find_documents(db)
    assert answer.status == "Success"
    assert answer.documents == ids(mine)


def test_find_documents_status_list_is_or(db: Data) -> None:
    approved, deprecated = db.document(), db.document(status=m.STATUS_DEPRECATED)
    db.load(approved, deprecated)
    answer = ask(
        db.engine,
        "FindDocuments",
        [
            ("$XDSDocumentEntryPatientId", q1(db.patient)),
            ("$XDSDocumentEntryStatus", qs(m.STATUS_APPROVED, m.STATUS_DEPRECATED)),
        ],
    )
    assert answer.documents == ids(approved, deprecated)


def test_find_documents_no_match_is_success_with_empty_list(db: Data) -> None:
    db.load(db.document())
    answer = find_documents(db, patient=db.other_patient)
    assert answer.status == "Success"
    assert answer.objects == []
    assert answer.error_codes == []


def test_find_documents_by_class_code_or_semantics(db: Data) -> None:
    a, b = db.document(class_code=CLASS), db.document(class_code=OTHER_CLASS)
    c = db.document(class_code=m.Code("DEMO-Other", CLASS.scheme))
    db.load(a, b, c)
    assert find_documents(db, ("$XDSDocumentEntryClassCode", qs(code(CLASS)))).documents == ids(a)
    both = find_documents(db, ("$XDSDocumentEntryClassCode", qs(code(CLASS), code(OTHER_CLASS))))
    assert both.documents == ids(a, b)


def test_find_documents_code_must_match_its_scheme(db: Data) -> None:
    d = db.document(class_code=CLASS)
    db.load(d)
    wrong = m.Code(CLASS.code, "9.9.9")
    assert find_documents(db, ("$XDSDocumentEntryClassCode", qs(code(wrong)))).documents == set()


def test_find_documents_code_accepts_nist_double_caret_form(db: Data) -> None:
    d = db.document(class_code=CLASS)
    db.load(d)
    value = qs(f"{CLASS.code}^^{CLASS.scheme}")
    assert find_documents(db, ("$XDSDocumentEntryClassCode", value)).documents == ids(d)


def test_find_documents_code_values_split_over_value_elements_are_or(db: Data) -> None:
    a, b = db.document(class_code=CLASS), db.document(class_code=OTHER_CLASS)
    db.load(a, b)
    answer = find_documents(db, ("$XDSDocumentEntryClassCode", [qs(code(CLASS)), qs(code(OTHER_CLASS))]))
    assert answer.documents == ids(a, b)


@pytest.mark.parametrize(
    "param, attribute",
    [
        ("$XDSDocumentEntryTypeCode", "type_code"),
        ("$XDSDocumentEntryPracticeSettingCode", "practice_setting_code"),
        ("$XDSDocumentEntryHealthcareFacilityTypeCode", "healthcare_facility_type_code"),
        ("$XDSDocumentEntryFormatCode", "format_code"),
    ],
)
def test_find_documents_by_coded_attribute(db: Data, param: str, attribute: str) -> None:
    wanted = m.Code("wanted", "1.2.3")
    a, b = db.document(**{attribute: wanted}), db.document(**{attribute: m.Code("other", "1.2.3")})
    db.load(a, b)
    assert find_documents(db, (param, qs(code(wanted)))).documents == ids(a)


def test_find_documents_by_event_code_or_semantics(db: Data) -> None:
    a, b, c = (
        db.document(event_codes=[EVENT_A]),
        db.document(event_codes=[EVENT_B]),
        db.document(event_codes=[EVENT_C]),
    )
    db.load(a, b, c)
    answer = find_documents(db, ("$XDSDocumentEntryEventCodeList", qs(code(EVENT_A), code(EVENT_B))))
    assert answer.documents == ids(a, b)


def test_find_documents_by_event_code_and_semantics_across_slots(db: Data) -> None:
    ab = db.document(event_codes=[EVENT_A, EVENT_B])
    ac = db.document(event_codes=[EVENT_A, EVENT_C])
    b = db.document(event_codes=[EVENT_B])
    db.load(ab, ac, b)
    answer = find_documents(
        db,
        ("$XDSDocumentEntryEventCodeList", qs(code(EVENT_A))),
        ("$XDSDocumentEntryEventCodeList", qs(code(EVENT_B), code(EVENT_C))),
    )
    assert answer.documents == ids(ab, ac)


def test_find_documents_by_confidentiality_code_and_of_ors(db: Data) -> None:
    n, nr = (
        db.document(confidentiality_codes=[NORMAL]),
        db.document(confidentiality_codes=[NORMAL, RESTRICTED]),
    )
    db.load(n, nr)
    assert find_documents(db, ("$XDSDocumentEntryConfidentialityCode", qs(code(NORMAL)))).documents == ids(
        n, nr
    )
    both = find_documents(
        db,
        ("$XDSDocumentEntryConfidentialityCode", qs(code(NORMAL))),
        ("$XDSDocumentEntryConfidentialityCode", qs(code(RESTRICTED))),
    )
    assert both.documents == ids(nr)


def test_find_documents_class_code_in_two_slots_gives_XDSStoredQueryParamNumber(db: Data) -> None:
    answer = find_documents(
        db,
        ("$XDSDocumentEntryClassCode", qs(code(CLASS))),
        ("$XDSDocumentEntryClassCode", qs(code(OTHER_CLASS))),
    )
    assert answer.status == "Failure"
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


def test_find_documents_creation_time_from_is_inclusive_to_exclusive(db: Data) -> None:
    before = db.document(creation_time="20041223235959")
    at_from = db.document(creation_time="20041224")
    inside = db.document(creation_time="200412241530")
    at_to = db.document(creation_time="20041225")
    db.load(before, at_from, inside, at_to)
    answer = find_documents(
        db,
        ("$XDSDocumentEntryCreationTimeFrom", "20041224"),
        ("$XDSDocumentEntryCreationTimeTo", "20041225"),
    )
    assert answer.documents == ids(at_from, inside)


def test_find_documents_time_bounds_compare_at_any_precision(db: Data) -> None:
    # From=200412 means from 2004-12-01 00:00:00; To=200501 means before 2005-01-01 (NIST 11898)
    dec = db.document(creation_time="2004120100")
    nov = db.document(creation_time="20041130235959")
    jan = db.document(creation_time="2005")
    db.load(dec, nov, jan)
    answer = find_documents(
        db, ("$XDSDocumentEntryCreationTimeFrom", "200412"), ("$XDSDocumentEntryCreationTimeTo", "200501")
    )
    assert answer.documents == ids(dec)


def test_find_documents_time_bound_alone(db: Data) -> None:
    old, new = db.document(creation_time="1999"), db.document(creation_time="2010")
    db.load(old, new)
    assert find_documents(db, ("$XDSDocumentEntryCreationTimeFrom", "2000")).documents == ids(new)
    assert find_documents(db, ("$XDSDocumentEntryCreationTimeTo", "2000")).documents == ids(old)


def test_find_documents_time_bound_excludes_entries_without_the_attribute(db: Data) -> None:
    timed, untimed = db.document(service_start_time="2004"), db.document(service_start_time=None)
    db.load(timed, untimed)
    assert find_documents(db, ("$XDSDocumentEntryServiceStartTimeFrom", "2000")).documents == ids(timed)


def test_find_documents_quoted_time_value_is_accepted(db: Data) -> None:
    d = db.document(creation_time="2004")
    db.load(d)
    assert find_documents(db, ("$XDSDocumentEntryCreationTimeFrom", "'2004'")).documents == ids(d)


@pytest.mark.parametrize(
    "param, attribute",
    [
        ("$XDSDocumentEntryServiceStartTime", "service_start_time"),
        ("$XDSDocumentEntryServiceStopTime", "service_stop_time"),
    ],
)
def test_find_documents_by_service_time_range(db: Data, param: str, attribute: str) -> None:
    inside, outside = db.document(**{attribute: "200412230800"}), db.document(**{attribute: "200512230800"})
    db.load(inside, outside)
    answer = find_documents(db, (param + "From", "200412"), (param + "To", "2005"))
    assert answer.documents == ids(inside)


def test_find_documents_malformed_time_gives_XDSRegistryError(db: Data) -> None:
    answer = find_documents(db, ("$XDSDocumentEntryCreationTimeFrom", "2004-12-24"))
    assert answer.status == "Failure"
    assert answer.error_codes == ["XDSRegistryError"]


def test_find_documents_time_with_two_values_gives_XDSStoredQueryParamNumber(db: Data) -> None:
    answer = find_documents(db, ("$XDSDocumentEntryCreationTimeFrom", "(2004,2005)"))
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


def test_find_documents_by_author_person_wildcards(db: Data) -> None:
    smitty = db.document(authors=[m.Author(person="^Smitty^Gerald^^^")])
    smith = db.document(authors=[m.Author(person="^Smith^John^^^")])
    other = db.document(authors=[m.Author(person="^Jones^Ann^^^")])
    db.load(smitty, smith, other)
    assert find_documents(db, ("$XDSDocumentEntryAuthorPerson", qs("%Smitty%"))).documents == ids(smitty)
    assert find_documents(db, ("$XDSDocumentEntryAuthorPerson", qs("^Smit__^%"))).documents == ids(smitty)
    assert find_documents(db, ("$XDSDocumentEntryAuthorPerson", qs("%Smit%"))).documents == ids(smitty, smith)


def test_find_documents_author_person_values_are_or(db: Data) -> None:
    smitty = db.document(authors=[m.Author(person="^Smitty^Gerald^^^")])
    jones = db.document(authors=[m.Author(person="^Jones^Ann^^^")])
    other = db.document(authors=[m.Author(person="^Brown^Bob^^^")])
    db.load(smitty, jones, other)
    answer = find_documents(db, ("$XDSDocumentEntryAuthorPerson", qs("%Smitty%", "%Jones%")))
    assert answer.documents == ids(smitty, jones)


def test_find_documents_author_person_matches_any_author(db: Data) -> None:
    d = db.document(authors=[m.Author(person="^Smitty^Gerald^^^"), m.Author(person="^Jones^Ann^^^")])
    db.load(d)
    assert find_documents(db, ("$XDSDocumentEntryAuthorPerson", qs("%Jones%"))).documents == ids(d)


def test_find_documents_author_person_without_wildcard_is_exact(db: Data) -> None:
    d = db.document(authors=[m.Author(person="^Smitty^Gerald^^^")])
    db.load(d)
    assert find_documents(db, ("$XDSDocumentEntryAuthorPerson", qs("Smitty"))).documents == set()
    assert find_documents(db, ("$XDSDocumentEntryAuthorPerson", qs("^Smitty^Gerald^^^"))).documents == ids(d)


def test_find_documents_author_person_escape_character_is_literal(db: Data) -> None:
    backslash = db.document(authors=[m.Author(person="^O\\Brien^Pat^^^")])
    plain = db.document(authors=[m.Author(person="^OBrien^Pat^^^")])
    db.load(backslash, plain)
    answer = find_documents(db, ("$XDSDocumentEntryAuthorPerson", qs("^O\\Brien%")))
    assert answer.documents == ids(backslash)


def test_find_documents_author_person_with_quote(db: Data) -> None:
    d = db.document(authors=[m.Author(person="^O'Brien^Pat^^^")])
    db.load(d)
    assert find_documents(db, ("$XDSDocumentEntryAuthorPerson", "('%O''Brien%')")).documents == ids(d)


def test_find_documents_default_type_is_stable_only(db: Data) -> None:
    stable, on_demand = db.document(), db.document(object_type=m.ON_DEMAND_DOCUMENT_ENTRY)
    db.load(stable, on_demand)
    assert find_documents(db).documents == ids(stable)
    answer = find_documents(db, ("$XDSDocumentEntryType", qs(m.ON_DEMAND_DOCUMENT_ENTRY)))
    assert answer.documents == ids(on_demand)
    both = find_documents(
        db, ("$XDSDocumentEntryType", qs(m.STABLE_DOCUMENT_ENTRY, m.ON_DEMAND_DOCUMENT_ENTRY))
    )
    assert both.documents == ids(stable, on_demand)


def test_find_documents_parameters_combine_with_and(db: Data) -> None:
    match = db.document(class_code=CLASS, format_code=FORMAT, event_codes=[EVENT_A])
    wrong_format = db.document(class_code=CLASS, format_code=OTHER_FORMAT, event_codes=[EVENT_A])
    wrong_event = db.document(class_code=CLASS, format_code=FORMAT, event_codes=[EVENT_B])
    db.load(match, wrong_format, wrong_event)
    answer = find_documents(
        db,
        ("$XDSDocumentEntryClassCode", qs(code(CLASS))),
        ("$XDSDocumentEntryFormatCode", qs(code(FORMAT))),
        ("$XDSDocumentEntryEventCodeList", qs(code(EVENT_A))),
    )
    assert answer.documents == ids(match)


def test_find_documents_without_patient_id_gives_XDSStoredQueryMissingParam(db: Data) -> None:
    answer = db.ask("FindDocuments", [("$XDSDocumentEntryStatus", APPROVED)])
    assert answer.status == "Failure"
    assert answer.error_codes == ["XDSStoredQueryMissingParam"]


def test_find_documents_without_status_gives_XDSStoredQueryMissingParam(db: Data) -> None:
    answer = db.ask("FindDocuments", [("$XDSDocumentEntryPatientId", q1(db.patient))])
    assert answer.error_codes == ["XDSStoredQueryMissingParam"]


def test_find_documents_with_two_patient_ids_gives_XDSStoredQueryParamNumber(db: Data) -> None:
    answer = ask(
        db.engine,
        "FindDocuments",
        [
            ("$XDSDocumentEntryPatientId", qs(db.patient, db.other_patient)),
            ("$XDSDocumentEntryStatus", APPROVED),
        ],
    )
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


def test_find_documents_reports_every_parameter_problem(db: Data) -> None:
    answer = db.ask("FindDocuments", [("$XDSDocumentEntryCreationTimeFrom", "yesterday")])
    assert sorted(answer.error_codes) == [
        "XDSRegistryError",
        "XDSStoredQueryMissingParam",
        "XDSStoredQueryMissingParam",
    ]


def test_find_documents_object_ref_returns_ids_only(db: Data) -> None:
    a, b = db.document(), db.document()
    db.load(a, b)
    answer = find_documents(db, returns="ObjectRef")
    assert answer.object_refs == ids(a, b)
    assert answer.documents == set()


def test_find_documents_unknown_parameter_is_ignored(db: Data) -> None:
    d = db.document()
    db.load(d)
    assert find_documents(db, ("$XDSDocumentEntryUnknownThing", qs("x"))).documents == ids(d)


def test_find_documents_patient_merged_away_answers_for_the_surviving_patient(db: Data) -> None:
    db.store.record_patient(db.patient, {}, "feed", "1")
    db.store.record_patient(db.other_patient, {}, "feed", "2")
    old, new = db.document(patient_id=db.other_patient), db.document(patient_id=db.patient)
    db.load(old, new)
    db.store.merge_patient(db.other_patient, db.patient)
    # the surviving id also finds what was registered under the merged-away id
    assert find_documents(db).documents == ids(old, new)
    assert find_documents(db, patient=db.other_patient).documents == ids(old, new)


def test_find_documents_patient_merged_away_with_policy_unknown_gives_XDSUnknownPatientId(db: Data) -> None:
    from xds.config import RegistryConfig

    db.store.record_patient(db.patient, {}, "feed", "1")
    db.store.record_patient(db.other_patient, {}, "feed", "2")
    old, new = db.document(patient_id=db.other_patient), db.document(patient_id=db.patient)
    db.load(old, new)
    db.store.merge_patient(db.other_patient, db.patient)
    config = RegistryConfig(merged_patient_policy="unknown")
    slots = [("$XDSDocumentEntryStatus", APPROVED)]
    merged = ask(
        db.engine,
        "FindDocuments",
        [("$XDSDocumentEntryPatientId", q1(db.other_patient)), *slots],
        config=config,
    )
    assert (merged.status, merged.error_codes, merged.documents) == ("Failure", ["XDSUnknownPatientId"], set())
    surviving = ask(
        db.engine, "FindDocuments", [("$XDSDocumentEntryPatientId", q1(db.patient)), *slots], config=config
    )
    assert surviving.documents == ids(old, new)


# --- FindDocumentsByReferenceId --------------------------------------------------------------------

ACCESSION = "A1234^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:accession"
ORDER = "O99^^^&1.2.3.4&ISO^urn:ihe:iti:xds:2013:order"
STUDY = "1.2.840.99.1^^^^urn:ihe:iti:xds:2016:studyInstanceUID"


def find_by_reference(db: Data, *slots):
    base = [("$XDSDocumentEntryPatientId", q1(db.patient)), ("$XDSDocumentEntryStatus", APPROVED)]
    return db.ask("FindDocumentsByReferenceId", [*base, *slots])


def test_find_documents_by_reference_id_list_or_semantics(db: Data) -> None:
    a, b = db.document(reference_ids=[ACCESSION]), db.document(reference_ids=[ORDER])
    c, none = db.document(reference_ids=[STUDY]), db.document(reference_ids=[])
    db.load(a, b, c, none)
    assert find_by_reference(db, ("$XDSDocumentEntryReferenceIdList", qs(ACCESSION))).documents == ids(a)
    answer = find_by_reference(db, ("$XDSDocumentEntryReferenceIdList", qs(ACCESSION, STUDY)))
    assert answer.documents == ids(a, c)


def test_find_documents_by_reference_id_slots_are_and(db: Data) -> None:
    both, one = db.document(reference_ids=[ACCESSION, ORDER]), db.document(reference_ids=[ACCESSION])
    db.load(both, one)
    answer = find_by_reference(
        db,
        ("$XDSDocumentEntryReferenceIdList", qs(ACCESSION)),
        ("$XDSDocumentEntryReferenceIdList", qs(ORDER)),
    )
    assert answer.documents == ids(both)


def test_find_documents_by_reference_id_applies_find_documents_parameters(db: Data) -> None:
    a = db.document(reference_ids=[ACCESSION], class_code=CLASS)
    b = db.document(reference_ids=[ACCESSION], class_code=OTHER_CLASS)
    db.load(a, b)
    answer = find_by_reference(
        db,
        ("$XDSDocumentEntryReferenceIdList", qs(ACCESSION)),
        ("$XDSDocumentEntryClassCode", qs(code(CLASS))),
    )
    assert answer.documents == ids(a)


def test_find_documents_by_reference_id_requires_the_list(db: Data) -> None:
    assert find_by_reference(db).error_codes == ["XDSStoredQueryMissingParam"]


# --- FindSubmissionSets (NIST 11898) ---------------------------------------------------------------


def find_submission_sets(db: Data, *slots, returns: str = "LeafClass"):
    base = [("$XDSSubmissionSetPatientId", q1(db.patient)), ("$XDSSubmissionSetStatus", APPROVED)]
    return db.ask("FindSubmissionSets", [*base, *slots], returns=returns)


@pytest.fixture
def five_submission_sets(db: Data) -> list[m.SubmissionSet]:
    sets = [db.submission_set(submission_time=f"2004122{i}120000") for i in range(5)]
    for ss in sets:
        db.submit([db.document()], ss=ss)
    db.submit([db.document(patient_id=db.other_patient)], ss=db.submission_set(patient_id=db.other_patient))
    return sets


def test_find_submission_sets_simple(db: Data, five_submission_sets) -> None:
    answer = find_submission_sets(db)
    assert answer.packages == ids(*five_submission_sets)
    assert answer.documents == answer.associations == set()


def test_find_submission_sets_by_source_id(db: Data, five_submission_sets) -> None:
    assert (
        find_submission_sets(db, ("$XDSSubmissionSetSourceId", qs("1.2.669847365.352.1"))).packages == set()
    )
    answer = find_submission_sets(
        db, ("$XDSSubmissionSetSourceId", qs("1.2.669847365.352.1", "1.3.6.1.4.1.21367.4"))
    )
    assert answer.packages == ids(*five_submission_sets)


@pytest.mark.parametrize(
    "bounds, expected",
    [
        ((("From", "200412"), ("To", "200501")), 5),  # submissiontime_in
        ((("From", "200312"), ("To", "200401")), 0),  # submissiontime_out
        ((("From", "200412"),), 5),  # submissiontime_no_end
        ((("To", "200501"),), 5),  # submissiontime_no_start
        ((("From", "20041222"), ("To", "20041224")), 2),  # From inclusive, To exclusive
    ],
)
def test_find_submission_sets_by_submission_time(db: Data, five_submission_sets, bounds, expected) -> None:
    slots = [(f"$XDSSubmissionSetSubmissionTime{side}", value) for side, value in bounds]
    assert len(find_submission_sets(db, *slots).packages) == expected


def test_find_submission_sets_by_author_person(db: Data, five_submission_sets) -> None:
    assert find_submission_sets(db, ("$XDSSubmissionSetAuthorPerson", q1("%Dopplemeyer%"))).packages == ids(
        *five_submission_sets
    )
    assert find_submission_sets(db, ("$XDSSubmissionSetAuthorPerson", q1("%Smith%"))).packages == set()


def test_find_submission_sets_author_person_is_single_valued(db: Data) -> None:
    answer = find_submission_sets(db, ("$XDSSubmissionSetAuthorPerson", qs("%a%", "%b%")))
    assert answer.error_codes == ["XDSStoredQueryParamNumber"]


def test_find_submission_sets_by_content_type(db: Data, five_submission_sets) -> None:
    all_five = find_submission_sets(
        db, ("$XDSSubmissionSetContentType", qs("225728007^^2.16.840.1.113883.6.96"))
    )
    assert all_five.packages == ids(*five_submission_sets)
    none = find_submission_sets(db, ("$XDSSubmissionSetContentType", qs("Unknown^^2.16.840.1.113883.6.96")))
    assert none.packages == set()


def test_find_submission_sets_by_status(db: Data) -> None:
    ss = db.submission_set(status=m.STATUS_DEPRECATED)
    db.submit([db.document()], ss=ss)
    assert find_submission_sets(db).packages == set()
    answer = ask(
        db.engine,
        "FindSubmissionSets",
        [
            ("$XDSSubmissionSetPatientId", q1(db.patient)),
            ("$XDSSubmissionSetStatus", qs(m.STATUS_DEPRECATED)),
        ],
    )
    assert answer.packages == ids(ss)


def test_find_submission_sets_requires_patient_and_status(db: Data) -> None:
    answer = db.ask("FindSubmissionSets", [])
    assert answer.error_codes == ["XDSStoredQueryMissingParam", "XDSStoredQueryMissingParam"]


# --- FindFolders (NIST 11899) ----------------------------------------------------------------------


def find_folders(db: Data, *slots, returns: str = "LeafClass"):
    base = [("$XDSFolderPatientId", q1(db.patient)), ("$XDSFolderStatus", APPROVED)]
    return db.ask("FindFolders", [*base, *slots], returns=returns)


REFERRALS = m.Code("Referrals", "1.3.6.1.4.1.21367.2017.3")
LABS = m.Code("Labs", "1.3.6.1.4.1.21367.2017.3")


def test_find_folders_basic(db: Data) -> None:
    f1, f2, theirs = db.folder(), db.folder(), db.folder(patient_id=db.other_patient)
    db.load(f1, f2, theirs)
    answer = find_folders(db)
    assert answer.packages == ids(f1, f2)


def test_find_folders_by_code_list_nist_form(db: Data) -> None:
    referral, lab = db.folder(codes=[REFERRALS]), db.folder(codes=[LABS])
    db.load(referral, lab)
    answer = find_folders(db, ("$XDSFolderCodeList", "('Referrals^^1.3.6.1.4.1.21367.2017.3')"))
    assert answer.packages == ids(referral)


def test_find_folders_code_list_and_of_ors(db: Data) -> None:
    both, referral, lab = (
        db.folder(codes=[REFERRALS, LABS]),
        db.folder(codes=[REFERRALS]),
        db.folder(codes=[LABS]),
    )
    db.load(both, referral, lab)
    assert find_folders(db, ("$XDSFolderCodeList", qs(code(REFERRALS), code(LABS)))).packages == ids(
        both, referral, lab
    )
    answer = find_folders(
        db, ("$XDSFolderCodeList", qs(code(REFERRALS))), ("$XDSFolderCodeList", qs(code(LABS)))
    )
    assert answer.packages == ids(both)


def test_find_folders_by_last_update_time(db: Data) -> None:
    f = db.folder(last_update_time="20041225235050")
    db.load(f)
    assert find_folders(
        db, ("$XDSFolderLastUpdateTimeFrom", "2004"), ("$XDSFolderLastUpdateTimeTo", "2005")
    ).packages == ids(f)
    assert (
        find_folders(
            db, ("$XDSFolderLastUpdateTimeFrom", "2001"), ("$XDSFolderLastUpdateTimeTo", "2003")
        ).packages
        == set()
    )
    assert find_folders(db, ("$XDSFolderLastUpdateTimeTo", "20041225235050")).packages == set()
    assert find_folders(db, ("$XDSFolderLastUpdateTimeFrom", "20041225235050")).packages == ids(f)


def test_find_folders_by_status(db: Data) -> None:
    f = db.folder(status=m.STATUS_DEPRECATED)
    db.load(f)
    assert find_folders(db).packages == set()


def test_find_folders_object_ref(db: Data) -> None:
    f = db.folder()
    db.load(f)
    assert find_folders(db, returns="ObjectRef").object_refs == ids(f)
