"""ITI-8 Patient Identity Feed at the Document Registry (ITI TF-2a 3.8), on real ADT samples."""

from __future__ import annotations

import asyncio
import logging

import pytest

from tests.hl7.conftest import (
    CORPUS,
    IPF_MPI,
    ONTARIO_HN,
    MemorySink,
    ack_code,
    corpus_file,
    error_code,
    exchange,
    feed_server,
    fields,
    harness_mllp,
    needs_corpus,
    run,
)
from xds.hl7.message import Message
from xds.hl7.patient_feed import PatientIdentityFeed, evaluate

IPF_PIX = "ipf/commons/ihe/hl7v3/src/test/resources/translation/pixsource/v2/"
IPF_ITI8 = "ipf/platform-camel/ihe/mllp/src/test/resources/iti8/"
NIST = "nist-toolkit/adt/src/main/resources/adt/"
DCM4CHE_OLD = "dcm4che/a746d0343f17/dcm4che-assembly/src/etc/testdata/hl7/"
DCM4CHE = "dcm4che/HEAD/dcm4che-assembly/src/etc/testdata/hl7/"
KHKN = "2.16.840.1.113883.3.37.4.1.1.2.611.1"

# sample -> (affinity domain configured, MSA-1, patient recorded or HL7 table 0357 code)
CORPUS_EXPECTATIONS = {
    IPF_PIX + "A01.hl7": (IPF_MPI, "AA", f"306563^^^&{IPF_MPI}&ISO"),
    IPF_PIX + "A04.hl7": (IPF_MPI, "AA", f"305090^^^&{IPF_MPI}&ISO"),
    IPF_PIX + "A08.hl7": (IPF_MPI, "AA", f"306567^^^&{IPF_MPI}&ISO"),
    IPF_PIX + "A40.hl7": (IPF_MPI, "AA", f"142025^^^&{IPF_MPI}&ISO"),  # merges 704686 into 142025
    IPF_ITI8 + "iti8-a01-incomplete.hl7": (IPF_MPI, "AE", "100"),  # no PID segment
    IPF_ITI8 + "hl7v2message.hl7": (IPF_MPI, "AE", "101"),  # PID-3 without assigning authority
    IPF_ITI8 + "iti8-a40.hl7": (IPF_MPI, "AA", f"305014^^^&{IPF_MPI}&ISO"),
    "ipf/platform-camel/hl7/src/test/resources/hl7/iti-8.hl7": (
        "1.3.6.1.4.1.21367.2005.1.1", "AA", "PDQ113XX35^^^&1.3.6.1.4.1.21367.2005.1.1&ISO"),
    NIST + "A01.txt": (ONTARIO_HN, "AE", "101"),  # the raw template: PID-3 is "$pid$"
    NIST + "A43.txt": (ONTARIO_HN, "AR", "201"),
    NIST + "ACK.txt": (ONTARIO_HN, "AR", "200"),
    DCM4CHE_OLD + "ADT^A08.hl7": (ONTARIO_HN, "AE", "101"),  # PID-3 has a namespace id only (ADT1)
    DCM4CHE_OLD + "ORM^O01.hl7": (ONTARIO_HN, "AR", "200"),
    DCM4CHE + "ORU^R01-SR.hl7": (ONTARIO_HN, "AR", "200"),
    DCM4CHE + "ORU^R01-PDF.hl7": (ONTARIO_HN, "AR", "200"),
    DCM4CHE + "ADT^A40-PatientMerge.hl7": (ONTARIO_HN, "AE", "101"),  # local ids only (ADT1), no HN
    DCM4CHE + "SIU^S12-NewAppointmentBooking.hl7": (ONTARIO_HN, "AR", "200"),
    DCM4CHE + "OMI^O23-ImagingOrder.hl7": (ONTARIO_HN, "AR", "200"),
    DCM4CHE + "ORM^O01-GeneralOrder.hl7": (ONTARIO_HN, "AR", "200"),
    DCM4CHE + "ADT^A31-UpdatePersonInfo.hl7": (ONTARIO_HN, "AR", "201"),
    DCM4CHE + "ADT^A47-ChangePatientID.hl7": (ONTARIO_HN, "AE", "101"),
}


