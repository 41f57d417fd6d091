"""One test per rule of the catalogue: each broken submission gives exactly the IHE code it must."""

from __future__ import annotations

import pytest

from tests.metadata import factory as f
from xds.metadata import model as m
from xds.metadata.codes import load_codes
from xds.metadata.errors import ERROR, WARNING, RegistryError, XdsError
from xds.metadata.rules import (
    ErrorCode,
    ExternalReference,
    Profile,
    Rule,
    as_reported_by,
    external_references,
    validate_submission,
)

ITI41, ITI42 = Profile.ITI_41, Profile.ITI_42


@pytest.fixture(scope="module")
def codes():
    return load_codes(f.CODES_XML)


def check(sub: m.Submission, profile: Profile = ITI42, **kw) -> list[RegistryError]:
    return validate_submission(sub, profile=profile, **kw)


def only(errors: list[RegistryError], code: str, *mentions: str) -> RegistryError:
    """The errors are all ``code`` and the first names everything in ``mentions``."""
    assert errors, f"expected {code}, got no error"
    assert {e.code for e in errors} == {code}, errors
    for text in mentions:
        assert text in errors[0].context, errors[0]
    return errors[0]


# --- the catalogue itself ----------------------------------------------------------------------------

TABLE_4_2_4_1_2 = """XDSRegistryMetadataError XDSRepositoryMetadataError XDSPatientIdDoesNotMatch XDSUnknownPatientId
XDSRegistryDuplicateUniqueIdInMessage XDSRepositoryDuplicateUniqueIdInMessage XDSDuplicateUniqueIdInRegistry
XDSNonIdenticalHash XDSNonIdenticalSize XDSRegistryDeprecatedDocumentError XDSRegistryError XDSRepositoryError
XDSRegistryBusy XDSRegistryOutOfResources XDSExtraMetadataNotSaved XDSMissingDocument XDSMissingDocumentMetadata
XDSDocumentUniqueIdError XDSUnknownRepositoryId XDSStoredQueryMissingParam XDSStoredQueryParamNumber
XDSUnknownStoredQuery XDSResultNotSinglePatient XDSTooManyResults XDSUnknownCommunity XDSMissingHomeCommunityId
XDSUnavailableCommunity XDSInvalidRequestException XDSReplaceFailed UnresolvedReferenceException
InvalidDocumentContent PartialFolderContentNotProcessed PartialAppendContentNotProcessed
PartialReplaceContentNotProcessed PartialTransformNotProcessed PartialTransformReplaceNotProcessed""".split()


def test_catalogue_has_every_error_code_a_registry_or_repository_raises():
    assert set(TABLE_4_2_4_1_2) <= {c.value for c in ErrorCode}


def test_every_error_code_is_raised_by_some_rule():
    assert {r.code for r in Rule} == set(ErrorCode)


def test_partial_content_codes_are_warnings():
    for rule in Rule:
        if rule.code.value.startswith("Partial") or rule.code is ErrorCode.XDS_EXTRA_METADATA_NOT_SAVED:
            assert rule.severity == WARNING, rule


def test_rule_error_fills_template_and_location():
    e = Rule.UNKNOWN_PATIENT_ID.error(location="Document01", patient_id="1^^^&1.2&ISO")
    assert e == RegistryError(
        "XDSUnknownPatientId",
        "patientId '1^^^&1.2&ISO' is not known to the registry (no Patient Identity Feed)",
        ERROR,
        "Document01",
    )


def test_rule_error_with_a_missing_field_still_reports():
    assert "{reason}" in Rule.REGISTRY_ERROR.error().context


def test_rule_exception_is_an_XdsError_with_the_code():
    with pytest.raises(XdsError) as info:
        raise Rule.DEPRECATED_TARGET.exception(id="a1", target="urn:uuid:x")
    assert info.value.code == "XDSRegistryDeprecatedDocumentError"
    assert len(info.value.errors) == 1


