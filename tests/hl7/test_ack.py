"""General acknowledgment in original mode (HL7 v2.5 2.9.2; ERR v2.3.1 ELD vs v2.5 ERL/CWE)."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.hl7.conftest import fields
from xds.hl7.ack import AckError, build_ack
from xds.hl7.message import Message

NOW = datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)


def adt(version: str = "2.5", header_tail: str = "", delimiters: str = "|^~\\&") -> Message:
    text = (f"MSH|^~\\&|HIS|HOSP|XDSREG|DIR|20240101||ADT^A01^ADT_A01|CTRL7|P^T|{version}{header_tail}\r"
            "PID|1||1^^^&1.2&ISO\r")
    if delimiters != "|^~\\&":
        for std, new in zip("|^~\\&", delimiters, strict=True):
            text = text.replace(std, new)
    return Message.parse(text.encode("latin-1"))


def test_aa_swaps_applications_and_echoes_control_id_version_and_processing_id():
    ack = build_ack(adt(), "AA", now=NOW)
    msh = fields(ack, "MSH")
    assert msh[2:6] == ["XDSREG", "DIR", "HIS", "HOSP"]
    assert msh[6] == "20240506070809+0000"
    assert msh[8] == "ACK^A01^ACK"
    assert msh[9] and msh[9] != "CTRL7"
    assert msh[10:12] == ["P^T", "2.5"]
    assert fields(ack, "MSA") == ["MSA", "AA", "CTRL7"]
    assert "ERR" not in ack and ack.endswith("\r")


def test_ack_control_ids_are_unique():
    ids = {fields(build_ack(adt(), "AA"), "MSH")[9] for _ in range(1000)}
    assert len(ids) == 1000
    assert all(len(i) <= 20 for i in ids)


def test_v231_error_goes_in_err_1_and_msa_3():
    ack = build_ack(adt("2.3.1"), "AE", AckError("101", "PID-3 has no id", "PID", 3))
    assert fields(ack, "MSA") == ["MSA", "AE", "CTRL7", "PID-3 has no id"]
    assert fields(ack, "ERR") == ["ERR", "PID^1^3^101&Required field missing&HL70357"]


def test_v23_ack_message_type_has_no_structure():
    assert fields(build_ack(adt("2.3"), "AA"), "MSH")[8] == "ACK^A01"


def test_v25_error_goes_in_err_2_3_4_8():
    ack = build_ack(adt("2.5.1"), "AR", AckError("201", "event A40 is not accepted", "MSH", 9))
    assert fields(ack, "ERR") == ["ERR", "", "MSH^1^9", "201^Unsupported event code^HL70357", "E", "", "", "",
                                  "event A40 is not accepted"]
    assert fields(ack, "MSA")[3] == "event A40 is not accepted"


def test_v27_has_no_msa_3():
    ack = build_ack(adt("2.7"), "AE", AckError("101", "why"))
    assert fields(ack, "MSA") == ["MSA", "AE", "CTRL7"]
    assert fields(ack, "ERR")[8] == "why"


def test_reason_is_escaped():
    ack = build_ack(adt(), "AE", AckError("101", "a|b^c&d"))
    assert fields(ack, "MSA")[3] == "a\\F\\b\\S\\c\\T\\d"


def test_message_delimiters_and_charset_are_echoed():
    m = adt(header_tail="||||||8859/1", delimiters="#$*\\%")
    ack = build_ack(m, "AA")
    assert ack.startswith("MSH#$*\\%#XDSREG#DIR#HIS#HOSP#")
    segs = ack.split("\r")
    assert segs[0].split("#")[8] == "ACK$A01$ACK"
    assert segs[0].split("#")[17] == "8859/1"
    assert segs[1] == "MSA#AA#CTRL7"


def test_configured_application_when_the_message_names_no_receiver():
    text = "MSH|^~\\&|HIS|HOSP|||20240101||ADT^A01|C9|P|2.3.1\r"
    ack = build_ack(Message.parse(text.encode()), "AA", application="XDSREG", facility="DIR")
    assert fields(ack, "MSH")[2:6] == ["XDSREG", "DIR", "HIS", "HOSP"]


def test_unreadable_message_gets_a_v231_ack_with_empty_msa_2():
    ack = build_ack(None, "AR", AckError("100", "message does not start with an MSH segment"),
                    application="XDSREG", facility="DIR")
    msh = fields(ack, "MSH")
    assert msh[2:6] == ["XDSREG", "DIR", "", ""]
    assert (msh[8], msh[11]) == ("ACK", "2.3.1")
    assert fields(ack, "MSA") == ["MSA", "AR", "", "message does not start with an MSH segment"]
