"""The Document Repository's document index and the Imaging Document Source's study/series/instance
index (xds.repository.index, xds.imaging.instance_store), until now created outside Alembic.

Revision ID: 0005_repository_imaging
Revises: 0004
Create Date: 2026-11-23 14:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_repository_imaging"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "repository_document",
        sa.Column("unique_id", sa.String(), primary_key=True),
        sa.Column("storage_key", sa.String(), nullable=False, unique=True),
        sa.Column("mime_type", sa.String(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("hash", sa.String(), nullable=True),
        sa.Column("state", sa.String(), nullable=False),
        sa.Column("created_at", sa.Float(), nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_repository_document_state", "repository_document", ["state", "created_at"],
                    if_not_exists=True)
    op.create_table(
        "imaging_study",
        sa.Column("study_instance_uid", sa.String(64), primary_key=True),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(), nullable=False),
        sa.Column("accession_number", sa.String(), nullable=False),
        sa.Column("first_received", sa.Float(), nullable=False),
        sa.Column("last_received", sa.Float(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("published_revision", sa.Integer(), nullable=False),
        sa.Column("manifest_uid", sa.String(64), nullable=True),
        sa.Column("manifest_entry_uuid", sa.String(), nullable=True),
        sa.Column("published_at", sa.Float(), nullable=True),
        sa.Column("publish_error", sa.String(), nullable=True),
        if_not_exists=True,
    )
    op.create_index("ix_imaging_study_patient", "imaging_study", ["patient_id", "issuer_of_patient_id"],
                    if_not_exists=True)
    op.create_index("ix_imaging_study_accession", "imaging_study", ["accession_number"], if_not_exists=True)
    op.create_index("ix_imaging_study_pending", "imaging_study", ["published_revision", "last_received"],
                    if_not_exists=True)
    op.create_table(
        "imaging_series",
        sa.Column("series_instance_uid", sa.String(64), primary_key=True),
        sa.Column("study_instance_uid", sa.String(64), sa.ForeignKey("imaging_study.study_instance_uid"),
                  nullable=False),
        sa.Column("modality", sa.String(), nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_imaging_series_study", "imaging_series", ["study_instance_uid"], if_not_exists=True)
    op.create_table(
        "imaging_instance",
        sa.Column("sop_instance_uid", sa.String(64), primary_key=True),
        sa.Column("series_instance_uid", sa.String(64), sa.ForeignKey("imaging_series.series_instance_uid"),
                  nullable=False),
        sa.Column("study_instance_uid", sa.String(64), nullable=False),
        sa.Column("sop_class_uid", sa.String(64), nullable=False),
        sa.Column("transfer_syntax_uid", sa.String(64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("storage_key", sa.String(), nullable=False, unique=True),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha1", sa.String(40), nullable=False),
        sa.Column("calling_ae", sa.String(), nullable=False),
        sa.Column("received_at", sa.Float(), nullable=False),
        if_not_exists=True,
    )
    op.create_index("ix_imaging_instance_series", "imaging_instance", ["series_instance_uid"], if_not_exists=True)
    op.create_index("ix_imaging_instance_study", "imaging_instance", ["study_instance_uid"], if_not_exists=True)


def downgrade() -> None:
    op.drop_table("imaging_instance")
    op.drop_table("imaging_series")
    op.drop_table("imaging_study")
    op.drop_table("repository_document")