def test_registry_codes_become_repository_codes_when_the_repository_reports():
    errs = [
        Rule.DUPLICATE_UNIQUE_ID_IN_MESSAGE.error(value="1.2"),
        Rule.INVALID_HASH.error(),
        Rule.UNKNOWN_PATIENT_ID.error(),
    ]
    assert [e.code for e in as_reported_by(errs, ITI41)] == [
        "XDSRepositoryDuplicateUniqueIdInMessage",
        "XDSRepositoryMetadataError",
        "XDSUnknownPatientId",
    ]
    assert as_reported_by(errs, ITI42) == errs


# --- valid submissions -------------------------------------------------------------------------------


@pytest.mark.parametrize("profile", list(Profile))
def test_valid_submission_with_documents_and_folder_has_no_errors(profile, codes):
    assert check(f.submission(2, 1), profile, codes=codes, patient_assigning_authority=f.AUTHORITY) == []


def test_iti41_entry_without_hash_size_repository_unique_id_is_valid():
    sub = f.submission()
    de = sub.document_entries[0]
    de.hash = de.size = de.repository_unique_id = None
    assert check(sub, ITI41) == []


@pytest.mark.parametrize("attribute", ["hash", "size", "repository_unique_id"])
def test_iti42_stable_entry_without_repository_attribute_gives_XDSRegistryMetadataError(attribute):
    sub = f.submission()
    setattr(sub.document_entries[0], attribute, None)
    only(check(sub, ITI42), "XDSRegistryMetadataError", "lacks required attribute", "ITI-42")


def test_profile_is_accepted_positionally():
    assert validate_submission(f.submission(), ITI42) == []


# --- structure ------------------------------------------------------------------------------------


def test_submission_without_submission_set_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.submission_set = None
    sub.associations = []
    errs = check(sub)
    assert errs[0].code == "XDSRegistryMetadataError" and "no SubmissionSet" in errs[0].context


def test_submission_without_submission_set_at_repository_gives_XDSRepositoryMetadataError():
    sub = m.Submission()
    only(check(sub, ITI41), "XDSRepositoryMetadataError", "no SubmissionSet")


def test_two_objects_with_one_id_give_XDSRegistryMetadataError():
    sub = f.submission(2)
    sub.document_entries[1].entry_uuid = "Document01"
    errs = [e for e in check(sub) if "more than one object" in e.context]
    assert [e.code for e in errs] == ["XDSRegistryMetadataError"]


def test_malformed_uuid_id_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].entry_uuid = "urn:uuid:not-a-uuid"
    sub.associations[0].target = "urn:uuid:not-a-uuid"
    errs = check(sub)
    assert {e.code for e in errs} == {"XDSRegistryMetadataError"}
    assert any("is not a UUID" in e.context for e in errs)


def test_lid_different_from_id_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].entry_uuid = "urn:uuid:7c1d3c1e-0d39-4f7c-9e0d-8d3a4b1c2e3f"
    sub.associations[0].target = sub.document_entries[0].entry_uuid
    sub.document_entries[0].lid = "urn:uuid:11111111-2222-3333-4444-555555555555"
    only(check(sub), "XDSRegistryMetadataError", "Update Document Set")


def test_lid_not_a_uuid_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].lid = "Document01"
    only(check(sub), "XDSRegistryMetadataError", "not a UUID")


def test_bad_home_community_id_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.submission_set.home_community_id = "1.2.3"
    only(check(sub), "XDSRegistryMetadataError", "homeCommunityId")


# --- required attributes (ITI TF-3 Table 4.3.1-3) -------------------------------------------------------

DE_REQUIRED = {
    "class_code": "classCode",
    "confidentiality_codes": "confidentialityCode",
    "creation_time": "creationTime",
    "format_code": "formatCode",
    "healthcare_facility_type_code": "healthcareFacilityTypeCode",
    "language_code": "languageCode",
    "mime_type": "mimeType",
    "object_type": "objectType",
    "patient_id": "patientId",
    "practice_setting_code": "practiceSettingCode",
    "source_patient_id": "sourcePatientId",
    "type_code": "typeCode",
    "unique_id": "uniqueId",
}


