"""XUA X-Service Provider (ITI-40, ITI TF-2b 3.40): SAML 2.0 identity assertions in the WS-Security
header, verified against the configured trusted identity providers.

An assertion (``wsse:Security/saml2:Assertion``) is accepted only when

- its ``saml2:Issuer`` is a configured identity provider;
- it carries an enveloped XML signature over the whole assertion (Reference ``#<ID>``), valid with
  that provider's certificate (signxml; SHA-1 is refused), and everything read from it is read from
  what the signature covers (no signature-wrapping);
- ``Conditions`` has ``NotOnOrAfter`` (and maybe ``NotBefore``) around now, within the clock skew;
- an ``AudienceRestriction/Audience`` names this node (its base URL, the endpoint's URL, its
  homeCommunityId, or a configured audience);
- its ``Subject`` has a ``NameID``.

What it asserts becomes the audit's human requestor (ITI-40 3.40.4.2): the subject NameID and
XSPA subject-id (``alias<user@issuer>``), the XSPA role(s) (``urn:oasis:names:tc:xacml:2.0:subject:role``,
HL7 CE), the purpose(s) of use (``urn:oasis:names:tc:xspa:1.0:subject:purposeofuse``) and the
organization (``urn:oasis:names:tc:xspa:1.0:subject:organization-id``).

Policy per endpoint (``[xua]``): ``required`` (no valid assertion: fault), ``optional`` (none is
fine; an invalid one is still refused), ``off`` (the header is not read; a mustUnderstand one is
then a MustUnderstand fault). Faults are WS-Security 1.1 (SOAP Message Security 1.1, 12):
``wsse:InvalidSecurity`` when the header or assertion is missing or malformed,
``wsse:FailedAuthentication`` when the assertion does not authenticate. Not implemented: assertion
replay detection (bearer assertions are short-lived), holder-of-key confirmation, encrypted
assertions.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

from cryptography import x509
from lxml import etree

from xds.audit.codes import Coded
from xds.audit.events import Person
from xds.config import NodeConfig
from xds.namespaces import SAML2, WSSE
from xds.soap.fault import SoapFault
from xds.soap.message import SoapRequest

log = logging.getLogger("xds.security.xua")

DS = "http://www.w3.org/2000/09/xmldsig#"
HL7 = "urn:hl7-org:v3"
XSPA_SUBJECT_ID = "urn:oasis:names:tc:xspa:1.0:subject:subject-id"
XSPA_ORGANIZATION = "urn:oasis:names:tc:xspa:1.0:subject:organization"
XSPA_ORGANIZATION_ID = "urn:oasis:names:tc:xspa:1.0:subject:organization-id"
XSPA_PURPOSE_OF_USE = "urn:oasis:names:tc:xspa:1.0:subject:purposeofuse"
XACML_ROLE = "urn:oasis:names:tc:xacml:2.0:subject:role"
XACML_RESOURCE_ID = "urn:oasis:names:tc:xacml:2.0:resource:resource-id"

REQUIRED, OPTIONAL, OFF = "required", "optional", "off"
INVALID_SECURITY = "InvalidSecurity"
FAILED_AUTHENTICATION = "FailedAuthentication"


class XuaFault(SoapFault):
    """A refused identity assertion: env:Sender with a WS-Security 1.1 fault subcode (wsse:InvalidSecurity
    when the header or assertion is missing or malformed, wsse:FailedAuthentication when it does not
    authenticate)."""

    def __init__(self, subcode: str, reason: str) -> None:
        super().__init__("Sender", reason, subcode=(WSSE, subcode))


@dataclass(frozen=True)
class IdentityProvider:
    issuer: str
    certificate: x509.Certificate


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


def _time(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise XuaFault(INVALID_SECURITY, f"the assertion has an invalid time {value!r}") from None
    return t if t.tzinfo else t.replace(tzinfo=dt.UTC)


def _coded(el: etree._Element) -> Coded:
    """An HL7 v3 CE (hl7:Role, hl7:PurposeOfUse) as a coded value."""
    system = el.get("codeSystemName") or el.get("codeSystem") or ""
    return Coded(el.get("code", ""), system, el.get("displayName") or el.get("code", ""))


class XuaVerifier:
    def __init__(self, providers: list[IdentityProvider], *, default: str = OFF, policies: dict[str, str] | None = None,
                 audiences: set[str] | None = None, clock_skew: float = 60.0, base_url: str = "") -> None:
        self.providers = {p.issuer: p for p in providers}
        self.default = default
        self.policies = policies or {}
        self.audiences = audiences or set()
        self.clock_skew = dt.timedelta(seconds=clock_skew)
        self.base_url = base_url

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> XuaVerifier | None:
        xua = cfg.xua
        policies = {name: getattr(xua.endpoints, name) or xua.policy
                    for name in ("registry", "repository", "imaging", "respond")}
        if all(p == OFF for p in policies.values()):
            return None
        providers = []
        for idp in xua.identity_providers:
            with open(idp.certificate, "rb") as f:
                providers.append(IdentityProvider(idp.issuer, x509.load_pem_x509_certificate(f.read())))
        audiences = set(xua.audiences) or {cfg.base_url, cfg.base_url + "/", cfg.home_community_id} - {""}
        return cls(providers, default=xua.policy, policies=policies, audiences=audiences,
                   clock_skew=xua.clock_skew_seconds, base_url=cfg.base_url)

    def policy(self, endpoint: str) -> str:
        return self.policies.get(endpoint, self.default)

    def authenticate(self, endpoint: str, soap: SoapRequest) -> Person | None:
        """The asserted person, None when none is needed; raises XuaFault otherwise."""
        policy = self.policy(endpoint)
        if policy == OFF:
            return None
        assertion = self._find(soap)
        if assertion is None:
            if policy == REQUIRED:
                raise XuaFault(INVALID_SECURITY, "This endpoint requires a SAML 2.0 identity assertion (XUA) "
                                                 "in the wsse:Security header")
            return None
        return self.verify(assertion, self.base_url + soap.endpoint)

    @staticmethod
    def _find(soap: SoapRequest) -> etree._Element | None:
        header = soap.header
        if header is None:
            return None
        securities = header.findall(_q(WSSE, "Security"))
        if len(securities) > 1:
            raise XuaFault(INVALID_SECURITY, "more than one wsse:Security header")
        if not securities:
            return None
        assertions = securities[0].findall(_q(SAML2, "Assertion"))
        if len(assertions) > 1:
            raise XuaFault(INVALID_SECURITY, "more than one SAML assertion in wsse:Security")
        return assertions[0] if assertions else None

    def verify(self, assertion: etree._Element, endpoint_url: str = "") -> Person:
        issuer = (assertion.findtext(_q(SAML2, "Issuer")) or "").strip()
        provider = self.providers.get(issuer)
        if provider is None:
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion's issuer is not a trusted identity provider")
        if assertion.find(_q(DS, "Signature")) is None:
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion is not signed")
        signed = self._signed(assertion, provider)
        self._check_conditions(signed, endpoint_url)
        return self._person(signed, issuer)

    def _signed(self, assertion: etree._Element, provider: IdentityProvider) -> etree._Element:
        from signxml import XMLVerifier
        from signxml.exceptions import InvalidInput, InvalidSignature

        assertion_id = assertion.get("ID", "")
        if not assertion_id:
            raise XuaFault(INVALID_SECURITY, "the assertion has no ID")
        data = etree.tostring(assertion)  # on its own: the Reference must point into the assertion
        try:
            result = XMLVerifier().verify(data, x509_cert=provider.certificate, id_attribute="ID",
                                          ignore_ambiguous_key_info=True)
        except (InvalidSignature, InvalidInput) as e:
            log.info("XUA assertion from %s refused: %s", provider.issuer, e)
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion's signature is not valid") from None
        except Exception as e:  # malformed signature elements, unsupported algorithms
            log.info("XUA assertion from %s refused: %s: %s", provider.issuer, type(e).__name__, e)
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion's signature cannot be verified") from None
        signed = result[0].signed_xml if isinstance(result, list) else result.signed_xml
        if signed is None or signed.tag != _q(SAML2, "Assertion") or signed.get("ID") != assertion_id:
            raise XuaFault(FAILED_AUTHENTICATION, "the signature does not cover the assertion")
        return signed

    def _check_conditions(self, assertion: etree._Element, endpoint_url: str) -> None:
        conditions = assertion.find(_q(SAML2, "Conditions"))
        if conditions is None:
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion has no Conditions (validity window, audience)")
        now = dt.datetime.now(dt.UTC)
        not_before = _time(conditions.get("NotBefore"))
        not_on_or_after = _time(conditions.get("NotOnOrAfter"))
        if not_on_or_after is None:
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion has no NotOnOrAfter")
        if not_before is not None and now + self.clock_skew < not_before:
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion is not yet valid (NotBefore)")
        if now - self.clock_skew >= not_on_or_after:
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion has expired (NotOnOrAfter)")
        audiences = self.audiences | ({endpoint_url} if endpoint_url else set())
        restrictions = conditions.findall(_q(SAML2, "AudienceRestriction"))
        if not restrictions:
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion has no AudienceRestriction")
        # SAML 2.0 Core 2.5.1.4: every AudienceRestriction must be satisfied
        for restriction in restrictions:
            named = {(a.text or "").strip() for a in restriction.findall(_q(SAML2, "Audience"))}
            if not named & audiences:
                raise XuaFault(FAILED_AUTHENTICATION, "the assertion is meant for another audience")

    @staticmethod
    def _person(assertion: etree._Element, issuer: str) -> Person:
        name_id = (assertion.findtext(f"{_q(SAML2, 'Subject')}/{_q(SAML2, 'NameID')}") or "").strip()
        if not name_id:
            raise XuaFault(INVALID_SECURITY, "the assertion's Subject has no NameID")
        values: dict[str, list[etree._Element]] = {}
        for attribute in assertion.iterfind(f"{_q(SAML2, 'AttributeStatement')}/{_q(SAML2, 'Attribute')}"):
            values.setdefault(attribute.get("Name", ""), []).extend(attribute.findall(_q(SAML2, "AttributeValue")))

        def texts(name: str) -> list[str]:
            return [(v.text or "").strip() for v in values.get(name, []) if (v.text or "").strip()]

        def codes(name: str, local: str) -> tuple[Coded, ...]:
            found = [_coded(ce) for v in values.get(name, []) for ce in v if isinstance(ce.tag, str)
                     and etree.QName(ce).localname == local]
            return tuple(c for c in found if c.code)

        subject = (texts(XSPA_SUBJECT_ID) or [name_id])[0]
        organization_id = (texts(XSPA_ORGANIZATION_ID) or [""])[0]
        return Person(
            user_id=name_id,
            user_name=f"{subject}<{name_id}@{issuer}>",
            roles=codes(XACML_ROLE, "Role"),
            purposes_of_use=codes(XSPA_PURPOSE_OF_USE, "PurposeOfUse"),
            organization=organization_id or (texts(XSPA_ORGANIZATION) or [""])[0],
            organization_id=organization_id,
        )
