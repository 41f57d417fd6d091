"""Reading HL7 v2 messages as they arrive: separators, delimiters, character sets, escapes."""

from __future__ import annotations

import pytest

from tests.hl7.conftest import CORPUS, needs_corpus
from xds.hl7.message import Delimiters, HL7ParseError, Message

A04 = (
    "MSH|^~\\&|HIS|HOSP|XDSREG|DIR|20240101120000||ADT^A04^ADT_A01|C1|P|2.5\r"
    "EVN|A04|20240101120000\r"
    "PID|1||123^^^&1.2.3&ISO~L9^^^HOSP||DOE^JANE^M||19800101|F|||1 MAIN ST^^OTTAWA^ON^K1A0B1\r"
)


@pytest.mark.parametrize("separator", ["\r", "\n", "\r\n", "\n\r"])
def test_segments_split_on_cr_lf_or_crlf(separator):
    message = Message.parse(A04.replace("\r", separator).encode())
    assert message.segment_ids == ["MSH", "EVN", "PID"]
    assert message.segment("PID").value(5, 1, 2) == "JANE"


def test_header_fields():
    m = Message.parse(A04.encode())
    assert (m.message_type, m.trigger_event, m.message_structure) == ("ADT", "A04", "ADT_A01")
    assert (m.control_id, m.processing_id, m.version) == ("C1", "P", "2.5")
    assert (m.sending_application, m.sending_facility) == ("HIS", "HOSP")
    assert (m.receiving_application, m.receiving_facility) == ("XDSREG", "DIR")
    assert m.msh.raw(1) == "|" and m.msh.raw(2) == "^~\\&"


def test_repetitions_components_and_subcomponents():
    pid = Message.parse(A04.encode()).segment("PID")
    assert pid.repetition_count(3) == 2
    assert pid.components(3, 1) == [["123"], [""], [""], ["", "1.2.3", "ISO"]]
    assert pid.components(3, 2) == [["L9"], [""], [""], ["HOSP"]]
    assert pid.value(3, 1, 4, 2) == "1.2.3"
    assert pid.raw(3, 2) == "L9^^^HOSP"
    # out of range reads as empty, never raises
    assert pid.value(3, 7, 9, 9) == "" and pid.value(99) == "" and pid.repetition_count(99) == 0


def test_delimiters_are_read_from_msh_1_and_msh_2():
    text = A04.replace("|", "#").replace("^", "$").replace("~", "*").replace("&", "%")
    m = Message.parse(text.encode())
    assert m.delimiters == Delimiters("#", "$", "*", "\\", "%")
    assert (m.message_type, m.trigger_event) == ("ADT", "A04")
    assert m.segment("PID").value(3, 1, 4, 2) == "1.2.3"


def test_truncation_character_of_v27_is_accepted():
    m = Message.parse(A04.replace("^~\\&|", "^~\\&#|", 1).replace("|2.5\r", "|2.7\r").encode())
    assert m.delimiters.truncation == "#"
    assert m.version == "2.7"


def test_escape_sequences_are_resolved():
    text = A04.replace("DOE^JANE", "O\\T\\BRIEN\\S\\X^ANNE\\F\\MARIE\\E\\")
    pid = Message.parse(text.encode()).segment("PID")
    assert pid.value(5, 1, 1) == "O&BRIEN^X"
    assert pid.value(5, 1, 2) == "ANNE|MARIE\\"


def test_delimiters_escape_round_trip():
    d = Delimiters()
    assert d.escaped("a|b^c~d\\e&f") == "a\\F\\b\\S\\c\\R\\d\\E\\e\\T\\f"
    assert d.escaped("plain") == "plain"


def test_charset_from_msh_18_latin1():
    text = A04.replace("|2.5\r", "|2.5||||||8859/1\r").replace("DOE^JANE", "CÔTÉ^RENÉE")
    m = Message.parse(text.encode("latin-1"))
    assert (m.charset, m.codec) == ("8859/1", "latin-1")
    assert m.segment("PID").value(5, 1, 1) == "CÔTÉ"


def test_without_msh_18_utf8_then_latin1():
    text = A04.replace("DOE^JANE", "CÔTÉ^RENÉE")
    assert Message.parse(text.encode("utf-8")).segment("PID").value(5, 1, 1) == "CÔTÉ"
    assert Message.parse(text.encode("latin-1")).segment("PID").value(5, 1, 1) == "CÔTÉ"


@pytest.mark.parametrize(
    "raw, reason",
    [
        (b"", "empty message"),
        (b"\r\n\r\n", "empty message"),
        (b"PID|1||x\rMSH|^~\\&|", "does not start with an MSH"),
        (b"MSH|", "too short"),
        (b"MSH|^^\\&|A|B", "encoding characters"),
        (b"MSH|AB12|x|y|z", "encoding characters"),
        (b"MSH|^~|A|B|C|D|E", "encoding characters"),
        (A04.encode() + A04.encode(), "more than one MSH"),
    ],
)
def test_unusable_messages_raise_parse_error_with_reason(raw, reason):
    with pytest.raises(HL7ParseError, match=reason):
        Message.parse(raw)


@needs_corpus
def test_every_corpus_sample_parses():
    for path in sorted(CORPUS.rglob("*")):
        if path.is_file() and path.suffix in (".hl7", ".txt") and path.name != "LICENSE.txt":
            m = Message.parse(path.read_bytes())
            assert m.message_type and m.control_id, path
            for seg in m.segments():
                assert seg.id


@pytest.mark.parametrize("name", ["Smith\\Zxx\\^Lucy", "Smith\\C2842\\^Lucy", "Smith\\Xzz\\^Lucy", "Smith\\\\^Lucy"])
def test_an_unresolvable_escape_sequence_leaves_no_patient_data_and_no_stack_trace_in_the_log(name, caplog):
    # found by tests/fuzz: python-hl7 logs the whole field (here PID-5, the patient's name) at WARNING,
    # and at ERROR with a traceback, when it cannot resolve an escape sequence in it
    import logging

    m = Message.parse(f"MSH|^~\\&|A|B|C|D|20240101||ADT^A01|1|P|2.5\rPID|1||X1||{name}\r".encode())
    with caplog.at_level(logging.DEBUG):
        assert m.segment("PID").value(5, 1, 1, 1).startswith("Smith")
    assert not [r.getMessage() for r in caplog.records if "Smith" in r.getMessage() or r.levelno >= logging.ERROR]
