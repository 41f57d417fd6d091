"""Consent directives: withdrawals and reinstatements per patient, superseded, never deleted
(xds.consent.schema).

Revision ID: 0006_consent
Revises: 0005_repository_imaging
Create Date: 2026-11-24 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_consent"
down_revision: str | None = "0005_repository_imaging"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "consent_directive",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("action", sa.String(), nullable=False),
        sa.Column("scope", sa.String(), nullable=False),
        sa.Column("target", sa.String(), nullable=False),
        sa.Column("set_by", sa.String(), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("superseded_by", sa.Integer(), nullable=True),
        sa.Column("superseded_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["superseded_by"],
            ["consent_directive.id"],
            name="fk_consent_directive_superseded_by_consent_directive",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_consent_directive"),
        comment="Patients' consent directives (PHIPA): withdrawals and reinstatements, never deleted.",
    )
    op.create_index("ix_consent_directive_patient_active", "consent_directive", ["patient_id", "superseded_by"])
    op.create_index("ix_consent_directive_target", "consent_directive", ["scope", "target"])


def downgrade() -> None:
    op.drop_index("ix_consent_directive_target", table_name="consent_directive")
    op.drop_index("ix_consent_directive_patient_active", table_name="consent_directive")
    op.drop_table("consent_directive")
