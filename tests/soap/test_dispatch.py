"""SOAP 1.2 + WS-Addressing behaviour of an endpoint (SOAP 1.2 Part 1 and 2; WS-Addressing 1.0 SOAP binding)."""

from __future__ import annotations

from lxml import etree

from tests.soap.conftest import ECHO, ECHO_RESPONSE, NS, SOAP_CT, envelope, fault_of
from xds.namespaces import SOAP11


def test_echo_answers_with_response_action_and_relates_to(client):
    r = client.post("/svc", content=envelope(message_id="urn:uuid:0a1b"), headers={"content-type": SOAP_CT})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/soap+xml")
    root = etree.fromstring(r.content)
    action = root.find("env:Header/wsa:Action", NS)
    assert action.text == ECHO_RESPONSE
    assert action.get("{http://www.w3.org/2003/05/soap-envelope}mustUnderstand") == "1"
    assert root.findtext("env:Header/wsa:RelatesTo", namespaces=NS) == "urn:uuid:0a1b"
    assert root.findtext("env:Body/{urn:test}EchoResponse", namespaces=NS) == "hello"


def test_soap11_envelope_gets_version_mismatch_with_upgrade(client):
    r = client.post("/svc", content=envelope(soap_ns=SOAP11), headers={"content-type": "text/xml"})
    code, _, _ = fault_of(r.content)
    assert code == "env:VersionMismatch"
    assert etree.fromstring(r.content).find("env:Header/env:Upgrade/env:SupportedEnvelope", NS) is not None


def test_missing_action_is_message_addressing_header_required(client):
    r = client.post("/svc", content=envelope(action=None), headers={"content-type": SOAP_CT})
    assert r.status_code == 400
    code, sub, _ = fault_of(r.content)
    assert (code, sub) == ("env:Sender", "wsa:MessageAddressingHeaderRequired")


def test_action_from_content_type_when_header_absent(client):
    r = client.post("/svc", content=envelope(action=None), headers={"content-type": f'{SOAP_CT}; action="{ECHO}"'})
    assert r.status_code == 200
    assert etree.fromstring(r.content).findtext("env:Header/wsa:Action", namespaces=NS) == ECHO_RESPONSE


def test_unknown_action_is_action_not_supported(client):
    r = client.post("/svc", content=envelope(action="urn:nope"), headers={"content-type": SOAP_CT})
    code, sub, _ = fault_of(r.content)
    assert (code, sub) == ("env:Sender", "wsa:ActionNotSupported")
    assert etree.fromstring(r.content).findtext("env:Header/wsa:Action", namespaces=NS) == (
        "http://www.w3.org/2005/08/addressing/soap/fault"
    )


def test_duplicate_action_header_is_invalid_addressing_header(client):
    extra = f'<wsa:Action xmlns:wsa="http://www.w3.org/2005/08/addressing">{ECHO}</wsa:Action>'
    r = client.post("/svc", content=envelope(extra_headers=extra), headers={"content-type": SOAP_CT})
    assert fault_of(r.content)[1] == "wsa:InvalidAddressingHeader"


def test_unknown_must_understand_header_faults_with_not_understood(client):
    extra = '<x:Secret xmlns:x="urn:x" env:mustUnderstand="true">1</x:Secret>'
    r = client.post("/svc", content=envelope(extra_headers=extra), headers={"content-type": SOAP_CT})
    assert r.status_code == 500
    assert fault_of(r.content)[0] == "env:MustUnderstand"
    nu = etree.fromstring(r.content).find("env:Header/env:NotUnderstood", NS)
    assert nu is not None and nu.get("qname").endswith(":Secret")


def test_must_understand_header_in_no_namespace_faults_with_not_understood(client):
    # found by tests/fuzz: building NotUnderstood for a block in no namespace raised (HTTP 500, no fault)
    extra = '<To env:mustUnderstand="true">x</To>'
    r = client.post("/svc", content=envelope(extra_headers=extra), headers={"content-type": SOAP_CT})
    assert r.status_code == 500
    code, _, reason = fault_of(r.content)
    assert code == "env:MustUnderstand" and "None" not in reason
    nu = etree.fromstring(r.content).find("env:Header/env:NotUnderstood", NS)
    assert nu is not None and nu.get("qname") == "To" and None not in nu.nsmap


def test_unknown_header_without_must_understand_or_for_another_role_is_ignored(client):
    extra = (
        '<x:A xmlns:x="urn:x">1</x:A>'
        '<x:B xmlns:x="urn:x" env:mustUnderstand="1" env:role="http://www.w3.org/2003/05/soap-envelope/role/none">2</x:B>'
    )
    r = client.post("/svc", content=envelope(extra_headers=extra), headers={"content-type": SOAP_CT})
    assert r.status_code == 200


def test_body_with_two_elements_is_sender_fault(client):
    r = client.post("/svc", content=envelope(body="<a/><b/>"), headers={"content-type": SOAP_CT})
    assert fault_of(r.content)[0] == "env:Sender"


def test_unsupported_content_type_is_sender_fault(client):
    r = client.post("/svc", content=b"hello", headers={"content-type": "text/plain"})
    assert r.status_code == 400 and fault_of(r.content)[0] == "env:Sender"


def test_handler_crash_is_receiver_fault_without_details(client, caplog):
    r = client.post("/svc", content=envelope(action="urn:test:Boom"), headers={"content-type": SOAP_CT})
    assert r.status_code == 500
    code, _, reason = fault_of(r.content)
    assert code == "env:Receiver"
    assert "incident" in reason
    assert b"Traceback" not in r.content and b"1234567" not in r.content
    assert "RuntimeError" in caplog.text and "1234567" not in caplog.text
    # still serving
    assert client.post("/svc", content=envelope(), headers={"content-type": SOAP_CT}).status_code == 200


def test_non_anonymous_reply_to_is_refused(client):
    body = envelope().replace(
        b"http://www.w3.org/2005/08/addressing/anonymous", b"http://elsewhere.example/callback"
    )
    r = client.post("/svc", content=body, headers={"content-type": SOAP_CT})
    assert fault_of(r.content)[1] == "wsa:InvalidAddressingHeader"


def test_wsa_action_wins_over_a_different_content_type_action(client):
    r = client.post("/svc", content=envelope(), headers={"content-type": f'{SOAP_CT}; action="None"'})
    assert r.status_code == 200
    assert etree.fromstring(r.content).findtext("env:Header/wsa:Action", namespaces=NS) == ECHO_RESPONSE
