"""A bare SOAP endpoint with test operations, served through Starlette's TestClient."""

from __future__ import annotations

import uuid

import pytest
from lxml import etree
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from xds.config import LimitsConfig
from xds.namespaces import SOAP11, SOAP12, WSA
from xds.soap.dispatch import Endpoint
from xds.soap.message import SoapRequest, SoapResponse

ECHO = "urn:test:Echo"
ECHO_RESPONSE = "urn:test:EchoResponse"
BOOM = "urn:test:Boom"


def echo(request: SoapRequest) -> SoapResponse:
    out = etree.Element("{urn:test}EchoResponse")
    out.text = request.body_element.text
    return SoapResponse(out, ECHO_RESPONSE)


def boom(request: SoapRequest) -> SoapResponse:
    raise RuntimeError("secret patient data 1234567^^^&2.16.840.1.113883.4.59&ISO")


def make_app(limits: LimitsConfig | None = None) -> Starlette:
    ep = Endpoint("test", "/svc", None, limits or LimitsConfig())
    ep.add_operation(ECHO, ECHO_RESPONSE, echo)
    ep.add_operation(BOOM, "urn:test:BoomResponse", boom)
    return Starlette(routes=[Route("/svc", ep, methods=["GET", "POST"])])


@pytest.fixture
def client() -> TestClient:
    return TestClient(make_app())


def envelope(
    body: str = "<t:Echo xmlns:t='urn:test'>hello</t:Echo>",
    action: str | None = ECHO,
    message_id: str | None = None,
    extra_headers: str = "",
    soap_ns: str = SOAP12,
) -> bytes:
    message_id = message_id or f"urn:uuid:{uuid.uuid4()}"
    headers = []
    if action is not None:
        headers.append(f'<wsa:Action env:mustUnderstand="true">{action}</wsa:Action>')
    headers.append(f"<wsa:MessageID>{message_id}</wsa:MessageID>")
    headers.append("<wsa:To>http://testserver/svc</wsa:To>")
    headers.append("<wsa:ReplyTo><wsa:Address>http://www.w3.org/2005/08/addressing/anonymous</wsa:Address></wsa:ReplyTo>")
    return (
        f'<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="{soap_ns}" xmlns:wsa="{WSA}">'
        f"<env:Header>{''.join(headers)}{extra_headers}</env:Header><env:Body>{body}</env:Body></env:Envelope>"
    ).encode()


SOAP_CT = "application/soap+xml; charset=UTF-8"
NS = {"env": SOAP12, "wsa": WSA, "s11": SOAP11}


def fault_of(content: bytes) -> tuple[str, str | None, str]:
    """(code value, subcode value or None, reason) of a SOAP 1.2 fault response."""
    root = etree.fromstring(content)
    code = root.findtext("env:Body/env:Fault/env:Code/env:Value", namespaces=NS)
    sub = root.findtext("env:Body/env:Fault/env:Code/env:Subcode/env:Value", namespaces=NS)
    reason = root.findtext("env:Body/env:Fault/env:Reason/env:Text", namespaces=NS)
    return code, sub, reason
