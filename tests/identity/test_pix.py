"""ITI-9 PIX Query (QBP^Q23 / RSP^K23, ITI TF-2a 3.9.4.2.2.6) on the ITI-8 MLLP listener."""

from __future__ import annotations

import asyncio

import pytest

from tests.hl7.conftest import error_code, exchange
from tests.identity.conftest import (
    HN_OID,
    HOSPA_OID,
    HOSPB_OID,
    Env,
    ack_code,
    ack_fields,
    adt,
    pid_hn,
    pid_local,
)
from xds.config import MllpConfig
from xds.hl7.patient_feed import start_patient_feed


def qbp(qpd3: str, qpd4: str = "", tag: str = "Q-1", version: str = "2.5", event: str = "Q23") -> bytes:
    return (
        f"MSH|^~\\&|PIXCONS|CLINIC|XDSREG|HDIRS|20250101120000||QBP^{event}^QBP_Q21|P{tag}|P|{version}\r"
        f"QPD|IHE PIX Query|{tag}|{qpd3}|{qpd4}\r"
        "RCP|I\r"
    ).encode()


def segments(rsp: bytes, segment_id: str) -> list[list[str]]:
    return [s.split("|") for s in rsp.decode().split("\r") if s.startswith(segment_id + "|")]


@pytest.fixture
def people(env: Env) -> Env:
    """HN 1111111111 is MRN1 at A and XYZ at B; 123 at A and 123 at B are two other people."""
    for raw in (
        adt("A01", f"{pid_hn('1111111111')}~{pid_local('MRN1')}"),
        adt("A01", f"{pid_hn('1111111111')}~XYZ", facility="HOSPB"),
        adt("A01", f"{pid_hn('2222222222')}~{pid_local('123')}"),
        adt("A01", f"{pid_hn('3333333333')}~123", facility="HOSPB"),
        adt("A04", pid_local("NOHN")),
    ):
        assert ack_code(env.send(raw)) == "AA"
    return env


def test_pix_query_by_local_id_returns_the_hn_and_the_other_hospitals_id(people):
    rsp = people.send(qbp(f"MRN1^^^HOSPA&{HOSPA_OID}&ISO"))
    assert ack_fields(rsp, "MSH")[8] == "RSP^K23^RSP_K23"
    assert (ack_code(rsp), ack_fields(rsp, "QAK")[1:3]) == ("AA", ["Q-1", "OK"])
    assert ack_fields(rsp, "QPD")[3] == f"MRN1^^^HOSPA&{HOSPA_OID}&ISO"  # echoed
    pid = ack_fields(rsp, "PID")
    assert set(pid[3].split("~")) == {f"1111111111^^^&{HN_OID}&ISO", f"XYZ^^^HOSPB&{HOSPB_OID}&ISO"}
    assert pid[5] == "~^^^^^^S"


def test_what_domains_returned_limits_the_answer(people):
    rsp = people.send(qbp(f"1111111111^^^&{HN_OID}&ISO", "^^^HOSPB"))
    assert ack_fields(rsp, "PID")[3] == f"XYZ^^^HOSPB&{HOSPB_OID}&ISO"


def test_the_same_patient_id_at_two_hospitals_are_two_people(people):
    a = people.send(qbp("123^^^HOSPA"))
    b = people.send(qbp(f"123^^^&{HOSPB_OID}&ISO"))
    assert ack_fields(a, "PID")[3] == f"2222222222^^^&{HN_OID}&ISO"
    assert ack_fields(b, "PID")[3] == f"3333333333^^^&{HN_OID}&ISO"


def test_a_known_id_with_nothing_in_the_domains_asked_is_NF(people):
    rsp = people.send(qbp("NOHN^^^HOSPA"))
    assert (ack_code(rsp), ack_fields(rsp, "QAK")[2]) == ("AA", "NF")
    assert segments(rsp, "PID") == []
    rsp = people.send(qbp("MRN1^^^HOSPA", "^^^HOSPA"))  # only the queried id itself is in HOSPA
    assert (ack_code(rsp), ack_fields(rsp, "QAK")[2]) == ("AA", "NF")


@pytest.mark.parametrize(
    "qpd3, qpd4, where",
    [
        ("NOBODY^^^HOSPA", "", "QPD^1^3^1^1"),  # the id is not known in its domain
        ("MRN1^^^UNKNOWN&1.2.3.999&ISO", "", "QPD^1^3^1^4"),  # its domain is not known
        ("MRN1^^^HOSPA", "^^^HOSPB~^^^NOWHERE", "QPD^1^4^2"),  # a domain asked for is not known
    ],
)
def test_unknown_id_or_domain_is_AE_with_ERR_204_at_the_field(people, qpd3, qpd4, where):
    rsp = people.send(qbp(qpd3, qpd4))
    assert (ack_code(rsp), ack_fields(rsp, "QAK")[2]) == ("AE", "AE")
    err = ack_fields(rsp, "ERR")
    assert (err[2], err[3].split("^")[0], err[4]) == (where, "204", "E")
    assert segments(rsp, "PID") == []


def test_a_merged_away_id_is_no_longer_known(people):
    people.send(adt("A40", f"{pid_hn('1111111111')}~{pid_local('MRN2')}", mrg=pid_local("MRN1")))
    rsp = people.send(qbp("MRN1^^^HOSPA"))
    assert ack_fields(rsp, "ERR")[2] == "QPD^1^3^1^1"
    rsp = people.send(qbp("MRN2^^^HOSPA", "^^^HOSPB"))
    assert ack_fields(rsp, "PID")[3] == f"XYZ^^^HOSPB&{HOSPB_OID}&ISO"


@pytest.mark.parametrize("version, event, code", [("2.3.1", "Q23", "203"), ("2.5", "Q22", "201")])
def test_other_queries_get_an_AR_acknowledgement(people, version, event, code):
    rsp = people.send(qbp("MRN1^^^HOSPA", version=version, event=event))
    assert ack_code(rsp) == "AR"
    assert error_code(rsp) == code


def test_pix_query_and_adt_share_one_mllp_connection(people):
    identity = people.identity

    async def scenario():
        server = await start_patient_feed(MllpConfig(host="127.0.0.1", port=0), identity.domain, identity.feed,
                                          pix=identity.pix)
        try:
            return await exchange(server.port, adt("A01", f"{pid_hn('4444444444')}~{pid_local('M4')}"),
                                  qbp("M4^^^HOSPA"))
        finally:
            await server.close()

    ack, rsp = asyncio.run(scenario())
    assert ack_code(ack) == "AA"
    assert ack_fields(rsp, "PID")[3] == f"4444444444^^^&{HN_OID}&ISO"
