"""The text fragment serialiser (:func:`xds.metadata.ebrim.fragment_text`) writes exactly what the
lxml tree serialiser writes, on every object of the NIST testkit metadata, on built objects with
awkward values, and against a fixed expected fragment."""

from __future__ import annotations

import copy
import dataclasses

import pytest
from lxml import etree

from tests.fuzz.seeds import TESTKIT, needs_corpus
from tests.metadata import factory as f
from xds.metadata import model as m
from xds.metadata.ebrim import fragment_text, parse_registry_object_list, serialize_object


def tree_text(obj: m.RegistryObject) -> str:
    return etree.tostring(serialize_object(obj), encoding="unicode")


def as_registered(obj: m.RegistryObject) -> m.RegistryObject:
    """What the registry serialises: Approved, lid = entryUUID, version 1 (ITI TF-3 4.1.6-4.1.9)."""
    obj = copy.deepcopy(obj)
    obj.status = m.STATUS_APPROVED
    obj.entry_uuid = "urn:uuid:6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f"
    if not isinstance(obj, m.Association):
        obj.lid, obj.version_name = obj.entry_uuid, "1"
    if isinstance(obj, m.Folder):
        obj.last_update_time = "20261123214000"
    return obj


def corpus_objects() -> list[m.RegistryObject]:
    objs: list[m.RegistryObject] = []
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    for path in sorted(TESTKIT.rglob("*.xml")):
        try:
            root = etree.parse(str(path), parser).getroot()
        except etree.XMLSyntaxError:
            continue
        for el in root.iter(tag=etree.Element):
            if etree.QName(el).localname in ("SubmitObjectsRequest", "AdhocQueryResponse"):
                objs += parse_registry_object_list(el).objects
    return objs


@needs_corpus
def test_every_nist_object_serialises_as_the_tree_does() -> None:
    objs = corpus_objects()
    assert len(objs) > 100
    kinds = set()
    for obj in objs:
        for o in (obj, as_registered(obj)):
            assert fragment_text(o) == tree_text(o), o.entry_uuid
        kinds.add(type(obj))
    assert kinds == {m.DocumentEntry, m.SubmissionSet, m.Folder, m.Association}


AWKWARD = [
    "",
    "plain",
    'a & b < c > d "e" \'f\'',
    "line\nbreak\r\nand\ttab",
    "]]> and &amp; already",
    "é ü 漢字 \U0001f600 \u2028 \x7f",
]


@pytest.mark.parametrize("value", AWKWARD)
def test_awkward_values_escape_as_lxml_does(value: str) -> None:
    de = f.document_entry(entry_uuid="urn:uuid:0f0e0d0c-0b0a-4908-8706-050403020100")
    de.title, de.comments, de.hash, de.mime_type = value, value, value, value
    de.source_patient_info = [value, value]
    de.extra_slots = {"urn:x:" + value: [value]}
    de.other_slots = {value: []}
    de.event_codes = [m.Code(value, value, value), m.Code("c", "", None)]
    de.authors = [m.Author(person=value), m.Author()]
    de.uri = "http://example.org/" + value * 100
    de.limited_metadata = True
    de.home_community_id = "urn:oid:1.2.3"
    ss = f.submission_set(entry_uuid=value or "x", comments=value, limited_metadata=True)
    ss.intended_recipients = [value]
    folder = f.folder(entry_uuid="F", codes=[m.Code(value, value, value)], limited_metadata=True)
    assoc = m.Association(
        entry_uuid="A", association_type=m.HAS_MEMBER, source=value, target="t", status=value,
        submission_set_status="Original", slots={"s": [value]}, documentation=m.Code(value, value, value),
    )
    for obj in (de, ss, folder, assoc, as_registered(de), as_registered(folder)):
        assert fragment_text(obj) == tree_text(obj)


def test_childless_objects_are_empty_elements() -> None:
    bare = m.Association(entry_uuid="A", association_type=m.HAS_MEMBER, source="s", target="t")
    assert fragment_text(bare) == tree_text(bare)
    assert fragment_text(bare).endswith("/>")
    for obj in (m.Folder(), m.SubmissionSet(), m.DocumentEntry()):
        assert fragment_text(obj) == tree_text(obj)


