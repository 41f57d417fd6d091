"""ebRIM 3.0 parsing and canonical serialisation, on NIST testkit metadata and built submissions."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from lxml import etree

from tests.metadata import factory as f
from xds.metadata import model as m
from xds.metadata.codes import load_codes
from xds.metadata.ebrim import (
    object_ref,
    parse_registry_object,
    parse_registry_object_list,
    parse_submit_objects_request,
    serialize_association,
    serialize_document_entry,
    serialize_folder,
    serialize_fragment,
    serialize_object,
    serialize_registry_object_list,
    serialize_submission_set,
    serialize_submit_objects_request,
)
from xds.metadata.rules import Profile, validate_submission
from xds.namespaces import LCM, QUERY, RIM

NS = {"rim": RIM, "lcm": LCM, "query": QUERY}
PNR = f.NIST / "_toolkit-resources/validators-registry-message/src/test/resources/messages/pnr.xml"
FOLDER_WITH_DOC = f.NIST / "ReposAcceptanceTest-1113/SubmitFolderwDoc/fol_doc.xml"
RAD68 = f.NIST / "idc_init/XDS-I-idc-a/metadata-IDCDEPT001-a.xml"
EVALUATE = f.NIST / "ids_2018-4801a/ValidateMetadata/metadata-evaluate.xml"

# Every ebRIM 3.0 submission of the corpus that is well-formed XML (body.txt captures are MIME).
CORPUS_SUBMISSIONS = sorted(
    p
    for p in f.CORPUS.rglob("*.xml")
    if p.name != "testplan.xml"
    and not p.match("ids_2018-480*/metadata.xml")  # not well-formed
    and (t := p.read_text(errors="replace"))
    and "urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" in t
    and "SubmitObjectsRequest" in t
    and ("ExtrinsicObject" in t or "RegistryPackage" in t)
    and "soap-envelope" not in t
)
# The NIST Repository acceptance tests: complete submissions whose codes are all in codes.xml.
CLEAN = [
    f.NIST / "ReposAcceptanceTest-1111/SubmitSingleDoc/single_doc.xml",
    f.NIST / "ReposAcceptanceTest-1112/SubmitSingleDoc/single_doc.xml",
    f.NIST / "ReposAcceptanceTest-1113/SubmitFolder/single_fol.xml",
    FOLDER_WITH_DOC,
    f.NIST / "ReposAcceptanceTest-1113/SubmitTwoDocs/two_doc.xml",
]


@pytest.fixture(scope="module")
def query_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(f.EBRS / "query.xsd")))


@pytest.fixture(scope="module")
def lcm_schema() -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(f.EBRS / "lcm.xsd")))


def load(path) -> m.Submission:
    return parse_submit_objects_request(etree.parse(str(path)).getroot())


def roundtrip(sub: m.Submission) -> m.Submission:
    return parse_submit_objects_request(serialize_submit_objects_request(sub))


def errors_only(sub: m.Submission) -> list:
    return [e for e in sub.parse_errors if e.is_error]


def in_query_response(elements) -> etree._Element:
    resp = etree.Element(f"{{{QUERY}}}AdhocQueryResponse", nsmap={"query": QUERY})
    resp.set("status", "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success")
    rol = etree.SubElement(resp, f"{{{RIM}}}RegistryObjectList")
    rol.extend(elements)
    return resp


def test_corpus_has_ebrim3_submissions():
    assert len(CORPUS_SUBMISSIONS) >= 25
    assert PNR in CORPUS_SUBMISSIONS and RAD68 in CORPUS_SUBMISSIONS


# --- parsing real metadata ----------------------------------------------------------------------------


def test_parse_nist_provide_and_register_two_documents():
    sub = load(PNR)
    assert sub.parse_errors == []
    ss = sub.submission_set
    assert ss.entry_uuid == "SubmissionSet01"
    assert ss.unique_id == "1.42.20100312105241.4"
    assert ss.source_id == "1.3.6.1.4.1.21367.2009.1.2.1"
    assert ss.patient_id == "53ff11cb404344e^^^&1.3.6.1.4.1.21367.2005.3.7&ISO"
    assert ss.submission_time == "20041225235050"
    assert (ss.title, ss.comments) == ("Physical", "Annual physical")
    assert ss.content_type_code == m.Code("28570-0", "2.16.840.1.113883.6.1", "History and Physical")
    assert ss.authors[0].institutions == ["Cleveland Clinic", "Berea Community"]

    d1, d2 = sub.document_entries
    assert (d1.entry_uuid, d1.mime_type, d1.object_type) == (
        "Document01",
        "text/plain",
        m.STABLE_DOCUMENT_ENTRY,
    )
    assert d1.unique_id == "1.42.20100312105241.2"
    assert d1.patient_id == ss.patient_id
    assert (d1.creation_time, d1.service_start_time, d1.service_stop_time) == (
        "20051224",
        "200512240800",
        "200512241100",
    )
    assert d1.language_code == "en-us"
    assert d1.source_patient_id == "89765a87b^^^&3.4.5&ISO"
    assert d1.source_patient_info[1] == "PID-5|Doe^John^^^"
    assert d1.class_code == m.Code("51851-4", "2.16.840.1.113883.6.1", "Education")
    assert d1.confidentiality_codes == [m.Code("R", "2.16.840.1.113883.5.25", "Clinical-Staff")]
    assert d1.format_code.code == "urn:ihe:qrph:ehcp:2010"
    assert d1.healthcare_facility_type_code.scheme == "Connect-a-thon healthcareFacilityTypeCodes"
    assert d1.practice_setting_code.code == "General Medicine"
    assert d1.type_code.code == "34746-8"
    assert [a.person for a in d1.authors] == ["^Smitty^Gerald^^^", "^Dopplemeyer^Sherry^^^"]
    assert d1.authors[1].roles == ["Primary Surgon"] and d1.authors[1].specialties == ["Orthopedic"]
    assert d1.comments is None  # <rim:Description/>
    assert d2.unique_id == "1.42.20100312105241.3"

    assert [(a.source, a.target, a.submission_set_status) for a in sub.associations] == [
        ("SubmissionSet01", "Document01", "Original"),
        ("SubmissionSet01", "Document02", "Original"),
    ]


def test_parse_folder_submission_with_association_to_association():
    sub = load(FOLDER_WITH_DOC)
    assert sub.parse_errors == []
    (fol,) = sub.folders
    assert fol.entry_uuid == "myFolderId1"
    assert fol.codes[0].code == "Referrals"
    assert fol.title
    kinds = {(a.source, a.target) for a in sub.associations}
    assert ("mySsId01", "myAssocId4") in kinds and ("myFolderId1", "myDocId1") in kinds


def test_parse_rad68_imaging_submission():
    sub = load(RAD68)
    assert errors_only(sub) == []
    (de,) = sub.document_entries
    assert de.mime_type == "application/dicom"
    assert de.event_codes and de.format_code is not None
    assert de.source_patient_id == "IDCDEPT001-a^^^&1.3.6.1.4.1.21367.1800.13.20.1000&ISO"


def test_parse_strips_whitespace_around_values_and_accepts_symbolic_nested_references():
    sub = load(EVALUATE)
    de = sub.document_entries[0]
    assert de.source_patient_id == "IDS-DEPT001-a^^^&1.3.6.1.4.1.21367.1800.13.20.1000&ISO"
    assert de.reference_ids == [
        "5347639127757044^^^&1.3.6.1.4.1.21367.13.202.2000&ISO^urn:ihe:iti:xds:2013:accession"
    ]
    # classifications nested in the entry but naming its symbolic id: kept, with a warning
    assert errors_only(sub) == []
    assert any("taken as classifying" in e.context for e in sub.parse_errors)
    assert de.authors


@pytest.mark.parametrize("path", CORPUS_SUBMISSIONS, ids=lambda p: str(p.relative_to(f.CORPUS)))
def test_every_corpus_submission_parses_without_errors(path):
    sub = load(path)
    assert errors_only(sub) == []
    assert sub.submission_set is not None


@pytest.mark.parametrize("path", CLEAN, ids=lambda p: p.parent.name)
def test_nist_repository_acceptance_submissions_validate_against_nist_codes(path):
    codes = load_codes(f.CODES_XML)
    assert validate_submission(load(path), Profile.ITI_41, codes=codes) == []


def test_rad68_submission_validates_once_the_toolkit_placeholders_are_filled():
    sub = load(RAD68)
    assert sub.submission_set.unique_id == "SubmissionSet01"  # the toolkit assigns it at run time
    sub.submission_set.unique_id = "1.3.6.1.4.1.21367.2005.3.99.1"
    assert validate_submission(sub, Profile.RAD_68) == []


# --- round trip and schema validity ---------------------------------------------------------------------


@pytest.mark.parametrize("path", CORPUS_SUBMISSIONS, ids=lambda p: str(p.relative_to(f.CORPUS)))
def test_corpus_submission_round_trips_to_an_equal_model(path):
    sub = load(path)
    again = roundtrip(sub)
    assert again.parse_errors == []
    sub.parse_errors = []
    assert again == sub


def test_built_submission_with_every_attribute_round_trips():
    sub = f.submission(2, 1)
    de = sub.document_entries[0]
    de.uri = "http://example.org/doc/" + "x" * 600
    de.document_availability = m.AVAILABILITY_STABLE
    de.home_community_id = "urn:oid:1.2.3.4"
    de.status = m.STATUS_APPROVED
    de.lid = "urn:uuid:5f4c1c38-5b1e-4f3a-9e5b-1e2f3a4b5c6d"
    de.version_name = "1"
    de.extra_slots = {"urn:ca:on:dir:modality": ["CT", "MR"]}
    de.other_slots = {"localNote": ["x"]}
    sub.submission_set.limited_metadata = True
    sub.folders[0].last_update_time = "20240101120000"
    sub.folders[0].comments = ""
    sub.associations.append(
        m.Association(
            entry_uuid="rplc",
            association_type=m.RPLC,
            source="Document01",
            target="urn:uuid:11111111-2222-3333-4444-555555555555",
            documentation=m.Code("Corrected_Information", "1.3.6.1.4.1.21367.2017.3", "Corrected"),
            slots={"PreviousVersion": ["1"]},
        )
    )
    sub.object_refs = ["urn:uuid:11111111-2222-3333-4444-555555555555"]
    assert roundtrip(sub) == sub


def test_long_uri_is_split_into_numbered_values_and_joined_back():
    de = f.document_entry(uri="https://dir.example.org/" + "a" * 700)
    el = serialize_document_entry(de)
    values = el.xpath("rim:Slot[@name='URI']/rim:ValueList/rim:Value/text()", namespaces=NS)
    assert len(values) == 3 and values[0].startswith("1|") and all(len(v) <= 256 for v in values)
    assert parse_registry_object(el).uri == de.uri


@pytest.mark.parametrize("path", CORPUS_SUBMISSIONS[:12] + [PNR], ids=lambda p: p.parent.name)
def test_serialised_objects_validate_in_an_adhoc_query_response(path, query_schema):
    sub = load(path)
    resp = in_query_response(serialize_object(o) for o in sub.objects())
    query_schema.assertValid(resp)


def test_serialised_submission_validates_as_submit_objects_request(lcm_schema):
    sub = f.submission(2, 1)
    sub.object_refs = ["urn:uuid:11111111-2222-3333-4444-555555555555"]
    lcm_schema.assertValid(serialize_submit_objects_request(sub))


def test_object_ref_validates(query_schema):
    query_schema.assertValid(
        in_query_response([object_ref("urn:uuid:11111111-2222-3333-4444-555555555555", "urn:oid:1.2.3")])
    )


def test_serialisation_is_deterministic_with_fresh_uuid_child_ids():
    sub = load(PNR)
    de = sub.document_entries[0]
    first, second = serialize_fragment(de), serialize_fragment(copy.deepcopy(de))
    assert first == second
    el = etree.fromstring(first)
    child_ids = el.xpath("rim:Classification/@id | rim:ExternalIdentifier/@id", namespaces=NS)
    assert len(child_ids) == len(set(child_ids)) == 10
    assert all(i.startswith("urn:uuid:") for i in child_ids)
    other = etree.fromstring(serialize_fragment(sub.document_entries[1]))
    assert not set(child_ids) & set(other.xpath(".//@id", namespaces=NS))


def test_canonical_document_entry_layout():
    el = serialize_document_entry(f.document_entry())
    assert el.tag == f"{{{RIM}}}ExtrinsicObject" and el.prefix == "rim"
    assert list(el.attrib) == ["id", "objectType", "mimeType"]
    tags = [etree.QName(c).localname for c in el]
    # ebRIM order: Slot*, Name, Description, Classification*, ExternalIdentifier*
    assert tags == sorted(
        tags, key=["Slot", "Name", "Description", "VersionInfo", "Classification", "ExternalIdentifier"].index
    )
    pid = el.find("rim:ExternalIdentifier", NS)
    assert pid.get("identificationScheme") == m.DE_PATIENT_ID and pid.get("registryObject") == "Document01"
    assert pid.find("rim:Name/rim:LocalizedString", NS).get("value") == "XDSDocumentEntry.patientId"


def test_submission_set_and_folder_carry_their_classification_nested():
    ss = serialize_submission_set(f.submission_set())
    node = ss.xpath("rim:Classification[@classificationNode]", namespaces=NS)
    assert [c.get("classificationNode") for c in node] == [m.SUBMISSION_SET_CLASSIFICATION]
    fol = serialize_folder(f.folder())
    assert fol.xpath("rim:Classification/@classificationNode", namespaces=NS) == [m.FOLDER_CLASSIFICATION]


def test_association_serialisation():
    a = f.association("a1", m.HAS_MEMBER, "SubmissionSet01", "Document01", "Original")
    a.status = m.STATUS_APPROVED
    el = serialize_association(a)
    assert dict(el.attrib) == {
        "id": "a1",
        "objectType": "urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association",
        "status": m.STATUS_APPROVED,
        "associationType": m.HAS_MEMBER,
        "sourceObject": "SubmissionSet01",
        "targetObject": "Document01",
    }
    assert parse_registry_object(el) == a


def test_registry_object_list_of_query_response_parses_many_submission_sets():
    objs = [
        f.submission_set("urn:uuid:11111111-2222-3333-4444-555555555551"),
        f.submission_set("urn:uuid:11111111-2222-3333-4444-555555555552"),
    ]
    parsed = parse_registry_object_list(in_query_response(serialize_object(o) for o in objs))
    assert parsed.errors == [] and parsed.objects == objs


def test_parse_registry_object_rejects_what_is_not_one_xds_object():
    with pytest.raises(ValueError):
        parse_registry_object(object_ref("urn:uuid:11111111-2222-3333-4444-555555555555"))


# --- what the parser records instead of raising -----------------------------------------------------------


def sor_of(sub: m.Submission) -> etree._Element:
    return serialize_submit_objects_request(sub)


def de_el(sor: etree._Element, n: int = 0) -> etree._Element:
    return sor.xpath("rim:RegistryObjectList/rim:ExtrinsicObject", namespaces=NS)[n]


def codes_of(sub: m.Submission) -> list[str]:
    return [e.code for e in validate_submission(sub, Profile.ITI_42)]


def test_multi_valued_creation_time_gives_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    vl = de_el(sor).find("rim:Slot[@name='creationTime']/rim:ValueList", NS)
    etree.SubElement(vl, f"{{{RIM}}}Value").text = "20050101"
    sub = parse_submit_objects_request(sor)
    assert sub.document_entries[0].creation_time == "20041224"
    assert codes_of(sub) == ["XDSRegistryMetadataError"]
    assert "creationTime must have exactly one value, has 2" in sub.parse_errors[0].context


def test_repeated_slot_gives_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    slot = de_el(sor).find("rim:Slot[@name='languageCode']", NS)
    slot.addnext(copy.deepcopy(slot))
    assert codes_of(parse_submit_objects_request(sor)) == ["XDSRegistryMetadataError"]


def test_two_class_codes_give_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    c = de_el(sor).find(f"rim:Classification[@classificationScheme='{m.DE_CLASS_CODE}']", NS)
    c.addnext(copy.deepcopy(c))
    sub = parse_submit_objects_request(sor)
    assert codes_of(sub) == ["XDSRegistryMetadataError"]
    assert "2 classCode values" in sub.parse_errors[0].context


def test_two_patient_ids_give_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    x = de_el(sor).find(f"rim:ExternalIdentifier[@identificationScheme='{m.DE_PATIENT_ID}']", NS)
    x.addnext(copy.deepcopy(x))
    assert codes_of(parse_submit_objects_request(sor)) == ["XDSRegistryMetadataError"]


def test_size_not_a_number_gives_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    de_el(sor).find("rim:Slot[@name='size']/rim:ValueList/rim:Value", NS).text = "36 bytes"
    sub = parse_submit_objects_request(sor)
    assert sub.document_entries[0].size is None
    assert set(codes_of(sub)) == {"XDSRegistryMetadataError"}


def test_slot_value_over_256_characters_gives_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    de_el(sor).find("rim:Slot[@name='languageCode']/rim:ValueList/rim:Value", NS).text = "x" * 257
    sub = parse_submit_objects_request(sor)
    assert any("256" in e.context for e in sub.parse_errors)


def test_two_submission_sets_give_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    rol = sor.find("rim:RegistryObjectList", NS)
    rol.append(serialize_submission_set(f.submission_set("SubmissionSet02", unique_id="1.2.3.4.5")))
    sub = parse_submit_objects_request(sor)
    assert "2 SubmissionSets" in sub.parse_errors[0].context
    assert set(codes_of(sub)) == {"XDSRegistryMetadataError"}


def test_unclassified_registry_package_gives_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    pkg = sor.find("rim:RegistryObjectList/rim:RegistryPackage", NS)
    pkg.remove(pkg.find(f"rim:Classification[@classificationNode='{m.SUBMISSION_SET_CLASSIFICATION}']", NS))
    sub = parse_submit_objects_request(sor)
    assert sub.submission_set is None
    assert "classified neither" in sub.parse_errors[0].context
    assert codes_of(sub)[0] == "XDSRegistryMetadataError"


def test_submission_set_classified_at_top_level_is_recognised():
    sor = sor_of(f.submission())
    rol = sor.find("rim:RegistryObjectList", NS)
    pkg = rol.find("rim:RegistryPackage", NS)
    node = pkg.find(f"rim:Classification[@classificationNode='{m.SUBMISSION_SET_CLASSIFICATION}']", NS)
    rol.append(node)
    sub = parse_submit_objects_request(sor)
    assert sub.parse_errors == [] and sub.submission_set.entry_uuid == "SubmissionSet01"


def test_top_level_code_classification_applies_to_its_object():
    sor = sor_of(f.submission())
    rol = sor.find("rim:RegistryObjectList", NS)
    c = de_el(sor).find(f"rim:Classification[@classificationScheme='{m.DE_TYPE_CODE}']", NS)
    rol.append(c)
    sub = parse_submit_objects_request(sor)
    assert sub.parse_errors == [] and sub.document_entries[0].type_code.code == "11488-4"


def test_classification_of_an_object_not_in_the_submission_gives_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    rol = sor.find("rim:RegistryObjectList", NS)
    c = copy.deepcopy(de_el(sor).find(f"rim:Classification[@classificationScheme='{m.DE_TYPE_CODE}']", NS))
    c.set("classifiedObject", "Document77")
    rol.append(c)
    sub = parse_submit_objects_request(sor)
    assert "Document77" in sub.parse_errors[0].context
    assert codes_of(sub) == ["XDSRegistryMetadataError"]


def test_unknown_classification_scheme_is_dropped_with_XDSExtraMetadataNotSaved_warning():
    sor = sor_of(f.submission())
    c = etree.SubElement(de_el(sor), f"{{{RIM}}}Classification", id="c1", classifiedObject="Document01")
    c.set("classificationScheme", "urn:uuid:00000000-0000-0000-0000-000000000001")
    c.set("nodeRepresentation", "x")
    sub = parse_submit_objects_request(sor)
    errs = validate_submission(sub, Profile.ITI_42)
    assert [(e.code, e.severity) for e in errs] == [
        ("XDSExtraMetadataNotSaved", "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Warning")
    ]


def test_extra_and_other_slots_are_kept_apart():
    sor = sor_of(f.submission())
    el = de_el(sor)
    for name in ("urn:ca:on:dir:bodyPart", "urn:ihe:iti:xds:2099:unknown", "localFlag"):
        s = etree.Element(f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(s, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = "v"
        el.insert(0, s)
    de = parse_submit_objects_request(sor).document_entries[0]
    assert de.extra_slots == {"urn:ca:on:dir:bodyPart": ["v"]}
    assert de.other_slots == {"urn:ihe:iti:xds:2099:unknown": ["v"], "localFlag": ["v"]}


def test_home_status_lid_and_version_info_are_read():
    sor = sor_of(f.submission())
    el = de_el(sor)
    el.set("home", "urn:oid:1.2.3")
    el.set("status", m.STATUS_APPROVED)
    el.set("lid", "urn:uuid:11111111-2222-3333-4444-555555555555")
    el.find("rim:Description", NS).addnext(etree.Element(f"{{{RIM}}}VersionInfo", versionName="2"))
    de = parse_submit_objects_request(sor).document_entries[0]
    assert (de.home_community_id, de.status, de.lid, de.version_name) == (
        "urn:oid:1.2.3",
        m.STATUS_APPROVED,
        "urn:uuid:11111111-2222-3333-4444-555555555555",
        "2",
    )


def test_object_refs_are_collected():
    sor = sor_of(f.submission())
    sor.find("rim:RegistryObjectList", NS).insert(
        0, object_ref("urn:uuid:11111111-2222-3333-4444-555555555555")
    )
    assert parse_submit_objects_request(sor).object_refs == ["urn:uuid:11111111-2222-3333-4444-555555555555"]


def test_ebrim_2_1_element_gives_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    etree.SubElement(
        sor.find("rim:RegistryObjectList", NS), "{urn:oasis:names:tc:ebxml-regrep:rim:xsd:2.1}ExtrinsicObject"
    )
    sub = parse_submit_objects_request(sor)
    assert "not ebRIM 3.0" in sub.parse_errors[0].context
    assert codes_of(sub) == ["XDSRegistryMetadataError"]


def test_wrong_request_element_gives_XDSRegistryMetadataError_not_an_exception():
    sub = parse_submit_objects_request(etree.Element(f"{{{QUERY}}}AdhocQueryRequest"))
    assert [e.code for e in validate_submission(sub, Profile.ITI_42)] == ["XDSRegistryMetadataError"] * 2


def test_object_without_id_gives_XDSRegistryMetadataError():
    sor = sor_of(f.submission())
    del de_el(sor).attrib["id"]
    sub = parse_submit_objects_request(sor)
    assert sub.document_entries == []
    assert "has no id" in sub.parse_errors[0].context


def test_provide_and_register_wrapper_and_bare_object_list_are_accepted():
    sub = load(PNR)
    rol = etree.parse(str(PNR)).getroot().find(".//rim:RegistryObjectList", NS)
    assert parse_submit_objects_request(rol) == sub


def test_serialize_registry_object_list_puts_object_refs_first():
    sub = f.submission()
    rol = serialize_registry_object_list(sub.objects(), ["urn:uuid:11111111-2222-3333-4444-555555555555"])
    assert etree.QName(rol[0]).localname == "ObjectRef"
    assert dataclasses.replace(parse_submit_objects_request(rol), object_refs=[]) == sub
