"""XUA X-Service Provider (ITI-40): SAML 2.0 assertions in wsse:Security verified against the trusted
identity provider (signature, validity window, audience), the asserted person in the audit trail,
and the policy per endpoint; forged, expired and unsigned assertions refused with WS-Security faults."""

from __future__ import annotations

import datetime as dt

import pytest
from lxml import etree

from tests.security import flows, saml
from tests.soap.conftest import fault_of
from xds.namespaces import SAML2, WSSE
from xds.security.xua import IdentityProvider, XuaFault, XuaVerifier
from xds.soap import envelope as soap_envelope
from xds.soap.message import Addressing, SoapRequest

AUDIENCE = "https://dir.example.ca"
NOW = dt.datetime.now(dt.UTC)


@pytest.fixture(scope="module")
def verifier(dev_pki) -> XuaVerifier:
    idp = IdentityProvider(saml.IDP, dev_pki.load("idp").certificate)
    return XuaVerifier([idp], default="required", policies={"repository": "optional", "imaging": "off"},
                       audiences={AUDIENCE}, clock_skew=60)


def request_with(header_xml: str) -> SoapRequest:
    xml = (f'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header>{header_xml}</env:Header>'
           f'<env:Body><x:Ping xmlns:x="urn:x"/></env:Body></env:Envelope>')
    root = etree.fromstring(xml.encode())
    header, body = soap_envelope.split_envelope(root)
    return SoapRequest(root, header, body, Addressing(action="urn:x"), endpoint="/xds/registry")


def signed(dev_pki, signer: str = "idp", **kw) -> etree._Element:
    return saml.sign(saml.assertion(AUDIENCE, **kw), dev_pki.load(signer))


def refused(verifier, assertion: etree._Element | None, endpoint: str = "registry") -> tuple[str, str]:
    with pytest.raises(XuaFault) as e:
        verifier.authenticate(endpoint, request_with(saml.security_header(assertion)))
    assert e.value.code == "Sender" and e.value.subcode[0] == WSSE
    return e.value.subcode[1], e.value.reason


def test_valid_assertion_yields_the_person_with_xspa_role_purpose_and_organization(verifier, dev_pki):
    person = verifier.authenticate("registry", request_with(saml.security_header(signed(dev_pki))))
    assert person.user_id == "dr.smith@hospital.example.ca"
    assert person.user_name == f"Dr Jane Smith<dr.smith@hospital.example.ca@{saml.IDP}>"
    assert [(r.code, r.text) for r in person.roles] == [("309343006", "Physician")]
    assert [p.code for p in person.purposes_of_use] == ["TREATMENT"]
    assert person.organization_id == "urn:oid:2.25.3000"


def test_forged_assertion_signed_by_another_key_is_refused(verifier, dev_pki):
    assert refused(verifier, signed(dev_pki, "rogue-idp"))[0] == "FailedAuthentication"


def test_unsigned_assertion_is_refused(verifier, dev_pki):
    assert refused(verifier, saml.unsigned(saml.assertion(AUDIENCE))) == (
        "FailedAuthentication", "the assertion is not signed")


def test_assertion_altered_after_signing_is_refused(verifier, dev_pki):
    a = signed(dev_pki)
    a.find(f".//{{{saml.HL7}}}Role").set("code", "ADMIN")
    assert refused(verifier, a)[0] == "FailedAuthentication"


@pytest.mark.parametrize("window", [
    {"not_before": NOW - dt.timedelta(hours=2), "not_on_or_after": NOW - dt.timedelta(hours=1)},
    {"not_before": NOW + dt.timedelta(hours=1), "not_on_or_after": NOW + dt.timedelta(hours=2)},
], ids=["expired", "not-yet-valid"])
def test_assertion_outside_its_validity_window_is_refused(verifier, dev_pki, window):
    code, reason = refused(verifier, signed(dev_pki, **window))
    assert code == "FailedAuthentication" and ("expired" in reason or "not yet valid" in reason)


def test_clock_skew_is_tolerated(verifier, dev_pki):
    now = dt.datetime.now(dt.UTC)  # not the import-time NOW: the suite may run long before this test
    a = signed(dev_pki, not_before=now + dt.timedelta(seconds=30), not_on_or_after=now + dt.timedelta(minutes=5))
    assert verifier.authenticate("registry", request_with(saml.security_header(a))) is not None


def test_assertion_for_another_audience_is_refused(verifier, dev_pki):
    a = saml.sign(saml.assertion("https://elsewhere.example.ca"), dev_pki.load("idp"))
    assert refused(verifier, a) == ("FailedAuthentication", "the assertion is meant for another audience")


def test_assertion_from_an_untrusted_issuer_is_refused(verifier, dev_pki):
    a = saml.sign(saml.assertion(AUDIENCE, issuer="https://idp.evil.example"), dev_pki.load("idp"))
    assert refused(verifier, a)[0] == "FailedAuthentication"


def test_signature_wrapping_is_refused(verifier, dev_pki):
    """A new assertion (new ID, the attacker's role) wrapping the genuine signed one."""
    genuine = signed(dev_pki)
    evil = saml.unsigned(saml.assertion(AUDIENCE, role=("ADMIN", "2.16.840.1.113883.6.96", "SNOMED_CT", "Admin")))
    evil.insert(1, genuine.find(f"{{{saml.DS}}}Signature"))
    etree.SubElement(evil, f"{{{SAML2}}}Advice").append(genuine)
    assert refused(verifier, evil)[0] == "FailedAuthentication"


