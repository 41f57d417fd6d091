"""The affinity domain code list in the NIST codes.xml format."""

from __future__ import annotations

from tests.metadata import factory as f
from xds.metadata import model as m
from xds.metadata.codes import CODE_TYPE_SCHEMES, load_codes, parse_codes


def test_nist_codes_xml_maps_every_code_type_to_its_classification_scheme():
    codes = load_codes(f.CODES_XML)
    assert set(codes.types) == set(CODE_TYPE_SCHEMES)
    for name, scheme in CODE_TYPE_SCHEMES.items():
        assert codes.types[name].class_scheme == scheme
        assert codes.for_scheme(scheme) is codes.types[name]
    assert ("N", "2.16.840.1.113883.5.25") in codes.types["confidentialityCode"].codes
    assert len(codes.types["eventCodeList"].codes) > 300


def test_code_membership_is_by_code_and_coding_scheme():
    codes = load_codes(f.CODES_XML)
    assert codes.allows(m.DE_FORMAT_CODE, m.Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1"))
    assert not codes.allows(m.DE_FORMAT_CODE, m.Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.16.4"))
    assert not codes.allows(m.DE_CLASS_CODE, m.Code("Nope", "1.3.6.1.4.1.21367.100.1"))
    t = codes.types["classCode"]
    assert t.display_names[("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1")] == "Images"


def test_mime_types_and_assigning_authorities():
    codes = load_codes(f.CODES_XML)
    assert codes.allows_mime_type("application/dicom") and not codes.allows_mime_type("application/x-foo")
    assert codes.assigning_authorities == [
        "1.3.6.1.4.1.21367.13.20.1000",
        "1.3.6.1.4.1.21367.13.20.2000",
        "1.3.6.1.4.1.21367.13.20.3000",
    ]


def test_attribute_without_a_value_set_is_not_enforced():
    codes = parse_codes(
        b'<Codes><CodeType name="classCode" classScheme="urn:uuid:41a5887f-8865-4c09-adf7-e362475b143a">'
        b'<Code code="A" codingScheme="1.2" display="a"/></CodeType></Codes>'
    )
    assert codes.allows(m.DE_CLASS_CODE, m.Code("A", "1.2"))
    assert not codes.allows(m.DE_CLASS_CODE, m.Code("B", "1.2"))
    assert codes.allows(m.DE_TYPE_CODE, m.Code("anything", "9.9"))
    assert codes.mime_types is None and codes.allows_mime_type("x/y")


def test_code_type_without_class_scheme_attribute_uses_the_known_scheme():
    codes = parse_codes(
        b'<Codes><CodeType name="typeCode"><Code code="A" codingScheme="1.2"/></CodeType></Codes>'
    )
    assert codes.for_scheme(m.DE_TYPE_CODE) is codes.types["typeCode"]
