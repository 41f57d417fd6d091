"""Identity fixtures: a registry with the identity layer over SQLite and PostgreSQL (the registry
tests' backends), two hospital feeds with their own issuers, and ADT/QBP message builders."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from tests.registry.conftest import db_url, engine, node_config  # noqa: F401 (fixtures)
from tests.registry.stored_query_data import Answer, ask, q1, qs
from xds.config import IdentityConfig, IdentityFeedConfig
from xds.hl7.patient_feed import PatientIdentityFeed
from xds.identity import Identity
from xds.identity.store import IdentityStore
from xds.metadata import model as m
from xds.registry import Registry
from xds.registry.schema import metadata
from xds.registry.store import RegistryStore

HN_OID = "2.16.840.1.113883.4.59"  # Ontario health number
HOSPA_OID = "2.16.840.1.113883.3.239.18.101"
HOSPB_OID = "2.16.840.1.113883.3.239.18.202"

_control = itertools.count(1)


def hn(number: str) -> str:
    return f"{number}^^^&{HN_OID}&ISO"


def local(patient_id: str, oid: str = HOSPA_OID) -> str:
    """A local couplet as XDS metadata carries it."""
    return f"{patient_id}^^^&{oid}&ISO"


def identity_config(**kw: object) -> IdentityConfig:
    cfg = IdentityConfig(feeds=[
        IdentityFeedConfig(name="hospa-adt", sending_application="ADT", sending_facility="HOSPA", issuer="HOSPA",
                           issuer_oid=HOSPA_OID),
        IdentityFeedConfig(name="hospb-adt", sending_facility="HOSPB", issuer="HOSPB", issuer_oid=HOSPB_OID),
    ])
    for k, v in kw.items():
        setattr(cfg, k, v)
    return cfg


def adt(event: str, pid3: str, *, facility: str = "HOSPA", application: str = "ADT", mrg: str | None = None,
        name: str = "DOE^JANE", control_id: str | None = None, version: str = "2.5") -> bytes:
    structure = {"A40": "ADT_A39", "A47": "ADT_A30", "A08": "ADT_A01"}.get(event, "ADT_A01")
    segments = [
        f"MSH|^~\\&|{application}|{facility}|XDSREG|HDIRS|20250101120000||ADT^{event}^{structure}|"
        f"{control_id or f'C{next(_control)}'}|P|{version}",
        f"EVN|{event}|20250101120000",
        f"PID|1||{pid3}||{name}||19800101|F",
    ]
    if mrg is not None:
        segments.append(f"MRG|{mrg}")
    else:
        segments.append("PV1|1|O")
    return ("\r".join(segments) + "\r").encode()


def pid_hn(number: str) -> str:
    return f"{number}^^^ON&{HN_OID}&ISO^JHN"


def pid_local(patient_id: str, issuer: str = "HOSPA") -> str:
    return f"{patient_id}^^^{issuer}^MR"


def ack_fields(ack: bytes | str, segment: str) -> list[str]:
    text = ack.decode() if isinstance(ack, bytes) else ack
    for seg in text.split("\r"):
        if seg.startswith(segment + "|"):
            return seg.split("|")
    raise AssertionError(f"no {segment} in {text!r}")


def ack_code(ack: bytes) -> str:
    return ack_fields(ack, "MSA")[1]


@dataclass
class Env:
    """A registry with its identity layer, fed through the real ITI-8 handler."""

    registry: Registry
    identity: Identity

    @property
    def store(self) -> IdentityStore:
        return self.identity.store

    def send(self, raw: bytes) -> bytes:
        handler = PatientIdentityFeed(self.identity.domain, self.identity.feed, "XDSREG", "HDIRS",
                                      pix=self.identity.pix)
        return asyncio.run(handler.handle(raw))

    def find(self, patient_id: str, **config: object) -> Answer:
        settings = self.registry.settings
        for k, v in config.items():
            setattr(settings, k, v)
        return ask(self.registry.engine, "FindDocuments",
                   [("$XDSDocumentEntryPatientId", q1(patient_id)),
                    ("$XDSDocumentEntryStatus", qs(m.STATUS_APPROVED))], config=settings)


def make_env(store: RegistryStore, identity: IdentityConfig | None = None, **registry: object) -> Env:
    cfg = node_config(**{"patient_assigning_authority": HN_OID, **registry})
    cfg.identity = identity or identity_config()
    cfg.mllp.receiving_application, cfg.mllp.receiving_facility = "XDSREG", "HDIRS"
    reg = Registry(store, cfg.registry)
    reg.identity = Identity.for_registry(cfg, reg)
    return Env(reg, reg.identity)


@pytest.fixture
def store(engine) -> RegistryStore:  # noqa: F811
    """A store over empty tables: DELETE, much faster than TRUNCATE on PostgreSQL for a few rows."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))
    return RegistryStore(engine)


@pytest.fixture
def env(store) -> Env:
    return make_env(store)