def test_missing_assertion_per_policy(verifier, dev_pki):
    assert refused(verifier, None) == ("InvalidSecurity", refused(verifier, None)[1])  # required
    assert verifier.authenticate("repository", request_with("")) is None  # optional
    assert verifier.authenticate("imaging", request_with(saml.security_header(None))) is None  # off
    # optional: an assertion that is present must still be valid
    with pytest.raises(XuaFault):
        verifier.authenticate("repository", request_with(saml.security_header(signed(dev_pki, "rogue-idp"))))


def test_two_assertions_are_invalid_security(verifier, dev_pki):
    header = saml.security_header(signed(dev_pki)).replace("</wsse:Security>",
                                                           etree.tostring(signed(dev_pki)).decode() + "</wsse:Security>")
    with pytest.raises(XuaFault) as e:
        verifier.authenticate("registry", request_with(header))
    assert e.value.subcode == (WSSE, "InvalidSecurity")


# --- on the live node: registry optional, responding gateway required -------------------------------


def subcode(content: bytes) -> tuple[str, str] | None:
    root = etree.fromstring(content)
    value = root.find(".//{http://www.w3.org/2003/05/soap-envelope}Subcode/{http://www.w3.org/2003/05/soap-envelope}Value")
    if value is None:
        return None
    prefix, _, local = (value.text or "").partition(":")
    return value.nsmap.get(prefix), local


def test_live_query_with_an_assertion_records_the_person_in_the_audit(secure_node, dev_pki):
    node = secure_node
    hn = flows.new_hn()
    flows.feed_patient(node.mllp_port, hn, dev_pki.client_context())
    a = saml.sign(saml.assertion(node.base_url), dev_pki.load("idp"))
    with node.client(timeout=30) as client:
        r = flows.find_documents(client, node.base_url, flows.cx(hn), extra_headers=saml.security_header(a))
    assert r.status_code == 200 and b"ResponseStatusType:Success" in r.content
    with flows.audit_store(node.data_dir) as store:
        [access] = [x for x in store.accesses(patient=hn) if x.transaction == "ITI-18"]
    assert access.user == f"Dr Jane Smith<dr.smith@hospital.example.ca@{saml.IDP}>"
    assert "309343006^Physician" in access.roles and "TREATMENT^Treatment" in access.purposes
    [m] = [m for m in flows.audit_messages(node.data_dir, "ITI-18") if flows.cx(hn) in flows.objects(m).get("2", [])]
    human = [p for p in m.findall("ActiveParticipant") if p.get("UserID") == "dr.smith@hospital.example.ca"]
    assert human and human[0].get("UserIsRequestor") == "true"
    assert m.find("EventIdentification/PurposeOfUse").get("csd-code") == "TREATMENT"


def test_live_required_endpoint_refuses_a_request_without_assertion_and_audits_it(secure_node, dev_pki):
    node = secure_node
    with node.client(timeout=30) as client:
        r = client.post(node.url("/xca/respond"),
                        content=flows.rm.envelope("urn:ihe:iti:2007:CrossGatewayQuery", flows.find_documents_body("1^^^&1.2&ISO")),
                        headers={"content-type": "application/soap+xml; charset=UTF-8"})
    assert r.status_code == 400 and fault_of(r.content)[0] == "env:Sender"
    assert subcode(r.content) == (WSSE, "InvalidSecurity")
    logins = [m for m in flows.audit_messages(node.data_dir) if flows.event_codes(m)[:2] == ("110114", "110122")]
    assert logins and logins[-1].find("EventIdentification").get("EventOutcomeIndicator") == "4"


def test_live_required_endpoint_refuses_an_expired_assertion(secure_node, dev_pki):
    node = secure_node
    a = saml.sign(saml.assertion(node.base_url, not_before=NOW - dt.timedelta(hours=2),
                                 not_on_or_after=NOW - dt.timedelta(hours=1)), dev_pki.load("idp"))
    body = flows.rm.envelope("urn:ihe:iti:2007:CrossGatewayQuery", flows.find_documents_body("1^^^&1.2&ISO"))
    body = body.replace(b"</env:Header>", saml.security_header(a).encode() + b"</env:Header>")
    with node.client(timeout=30) as client:
        r = client.post(node.url("/xca/respond"), content=body, headers={"content-type": "application/soap+xml"})
    assert subcode(r.content) == (WSSE, "FailedAuthentication")


def test_live_required_endpoint_serves_a_valid_assertion(secure_node, dev_pki):
    node = secure_node
    a = saml.sign(saml.assertion(node.base_url), dev_pki.load("idp"))
    body = flows.rm.envelope("urn:ihe:iti:2007:CrossGatewayQuery", flows.find_documents_body("1^^^&1.2&ISO"))
    body = body.replace(b"</env:Header>", saml.security_header(a).encode() + b"</env:Header>")
    with node.client(timeout=30) as client:
        r = client.post(node.url("/xca/respond"), content=body, headers={"content-type": "application/soap+xml"})
    assert subcode(r.content) is None or subcode(r.content)[0] != WSSE, r.content[:1000]
