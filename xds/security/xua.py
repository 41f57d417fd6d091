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
``wsse:FailedAuthentication`` when the assertion does not authenticate.

Replay (``[xua] replay``; :mod:`xds.security.replay`): once verified, an assertion is remembered
until it expires; presented again in another message it is refused with ``wsse:InvalidSecurity``
(as WSS4J answers a replayed token) and a Security Alert. ``refuse`` applies this to every
assertion; ``one-time-use`` only to those with a ``OneTimeUse`` condition (SAML 2.0 Core 2.5.1.5),
letting an X-Service User reuse an assertion for a session until it expires. Not implemented:
holder-of-key confirmation, encrypted assertions.
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
from xds.security.replay import ReplayCache, message_fingerprint
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
REFUSE, ONE_TIME_USE = "refuse", "one-time-use"  # [xua] replay
INVALID_SECURITY = "InvalidSecurity"
FAILED_AUTHENTICATION = "FailedAuthentication"


class XuaFault(SoapFault):
    """A refused identity assertion: env:Sender with a WS-Security 1.1 fault subcode (wsse:InvalidSecurity
    when the header or assertion is missing or malformed, wsse:FailedAuthentication when it does not
    authenticate)."""

    def __init__(self, subcode: str, reason: str) -> None:
        super().__init__("Sender", reason, subcode=(WSSE, subcode))


class AssertionReplayed(XuaFault):
    """A verified assertion already presented in another message within its validity."""

    def __init__(self, issuer: str, assertion_id: str, person: Person, first_seen: float) -> None:
        super().__init__(INVALID_SECURITY, "the SAML assertion was already presented in another message (replay)")
        self.issuer = issuer
        self.assertion_id = assertion_id
        self.person = person
        self.first_seen = first_seen


@dataclass(frozen=True)
class Verified:
    """A verified assertion: who it asserts, and what replay detection needs."""

    person: Person
    issuer: str
    assertion_id: str
    not_on_or_after: dt.datetime
    one_time_use: bool


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


def replay_database_url(cfg: NodeConfig) -> str:
    return cfg.xua.replay_database_url or f"sqlite:///{cfg.data_path('xua.sqlite').resolve()}"


def _coded(el: etree._Element) -> Coded:
    """An HL7 v3 CE (hl7:Role, hl7:PurposeOfUse) as a coded value."""
    system = el.get("codeSystemName") or el.get("codeSystem") or ""
    return Coded(el.get("code", ""), system, el.get("displayName") or el.get("code", ""))


class XuaVerifier:
    def __init__(self, providers: list[IdentityProvider], *, default: str = OFF, policies: dict[str, str] | None = None,
                 audiences: set[str] | None = None, clock_skew: float = 60.0, base_url: str = "",
                 replay: ReplayCache | None = None, replay_policy: str = REFUSE) -> None:
        self.providers = {p.issuer: p for p in providers}
        self.default = default
        self.policies = policies or {}
        self.audiences = audiences or set()
        self.clock_skew = dt.timedelta(seconds=clock_skew)
        self.base_url = base_url
        self.replay = replay  # None: no replay detection (a verifier on its own, e.g. in tests)
        self.replay_policy = replay_policy

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
        replay = ReplayCache.open(replay_database_url(cfg), purge_seconds=xua.replay_purge_seconds)
        return cls(providers, default=xua.policy, policies=policies, audiences=audiences,
                   clock_skew=xua.clock_skew_seconds, base_url=cfg.base_url, replay=replay,
                   replay_policy=xua.replay)

    def close(self) -> None:
        if self.replay is not None:
            self.replay.close()

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
        verified = self._verify(assertion, self.base_url + soap.endpoint)
        if self.replay is not None and (self.replay_policy == REFUSE or verified.one_time_use):
            self._check_replay(verified, soap)
        return verified.person

    def _check_replay(self, verified: Verified, soap: SoapRequest) -> None:
        """Raises AssertionReplayed when another message presented the assertion before; a
        SOAP Receiver fault when the memory cannot be asked (access control fails closed)."""
        assert self.replay is not None
        certificate = soap.client_certificate.subject if soap.client_certificate is not None else ""
        message = message_fingerprint(soap.addressing.message_id or "", etree.tostring(soap.body_element), certificate)
        expires = (verified.not_on_or_after + self.clock_skew).timestamp()
        try:
            earlier = self.replay.present(verified.issuer, verified.assertion_id, message, expires)
        except Exception as e:
            log.error("XUA replay memory unavailable (%s): request refused", type(e).__name__)
            raise SoapFault("Receiver", "The identity assertion could not be checked; try again later") from None
        if earlier is not None:
            log.warning("XUA assertion %s from %s replayed (first presented at %s)", verified.assertion_id,
                        verified.issuer, dt.datetime.fromtimestamp(earlier.first_seen, dt.UTC).isoformat())
            raise AssertionReplayed(verified.issuer, verified.assertion_id, verified.person, earlier.first_seen)

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
        return self._verify(assertion, endpoint_url).person

    def _verify(self, assertion: etree._Element, endpoint_url: str) -> Verified:
        issuer = (assertion.findtext(_q(SAML2, "Issuer")) or "").strip()
        provider = self.providers.get(issuer)
        if provider is None:
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion's issuer is not a trusted identity provider")
        if assertion.find(_q(DS, "Signature")) is None:
            raise XuaFault(FAILED_AUTHENTICATION, "the assertion is not signed")
        signed = self._signed(assertion, provider)
        not_on_or_after = self._check_conditions(signed, endpoint_url)
        one_time_use = signed.find(f"{_q(SAML2, 'Conditions')}/{_q(SAML2, 'OneTimeUse')}") is not None
        return Verified(self._person(signed, issuer), issuer, signed.get("ID", ""), not_on_or_after, one_time_use)

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

    def _check_conditions(self, assertion: etree._Element, endpoint_url: str) -> dt.datetime:
        """Checks the validity window and audience; returns NotOnOrAfter."""
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
        return not_on_or_after

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
