"""Who is asking, as far as consent cares: the organisation a request speaks for.

A withdrawn consent hides a patient's documents from everyone except the organisation that
registered them (PHIPA: a custodian keeps access to the records it created). The requester's
organisation is, in order:

1. the XUA assertion's subject organisation id (ITI-40, attribute
   ``urn:oasis:names:tc:xspa:1.0:subject:organization-id``), when the request carries a verified
   assertion;
2. else the TLS client certificate's subject: its ``organizationIdentifier`` (2.5.4.97) and
   ``O`` (organizationName) values;
3. else none: the requester is *external* and sees nothing a directive withholds.

Identifiers are compared as strings after dropping a ``urn:oid:`` prefix. What a request carries is
read from :class:`~xds.soap.message.SoapRequest` attributes the security layer
(:mod:`xds.security`) sets once it has verified them: ``xua`` (the asserted person,
``xds.audit.events.Person`` with its ``organization``, or any object or mapping with
``subject_organization_id`` / ``organization_id`` / the XSPA attribute name) and
``client_certificate`` (``xds.security.tls.PeerCertificate``, a ``cryptography.x509.Certificate``,
an ``ssl.SSLSocket.getpeercert()`` dict, or an RFC 4514 subject string). A request without them is
external.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

XSPA_ORGANIZATION_ID = "urn:oasis:names:tc:xspa:1.0:subject:organization-id"
ORGANIZATION_IDENTIFIER_OID = "2.5.4.97"  # X.520 organizationIdentifier
ORGANIZATION_NAME_OID = "2.5.4.10"  # X.520 organizationName (O)

_XUA_ATTRIBUTES = ("xua", "assertion")
_XUA_ORGANISATION_KEYS = (
    "subject_organization_id",
    "organization_id",
    "organisation_id",
    XSPA_ORGANIZATION_ID,
    "organization",  # xds.audit.events.Person
)
_XUA_SUBJECT_KEYS = ("subject_id", "user_id", "subject", "name_id")
_CERTIFICATE_ATTRIBUTES = ("client_certificate", "peer_certificate")


@dataclass(frozen=True)
class Requester:
    """The organisations a request speaks for (empty: external) and where that came from."""

    organisations: frozenset[str] = frozenset()
    subject: str = ""
    via: str = "none"  # "xua" | "tls" | "none" | "local"

    @property
    def external(self) -> bool:
        return not self.organisations

    @classmethod
    def of_organisations(cls, *organisations: str, subject: str = "", via: str = "local") -> Requester:
        return cls(
            frozenset(o for o in (normalise_organisation(x) for x in organisations) if o), subject, via
        )


EXTERNAL = Requester()
"""A requester nothing identifies: every active directive applies to it."""


def normalise_organisation(value: object) -> str:
    text = str(value or "").strip()
    if text.lower().startswith("urn:oid:"):
        text = text[len("urn:oid:") :]
    return text


def requester_of(request: Any) -> Requester:
    """The :class:`Requester` of a SOAP request (XUA first, then the TLS client certificate)."""
    xua = _first_attribute(request, _XUA_ATTRIBUTES)
    if xua is not None:
        org = normalise_organisation(_value(xua, _XUA_ORGANISATION_KEYS))
        if org:
            return Requester(frozenset({org}), str(_value(xua, _XUA_SUBJECT_KEYS) or ""), "xua")
    certificate = _first_attribute(request, _CERTIFICATE_ATTRIBUTES)
    if certificate is not None:
        orgs, subject = certificate_organisations(certificate)
        if orgs:
            return Requester(orgs, subject, "tls")
    return EXTERNAL


def certificate_organisations(certificate: Any) -> tuple[frozenset[str], str]:
    """The organizationIdentifier and O values of a certificate's subject, and the subject."""
    pairs: list[tuple[str, str]] = []
    subject = ""
    if isinstance(certificate, str):
        subject = certificate
        pairs = _rfc4514_pairs(certificate)
    elif isinstance(certificate, Mapping):  # ssl getpeercert(): {"subject": ((("organizationName", "X"),),)}
        names = {
            "organizationName": ORGANIZATION_NAME_OID,
            "organizationIdentifier": ORGANIZATION_IDENTIFIER_OID,
        }
        for rdn in certificate.get("subject", ()):
            for key, value in rdn:
                pairs.append((names.get(key, key), value))
        subject = ",".join(f"{k}={v}" for k, v in pairs)
    else:
        name = getattr(certificate, "subject", None)
        if isinstance(name, str):  # xds.security.tls.PeerCertificate
            subject = name
            pairs = _rfc4514_pairs(name)
        elif name is not None:  # cryptography.x509.Certificate
            subject = name.rfc4514_string()
            pairs = [(attr.oid.dotted_string, str(attr.value)) for attr in name]
    wanted = (ORGANIZATION_IDENTIFIER_OID, ORGANIZATION_NAME_OID)
    orgs = frozenset(o for o in (normalise_organisation(v) for k, v in pairs if k in wanted) if o)
    return orgs, subject


_RFC4514_NAMES = {"O": ORGANIZATION_NAME_OID, "ORGANIZATIONIDENTIFIER": ORGANIZATION_IDENTIFIER_OID}


def _rfc4514_pairs(text: str) -> list[tuple[str, str]]:
    out = []
    for part in _split_unescaped(text, ",+"):
        key, sep, value = part.partition("=")
        if sep:
            key = key.strip()
            out.append((_RFC4514_NAMES.get(key.upper(), key), value.strip().replace("\\", "")))
    return out


def _split_unescaped(text: str, separators: str) -> Iterable[str]:
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch in separators:
            yield "".join(current)
            current = []
        else:
            current.append(ch)
    yield "".join(current)


def _first_attribute(obj: Any, names: Iterable[str]) -> Any:
    for name in names:
        value = getattr(obj, name, None)
        if value is not None:
            return value
    return None


def _value(obj: Any, keys: Iterable[str]) -> Any:
    for key in keys:
        value = obj.get(key) if isinstance(obj, Mapping) else getattr(obj, key, None)
        if value:
            return value
    return None