@pytest.mark.parametrize("field,attribute", DE_REQUIRED.items())
@pytest.mark.parametrize("profile", [ITI41, ITI42])
def test_documententry_without_required_attribute_gives_metadata_error(field, attribute, profile):
    sub = f.submission()
    empty = (
        []
        if field == "confidentiality_codes"
        else ""
        if field in ("mime_type", "object_type", "patient_id", "unique_id")
        else None
    )
    setattr(sub.document_entries[0], field, empty)
    code = "XDSRepositoryMetadataError" if profile is ITI41 else "XDSRegistryMetadataError"
    only(check(sub, profile), code, f"lacks required attribute {attribute} ")


@pytest.mark.parametrize(
    "field,attribute",
    [
        ("content_type_code", "contentTypeCode"),
        ("unique_id", "uniqueId"),
        ("source_id", "sourceId"),
        ("patient_id", "patientId"),
        ("submission_time", "submissionTime"),
    ],
)
def test_submissionset_without_required_attribute_gives_XDSRegistryMetadataError(field, attribute):
    sub = f.submission()
    setattr(sub.submission_set, field, None if field in ("content_type_code", "submission_time") else "")
    errs = check(sub)
    assert all(e.code == "XDSRegistryMetadataError" for e in errs)
    assert any(f"lacks required attribute {attribute} " in e.context for e in errs), errs


@pytest.mark.parametrize(
    "field,attribute", [("title", "title"), ("unique_id", "uniqueId"), ("patient_id", "patientId")]
)
def test_folder_without_required_attribute_gives_XDSRegistryMetadataError(field, attribute):
    sub = f.submission(1, 1)
    setattr(sub.folders[0], field, None if field == "title" else "")
    only(check(sub), "XDSRegistryMetadataError", f"lacks required attribute {attribute} ")


def test_author_without_person_institution_or_telecom_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].authors = [m.Author(roles=["Attending"])]
    only(check(sub), "XDSRegistryMetadataError", "authorPerson, authorInstitution, authorTelecommunication")


def test_limited_metadata_in_xds_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].limited_metadata = True
    only(check(sub), "XDSRegistryMetadataError", "limitedMetadata")


def test_on_demand_entry_in_register_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].object_type = m.ON_DEMAND_DOCUMENT_ENTRY
    only(check(sub), "XDSRegistryMetadataError", "On-Demand")


def test_unknown_object_type_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].object_type = "urn:uuid:7edca82f-054d-47f2-a032-9b2a5b518fff"
    only(check(sub), "XDSRegistryMetadataError", "not a DocumentEntry type")


# --- formats ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["2004122", "20041332", "20050229", "2004122425", "200412240860", "2004-12-24", "20041224120000+0100"],
)
def test_creation_time_not_a_dtm_gives_XDSRegistryMetadataError(value):
    sub = f.submission()
    sub.document_entries[0].creation_time = value
    only(check(sub), "XDSRegistryMetadataError", "creationTime", "DTM")


@pytest.mark.parametrize("attribute", ["service_start_time", "service_stop_time"])
def test_service_time_not_a_dtm_gives_XDSRegistryMetadataError(attribute):
    sub = f.submission()
    setattr(sub.document_entries[0], attribute, "yesterday")
    only(check(sub), "XDSRegistryMetadataError", "DTM")


def test_submission_time_not_a_dtm_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.submission_set.submission_time = "20041225T235050"
    only(check(sub), "XDSRegistryMetadataError", "submissionTime")


def test_folder_last_update_time_not_a_dtm_gives_XDSRegistryMetadataError():
    sub = f.submission(1, 1)
    sub.folders[0].last_update_time = "2004-12-25"
    only(check(sub), "XDSRegistryMetadataError", "lastUpdateTime")


@pytest.mark.parametrize("value", ["1.2.03", "SubmissionSet01", "1." + "2" * 64, "1"])
def test_submissionset_unique_id_not_an_oid_gives_XDSRegistryMetadataError(value):
    sub = f.submission()
    sub.submission_set.unique_id = value
    only(check(sub), "XDSRegistryMetadataError", "uniqueId", "not an OID")


