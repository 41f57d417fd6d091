"""The identity tables, in the registry's database and metadata (one Alembic history).

* ``identity_couplet``: every ``Patient ID + Issuer`` seen, its HN (the affinity-domain CX, as the
  registry's ``patient`` table keys it) or none yet, demographics, the feed it came from; ``status``
  ``merged`` (A40) or ``replaced`` (A47) with ``successor_id`` once it is retired.
* ``identity_event``: the history of each couplet and HN (links, corrections, merges, changes).
* ``identity_message``: ADT messages applied, by sender and MSH-10, so a resent message is
  acknowledged again without being applied twice.
* ``identity_held``: submissions and studies waiting for their couplet's HN.
* ``identity_registered``: which registry objects came in under which couplet, so that a corrected
  HN or a local merge moves exactly those.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from xds.registry.schema import metadata

ACTIVE, MERGED, REPLACED = "active", "merged", "replaced"
HELD, RELEASED, FAILED = "held", "released", "failed"

couplet = Table(
    "identity_couplet",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("patient_id", String, nullable=False, doc="Patient ID (DICOM 0010,0020; CX-1)"),
    Column("issuer", String, nullable=False, doc="issuer key: its OID when known, else its namespace"),
    Column("issuer_namespace", String, nullable=False, default=""),
    Column("issuer_oid", String, nullable=False, default=""),
    Column("hn", String, nullable=True, doc="affinity-domain CX hn^^^&OID&ISO; NULL until a feed links one"),
    Column("status", String, nullable=False, default=ACTIVE),
    Column("successor_id", Integer, ForeignKey("identity_couplet.id"), nullable=True),
    Column("demographics", JSON, nullable=False, default=dict),
    Column("source", String, nullable=False, default="", doc="feed that last wrote it"),
    Column("message_control_id", String, nullable=False, default=""),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("patient_id", "issuer"),
    Index("ix_identity_couplet_hn", "hn"),
    comment="Local patient ids (Patient ID + Issuer) and the HN each maps to.",
)

event = Table(
    "identity_event",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("couplet_id", Integer, nullable=True),
    Column("hn", String, nullable=True),
    Column("event", String, nullable=False, doc="ADT trigger or what changed: hn-linked, hn-corrected, ..."),
    Column("detail", JSON, nullable=False, default=dict),
    Column("source", String, nullable=False, default=""),
    Column("message_control_id", String, nullable=False, default=""),
    Column("at", DateTime(timezone=True), nullable=False),
    Index("ix_identity_event_couplet", "couplet_id"),
    Index("ix_identity_event_hn", "hn"),
    comment="History of couplets and HNs.",
)

message = Table(
    "identity_message",
    metadata,
    Column("sender", String, primary_key=True, doc="MSH-3^MSH-4"),
    Column("control_id", String, primary_key=True, doc="MSH-10"),
    Column("digest", String, nullable=False, doc="SHA-256 of the segments after MSH"),
    Column("ack_code", String, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    comment="ADT messages applied (HL7 v2.5 2.10.1: MSH-10 identifies a message for its sender).",
)

held = Table(
    "identity_held",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String, nullable=False, doc="what is held: xds-submission, dicom-study, ..."),
    Column("patient_id", String, nullable=False),
    Column("issuer", String, nullable=False),
    Column("payload", LargeBinary, nullable=False),
    Column("summary", String, nullable=False, default="", doc="for operators; no patient data"),
    Column("status", String, nullable=False, default=HELD),
    Column("result", Text, nullable=True, doc="why a release failed"),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("released_at", DateTime(timezone=True), nullable=True),
    Index("ix_identity_held_couplet", "issuer", "patient_id", "status"),
    Index("ix_identity_held_status", "status"),
    comment="Submissions and studies held until their couplet has an HN.",
)

registered = Table(
    "identity_registered",
    metadata,
    Column("entry_uuid", String, primary_key=True),
    Column("kind", String, nullable=False, doc="DocumentEntry, SubmissionSet or Folder"),
    Column("couplet_id", Integer, nullable=False),
    Index("ix_identity_registered_couplet", "couplet_id"),
    comment="Registry objects registered under a couplet's HN.",
)

TABLES = (couplet, event, message, held, registered)
