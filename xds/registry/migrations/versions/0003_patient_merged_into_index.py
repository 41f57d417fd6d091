"""Index patient.merged_into: every Find query and GetAll looks up ids merged into the queried one.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23 14:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_patient_merged_into", "patient", ["merged_into"])


def downgrade() -> None:
    op.drop_index("ix_patient_merged_into", table_name="patient")
