"""DocumentEntry uniqueId is not unique: an identical resubmission is a second entry (NIST 12004).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23 13:44:20.598893
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("document_entry") as batch_op:
        batch_op.drop_constraint("uq_document_entry_unique_id_version", type_="unique")
    op.create_index("ix_document_entry_unique_id", "document_entry", ["unique_id"])


def downgrade() -> None:
    op.drop_index("ix_document_entry_unique_id", table_name="document_entry")
    with op.batch_alter_table("document_entry") as batch_op:
        batch_op.create_unique_constraint("uq_document_entry_unique_id_version", ["unique_id", "version"])