def test_source_id_not_an_oid_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.submission_set.source_id = "urn:oid:1.2.3"
    only(check(sub), "XDSRegistryMetadataError", "sourceId")


def test_repository_unique_id_not_an_oid_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].repository_unique_id = "repo-1"
    only(check(sub), "XDSRegistryMetadataError", "repositoryUniqueId")


def test_folder_unique_id_not_an_oid_gives_XDSRegistryMetadataError():
    sub = f.submission(1, 1)
    sub.folders[0].unique_id = "Folder-1"
    only(check(sub), "XDSRegistryMetadataError", "uniqueId")


@pytest.mark.parametrize("value", ["1.2.3.4^abc", "1.2.3^0123456789abcdef"])
def test_document_unique_id_root_extension_is_valid(value):
    sub = f.submission()
    sub.document_entries[0].unique_id = value
    assert check(sub) == []


@pytest.mark.parametrize("value", ["1.2.3^0123456789abcdefg", "Document01", "1.2.3^", "abc^def"])
def test_document_unique_id_neither_oid_nor_root_extension_gives_XDSRegistryMetadataError(value):
    sub = f.submission()
    sub.document_entries[0].unique_id = value
    only(check(sub), "XDSRegistryMetadataError", "root^extension")


@pytest.mark.parametrize(
    "value,problem",
    [
        ("P1^^^&1.3.6.1.4.1.21367.13.20.1000", "not ISO"),
        ("P1^^^HN&1.3.6.1.4.1.21367.13.20.1000&ISO", "namespace ID"),
        ("P1^^^&1.3.6.1.4.1.21367.13.20.1000&ISO^PI", "other than CX.1 and CX.4"),
        ("P1^1^M10^&1.3.6.1.4.1.21367.13.20.1000&ISO", "other than CX.1 and CX.4"),
        ("^^^&1.3.6.1.4.1.21367.13.20.1000&ISO", "no ID number"),
        ("P1", "no assigning authority"),
        ("P1^^^&HN&ISO", "not an OID"),
    ],
)
def test_patient_id_not_an_xds_cx_gives_XDSRegistryMetadataError(value, problem):
    sub = f.submission()
    for o in (sub.submission_set, *sub.document_entries):
        o.patient_id = value
    errs = check(sub)
    assert {e.code for e in errs} == {"XDSRegistryMetadataError"}
    assert any(problem in e.context and "patientId" in e.context for e in errs), errs


def test_patient_id_of_another_assigning_authority_gives_XDSUnknownPatientId():
    sub = f.submission()
    for o in (sub.submission_set, *sub.document_entries):
        o.patient_id = "P1^^^&1.3.6.1.4.1.21367.13.20.2000&ISO"
    errs = check(sub, patient_assigning_authority=f.AUTHORITY)
    assert [e.code for e in errs] == ["XDSUnknownPatientId", "XDSUnknownPatientId"]
    assert f.AUTHORITY in errs[0].context


def test_patient_id_of_any_authority_passes_when_none_is_configured():
    sub = f.submission()
    for o in (sub.submission_set, *sub.document_entries):
        o.patient_id = "P1^^^&1.3.6.1.4.1.21367.13.20.2000&ISO"
    assert check(sub) == []


def test_source_patient_id_not_a_cx_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].source_patient_id = "89765a87b"
    only(check(sub), "XDSRegistryMetadataError", "sourcePatientId")


def test_source_patient_info_not_pid_fields_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].source_patient_info = ["PID-5|Doe^John", "Doe^John"]
    only(check(sub), "XDSRegistryMetadataError", "sourcePatientInfo", "'Doe^John'")


@pytest.mark.parametrize(
    "value", ["4cf4f82d78b5e2aac35c31bca8cb79fe6bd6a41", "zcf4f82d78b5e2aac35c31bca8cb79fe6bd6a41e"]
)
def test_hash_not_sha1_hex_gives_XDSRegistryMetadataError(value):
    sub = f.submission()
    sub.document_entries[0].hash = value
    only(check(sub), "XDSRegistryMetadataError", "hash")


def test_negative_size_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].size = -1
    only(check(sub), "XDSRegistryMetadataError", "size")


