"""PostgreSQL: canonical ebRIM fragments TOAST-compressed with LZ4 instead of pglz.

A DocumentEntry fragment is 4-8 KB of XML, stored compressed out of line; a FindDocuments of a
patient with 200 entries decompresses 1.5 MB. LZ4 decompresses several times faster than pglz
(and compresses faster on ITI-42), for a few percent more space. ``SET COMPRESSION`` applies to
values written from now on; existing rows keep pglz and stay readable (no table rewrite, no long
lock on a large registry). Skipped on SQLite and on a PostgreSQL built without LZ4.

Revision ID: 0007_fragments_lz4
Revises: 0006_consent
Create Date: 2026-11-23 15:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from sqlalchemy import text

revision: str = "0007_fragments_lz4"
down_revision: str | None = "0006_consent"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FRAGMENT_TABLES = ("document_entry", "submission_set", "folder", "association")


def _lz4_available() -> bool:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return False
    values = bind.execute(
        text("SELECT enumvals FROM pg_settings WHERE name = 'default_toast_compression'")
    ).scalar()
    return values is not None and "lz4" in values


def upgrade() -> None:
    if _lz4_available():
        for table in _FRAGMENT_TABLES:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN fragment SET COMPRESSION lz4')


def downgrade() -> None:
    if _lz4_available():
        for table in _FRAGMENT_TABLES:
            op.execute(f'ALTER TABLE "{table}" ALTER COLUMN fragment SET COMPRESSION pglz')
