"""Who asks: the organisation of a verified XUA assertion (xds.security.xua), else of the verified TLS
client certificate (xds.security.tls.PeerCertificate), else nobody (external) — read from the
SoapRequest as the endpoint guard leaves it, and used by the stored query (SQLite, PostgreSQL)."""

from __future__ import annotations

import datetime as dt

from tests.consent.helpers import Province, everything
from tests.registry.stored_query_data import ids
from tests.security import saml
from tests.security.conftest import dev_pki  # noqa: F401 - fixture
from tests.security.test_xua import AUDIENCE, request_with
from xds.consent import ConsentDirectives, requester_of
from xds.consent.requester import certificate_organisations
from xds.security.tls import PeerCertificate
from xds.security.xua import IdentityProvider, XuaVerifier

HOSPITAL_OID = "2.25.3000"  # the organization-id tests.security.saml asserts (urn:oid:2.25.3000)


class _SslObject:
    def __init__(self, subject: tuple) -> None:
        self.subject = subject

    def getpeercert(self) -> dict:
        return {"subject": self.subject, "issuer": ((("commonName", "dev CA"),),), "serialNumber": "01"}


def peer(*rdns: tuple[str, str]) -> PeerCertificate:
    certificate = PeerCertificate.from_ssl_object(_SslObject(tuple(((k, v),) for k, v in rdns)))  # type: ignore[arg-type]
    assert certificate is not None
    return certificate


def test_a_verified_xua_assertion_names_the_organisation(
    data: Province,
    consent: ConsentDirectives,
    dev_pki,  # noqa: F811
) -> None:
    verifier = XuaVerifier([IdentityProvider(saml.IDP, dev_pki.load("idp").certificate)], default="required",
                           audiences={AUDIENCE}, clock_skew=60)
    soap = request_with(saml.security_header(saml.sign(saml.assertion(AUDIENCE), dev_pki.load("idp"))))
    soap.xua = verifier.authenticate("registry", soap)  # what xds.security.guard does
    soap.client_certificate = peer(("organizationName", "Some Clinic"), ("commonName", "viewer"))
    requester = requester_of(soap)
    assert (requester.organisations, requester.via) == (frozenset({HOSPITAL_OID}), "xua")
    assert requester.subject == "dr.smith@hospital.example.ca"

    own, other = data.document(), data.document()
    data.submit([own], source=HOSPITAL_OID)
    data.submit([other])
    consent.withdraw(data.patient, set_by="privacy office", at=dt.datetime.now(dt.UTC))
    assert everything(data.find_documents(requester=requester)) == ids(own)
    assert data.find_documents().objects == []


def test_the_tls_certificate_names_the_organisation_when_there_is_no_assertion() -> None:
    certificate = peer(("countryName", "CA"), ("organizationName", "Hospital of Ontario"),
                       ("organizationIdentifier", f"urn:oid:{HOSPITAL_OID}"), ("commonName", "pacs.hospital"))
    soap = request_with("")
    soap.client_certificate = certificate
    requester = requester_of(soap)
    assert (requester.organisations, requester.via) == (frozenset({HOSPITAL_OID, "Hospital of Ontario"}), "tls")
    assert requester.subject == certificate.subject


def test_nothing_verified_is_external() -> None:
    soap = request_with("")
    assert requester_of(soap).external
    soap.client_certificate = peer(("commonName", "no organisation"))
    assert requester_of(soap).external


def test_certificate_shapes() -> None:
    assert certificate_organisations("CN=a,O=Org\\, Inc.,organizationIdentifier=1.2.3")[0] == {"Org, Inc.", "1.2.3"}
    assert certificate_organisations({"subject": ((("organizationName", "X"),),)})[0] == {"X"}
