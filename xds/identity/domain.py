"""The identity domain of a DIR: the health number (HN) as the affinity-domain patient id, and the
issuers of local patient ids (DESIGN.md section 7).

An Ontario DIR serves many identity pools and has no EMPI: two hospitals may give the same Patient
ID to different people, so a local id only means something with its issuer, as a *couplet*
``Patient ID + Issuer of Patient ID`` (DICOM PS3.3 C.7.1.1: 0010,0020 and 0010,0021; HL7 CX-1 and
CX-4). The HN with its assigning authority OID is the one global id; couplets map to it.

An issuer is named by a namespace id (``HOSPA``, what DICOM and HL7 CX-4.1 carry), by a universal
id (the OID of CX-4.2, what XDS metadata carries: ``id^^^&OID&ISO``), or both. The configured feeds
say which namespace goes with which OID, so one issuer has one canonical key: its OID when known,
else its namespace.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from xds.config import IdentityConfig, IdentityFeedConfig, NodeConfig
from xds.metadata.datatypes import CX, is_oid

HOLD = "hold"
REJECT = "reject"


@dataclass(frozen=True)
class Issuer:
    """An Issuer of Patient ID. ``key`` is what couplets are stored under."""

    key: str
    namespace: str = ""
    oid: str = ""

    def hd(self) -> str:
        """HL7 HD in subcomponents (CX-4 inside a CX): ``NS&OID&ISO`` or ``NS``."""
        if self.oid:
            return f"{self.namespace}&{self.oid}&ISO"
        return self.namespace


@dataclass(frozen=True)
class Couplet:
    """A local patient id: Patient ID + Issuer of Patient ID."""

    patient_id: str
    issuer: Issuer

    @property
    def key(self) -> tuple[str, str]:
        return (self.patient_id, self.issuer.key)

    def cx(self) -> str:
        """As an HL7 CX (``id^^^NS&OID&ISO``); XDS sourcePatientId form when the issuer has an OID."""
        return f"{self.patient_id}^^^{self.issuer.hd()}"

    def xds_cx(self) -> str | None:
        """``id^^^&OID&ISO`` (ITI TF-3 4.2.3.1.7, CX), or None when the issuer has no OID."""
        return f"{self.patient_id}^^^&{self.issuer.oid}&ISO" if self.issuer.oid else None

    def __str__(self) -> str:
        return self.cx()


@dataclass(frozen=True)
class Feed:
    """A configured ADT sender and the issuer whose ids it is authoritative for."""

    name: str
    sending_application: str
    sending_facility: str
    issuer: Issuer


@dataclass
class IdentityDomain:
    """The HN authority, the known issuers and feeds, and the ingest policy."""

    hn_authority: str
    hn_namespaces: frozenset[str] = frozenset()
    feeds: Sequence[Feed] = ()
    unlisted_feeds: str = "accept"
    unknown_local_id: str = HOLD
    _oid_of: dict[str, str] = field(default_factory=dict)  # namespace -> OID
    _namespace_of: dict[str, str] = field(default_factory=dict)  # OID -> namespace

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> IdentityDomain:
        return cls.build(cfg.registry.patient_assigning_authority, cfg.identity)

    @classmethod
    def build(cls, hn_authority: str, identity: IdentityConfig | None = None) -> IdentityDomain:
        identity = identity or IdentityConfig()
        oid_of: dict[str, str] = {}
        namespace_of: dict[str, str] = {}
        for f in identity.feeds:
            if f.issuer and f.issuer_oid:
                oid_of.setdefault(f.issuer, f.issuer_oid)
                namespace_of.setdefault(f.issuer_oid, f.issuer)
        domain = cls(
            hn_authority,
            frozenset(identity.hn_namespaces),
            (),
            identity.unlisted_feeds,
            identity.unknown_local_id,
            oid_of,
            namespace_of,
        )
        domain.feeds = tuple(domain._feed(f) for f in identity.feeds)
        return domain

    def _feed(self, f: IdentityFeedConfig) -> Feed:
        issuer = self.issuer(f.issuer, f.issuer_oid)
        assert issuer is not None
        name = f.name or f"{f.sending_application}^{f.sending_facility}"
        return Feed(name, f.sending_application, f.sending_facility, issuer)

    # --- ids ---

    def hn_cx(self, number: str) -> str:
        """The affinity-domain id as XDS metadata and the registry's patient table carry it."""
        return f"{number}^^^&{self.hn_authority}&ISO"

    def is_hn_authority(self, namespace: str, oid: str, id_type: str = "ISO") -> bool:
        if oid:
            return oid == self.hn_authority and id_type.upper() in ("ISO", "")
        return bool(namespace) and namespace in self.hn_namespaces

    def issuer(self, namespace: str = "", oid: str = "") -> Issuer | None:
        """The issuer an HD names, completed from the configured feeds; None if it names none."""
        namespace, oid = namespace.strip(), oid.strip()
        if oid and not namespace:
            namespace = self._namespace_of.get(oid, "")
        if namespace and not oid:
            oid = self._oid_of.get(namespace, "")
        if not (namespace or oid):
            return None
        return Issuer(oid or namespace, namespace, oid)

    def couplet(self, patient_id: str, issuer: str) -> Couplet | None:
        """A couplet from DICOM Patient ID (0010,0020) and Issuer of Patient ID (0010,0021); the
        issuer may be a namespace or an OID (Universal Entity ID, 0040,0032)."""
        patient_id = patient_id.strip()
        if not patient_id or not issuer.strip():
            return None
        iss = self.issuer(oid=issuer) if is_oid(issuer.strip(), max_length=None) else self.issuer(issuer)
        return Couplet(patient_id, iss) if iss is not None else None

    def parse(self, value: str | tuple[str, str] | Couplet) -> str | Couplet | None:
        """An HN (as ``hn^^^&OID&ISO``), a Couplet, or None: from an XDS/HL7 CX string, a
        ``(patient_id, issuer)`` pair or a Couplet."""
        if isinstance(value, Couplet):
            return value
        if isinstance(value, tuple):
            return self.couplet(*value)
        cx = CX.parse(value.strip())
        number = cx.id_number.strip()
        if not number:
            return None
        hd = cx.assigning_authority
        if self.is_hn_authority(hd.namespace_id, hd.universal_id, hd.universal_id_type or "ISO"):
            return self.hn_cx(number)
        issuer = self.issuer(hd.namespace_id, hd.universal_id)
        return Couplet(number, issuer) if issuer is not None else None

    def hn_number(self, hn_cx: str) -> str:
        return CX.parse(hn_cx).id_number

    # --- feeds ---

    def feed_for(self, sending_application: str, sending_facility: str) -> Feed | None:
        """The configured feed of MSH-3/MSH-4 (namespace ids): an exact match first, then one
        configured for any application of the facility."""
        for f in self.feeds:
            if f.sending_facility == sending_facility and f.sending_application == sending_application:
                return f
        for f in self.feeds:
            if f.sending_facility == sending_facility and not f.sending_application:
                return f
        return None

    def known_issuers(self) -> Iterable[Issuer]:
        seen: dict[str, Issuer] = {}
        for f in self.feeds:
            seen.setdefault(f.issuer.key, f.issuer)
        return seen.values()


__all__ = ["HOLD", "REJECT", "Couplet", "Feed", "IdentityDomain", "Issuer"]
