"""PostgreSQL: canonical ebRIM fragments kept compressed inside the row (toast_tuple_target 4096).

A DocumentEntry row is about 8.5 KB before compression, of which 8 KB is its fragment. With the
default TOAST target (2 KB) the fragment, LZ4-compressed to 2.5 KB, is still too big and goes out
of line: every row a LeafClass answer returns costs a TOAST index probe and two chunk fetches
copied together. With a 4 KB target the compressed fragment stays in the heap tuple, so a
FindDocuments of 200 entries reads 200 heap tuples and nothing else. A row still above 4 KB once
compressed (a very large DocumentEntry) goes out of line as before.

(``SET STORAGE MAIN`` on the fragment column alone does not do it: the rest of the row is then
above the 2 KB target, and PostgreSQL moves the small columns - entryUUID, patient id, status -
out of line instead, one TOAST fetch each.)

The target applies to rows written from now on; existing rows stay out of line and readable (no
table rewrite, no long lock on a large registry). ``VACUUM FULL <table>`` rewrites them in.
Skipped on SQLite, which stores rows whole.

Revision ID: 0008_fragments_inline
Revises: 0007_fragments_lz4
Create Date: 2026-11-23 21:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0008_fragments_inline"
down_revision: str | None = "0007_fragments_lz4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FRAGMENT_TABLES = ("document_entry", "submission_set", "folder", "association")
TOAST_TUPLE_TARGET = 4096


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _FRAGMENT_TABLES:
            op.execute(f'ALTER TABLE "{table}" SET (toast_tuple_target = {TOAST_TUPLE_TARGET})')


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table in _FRAGMENT_TABLES:
            op.execute(f'ALTER TABLE "{table}" RESET (toast_tuple_target)')