def test_language_code_not_a_tag_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].language_code = "english (US)"
    only(check(sub), "XDSRegistryMetadataError", "languageCode")


def test_mime_type_not_a_mime_type_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].mime_type = "dicom"
    only(check(sub), "XDSRegistryMetadataError", "mimeType")


def test_legal_authenticator_without_id_or_name_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].legal_authenticator = "^^Marcus"
    only(check(sub), "XDSRegistryMetadataError", "legalAuthenticator", "XCN")


def test_author_person_with_authority_but_no_id_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].authors[0].person = "^Welby^Marcus^^^^^^&1.2.3&ISO"
    only(check(sub), "XDSRegistryMetadataError", "authorPerson")


def test_author_institution_with_extra_components_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.submission_set.authors[0].institutions = ["Some Hospital^L^123"]
    only(check(sub), "XDSRegistryMetadataError", "authorInstitution", "XON")


@pytest.mark.parametrize("value", ["^^Internet", "^WPN^PH", "5551234"])
def test_author_telecommunication_incomplete_gives_XDSRegistryMetadataError(value):
    sub = f.submission()
    sub.document_entries[0].authors[0].telecommunications = [value]
    only(check(sub), "XDSRegistryMetadataError", "authorTelecommunication", "XTN")


def test_author_telephone_number_is_valid():
    sub = f.submission()
    sub.document_entries[0].authors[0].telecommunications = ["^WPN^PH^^1^555^5551234"]
    assert check(sub) == []


def test_reference_id_without_type_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].reference_ids = ["2013001^^^&1.2.3.4.5.6&ISO"]
    only(check(sub), "XDSRegistryMetadataError", "referenceIdList", "CX.5")


def test_intended_recipient_malformed_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.submission_set.intended_recipients = ["||"]
    only(check(sub), "XDSRegistryMetadataError", "intendedRecipient")


def test_document_availability_not_online_or_offline_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].document_availability = "Online"
    only(check(sub), "XDSRegistryMetadataError", "documentAvailability")


def test_uri_with_spaces_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].uri = "my document.txt"
    only(check(sub), "XDSRegistryMetadataError", "URI")


# --- codes ------------------------------------------------------------------------------------------


def test_class_code_not_in_code_list_gives_XDSRegistryMetadataError_naming_the_code(codes):
    sub = f.submission()
    sub.document_entries[0].class_code = m.Code("DEMO-Nope", "1.3.6.1.4.1.21367.100.1", "Nope")
    e = only(
        check(sub, codes=codes),
        "XDSRegistryMetadataError",
        "classCode",
        "'DEMO-Nope'",
        "1.3.6.1.4.1.21367.100.1",
    )
    assert e.location == "Document01"


def test_code_in_list_under_another_coding_scheme_is_rejected(codes):
    sub = f.submission()
    sub.document_entries[0].confidentiality_codes = [m.Code("N", "2.16.840.1.113883.5.999")]
    only(check(sub, codes=codes), "XDSRegistryMetadataError", "confidentialityCode")


@pytest.mark.parametrize(
    "where,attribute",
    [
        ("event", "eventCodeList"),
        ("content", "contentTypeCode"),
        ("folder", "codeList"),
        ("documentation", "associationDocumentation"),
    ],
)
def test_other_coded_attributes_are_checked_against_the_code_list(codes, where, attribute):
    sub = f.submission(1, 1)
    bad = m.Code("X-1", "9.9.9")
    if where == "event":
        sub.document_entries[0].event_codes.append(bad)
        errs = check(sub, codes=codes)
    elif where == "content":
        sub.submission_set.content_type_code = bad
        errs = check(sub, codes=codes)
    elif where == "folder":
        sub.folders[0].codes = [bad]
        errs = check(sub, codes=codes)
    else:
        sub.associations.append(
            m.Association(
                entry_uuid="rplc",
                association_type=m.RPLC,
                source="Document01",
                target="urn:uuid:11111111-2222-3333-4444-555555555555",
                documentation=bad,
            )
        )
        errs = [e for e in check(sub, codes=codes) if "X-1" in e.context]
    only(errs, "XDSRegistryMetadataError", attribute, "'X-1'")