@pytest.mark.parametrize("bad", ["\x00", "a\x01b", "\x0b", "\ud800", "\ufffe"])
def test_values_lxml_refuses_are_refused_the_same_way(bad: str) -> None:
    de = dataclasses.replace(f.document_entry(), title=bad)
    with pytest.raises((ValueError, UnicodeError)) as tree_error:
        tree_text(de)
    with pytest.raises(tree_error.type):
        fragment_text(de)


EXPECTED_ASSOCIATION = (
    '<rim:Association xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0"'
    ' id="urn:uuid:5a0f3c52-6d43-4c1e-8d3f-0a6a1f7e9b21"'
    ' objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Association"'
    ' status="urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"'
    ' associationType="urn:oasis:names:tc:ebxml-regrep:AssociationType:HasMember"'
    ' sourceObject="urn:uuid:1b2c" targetObject="urn:uuid:3d4e">'
    '<rim:Slot name="SubmissionSetStatus"><rim:ValueList><rim:Value>Original</rim:Value>'
    "</rim:ValueList></rim:Slot></rim:Association>"
)


def test_fixed_expected_fragments() -> None:
    a = m.Association(
        entry_uuid="urn:uuid:5a0f3c52-6d43-4c1e-8d3f-0a6a1f7e9b21",
        status=m.STATUS_APPROVED,
        association_type=m.HAS_MEMBER,
        source="urn:uuid:1b2c",
        target="urn:uuid:3d4e",
        submission_set_status="Original",
    )
    assert fragment_text(a) == EXPECTED_ASSOCIATION
    de = as_registered(f.document_entry())
    assert fragment_text(de) == EXPECTED_DOCUMENT_ENTRY
