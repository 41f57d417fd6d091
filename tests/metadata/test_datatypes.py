"""HL7 v2 datatypes as XDS constrains them (ITI TF-3 Table 4.2.3.1.7-2) and identifier forms."""

from __future__ import annotations

import pytest

from xds.metadata.datatypes import (
    CX,
    HD,
    XCN,
    XON,
    XTN,
    cx_problems,
    cxi_problems,
    dtm_lower_bound,
    dtm_range,
    dtm_upper_bound,
    intended_recipient_problems,
    is_document_unique_id,
    is_dtm,
    is_home_community_id,
    is_language_code,
    is_mime_type,
    is_oid,
    is_sha1_hex,
    is_uuid_urn,
    source_patient_info_problems,
    xcn_problems,
    xon_problems,
    xtn_problems,
)

# --- DTM -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["2004", "200402", "20040229", "2004022923", "200402292359", "20040229235959"]
)
def test_dtm_at_every_precision_is_valid(value):
    assert is_dtm(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "204",
        "20041",
        "2004021",
        "20050229",
        "20041301",
        "20040100",
        "2004010124",
        "200401010060",
        "20040101000060",
        "2004010100000000",
        "20040101000000.123",
        "20040101000000+0100",
        "2004-01-01",
        "abcd",
    ],
)
def test_malformed_dtm_is_invalid(value):
    assert not is_dtm(value)


@pytest.mark.parametrize(
    "value,lower,upper",
    [
        ("2004", "20040101000000", "20041231235959"),
        ("200402", "20040201000000", "20040229235959"),
        ("200302", "20030201000000", "20030228235959"),
        ("20041224", "20041224000000", "20041224235959"),
        ("2004122408", "20041224080000", "20041224085959"),
        ("200412240815", "20041224081500", "20041224081559"),
        ("20041224081530", "20041224081530", "20041224081530"),
    ],
)
def test_dtm_bounds_cover_the_interval_the_precision_denotes(value, lower, upper):
    assert dtm_lower_bound(value) == lower
    assert dtm_upper_bound(value) == upper
    assert dtm_range(value) == (lower, upper)


def test_normalised_dtms_compare_as_strings_across_precisions():
    assert dtm_lower_bound("2004") <= dtm_lower_bound("20041224081530") <= dtm_upper_bound("2004")
    assert dtm_upper_bound("200412") < dtm_lower_bound("2005")


def test_dtm_bound_of_a_malformed_value_raises():
    with pytest.raises(ValueError):
        dtm_lower_bound("2004-12")


# --- identifiers ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value", ["1.2", "1.3.6.1.4.1.21367.2005.3.7", "2.25.329800735698586629295641978511506172918", "0.1"]
)
def test_oids(value):
    assert is_oid(value)


@pytest.mark.parametrize(
    "value", ["1", "1.", ".1", "1.02", "1..2", "1.2a", "urn:oid:1.2", " 1.2", "1." + "1" * 63]
)
def test_not_oids(value):
    assert not is_oid(value)


def test_oid_length_limit_is_a_parameter():
    long = "1." + "1" * 70
    assert not is_oid(long) and is_oid(long, max_length=None)


def test_document_unique_id_forms():
    assert is_document_unique_id("1.2.3")
    assert is_document_unique_id("1.2.3^ext-16-chars-x"[:22])
    assert not is_document_unique_id("1.2.3^" + "x" * 17)
    assert not is_document_unique_id("1.2.3^a^b")
    assert not is_document_unique_id("1.2.3^a b")


def test_uuid_urns():
    assert is_uuid_urn("urn:uuid:7edca82f-054d-47f2-a032-9b2a5b5186c1")
    assert is_uuid_urn("urn:uuid:7EDCA82F-054D-47F2-A032-9B2A5B5186C1")
    assert not is_uuid_urn("7edca82f-054d-47f2-a032-9b2a5b5186c1")
    assert not is_uuid_urn("urn:uuid:7edca82f054d47f2a0329b2a5b5186c1")
    assert not is_uuid_urn("Document01")


def test_home_community_ids():
    assert is_home_community_id("urn:oid:1.3.6.1.4.1.21367.13.70.200")
    assert not is_home_community_id("1.3.6.1.4.1.21367.13.70.200")


