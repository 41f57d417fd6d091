"""A bare SOAP endpoint (dispatch, envelope, WS-Addressing, MTOM) under malformed HTTP requests.

Every request gets a SOAP 1.2 fault or the echo answer, never a stack trace or a bare 500, no
ERROR is logged, and the endpoint answers a valid request right after.
"""

from __future__ import annotations

import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st
from lxml import etree
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from tests.fuzz import seeds, wire
from tests.fuzz.conftest import fuzz, tracebacks
from tests.fuzz.mutations import MIME_TOKENS, XML_TOKENS, hostile_text, mutated_bytes, mutated_xml
from xds.config import LimitsConfig
from xds.soap.dispatch import Endpoint
from xds.soap.message import SoapRequest, SoapResponse

pytestmark = seeds.needs_corpus

ECHO = "urn:fuzz:Echo"


def echo(request: SoapRequest) -> SoapResponse:
    from xds.metadata.response import registry_response

    return SoapResponse(registry_response([]), "urn:fuzz:EchoResponse")


@pytest.fixture(scope="module")
def client() -> TestClient:
    limits = LimitsConfig(max_request_bytes=4 * 1024**2, max_envelope_bytes=1024**2, max_xml_depth=64,
                          spool_threshold_bytes=4096)
    ep = Endpoint("fuzz", "/svc", None, limits)
    ep.add_operation(ECHO, "urn:fuzz:EchoResponse", echo)
    ep.add_operation(wire.PROVIDE, "urn:fuzz:EchoResponse", echo)
    app = Starlette(routes=[Route("/svc", ep, methods=["GET", "POST"])])
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


VALID = wire.envelope(ECHO, b"<f:Echo xmlns:f='urn:fuzz'>hello</f:Echo>")


def _envelope_seeds() -> list[bytes]:
    out = [VALID, wire.envelope(None, b"<f:Echo xmlns:f='urn:fuzz'/>")]
    for body, _ in seeds.mtom_captures():
        start, end = body.find(b"<?xml"), body.find(b"Envelope>", body.find(b"<soapenv:Body") + 1)
        if start != -1 and end != -1:
            out.append(body[start : end + len(b"Envelope>")])
    return out


ENVELOPES = _envelope_seeds()
CONTENT_TYPES = [wire.SOAP_CT, "text/xml", "application/xml", "", f'{wire.SOAP_CT}; action="{ECHO}"',
                 "application/json", "multipart/form-data; boundary=x", "multipart/related",
                 'multipart/related; boundary=""', "multipart/related; boundary=" + "b" * 300]
CONTENT_TYPES += [ct for _, ct in seeds.mtom_captures()]


def content_types() -> st.SearchStrategy[str]:
    latin1 = st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=120)
    return st.one_of(
        st.sampled_from(CONTENT_TYPES),
        st.builds(lambda ct, extra: ct + extra, st.sampled_from(CONTENT_TYPES),
                  st.sampled_from(['; start="<nope>"', "; boundary=x; boundary=y", '; type="text/html"',
                                   "; start", "; charset=utf-16", '; action="urn:none"', ";;;", '; boundary="'])),
        latin1,
    )


@pytest.fixture(autouse=True)
def still_serving(client: TestClient):  # noqa: ANN201
    """After each property: the endpoint answers a valid request."""
    yield
    r = client.post("/svc", content=VALID, headers={"content-type": wire.SOAP_CT})
    assert r.status_code == 200, r.text[:500]


@fuzz(200)
@given(body=st.binary(max_size=4096), content_type=content_types())
def test_random_bytes_get_a_fault(client, caplog, body, content_type):
    caplog.clear()
    with caplog.at_level(logging.INFO):
        answer = wire.post(client, "/svc", body, content_type)
    assert answer.kind == "fault" or body.lstrip().startswith(b"<"), answer
    assert not tracebacks(caplog.records)


@fuzz(250)
@given(body=mutated_bytes(ENVELOPES, XML_TOKENS), content_type=st.sampled_from([wire.SOAP_CT, "text/xml", ""]))
def test_mutated_envelopes_get_a_fault_or_an_answer(client, caplog, body, content_type):
    caplog.clear()
    with caplog.at_level(logging.INFO):
        wire.post(client, "/svc", body, content_type)
    assert not tracebacks(caplog.records)


@fuzz(200)
@given(body=mutated_xml(ENVELOPES, keep_root=False))
def test_restructured_envelopes_get_a_fault_or_an_answer(client, caplog, body):
    caplog.clear()
    with caplog.at_level(logging.INFO):
        wire.post(client, "/svc", body)
    assert not tracebacks(caplog.records)


MTOM_BODIES = [b for b, _ in seeds.mtom_captures()]


@fuzz(200)
@given(
    body=mutated_bytes(MTOM_BODIES, MIME_TOKENS + XML_TOKENS),
    content_type=st.one_of(st.sampled_from([ct for _, ct in seeds.mtom_captures()]), content_types()),
)
def test_mutated_mtom_packages_get_a_fault_or_an_answer(client, caplog, body, content_type):
    caplog.clear()
    with caplog.at_level(logging.INFO):
        wire.post(client, "/svc", body, content_type)
    assert not tracebacks(caplog.records)


HEADER_BLOCKS = [
    b"<wsa:Action>urn:fuzz:Echo</wsa:Action>",
    b"<wsa:To env:mustUnderstand='1'>x</wsa:To>",
    b"<To env:mustUnderstand='1'>x</To>",
    b"<wsa:ReplyTo><wsa:Address>http://evil.example/</wsa:Address></wsa:ReplyTo>",
    b"<wsa:ReplyTo/>",
    b"<x:Unknown xmlns:x='urn:x' env:mustUnderstand='true'/>",
    b"<x:Unknown xmlns:x='urn:x' env:mustUnderstand='true' env:role='http://www.w3.org/2003/05/soap-envelope/role/none'/>",
    b"<x:Unknown xmlns:x='urn:x' env:mustUnderstand='maybe'/>",
    b"<wsse:Security xmlns:wsse='http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd' "
    b"env:mustUnderstand='1'/>",
    b"<wsa:RelatesTo>urn:uuid:1</wsa:RelatesTo>",
    b"<wsa:MessageID/>",
    b"<wsa:FaultTo><wsa:Address>x</wsa:Address></wsa:FaultTo>",
    b"<!-- c -->",
    b"<?pi?>",
]


@fuzz(150)
@given(
    action=st.one_of(st.sampled_from([ECHO, wire.PROVIDE, "", " ", None]), hostile_text()),
    message_id=st.one_of(st.none(), hostile_text()),
    headers=st.lists(st.sampled_from(HEADER_BLOCKS), max_size=4),
    ct_action=st.one_of(st.none(), st.sampled_from([ECHO, "None", "", "urn:other"])),
)
def test_addressing_headers_in_any_combination(client, caplog, action, message_id, headers, ct_action):
    def text(s: str | None) -> str | None:
        return None if s is None else s.replace("&", "&amp;").replace("<", "&lt;")

    body = wire.envelope(text(action), b"<f:Echo xmlns:f='urn:fuzz'/>", message_id=text(message_id),
                         headers=b"".join(headers))
    ct = wire.SOAP_CT if ct_action is None else f'{wire.SOAP_CT}; action="{ct_action}"'
    etree.fromstring(body)  # the generator's own sanity: the envelope is well-formed
    caplog.clear()
    with caplog.at_level(logging.INFO):
        wire.post(client, "/svc", body, ct)
    assert not tracebacks(caplog.records)