def feed_once(raw: bytes, authority: str, sink: MemorySink | None = None) -> bytes:
    feed = PatientIdentityFeed(authority, sink if sink is not None else MemorySink(), "XDSREG", "DIR")
    return run(feed.handle(raw))


@needs_corpus
def test_every_corpus_message_is_in_the_expectations():
    samples = {str(p.relative_to(CORPUS)) for p in CORPUS.rglob("*") if p.is_file() and p.suffix in (".hl7", ".txt")}
    samples.discard("dcm4che/LICENSE.txt")
    assert samples == set(CORPUS_EXPECTATIONS)


@needs_corpus
@pytest.mark.parametrize("sample", sorted(CORPUS_EXPECTATIONS))
def test_corpus_message_is_acknowledged_as_expected(sample):
    authority, code, expected = CORPUS_EXPECTATIONS[sample]
    sink = MemorySink()
    ack = feed_once(corpus_file(sample), authority, sink)
    message = Message.parse(corpus_file(sample))
    msh, msa = fields(ack, "MSH"), fields(ack, "MSA")
    assert msa[1] == code
    assert msa[2] == message.control_id
    assert msh[11] == message.version  # the ACK answers in the message's version
    assert (msh[2], msh[3], msh[4], msh[5]) == (
        message.receiving_application or "XDSREG",
        message.receiving_facility or "DIR",
        message.sending_application,
        message.sending_facility,
    )
    if code == "AA":
        assert [c[0] for c in sink.calls] == [expected]
        assert "ERR|" not in ack.decode("latin-1")
    else:
        assert sink.calls == []
        assert msa[3], "AE/AR carries a reason in MSA-3"
        assert error_code(ack) == expected


@needs_corpus
def test_a04_records_affinity_domain_id_and_demographics():
    sink = MemorySink()
    ack = feed_once(corpus_file(IPF_PIX + "A04.hl7"), IPF_MPI, sink)
    assert ack_code(ack) == "AA"
    patient_id, demographics, source, control_id = sink.calls[0]
    assert patient_id == f"305090^^^&{IPF_MPI}&ISO"
    assert demographics == {
        "name": "Hiccock^WildBill^^^^^L",
        "birth_date": "19770114",
        "sex": "U",
        "address": "49 rue des fosses saint jacques^^Walldorf^^69226^DEU^H",
        "other_ids": "13278^^^HZLN&2.16.840.1.113883.3.37.4.1.1.2.411.1&ISO"
        "~02777^^^XREF2005&1.3.6.1.4.1.21367.2005.1.2&ISO",
    }
    assert source == "ICW_MPI^ICW"
    assert control_id == "205632"


@needs_corpus
def test_a01_selects_the_repetition_of_the_configured_authority():
    sink = MemorySink()
    assert ack_code(feed_once(corpus_file(IPF_PIX + "A01.hl7"), KHKN, sink)) == "AA"
    assert sink.calls[0][0] == f"30753^^^&{KHKN}&ISO"


@needs_corpus
def test_a01_whose_affinity_domain_id_is_the_hl7_null_gets_AE():
    # PID-3 repetition 1 is ""^^^&2.71&ISO: an explicit null, no id to record
    ack = feed_once(corpus_file(IPF_PIX + "A01.hl7"), "2.71", MemorySink())
    assert ack_code(ack) == "AE"
    assert "null id of the affinity domain" in fields(ack, "MSA")[3]


@needs_corpus
def test_message_without_affinity_domain_id_gets_AE_with_reason_and_no_record():
    sink = MemorySink()
    ack = feed_once(corpus_file(IPF_PIX + "A04.hl7"), ONTARIO_HN, sink)
    assert ack_code(ack) == "AE"
    assert fields(ack, "MSA")[3] == (f"PID-3 has no id of the affinity domain (assigning authority "
                                     f"universal id {ONTARIO_HN}, type ISO)")
    assert fields(ack, "ERR")[1] == "PID^1^3^101&Required field missing&HL70357"
    assert sink.calls == []


