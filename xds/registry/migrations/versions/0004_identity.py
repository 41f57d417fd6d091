"""Identity tables: couplets (Patient ID + Issuer) and their HN, history, applied ADT messages,
held submissions, registry objects registered through a couplet (xds.identity.schema).

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "identity_couplet",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("issuer", sa.String(), nullable=False),
        sa.Column("issuer_namespace", sa.String(), nullable=False),
        sa.Column("issuer_oid", sa.String(), nullable=False),
        sa.Column("hn", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("successor_id", sa.Integer(), nullable=True),
        sa.Column("demographics", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("message_control_id", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["successor_id"], ["identity_couplet.id"], name="fk_identity_couplet_successor_id_identity_couplet"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_identity_couplet"),
        sa.UniqueConstraint("patient_id", "issuer", name="uq_identity_couplet_patient_id_issuer"),
        comment="Local patient ids (Patient ID + Issuer) and the HN each maps to.",
    )
    op.create_index("ix_identity_couplet_hn", "identity_couplet", ["hn"])
    op.create_table(
        "identity_event",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("couplet_id", sa.Integer(), nullable=True),
        sa.Column("hn", sa.String(), nullable=True),
        sa.Column("event", sa.String(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("message_control_id", sa.String(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_identity_event"),
        comment="History of couplets and HNs.",
    )
    op.create_index("ix_identity_event_couplet", "identity_event", ["couplet_id"])
    op.create_index("ix_identity_event_hn", "identity_event", ["hn"])
    op.create_table(
        "identity_message",
        sa.Column("sender", sa.String(), nullable=False),
        sa.Column("control_id", sa.String(), nullable=False),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("ack_code", sa.String(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sender", "control_id", name="pk_identity_message"),
        comment="ADT messages applied (HL7 v2.5 2.10.1: MSH-10 identifies a message for its sender).",
    )
    op.create_table(
        "identity_held",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("issuer", sa.String(), nullable=False),
        sa.Column("payload", sa.LargeBinary(), nullable=False),
        sa.Column("summary", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("result", sa.Text(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_identity_held"),
        comment="Submissions and studies held until their couplet has an HN.",
    )
    op.create_index("ix_identity_held_couplet", "identity_held", ["issuer", "patient_id", "status"])
    op.create_index("ix_identity_held_status", "identity_held", ["status"])
    op.create_table(
        "identity_registered",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("kind", sa.String(), nullable=False),
        sa.Column("couplet_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name="pk_identity_registered"),
        comment="Registry objects registered under a couplet's HN.",
    )
    op.create_index("ix_identity_registered_couplet", "identity_registered", ["couplet_id"])


def downgrade() -> None:
    for table in ("identity_registered", "identity_held", "identity_message", "identity_event", "identity_couplet"):
        op.drop_table(table)
