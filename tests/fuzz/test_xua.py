"""XUA (xds.security.xua) under mutated, signed SAML 2.0 assertions in the WS-Security header.

The seeds are assertions an identity provider of a development PKI signs (built as the XUA tests
build them, tests/security/saml.py). Each is mutated as a tree (elements dropped, duplicated, moved
into one another - the raw material of signature wrapping -, renamed, emptied; attributes and
texts replaced) or as bytes.

Property: the verifier either refuses with a WS-Security fault (SOAP Sender, wsse:InvalidSecurity or
wsse:FailedAuthentication) or accepts exactly the person the identity provider signed for: no
mutation may change who the node believes is asking, with which role and purpose of use.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from lxml import etree

from tests.fuzz.conftest import fuzz
from tests.fuzz.mutations import XML_TOKENS, mutated_bytes, mutated_xml
from tests.security import saml
from xds.namespaces import WSSE
from xds.security import pki
from xds.security.xua import IdentityProvider, XuaFault, XuaVerifier
from xds.soap import envelope as soap_envelope
from xds.soap.message import Addressing, SoapRequest

AUDIENCE = "https://dir.fuzz.example.ca"
LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)  # long runs must not see the seeds expire

_CA = pki.create_ca("fuzz CA")
_IDP = pki.issue(_CA, "fuzz-idp", usage="signing")
_ROGUE = pki.issue(pki.create_ca("rogue CA"), "rogue-idp", usage="signing")

SEEDS = [
    etree.tostring(saml.sign(saml.assertion(AUDIENCE, not_on_or_after=LATER), _IDP)),
    etree.tostring(saml.sign(saml.assertion(AUDIENCE, not_on_or_after=LATER, subject="nurse@clinic.example.ca",
                                            role=("224535009", "2.16.840.1.113883.6.96", "SNOMED_CT", "Nurse"),
                                            purpose=("EMERGENCY", "2.16.840.1.113883.3.18.7.1", "nhin-purpose",
                                                     "Emergency")), _IDP)),
    etree.tostring(saml.sign(saml.assertion(AUDIENCE, not_on_or_after=LATER, subject="intruder@example.com"), _ROGUE)),
]


VERIFIER = XuaVerifier([IdentityProvider(saml.IDP, _IDP.certificate)], default="required", audiences={AUDIENCE})


def request_with(security: bytes) -> SoapRequest:
    xml = (b'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header>' + security +
           b'</env:Header><env:Body><x:Ping xmlns:x="urn:x"/></env:Body></env:Envelope>')
    root = etree.fromstring(xml)
    header, body = soap_envelope.split_envelope(root)
    return SoapRequest(root, header, body, Addressing(action="urn:x"), endpoint="/xds/registry")


def security_header(assertion: bytes) -> bytes:
    return (f'<wsse:Security xmlns:wsse="{WSSE}" xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
            f'env:mustUnderstand="true">').encode() + assertion + b"</wsse:Security>"


def test_the_seeds_are_what_the_verifier_accepts_and_refuses():
    assert VERIFIER.authenticate("registry", request_with(security_header(SEEDS[0]))).user_id.startswith("dr.smith")
    assert VERIFIER.authenticate("registry", request_with(security_header(SEEDS[1]))).user_id.startswith("nurse")
    with pytest.raises(XuaFault):
        VERIFIER.authenticate("registry", request_with(security_header(SEEDS[2])))


@st.composite
def mutated_assertions(draw) -> tuple[int, bytes]:
    index = draw(st.sampled_from(range(len(SEEDS))))
    seed = SEEDS[index]
    tree = mutated_xml([seed], max_ops=4)
    mutated = draw(st.one_of(tree, tree, mutated_bytes([seed], XML_TOKENS, max_ops=3)))
    return index, mutated


@fuzz(300)
@given(case=mutated_assertions(), wrapped=st.booleans())
def test_a_mutated_assertion_is_refused_or_names_the_signed_person(case, wrapped):
    index, mutated = case
    try:
        etree.fromstring(mutated)
    except etree.XMLSyntaxError:
        event("not well-formed")
        return
    # wrapped: the original signed assertion goes along, as in signature-wrapping attacks
    header = security_header(mutated + (SEEDS[index] if wrapped and index != 2 else b""))
    try:
        person = VERIFIER.authenticate("registry", request_with(header))
    except XuaFault as fault:
        assert fault.code == "Sender" and fault.subcode is not None and fault.subcode[0] == WSSE
        event(f"refused: {fault.subcode[1]}")
        return
    event("accepted")
    assert index != 2, "an assertion signed by an untrusted key was accepted"
    signed = VERIFIER.authenticate("registry", request_with(security_header(SEEDS[index])))
    assert person == signed, f"the verifier believes {person}, the identity provider signed {signed}"