def test_simple_value_formats():
    assert is_sha1_hex("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    assert not is_sha1_hex("da39a3ee5e6b4b0d3255bfef95601890afd8070")
    assert is_language_code("en-us") and is_language_code("fr-CA") and not is_language_code("en_US")
    assert is_mime_type("application/dicom") and is_mime_type('text/plain; charset="utf-8"')
    assert not is_mime_type("dicom")
    assert source_patient_info_problems("PID-3|pid1^^^&1.2.3&ISO") == []
    assert source_patient_info_problems("PID-7|") == []
    assert source_patient_info_problems("PID3|x") != []


# --- CX ---------------------------------------------------------------------------------------------------

AA = "1.3.6.1.4.1.21367.13.20.1000"


def test_cx_parses_and_prints_back():
    cx = CX.parse(f"P1^^^&{AA}&ISO")
    assert cx.id_number == "P1"
    assert cx.assigning_authority == HD("", AA, "ISO")
    assert str(cx) == f"P1^^^&{AA}&ISO"
    assert CX.of("P1", AA) == cx


def test_xds_patient_id_is_valid():
    assert cx_problems(f"P1^^^&{AA}&ISO") == []
    assert cx_problems(f"P1^^^&{AA}&ISO", assigning_authority=AA) == []


@pytest.mark.parametrize(
    "value,problem",
    [
        ("", "empty"),
        (f"P1^^^&{AA}&ISO~P2^^^&{AA}&ISO", "repeats"),
        (f"^^^&{AA}&ISO", "no ID number"),
        (f"P1^7^M10^&{AA}&ISO", "other than CX.1 and CX.4"),
        (f"P1^^^&{AA}&ISO^MR", "other than CX.1 and CX.4"),
        (f"P1^^^&{AA}&ISO^^^^^^^^", ""),  # trailing empty components are harmless
        ("P1", "no assigning authority"),
        (f"P1^^^HN&{AA}&ISO", "namespace ID"),
        ("P1^^^&&ISO", "no universal ID"),
        ("P1^^^&1.02&ISO", "not an OID"),
        (f"P1^^^&{AA}&L", "not ISO"),
        (f"P1^^^&{AA}", "not ISO"),
    ],
)
def test_cx_problems(value, problem):
    problems = cx_problems(value)
    if problem:
        assert any(problem in p for p in problems), problems
    else:
        assert problems == []


def test_cx_of_another_assigning_authority():
    assert cx_problems("P1^^^&1.2.3&ISO", assigning_authority=AA) == [
        f"is not issued by assigning authority {AA}"
    ]


@pytest.mark.parametrize(
    "value,ok",
    [
        ("2013001^^^&1.2.3.4.5.6&ISO^urn:ihe:iti:xds:2013:accession", True),
        ("ref-1^^^NS^urn:ihe:iti:xds:2013:referral", True),
        ("1.2.840.1^^^^urn:ihe:iti:xds:2016:studyInstanceUID", True),
        ("wf^^^&1.2&ISO^urn:ihe:iti:xdw:2013:workflowInstanceId^urn:oid:1.2.3", True),
        ("2013001^^^&1.2.3.4.5.6&ISO", False),
        ("^^^&1.2&ISO^urn:ihe:iti:xds:2013:order", False),
        ("x^^^&1.2&XX^urn:ihe:iti:xds:2013:order", False),
        ("x^1^^&1.2&ISO^urn:ihe:iti:xds:2013:order", False),
    ],
)
def test_reference_id_list_values(value, ok):
    assert (cxi_problems(value) == []) is ok


# --- XCN / XON / XTN ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value,ok",
    [
        ("^Smitty^Gerald^^^", True),
        ("11375^Welby^Marcus^J^Jr. MD^Dr^^^&1.2.840.113619.6.197&ISO", True),
        ("11375", True),
        ("^^Gerald", False),
        ("^Welby^^^^^^^&1.2.3&ISO", False),
        ("1^Welby^^^^^^^&1.2.3&L", False),
        ("", False),
    ],
)
def test_xcn(value, ok):
    assert (xcn_problems(value) == []) is ok


def test_xcn_parse():
    x = XCN.parse("11375^Welby&van^Marcus^^^^^^&1.2.3&ISO")
    assert (x.id_number, x.family_name, x.given_name, x.assigning_authority.universal_id) == (
        "11375",
        "Welby",
        "Marcus",
        "1.2.3",
    )


@pytest.mark.parametrize(
    "value,ok",
    [
        ("Cleveland Clinic", True),
        ("Some Hospital^^^^^^^^^1.2.3.9.1789.45", True),
        ("Clinic^^^^^&1.2.3&ISO^^^^CleveClin", True),
        ("Community^^^^^^^^^CleveClin", False),  # XON.10 not an OID and no XON.6
        ("^^^^^^^^^1.2.3", False),
        ("Some Hospital^L", False),
        ("Some Hospital^^123", False),
        ("Clinic^^^^^&1.2.3&XX^^^^1", False),
    ],
)
def test_xon(value, ok):
    assert (xon_problems(value) == []) is ok


def test_xon_parse():
    x = XON.parse("Clinic^^^^^&1.2.3&ISO^^^^CleveClin")
    assert (x.name, x.assigning_authority.universal_id, x.identifier) == ("Clinic", "1.2.3", "CleveClin")


@pytest.mark.parametrize(
    "value,ok",
    [
        ("^^Internet^a@example.org", True),
        ("^NET^Internet^a@example.org", True),
        ("^WPN^PH^^1^555^5551234", True),
        ("^PRN^CP^^^^^^^^^+15555551234", True),
        ("^^Internet", False),
        ("^^Internet^a@example.org^1^555^5551234", False),
        ("^WPN^PH", False),
        ("^WPN^PH^a@example.org^^^5551234", False),
        ("555-1234", False),
    ],
)
def test_xtn(value, ok):
    assert (xtn_problems(value) == []) is ok


def test_xtn_parse():
    x = XTN.parse("^WPN^PH^^1^555^5551234^12")
    assert (x.use_code, x.equipment_type, x.country_code, x.area_code, x.local_number, x.extension) == (
        "WPN",
        "PH",
        "1",
        "555",
        "5551234",
        "12",
    )


@pytest.mark.parametrize(
    "value,ok",
    [
        ("Some Hospital^^^^^^^^^1.2.3.9.1789.45|^Wel^Marcus^^^Dr^MD|^^Internet^mwel@example.org", True),
        ("|^Wel^Marcus^^^Dr^MD", True),
        ("||^^Internet^mwel@example.org", True),
        ("Some Hospital", True),
        ("||", False),
        ("a|b|c|d", False),
        ("|^^Marcus", False),
    ],
)
def test_intended_recipient(value, ok):
    assert (intended_recipient_problems(value) == []) is ok


def test_hd_round_trip():
    assert HD.parse("NS&1.2.3&ISO").encode() == "NS&1.2.3&ISO"
    assert HD("", "1.2.3", "ISO").encode() == "&1.2.3&ISO"
    assert HD.parse("&1.2.3&ISO").is_iso_oid and not HD.parse("NS").is_iso_oid