def test_unknown_codes_are_warnings_when_the_domain_says_warn(codes):
    sub = f.submission()
    sub.document_entries[0].class_code = m.Code("DEMO-Nope", "1.3.6.1.4.1.21367.100.1")
    sub.document_entries[0].mime_type = "application/x-unknown"
    errs = check(sub, codes=codes, unknown_codes_as_warnings=True)
    assert {e.code for e in errs} == {"XDSRegistryMetadataError"}
    assert len(errs) == 2 and all(e.severity.endswith(":Warning") for e in errs)


def test_codes_are_not_checked_without_a_code_list():
    sub = f.submission()
    sub.document_entries[0].class_code = m.Code("DEMO-Nope", "1.3.6.1.4.1.21367.100.1")
    assert check(sub) == []


def test_code_without_coding_scheme_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.document_entries[0].type_code = m.Code("11488-4", "")
    only(check(sub), "XDSRegistryMetadataError", "typeCode has no codingScheme")


def test_mime_type_not_accepted_by_affinity_domain_gives_XDSRegistryMetadataError(codes):
    sub = f.submission()
    sub.document_entries[0].mime_type = "application/x-unknown"
    only(check(sub, codes=codes), "XDSRegistryMetadataError", "mimeType")


# --- consistency within the message ----------------------------------------------------------------------


def test_documententry_patient_id_differs_from_submission_set_gives_XDSPatientIdDoesNotMatch():
    sub = f.submission(2)
    sub.document_entries[1].patient_id = f.OTHER_PATIENT
    e = only(check(sub), "XDSPatientIdDoesNotMatch", "Document02")
    assert e.location == "Document02"


def test_documententry_patient_id_differs_at_repository_still_gives_XDSPatientIdDoesNotMatch():
    sub = f.submission()
    sub.document_entries[0].patient_id = f.OTHER_PATIENT
    only(check(sub, ITI41), "XDSPatientIdDoesNotMatch")


def test_folder_patient_id_differs_from_submission_set_gives_XDSPatientIdDoesNotMatch():
    sub = f.submission(1, 1)
    sub.folders[0].patient_id = f.OTHER_PATIENT
    only(check(sub), "XDSPatientIdDoesNotMatch", "Folder01")


def test_duplicate_document_unique_id_gives_XDSRegistryDuplicateUniqueIdInMessage():
    sub = f.submission(2)
    sub.document_entries[1].unique_id = sub.document_entries[0].unique_id
    e = only(check(sub), "XDSRegistryDuplicateUniqueIdInMessage", sub.document_entries[0].unique_id)
    assert e.location == "Document01, Document02"


def test_duplicate_unique_id_at_repository_gives_XDSRepositoryDuplicateUniqueIdInMessage():
    sub = f.submission(2)
    sub.document_entries[1].unique_id = sub.document_entries[0].unique_id
    only(check(sub, ITI41), "XDSRepositoryDuplicateUniqueIdInMessage")


def test_folder_sharing_submission_set_unique_id_gives_XDSRegistryDuplicateUniqueIdInMessage():
    sub = f.submission(1, 1)
    sub.folders[0].unique_id = sub.submission_set.unique_id
    only(check(sub), "XDSRegistryDuplicateUniqueIdInMessage")


# --- associations ------------------------------------------------------------------------------------------

DOC = "urn:uuid:11111111-2222-3333-4444-555555555555"
FOLDER = "urn:uuid:aaaaaaaa-2222-3333-4444-555555555555"


def test_has_member_to_documententry_without_submission_set_status_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.associations[0].submission_set_status = None
    only(check(sub), "XDSRegistryMetadataError", "SubmissionSetStatus")


def test_has_member_to_new_documententry_with_reference_status_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.associations[0].submission_set_status = "Reference"
    only(check(sub), "XDSRegistryMetadataError", "'Reference'")


