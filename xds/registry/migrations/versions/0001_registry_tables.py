"""Registry tables: patient, submission_set, document_entry, folder, association and children.

Revision ID: 0001
Revises:
Create Date: 2026-11-23 13:42:52.668243
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "association",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("association_type", sa.String(), nullable=False),
        sa.Column("source_uuid", sa.String(), nullable=False),
        sa.Column("target_uuid", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("submission_set_status", sa.String(), nullable=True),
        sa.Column("submission_set_uuid", sa.String(), nullable=True),
        sa.Column("home_community_id", sa.String(), nullable=True),
        sa.Column("fragment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name=op.f("pk_association")),
        comment="ebRIM Association between XDS objects (ITI TF-3 4.2.2).",
    )
    op.create_index("ix_association_source", "association", ["source_uuid", "association_type"])
    op.create_index("ix_association_target", "association", ["target_uuid", "association_type"])

    op.create_table(
        "document_entry",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("unique_id", sa.String(), nullable=False),
        sa.Column("logical_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("object_type", sa.String(), nullable=False),
        sa.Column("class_code", sa.String(), nullable=True),
        sa.Column("class_code_scheme", sa.String(), nullable=True),
        sa.Column("type_code", sa.String(), nullable=True),
        sa.Column("type_code_scheme", sa.String(), nullable=True),
        sa.Column("format_code", sa.String(), nullable=True),
        sa.Column("format_code_scheme", sa.String(), nullable=True),
        sa.Column("healthcare_facility_type_code", sa.String(), nullable=True),
        sa.Column("healthcare_facility_type_code_scheme", sa.String(), nullable=True),
        sa.Column("practice_setting_code", sa.String(), nullable=True),
        sa.Column("practice_setting_code_scheme", sa.String(), nullable=True),
        sa.Column("creation_time", sa.String(), nullable=True),
        sa.Column("service_start_time", sa.String(), nullable=True),
        sa.Column("service_stop_time", sa.String(), nullable=True),
        sa.Column("mime_type", sa.String(), nullable=False),
        sa.Column("hash", sa.String(), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("repository_unique_id", sa.String(), nullable=True),
        sa.Column("home_community_id", sa.String(), nullable=True),
        sa.Column("document_availability", sa.String(), nullable=True),
        sa.Column("submission_set_uuid", sa.String(), nullable=True),
        sa.Column("fragment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name=op.f("pk_document_entry")),
        sa.UniqueConstraint("logical_id", "version", name=op.f("uq_document_entry_logical_id_version")),
        sa.UniqueConstraint("unique_id", "version", name=op.f("uq_document_entry_unique_id_version")),
        comment="XDSDocumentEntry (ITI TF-3 4.2.3.2), stable and on-demand.",
    )
    op.create_index(
        "ix_document_entry_patient_class", "document_entry", ["patient_id", "class_code", "class_code_scheme"]
    )
    op.create_index(
        "ix_document_entry_patient_creation_time", "document_entry", ["patient_id", "creation_time"]
    )
    op.create_index(
        "ix_document_entry_patient_facility",
        "document_entry",
        ["patient_id", "healthcare_facility_type_code", "healthcare_facility_type_code_scheme"],
    )
    op.create_index(
        "ix_document_entry_patient_format",
        "document_entry",
        ["patient_id", "format_code", "format_code_scheme"],
    )
    op.create_index(
        "ix_document_entry_patient_practice",
        "document_entry",
        ["patient_id", "practice_setting_code", "practice_setting_code_scheme"],
    )
    op.create_index(
        "ix_document_entry_patient_service_start", "document_entry", ["patient_id", "service_start_time"]
    )
    op.create_index(
        "ix_document_entry_patient_service_stop", "document_entry", ["patient_id", "service_stop_time"]
    )
    op.create_index("ix_document_entry_patient_status", "document_entry", ["patient_id", "status"])
    op.create_index(
        "ix_document_entry_patient_type", "document_entry", ["patient_id", "type_code", "type_code_scheme"]
    )
    op.create_index("ix_document_entry_repository", "document_entry", ["repository_unique_id"])
    op.create_index("ix_document_entry_submission_set", "document_entry", ["submission_set_uuid"])

    op.create_table(
        "folder",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("unique_id", sa.String(), nullable=False),
        sa.Column("logical_id", sa.String(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("last_update_time", sa.String(), nullable=True),
        sa.Column("home_community_id", sa.String(), nullable=True),
        sa.Column("fragment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name=op.f("pk_folder")),
        sa.UniqueConstraint("logical_id", "version", name=op.f("uq_folder_logical_id_version")),
        sa.UniqueConstraint("unique_id", "version", name=op.f("uq_folder_unique_id_version")),
        comment="XDSFolder (ITI TF-3 4.2.3.4).",
    )
    op.create_index("ix_folder_patient_last_update", "folder", ["patient_id", "last_update_time"])
    op.create_index("ix_folder_patient_status", "folder", ["patient_id", "status"])

    op.create_table(
        "patient",
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("demographics", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("message_control_id", sa.String(), nullable=False),
        sa.Column("merged_into", sa.String(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("patient_id", name=op.f("pk_patient")),
        comment="Affinity-domain patient ids known from the Patient Identity Feed (ITI-8 / ITI-44).",
    )
    op.create_table(
        "submission_set",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("unique_id", sa.String(), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("source_id", sa.String(), nullable=False),
        sa.Column("submission_time", sa.String(), nullable=True),
        sa.Column("content_type_code", sa.String(), nullable=True),
        sa.Column("content_type_code_scheme", sa.String(), nullable=True),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("home_community_id", sa.String(), nullable=True),
        sa.Column("fragment", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("entry_uuid", name=op.f("pk_submission_set")),
        sa.UniqueConstraint("unique_id", name=op.f("uq_submission_set_unique_id")),
        comment="XDSSubmissionSet (ITI TF-3 4.2.3.3).",
    )
    op.create_index(
        "ix_submission_set_content_type", "submission_set", ["content_type_code", "content_type_code_scheme"]
    )
    op.create_index("ix_submission_set_patient_status", "submission_set", ["patient_id", "status"])
    op.create_index(
        "ix_submission_set_patient_submission_time", "submission_set", ["patient_id", "submission_time"]
    )
    op.create_index("ix_submission_set_source_id", "submission_set", ["source_id"])

    op.create_table(
        "document_author",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person", sa.String(), nullable=True),
        sa.Column("institutions", sa.JSON(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("specialties", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_uuid"],
            ["document_entry.entry_uuid"],
            name=op.f("fk_document_author_entry_uuid_document_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_uuid", "position", name=op.f("pk_document_author")),
        comment="DocumentEntry author classifications; $XDSDocumentEntryAuthorPerson.",
    )
    op.create_index("ix_document_author_person", "document_author", ["person"])

    op.create_table(
        "document_confidentiality_code",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("scheme", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_uuid"],
            ["document_entry.entry_uuid"],
            name=op.f("fk_document_confidentiality_code_entry_uuid_document_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_uuid", "position", name=op.f("pk_document_confidentiality_code")),
        comment="DocumentEntry confidentialityCode; $XDSDocumentEntryConfidentialityCode.",
    )
    op.create_index(
        "ix_document_confidentiality_code_code", "document_confidentiality_code", ["code", "scheme"]
    )

    op.create_table(
        "document_event_code",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("scheme", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_uuid"],
            ["document_entry.entry_uuid"],
            name=op.f("fk_document_event_code_entry_uuid_document_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_uuid", "position", name=op.f("pk_document_event_code")),
        comment="DocumentEntry eventCodeList; $XDSDocumentEntryEventCodeList.",
    )
    op.create_index("ix_document_event_code_code", "document_event_code", ["code", "scheme"])

    op.create_table(
        "document_reference_id",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("value", sa.String(), nullable=False),
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("id_type", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_uuid"],
            ["document_entry.entry_uuid"],
            name=op.f("fk_document_reference_id_entry_uuid_document_entry"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_uuid", "position", name=op.f("pk_document_reference_id")),
        comment="DocumentEntry referenceIdList (ITI TF-3 4.2.3.2.28); FindDocumentsByReferenceId.",
    )
    op.create_index("ix_document_reference_id_id", "document_reference_id", ["id", "id_type"])
    op.create_index("ix_document_reference_id_value", "document_reference_id", ["value"])

    op.create_table(
        "folder_code",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("code", sa.String(), nullable=False),
        sa.Column("scheme", sa.String(), nullable=False),
        sa.Column("display_name", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_uuid"],
            ["folder.entry_uuid"],
            name=op.f("fk_folder_code_entry_uuid_folder"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_uuid", "position", name=op.f("pk_folder_code")),
        comment="Folder codeList; $XDSFolderCodeList.",
    )
    op.create_index("ix_folder_code_code", "folder_code", ["code", "scheme"])

    op.create_table(
        "submission_set_author",
        sa.Column("entry_uuid", sa.String(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("person", sa.String(), nullable=True),
        sa.Column("institutions", sa.JSON(), nullable=False),
        sa.Column("roles", sa.JSON(), nullable=False),
        sa.Column("specialties", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["entry_uuid"],
            ["submission_set.entry_uuid"],
            name=op.f("fk_submission_set_author_entry_uuid_submission_set"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("entry_uuid", "position", name=op.f("pk_submission_set_author")),
        comment="SubmissionSet author classifications; $XDSSubmissionSetAuthorPerson.",
    )
    op.create_index("ix_submission_set_author_person", "submission_set_author", ["person"])


def downgrade() -> None:
    op.drop_index("ix_submission_set_author_person", table_name="submission_set_author")

    op.drop_table("submission_set_author")
    op.drop_index("ix_folder_code_code", table_name="folder_code")

    op.drop_table("folder_code")
    op.drop_index("ix_document_reference_id_value", table_name="document_reference_id")
    op.drop_index("ix_document_reference_id_id", table_name="document_reference_id")

    op.drop_table("document_reference_id")
    op.drop_index("ix_document_event_code_code", table_name="document_event_code")

    op.drop_table("document_event_code")
    op.drop_index("ix_document_confidentiality_code_code", table_name="document_confidentiality_code")

    op.drop_table("document_confidentiality_code")
    op.drop_index("ix_document_author_person", table_name="document_author")

    op.drop_table("document_author")
    op.drop_index("ix_submission_set_source_id", table_name="submission_set")
    op.drop_index("ix_submission_set_patient_submission_time", table_name="submission_set")
    op.drop_index("ix_submission_set_patient_status", table_name="submission_set")
    op.drop_index("ix_submission_set_content_type", table_name="submission_set")

    op.drop_table("submission_set")
    op.drop_table("patient")
    op.drop_index("ix_folder_patient_status", table_name="folder")
    op.drop_index("ix_folder_patient_last_update", table_name="folder")

    op.drop_table("folder")
    op.drop_index("ix_document_entry_submission_set", table_name="document_entry")
    op.drop_index("ix_document_entry_repository", table_name="document_entry")
    op.drop_index("ix_document_entry_patient_type", table_name="document_entry")
    op.drop_index("ix_document_entry_patient_status", table_name="document_entry")
    op.drop_index("ix_document_entry_patient_service_stop", table_name="document_entry")
    op.drop_index("ix_document_entry_patient_service_start", table_name="document_entry")
    op.drop_index("ix_document_entry_patient_practice", table_name="document_entry")
    op.drop_index("ix_document_entry_patient_format", table_name="document_entry")
    op.drop_index("ix_document_entry_patient_facility", table_name="document_entry")
    op.drop_index("ix_document_entry_patient_creation_time", table_name="document_entry")
    op.drop_index("ix_document_entry_patient_class", table_name="document_entry")

    op.drop_table("document_entry")
    op.drop_index("ix_association_target", table_name="association")
    op.drop_index("ix_association_source", table_name="association")

    op.drop_table("association")
