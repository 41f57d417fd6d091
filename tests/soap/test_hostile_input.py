"""Hostile input: each answered with a SOAP fault, never a stack trace, the endpoint still serving."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from tests.soap.conftest import SOAP_CT, envelope, fault_of, make_app
from xds.config import LimitsConfig

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><x>&lol4;</x></env:Body></env:Envelope>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><x>&xxe;</x></env:Body></env:Envelope>"""


def deep(n: int) -> bytes:
    return envelope(body="<a>" * n + "</a>" * n)


@pytest.fixture
def small_client() -> TestClient:
    return TestClient(make_app(LimitsConfig(max_request_bytes=200_000, max_envelope_bytes=100_000, max_xml_depth=64)))


@pytest.mark.parametrize(
    "name,body",
    [
        ("billion-laughs", BILLION_LAUGHS),
        ("xxe", XXE),
        ("deep-nesting", deep(10_000)),
        ("not-xml", b"\x00\xff\xfe garbage"),
        ("truncated-xml", envelope()[:-30]),
        ("empty", b""),
    ],
)
def test_hostile_xml_gets_sender_fault_and_service_continues(small_client, name, body):
    r = small_client.post("/svc", content=body, headers={"content-type": SOAP_CT})
    assert r.status_code == 400, name
    code, _, reason = fault_of(r.content)
    assert code == "env:Sender"
    assert b"root:" not in r.content and b"Traceback" not in r.content
    assert small_client.post("/svc", content=envelope(), headers={"content-type": SOAP_CT}).status_code == 200


def test_oversized_declared_body_is_refused(small_client):
    body = envelope(body="<t:Echo xmlns:t='urn:test'>" + "x" * 300_000 + "</t:Echo>")
    r = small_client.post("/svc", content=body, headers={"content-type": SOAP_CT})
    assert r.status_code == 400 and "limit" in fault_of(r.content)[2]


def test_oversized_chunked_body_is_refused(small_client):
    def chunks():
        yield envelope()[:100]
        for _ in range(200):
            yield b"x" * 1000

    r = small_client.post("/svc", content=chunks(), headers={"content-type": SOAP_CT})
    assert r.status_code == 400 and "limit" in fault_of(r.content)[2]


def test_truncated_multipart_is_sender_fault(small_client):
    body = b'--b1\r\nContent-Type: application/xop+xml; type="application/soap+xml"\r\nContent-ID: <root>\r\n\r\n' + envelope()
    r = small_client.post(
        "/svc", content=body,
        headers={"content-type": 'multipart/related; boundary=b1; type="application/xop+xml"; start="<root>"'},
    )
    assert r.status_code == 400 and fault_of(r.content)[0] == "env:Sender"


def test_multipart_without_the_named_root_part_is_sender_fault(small_client):
    body = (
        b'--b1\r\nContent-Type: application/octet-stream\r\nContent-ID: <other>\r\n\r\nabc\r\n--b1--\r\n'
    )
    r = small_client.post(
        "/svc", content=body,
        headers={"content-type": 'multipart/related; boundary=b1; type="application/xop+xml"; start="<root>"'},
    )
    assert r.status_code == 400 and fault_of(r.content)[0] == "env:Sender"
    assert small_client.post("/svc", content=envelope(), headers={"content-type": SOAP_CT}).status_code == 200