@needs_corpus
def test_a05_pre_admit_is_accepted():
    raw = corpus_file(IPF_PIX + "A04.hl7").replace(b"ADT^A04|", b"ADT^A05^ADT_A05|").replace(b"EVN|A04", b"EVN|A05")
    sink = MemorySink()
    ack = feed_once(raw, IPF_MPI, sink)
    assert ack_code(ack) == "AA"
    assert fields(ack, "MSH")[8] == "ACK^A05^ACK"
    assert len(sink.calls) == 1


def hl7_25(event: str, pid: str, control_id: str = "MSG1") -> bytes:
    return (
        f"MSH|^~\\&|HIS|HOSP|XDSREG|DIR|20240101120000||ADT^{event}^ADT_A01|{control_id}|P|2.5\r"
        f"EVN|{event}|20240101120000\r"
        f"PID|1||{pid}\r"
        "PV1|1|O\r"
    ).encode()


def test_a08_updates_demographics_of_a_known_patient():
    sink = MemorySink()
    hn = f"9876543210^^^&{ONTARIO_HN}&ISO"
    first = hl7_25("A01", f"{hn}~MRN1^^^HOSP||TREMBLAY^MARIE||19800101|F|||1 RUE KING^^TORONTO^ON^M5H1A1")
    update = hl7_25("A08", f"{hn}||TREMBLAY-ROY^MARIE||19800101|F|||\"\"", "MSG2")
    assert ack_code(feed_once(first, ONTARIO_HN, sink)) == "AA"
    assert ack_code(feed_once(update, ONTARIO_HN, sink)) == "AA"
    assert sink.patients[hn]["name"] == "TREMBLAY-ROY^MARIE"
    assert sink.patients[hn]["address"] == ""  # HL7 null: erase
    assert sink.patients[hn]["other_ids"] == "MRN1^^^HOSP"
    assert [c[3] for c in sink.calls] == ["MSG1", "MSG2"]


def test_v25_ack_has_err_segment_with_code_severity_and_user_message():
    ack = feed_once(hl7_25("A01", "123^^^&1.2.3&ISO"), ONTARIO_HN).decode()
    err = fields(ack, "ERR")
    assert err[2] == "PID^1^3"
    assert err[3] == "101^Required field missing^HL70357"
    assert err[4] == "E"
    assert err[8].startswith("PID-3 has no id of the affinity domain")
    assert fields(ack, "MSH")[11] == "2.5"


def test_escaped_characters_in_demographics_are_resolved_then_reencoded():
    raw = hl7_25("A04", f"1^^^&{ONTARIO_HN}&ISO||O\\T\\BRIEN^SEAN||19700101|M")
    sink = MemorySink()
    assert ack_code(feed_once(raw, ONTARIO_HN, sink)) == "AA"
    assert sink.calls[0][1]["name"] == "O\\T\\BRIEN^SEAN"


def test_patient_id_is_checked_against_universal_id_type_iso():
    sink = MemorySink()
    ack = feed_once(hl7_25("A01", f"1^^^&{ONTARIO_HN}&DNS"), ONTARIO_HN, sink)
    assert ack_code(ack) == "AE"
    assert sink.calls == []


@pytest.mark.parametrize(
    "change, code, err_code",
    [
        ((b"|P|2.5", b"|X|2.5"), "AR", "202"),
        ((b"|P|2.5", b"|P|2.2"), "AR", "203"),
        ((b"|MSG1|", b"||"), "AR", "101"),
        ((b"ADT^A01^ADT_A01", b""), "AR", "101"),
        ((b"ADT^A01^ADT_A01", b"ADT^A99"), "AR", "201"),
        ((b"PID|1||", b"PID|1||||"), "AE", "101"),
    ],
)
def test_malformed_header_or_pid_is_refused_with_reason(change, code, err_code):
    raw = hl7_25("A01", f"1^^^&{ONTARIO_HN}&ISO").replace(*change)
    ack = feed_once(raw, ONTARIO_HN).decode()
    assert ack_code(ack) == code
    assert error_code(ack) == err_code
    assert fields(ack, "MSA")[3]