EXPECTED_DOCUMENT_ENTRY = (
    '<rim:ExtrinsicObject xmlns:rim="urn:oasis:names:tc:ebxml-regrep:xsd:rim:3.0" id="urn:uuid:'
    '6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f" lid="urn:uuid:6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f" '
    'objectType="urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1" status="urn:oasis:names:tc:ebxm'
    'l-regrep:StatusType:Approved" mimeType="application/dicom"><rim:Slot name="creationTime"><'
    'rim:ValueList><rim:Value>20041224</rim:Value></rim:ValueList></rim:Slot><rim:Slot name="la'
    'nguageCode"><rim:ValueList><rim:Value>en-us</rim:Value></rim:ValueList></rim:Slot><rim:Slo'
    't name="legalAuthenticator"><rim:ValueList><rim:Value>11375^Welby^Marcus^J^Jr. MD^Dr^^^&am'
    'p;1.2.840.113619.6.197&amp;ISO</rim:Value></rim:ValueList></rim:Slot><rim:Slot name="servi'
    'ceStartTime"><rim:ValueList><rim:Value>200412230800</rim:Value></rim:ValueList></rim:Slot>'
    '<rim:Slot name="serviceStopTime"><rim:ValueList><rim:Value>200412230801</rim:Value></rim:V'
    'alueList></rim:Slot><rim:Slot name="sourcePatientId"><rim:ValueList><rim:Value>89765a87b^^'
    '^&amp;1.3.4.5&amp;ISO</rim:Value></rim:ValueList></rim:Slot><rim:Slot name="sourcePatientI'
    'nfo"><rim:ValueList><rim:Value>PID-3|pid1^^^&amp;1.2.3&amp;ISO</rim:Value><rim:Value>PID-5'
    '|Doe^John^^^</rim:Value><rim:Value>PID-7|19560527</rim:Value><rim:Value>PID-8|M</rim:Value'
    '></rim:ValueList></rim:Slot><rim:Slot name="hash"><rim:ValueList><rim:Value>4cf4f82d78b5e2'
    'aac35c31bca8cb79fe6bd6a41e</rim:Value></rim:ValueList></rim:Slot><rim:Slot name="size"><ri'
    'm:ValueList><rim:Value>36</rim:Value></rim:ValueList></rim:Slot><rim:Slot name="repository'
    'UniqueId"><rim:ValueList><rim:Value>1.19.6.24.109.42.1.5</rim:Value></rim:ValueList></rim:'
    'Slot><rim:Slot name="urn:ihe:iti:xds:2013:referenceIdList"><rim:ValueList><rim:Value>20130'
    '01^^^&amp;1.2.3.4.5.6&amp;ISO^urn:ihe:iti:xds:2013:accession</rim:Value></rim:ValueList></'
    'rim:Slot><rim:Name><rim:LocalizedString value="CT chest"/></rim:Name><rim:Description><rim'
    ':LocalizedString value="Key images"/></rim:Description><rim:VersionInfo versionName="1"/><'
    'rim:Classification id="urn:uuid:ac049416-9569-558b-a020-9f537e4d3f9b" objectType="urn:oasi'
    's:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification" classificationScheme="ur'
    'n:uuid:93606bcf-9494-43ec-9b4e-a7748d1a838d" classifiedObject="urn:uuid:6d1b4f0e-2a35-4c4e'
    '-9f6a-0d3a1c2b4e5f" nodeRepresentation=""><rim:Slot name="authorPerson"><rim:ValueList><ri'
    'm:Value>^Smitty^Gerald^^^</rim:Value></rim:ValueList></rim:Slot><rim:Slot name="authorInst'
    'itution"><rim:ValueList><rim:Value>Cleveland Clinic</rim:Value><rim:Value>Parma Community^'
    '^^^^&amp;1.2.3&amp;ISO^^^^PC1</rim:Value></rim:ValueList></rim:Slot><rim:Slot name="author'
    'Role"><rim:ValueList><rim:Value>Attending</rim:Value></rim:ValueList></rim:Slot><rim:Slot '
    'name="authorSpecialty"><rim:ValueList><rim:Value>Orthopedic</rim:Value></rim:ValueList></r'
    'im:Slot><rim:Slot name="authorTelecommunication"><rim:ValueList><rim:Value>^^Internet^gera'
    'ld@example.org</rim:Value></rim:ValueList></rim:Slot></rim:Classification><rim:Classificat'
    'ion id="urn:uuid:4b55dff0-313e-5022-9d70-74642cc0c00c" objectType="urn:oasis:names:tc:ebxm'
    'l-regrep:ObjectType:RegistryObject:Classification" classificationScheme="urn:uuid:41a5887f'
    '-8865-4c09-adf7-e362475b143a" classifiedObject="urn:uuid:6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4'
    'e5f" nodeRepresentation="IMAGES"><rim:Slot name="codingScheme"><rim:ValueList><rim:Value>1'
    '.3.6.1.4.1.19376.1.2.6.1</rim:Value></rim:ValueList></rim:Slot><rim:Name><rim:LocalizedStr'
    'ing value="Images"/></rim:Name></rim:Classification><rim:Classification id="urn:uuid:1dece'
    '3ba-a64b-5bc5-ab78-bafc3102e820" objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:Re'
    'gistryObject:Classification" classificationScheme="urn:uuid:f4f85eac-e6cb-4883-b524-f27053'
    '94840f" classifiedObject="urn:uuid:6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f" nodeRepresentatio'
    'n="N"><rim:Slot name="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.5.25</rim:'
    'Value></rim:ValueList></rim:Slot><rim:Name><rim:LocalizedString value="normal"/></rim:Name'
    '></rim:Classification><rim:Classification id="urn:uuid:c2f30a3a-2113-53d4-897a-81be446bb69'
    'b" objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification" c'
    'lassificationScheme="urn:uuid:2c6b8cb7-8b2a-4051-b291-b1ae6a575ef4" classifiedObject="urn:'
    'uuid:6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f" nodeRepresentation="CT"><rim:Slot name="codingS'
    'cheme"><rim:ValueList><rim:Value>1.2.840.10008.2.16.4</rim:Value></rim:ValueList></rim:Slo'
    't><rim:Name><rim:LocalizedString value="Computed Tomography"/></rim:Name></rim:Classificat'
    'ion><rim:Classification id="urn:uuid:dc90a135-34cb-5d41-a531-b75acdf4e48a" objectType="urn'
    ':oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification" classificationSchem'
    'e="urn:uuid:a09d5840-386c-46f2-b5ad-9c3699a4309d" classifiedObject="urn:uuid:6d1b4f0e-2a35'
    '-4c4e-9f6a-0d3a1c2b4e5f" nodeRepresentation="1.2.840.10008.5.1.4.1.1.88.59"><rim:Slot name'
    '="codingScheme"><rim:ValueList><rim:Value>1.2.840.10008.2.6.1</rim:Value></rim:ValueList><'
    '/rim:Slot><rim:Name><rim:LocalizedString value="Key Object Selection Document"/></rim:Name'
    '></rim:Classification><rim:Classification id="urn:uuid:aa904d70-ddaf-5485-848a-746e22ecafc'
    '5" objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification" c'
    'lassificationScheme="urn:uuid:f33fb8ac-18af-42cc-ae0e-ed0b0bdb91e1" classifiedObject="urn:'
    'uuid:6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f" nodeRepresentation="225728007"><rim:Slot name="'
    'codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.6.96</rim:Value></rim:ValueList>'
    '</rim:Slot><rim:Name><rim:LocalizedString value="Accident and Emergency department"/></rim'
    ':Name></rim:Classification><rim:Classification id="urn:uuid:ceb4691a-dc02-5081-8668-679522'
    '92719f" objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classificati'
    'on" classificationScheme="urn:uuid:cccf5598-8b07-4b77-a05e-ae952c785ead" classifiedObject='
    '"urn:uuid:6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f" nodeRepresentation="309927009"><rim:Slot n'
    'ame="codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.6.96</rim:Value></rim:Value'
    'List></rim:Slot><rim:Name><rim:LocalizedString value="General medical department"/></rim:N'
    'ame></rim:Classification><rim:Classification id="urn:uuid:1f1d3dbc-f509-5d26-a4e7-177aa969'
    '7976" objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:Classification'
    '" classificationScheme="urn:uuid:f0306f51-975f-434e-a61c-c59651d33983" classifiedObject="u'
    'rn:uuid:6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f" nodeRepresentation="11488-4"><rim:Slot name='
    '"codingScheme"><rim:ValueList><rim:Value>2.16.840.1.113883.6.1</rim:Value></rim:ValueList>'
    '</rim:Slot><rim:Name><rim:LocalizedString value="Consultation Note"/></rim:Name></rim:Clas'
    'sification><rim:ExternalIdentifier id="urn:uuid:b5dbeb8b-1251-5add-bdfb-965088911dfa" obje'
    'ctType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:ExternalIdentifier" iden'
    'tificationScheme="urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427" registryObject="urn:uuid:'
    '6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f" value="P0924175725.3^^^&amp;1.3.6.1.4.1.21367.13.20.'
    '1000&amp;ISO"><rim:Name><rim:LocalizedString value="XDSDocumentEntry.patientId"/></rim:Nam'
    'e></rim:ExternalIdentifier><rim:ExternalIdentifier id="urn:uuid:d272c15d-873a-5b2e-811e-28'
    '1d34fb7bc6" objectType="urn:oasis:names:tc:ebxml-regrep:ObjectType:RegistryObject:External'
    'Identifier" identificationScheme="urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab" registryO'
    'bject="urn:uuid:6d1b4f0e-2a35-4c4e-9f6a-0d3a1c2b4e5f" value="1.42.20100312105241.2"><rim:N'
    'ame><rim:LocalizedString value="XDSDocumentEntry.uniqueId"/></rim:Name></rim:ExternalIdent'
    'ifier></rim:ExtrinsicObject>'
)
