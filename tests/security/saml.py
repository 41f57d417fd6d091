"""SAML 2.0 identity assertions (XUA, ITI-40) as an identity provider issues them, signed with keys of
the development PKI, for the XUA tests."""

from __future__ import annotations

import datetime as dt
import uuid

from lxml import etree

from xds.namespaces import SAML2, WSSE
from xds.security import pki

DS = "http://www.w3.org/2000/09/xmldsig#"
HL7 = "urn:hl7-org:v3"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
IDP = "https://idp.dev.example.ca"
PHYSICIAN = ("309343006", "2.16.840.1.113883.6.96", "SNOMED_CT", "Physician")
TREATMENT = ("TREATMENT", "2.16.840.1.113883.3.18.7.1", "nhin-purpose", "Treatment")


def _attribute(statement: etree._Element, name: str, value: str | etree._Element) -> None:
    attr = etree.SubElement(statement, f"{{{SAML2}}}Attribute", Name=name)
    v = etree.SubElement(attr, f"{{{SAML2}}}AttributeValue")
    if isinstance(value, str):
        v.text = value
    else:
        v.append(value)


def _ce(local: str, code: tuple[str, str, str, str]) -> etree._Element:
    el = etree.Element(f"{{{HL7}}}{local}", nsmap={"hl7": HL7, "xsi": XSI})
    el.set(f"{{{XSI}}}type", "CE")
    el.set("code", code[0])
    el.set("codeSystem", code[1])
    el.set("codeSystemName", code[2])
    el.set("displayName", code[3])
    return el


def assertion(
    audience: str,
    *,
    issuer: str = IDP,
    subject: str = "dr.smith@hospital.example.ca",
    subject_name: str = "Dr Jane Smith",
    organization_id: str = "urn:oid:2.25.3000",
    not_before: dt.datetime | None = None,
    not_on_or_after: dt.datetime | None = None,
    role: tuple[str, str, str, str] = PHYSICIAN,
    purpose: tuple[str, str, str, str] = TREATMENT,
    one_time_use: bool = False,
) -> etree._Element:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    a = etree.Element(f"{{{SAML2}}}Assertion", nsmap={"saml2": SAML2}, ID=f"_{uuid.uuid4().hex}", Version="2.0",
                      IssueInstant=now.isoformat().replace("+00:00", "Z"))
    etree.SubElement(a, f"{{{SAML2}}}Issuer").text = issuer
    etree.SubElement(a, f"{{{DS}}}Signature", nsmap={"ds": DS}, Id="placeholder")
    subj = etree.SubElement(a, f"{{{SAML2}}}Subject")
    etree.SubElement(subj, f"{{{SAML2}}}NameID", Format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified").text = subject
    etree.SubElement(subj, f"{{{SAML2}}}SubjectConfirmation", Method="urn:oasis:names:tc:SAML:2.0:cm:bearer")
    cond = etree.SubElement(a, f"{{{SAML2}}}Conditions",
                            NotBefore=(not_before or now - dt.timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),
                            NotOnOrAfter=(not_on_or_after or now + dt.timedelta(minutes=5)).isoformat().replace("+00:00", "Z"))
    etree.SubElement(etree.SubElement(cond, f"{{{SAML2}}}AudienceRestriction"), f"{{{SAML2}}}Audience").text = audience
    if one_time_use:
        etree.SubElement(cond, f"{{{SAML2}}}OneTimeUse")
    etree.SubElement(a, f"{{{SAML2}}}AuthnStatement", AuthnInstant=now.isoformat().replace("+00:00", "Z"))
    statement = etree.SubElement(a, f"{{{SAML2}}}AttributeStatement")
    _attribute(statement, "urn:oasis:names:tc:xspa:1.0:subject:subject-id", subject_name)
    _attribute(statement, "urn:oasis:names:tc:xspa:1.0:subject:organization", "Hospital of Ontario")
    _attribute(statement, "urn:oasis:names:tc:xspa:1.0:subject:organization-id", organization_id)
    _attribute(statement, "urn:oasis:names:tc:xacml:2.0:subject:role", _ce("Role", role))
    _attribute(statement, "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse", _ce("PurposeOfUse", purpose))
    return a


def sign(unsigned: etree._Element, idp: pki.Issued) -> etree._Element:
    from cryptography.hazmat.primitives.asymmetric import ec
    from signxml import XMLSigner

    algorithm = "ecdsa-sha256" if isinstance(idp.key, ec.EllipticCurvePrivateKey) else "rsa-sha256"
    signer = XMLSigner(signature_algorithm=algorithm, digest_algorithm="sha256",
                       c14n_algorithm="http://www.w3.org/2001/10/xml-exc-c14n#")
    return signer.sign(unsigned, key=idp.key, cert=[idp.certificate], reference_uri=unsigned.get("ID"), id_attribute="ID")


def unsigned(a: etree._Element) -> etree._Element:
    placeholder = a.find(f"{{{DS}}}Signature")
    if placeholder is not None:
        a.remove(placeholder)
    return a


def security_header(a: etree._Element | None) -> str:
    """A wsse:Security header block (mustUnderstand) holding ``a``."""
    inner = etree.tostring(a).decode() if a is not None else ""
    return (f'<wsse:Security xmlns:wsse="{WSSE}" env:mustUnderstand="true">{inner}</wsse:Security>')