@pytest.mark.parametrize(
    "raw",
    [b"", b"hello world", b"MSH", b"MSH|abcd|x", b"PID|1||x\rMSH|^~\\&|", b"\x00\xff" * 50,
     b"MSH|^~\\&|A|B|C|D|1||ADT^A01|1|P|2.5\rMSH|^~\\&|A|B|C|D|1||ADT^A01|2|P|2.5"],
)
def test_unreadable_message_gets_AR_with_reason(raw):
    ack = feed_once(raw, ONTARIO_HN).decode()
    assert ack_code(ack) == "AR"
    assert fields(ack, "MSA")[3]


def test_sink_failure_gets_AR_and_is_logged_without_patient_data(caplog):
    class FailingSink:
        def record_patient(self, *args):
            raise RuntimeError("INSERT failed for 9876543210^^^&2.16.840.1.113883.4.59&ISO TREMBLAY")

    raw = hl7_25("A01", f"9876543210^^^&{ONTARIO_HN}&ISO||TREMBLAY^MARIE")
    with caplog.at_level(logging.INFO, logger="xds.hl7"):
        ack = feed_once(raw, ONTARIO_HN, FailingSink())
    assert ack_code(ack) == "AR"
    assert error_code(ack) == "207"
    assert "9876543210" not in caplog.text and "TREMBLAY" not in caplog.text


def test_info_log_names_type_control_id_and_outcome_but_no_patient_data(caplog):
    raw = hl7_25("A01", f"9876543210^^^&{ONTARIO_HN}&ISO~LOCAL77^^^HOSP||TREMBLAY^MARIE||19800101", "CTRL42")
    with caplog.at_level(logging.DEBUG, logger="xds.hl7"):
        assert ack_code(feed_once(raw, ONTARIO_HN)) == "AA"
        assert ack_code(feed_once(raw.replace(ONTARIO_HN.encode(), b"9.9"), ONTARIO_HN)) == "AE"
    assert "ADT^A01" in caplog.text and "CTRL42" in caplog.text and "AA" in caplog.text
    for secret in ("9876543210", "LOCAL77", "TREMBLAY", "MARIE", "19800101"):
        assert secret not in caplog.text


def test_evaluate_has_no_side_effects_and_names_the_patient():
    outcome = evaluate(Message.parse(hl7_25("A04", f"55^^^&{ONTARIO_HN}&ISO||DOE^JANE||20000229|F")), ONTARIO_HN)
    assert (outcome.code, outcome.patient_id) == ("AA", f"55^^^&{ONTARIO_HN}&ISO")
    assert outcome.demographics == {"name": "DOE^JANE", "birth_date": "20000229", "sex": "F"}


@needs_corpus
def test_conformance_harness_a01_gets_AA_over_mllp():
    harness = harness_mllp()
    template = harness.load_template(CORPUS.parent)
    assert template[0].startswith("MSH|") and "$pid$" in template[1]  # the NIST template, not the fallback
    patient = f"HX0A1B2C3D4E^^^&{ONTARIO_HN}&ISO"
    message = harness.build_a01(patient, template)
    sink = MemorySink()

    async def scenario():
        async with feed_server(ONTARIO_HN, sink) as server:
            return await asyncio.to_thread(harness.send_a01, "127.0.0.1", server.port, message, 5.0)

    result = run(scenario())
    assert result.ok, result.detail
    assert result.ack_code == "AA"
    assert sink.patients[patient]["name"] == "APPLESEED^JOHN^A^III"
    assert sink.patients[patient]["birth_date"] == "19710101"


@needs_corpus
def test_corpus_end_to_end_over_one_mllp_connection():
    samples = sorted(CORPUS_EXPECTATIONS)
    by_authority: dict[str, list[str]] = {}
    for sample in samples:
        by_authority.setdefault(CORPUS_EXPECTATIONS[sample][0], []).append(sample)

    async def scenario():
        for authority, group in by_authority.items():
            async with feed_server(authority) as server:
                replies = await exchange(server.port, *(corpus_file(s) for s in group))
            for sample, reply in zip(group, replies, strict=True):
                assert ack_code(reply) == CORPUS_EXPECTATIONS[sample][1], sample

    run(scenario())