def test_has_member_to_existing_documententry_with_original_status_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.associations.append(f.association("ref", m.HAS_MEMBER, "SubmissionSet01", DOC, "Original"))
    only(check(sub), "XDSRegistryMetadataError", "'Original'")


def test_reference_to_existing_documententry_is_an_external_reference():
    sub = f.submission()
    sub.associations.append(f.association("ref", m.HAS_MEMBER, "SubmissionSet01", DOC, "Reference"))
    assert check(sub) == []
    assert external_references(sub) == [ExternalReference(DOC, "ref", m.HAS_MEMBER, "target", "Reference")]


def test_documententry_not_member_of_submission_set_gives_XDSRegistryMetadataError():
    sub = f.submission(2)
    sub.associations = sub.associations[:1]
    only(check(sub), "XDSRegistryMetadataError", "Document02", "not a member")


def test_folder_not_member_of_submission_set_gives_XDSRegistryMetadataError():
    sub = f.submission(1, 1)
    sub.associations = [a for a in sub.associations if a.entry_uuid != "ss-fol-1"]
    only(check(sub), "XDSRegistryMetadataError", "Folder01", "not a member")


def test_symbolic_reference_to_nothing_gives_UnresolvedReferenceException():
    sub = f.submission()
    sub.associations.append(f.association("apnd", m.APND, "Document01", "Document99"))
    e = only(check(sub), "UnresolvedReferenceException", "Document99")
    assert e.location == "apnd"


def test_unresolved_reference_stays_UnresolvedReferenceException_at_repository():
    sub = f.submission()
    sub.associations.append(f.association("fd", m.HAS_MEMBER, "$fol_uuid$", "Document01"))
    only(check(sub, ITI41), "UnresolvedReferenceException")


def test_adding_new_document_to_existing_folder_references_the_folder():
    sub = f.submission()
    sub.associations.append(f.association("fd", m.HAS_MEMBER, FOLDER, "Document01"))
    sub.associations.append(f.association("ss-fd", m.HAS_MEMBER, "SubmissionSet01", "fd"))
    assert check(sub) == []
    assert external_references(sub) == [ExternalReference(FOLDER, "fd", m.HAS_MEMBER, "source")]


@pytest.mark.parametrize("type_", [m.RPLC, m.APND, m.XFRM, m.XFRM_RPLC, m.SIGNS])
def test_relationship_to_existing_document_is_valid_and_referenced(type_):
    sub = f.submission()
    sub.associations.append(f.association("rel", type_, "Document01", DOC))
    assert check(sub) == []
    assert [r.uuid for r in external_references(sub)] == [DOC]


def test_relationship_from_folder_gives_XDSRegistryMetadataError():
    sub = f.submission(1, 1)
    sub.associations.append(f.association("rel", m.RPLC, "Folder01", DOC))
    only(check(sub), "XDSRegistryMetadataError", "must be a DocumentEntry of this submission")


def test_relationship_to_document_of_same_submission_gives_XDSRegistryMetadataError():
    sub = f.submission(2)
    sub.associations.append(f.association("rel", m.RPLC, "Document02", "Document01"))
    only(check(sub), "XDSRegistryMetadataError", "already in the registry")


def test_has_member_from_documententry_gives_XDSRegistryMetadataError():
    sub = f.submission(2)
    sub.associations.append(f.association("bad", m.HAS_MEMBER, "Document01", "Document02"))
    only(check(sub), "XDSRegistryMetadataError", "only a SubmissionSet or Folder has members")


@pytest.mark.parametrize(
    "type_",
    ["HasMember", "urn:oasis:names:tc:ebxml-regrep:AssociationType:RPLC", m.UPDATE_AVAILABILITY_STATUS],
)
def test_unknown_association_type_gives_XDSRegistryMetadataError(type_):
    sub = f.submission()
    sub.associations.append(f.association("odd", type_, "Document01", DOC))
    only(check(sub), "XDSRegistryMetadataError", "associationType")


def test_association_without_target_gives_XDSRegistryMetadataError():
    sub = f.submission()
    sub.associations.append(f.association("odd", m.APND, "Document01", ""))
    only(check(sub), "XDSRegistryMetadataError", "targetObject")
