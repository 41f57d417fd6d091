"""The Document Registry's tables (SQLAlchemy 2 Core): one typed table per XDS object.

Not a generic ebRIM store (DESIGN.md section 3). Every ITI-18 stored-query parameter (ITI TF-2a
3.18.4.1.2.3.7) is an indexed column; the multi-valued ones (eventCodeList, confidentialityCode,
authorPerson, referenceIdList, Folder codeList) live in child tables keyed by the owner's
``entry_uuid``. Each object keeps its canonical ebRIM 3.0 XML (``fragment``) so a LeafClass answer is
assembled from stored fragments, not rebuilt; the columns are the truth for matching, the fragment
for answering, and the store keeps the two consistent when a status or lastUpdateTime changes.

Conventions:

* ids (``entry_uuid``, association ``source_uuid``/``target_uuid``) are ``urn:uuid:...`` strings;
* coded values are two columns, ``<name>`` (the code) and ``<name>_scheme`` (codingScheme), which is
  how a query's ``code^^^scheme`` value is matched;
* DTM values (creationTime, serviceStartTime, serviceStopTime, submissionTime, lastUpdateTime) are
  stored as the first second they cover, 14 digits (:func:`xds.metadata.datatypes.dtm_lower_bound`:
  ``2004`` -> ``20040101000000``), so a string comparison is a time comparison whatever precision
  the source sent; the value as sent is in the fragment;
* ``status`` is the full ebRIM status URN (``urn:oasis:names:tc:ebxml-regrep:StatusType:Approved``).

Schema changes go through an Alembic revision under :mod:`xds.registry.migrations`; never edit a
released revision.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

# Deterministic constraint names: Alembic batch operations on SQLite need them to alter a table.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def _uuid() -> Column:
    return Column("entry_uuid", String, primary_key=True)


def _owner(table: str) -> Column:
    """The owner's id: first half of a child table's primary key (entry_uuid, position)."""
    return Column(
        "entry_uuid", String, ForeignKey(f"{table}.entry_uuid", ondelete="CASCADE"), primary_key=True
    )


def _position() -> Column:
    return Column("position", Integer, primary_key=True, autoincrement=False)


patient = Table(
    "patient",
    metadata,
    Column("patient_id", String, primary_key=True, doc="affinity-domain CX, e.g. 123^^^&1.2.3&ISO"),
    Column("demographics", JSON, nullable=False, default=dict),
    Column("source", String, nullable=False, default="", doc="sending application^facility of the feed"),
    Column("message_control_id", String, nullable=False, default="", doc="MSH-10 of the last message"),
    Column("merged_into", String, nullable=True, doc="surviving patient_id after an A40 merge"),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Index("ix_patient_merged_into", "merged_into"),
    comment="Affinity-domain patient ids known from the Patient Identity Feed (ITI-8 / ITI-44).",
)
"""Affinity-domain patient ids the registry accepts (ITI TF-2a 3.8.4.1.3). A submission
for a patient_id absent here fails with XDSUnknownPatientId. ``merged_into`` is set when an ADT^A40
merged the id away (the ITI-18 merged_patient_policy reads it)."""


submission_set = Table(
    "submission_set",
    metadata,
    _uuid(),
    Column("unique_id", String, nullable=False),
    Column("patient_id", String, nullable=False),
    Column("source_id", String, nullable=False),
    Column("submission_time", String, nullable=True, doc="normalised DTM"),
    Column("content_type_code", String, nullable=True),
    Column("content_type_code_scheme", String, nullable=True),
    Column("status", String, nullable=False),
    Column("home_community_id", String, nullable=True),
    Column("fragment", Text, nullable=False, doc="canonical rim:RegistryPackage"),
    UniqueConstraint("unique_id"),
    Index("ix_submission_set_patient_status", "patient_id", "status"),
    Index("ix_submission_set_patient_submission_time", "patient_id", "submission_time"),
    Index("ix_submission_set_source_id", "source_id"),
    Index("ix_submission_set_content_type", "content_type_code", "content_type_code_scheme"),
    comment="XDSSubmissionSet (ITI TF-3 4.2.3.3).",
)
"""One row per XDSSubmissionSet (ITI TF-3 4.2.3.3): FindSubmissionSets,
GetSubmissionSets, GetSubmissionSetAndContents. Authors are in ``submission_set_author``."""


submission_set_author = Table(
    "submission_set_author",
    metadata,
    _owner("submission_set"),
    _position(),
    Column("person", String, nullable=True, doc="authorPerson XCN, matched with LIKE"),
    Column("institutions", JSON, nullable=False, default=list),
    Column("roles", JSON, nullable=False, default=list),
    Column("specialties", JSON, nullable=False, default=list),
    Index("ix_submission_set_author_person", "person"),
    comment="SubmissionSet author classifications; $XDSSubmissionSetAuthorPerson.",
)


document_entry = Table(
    "document_entry",
    metadata,
    _uuid(),
    Column("unique_id", String, nullable=False),
    Column("logical_id", String, nullable=False, doc="ebRIM lid: entry_uuid of the first version"),
    Column("version", Integer, nullable=False, default=1, doc="ebRIM VersionInfo/@versionName"),
    Column("patient_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("object_type", String, nullable=False, doc="stable or on-demand DocumentEntry type UUID"),
    Column("class_code", String, nullable=True),
    Column("class_code_scheme", String, nullable=True),
    Column("type_code", String, nullable=True),
    Column("type_code_scheme", String, nullable=True),
    Column("format_code", String, nullable=True),
    Column("format_code_scheme", String, nullable=True),
    Column("healthcare_facility_type_code", String, nullable=True),
    Column("healthcare_facility_type_code_scheme", String, nullable=True),
    Column("practice_setting_code", String, nullable=True),
    Column("practice_setting_code_scheme", String, nullable=True),
    Column("creation_time", String, nullable=True, doc="normalised DTM"),
    Column("service_start_time", String, nullable=True, doc="normalised DTM"),
    Column("service_stop_time", String, nullable=True, doc="normalised DTM"),
    Column("mime_type", String, nullable=False, default=""),
    Column("hash", String, nullable=True, doc="SHA-1, lower-case hex"),
    Column("size", BigInteger, nullable=True),
    Column("repository_unique_id", String, nullable=True),
    Column("home_community_id", String, nullable=True),
    Column("document_availability", String, nullable=True),
    Column("submission_set_uuid", String, nullable=True, doc="the SubmissionSet that brought it (Original)"),
    Column("fragment", Text, nullable=False, doc="canonical rim:ExtrinsicObject"),
    UniqueConstraint("logical_id", "version"),
    Index("ix_document_entry_unique_id", "unique_id"),
    Index("ix_document_entry_patient_status", "patient_id", "status"),
    Index("ix_document_entry_patient_class", "patient_id", "class_code", "class_code_scheme"),
    Index("ix_document_entry_patient_type", "patient_id", "type_code", "type_code_scheme"),
    Index("ix_document_entry_patient_format", "patient_id", "format_code", "format_code_scheme"),
    Index(
        "ix_document_entry_patient_facility",
        "patient_id",
        "healthcare_facility_type_code",
        "healthcare_facility_type_code_scheme",
    ),
    Index(
        "ix_document_entry_patient_practice",
        "patient_id",
        "practice_setting_code",
        "practice_setting_code_scheme",
    ),
    Index("ix_document_entry_patient_creation_time", "patient_id", "creation_time"),
    Index("ix_document_entry_patient_service_start", "patient_id", "service_start_time"),
    Index("ix_document_entry_patient_service_stop", "patient_id", "service_stop_time"),
    Index("ix_document_entry_submission_set", "submission_set_uuid"),
    Index("ix_document_entry_repository", "repository_unique_id"),
    comment="XDSDocumentEntry (ITI TF-3 4.2.3.2), stable and on-demand.",
)
"""One row per XDSDocumentEntry version (ITI TF-3 4.2.3.2). FindDocuments runs
on (patient_id, status) first, then the code / time columns; GetDocuments on entry_uuid or
unique_id. ``unique_id`` is not unique: a document resubmitted with the same uniqueId, hash and size
is a second DocumentEntry (ITI TF-3 4.2.4.1, NIST test 12004), and ITI-57 adds versions under the
same logical_id; ``(logical_id, version)`` is unique."""


def _code_table(name: str, owner: str, doc: str) -> Table:
    t = Table(
        name,
        metadata,
        _owner(owner),
        _position(),
        Column("code", String, nullable=False),
        Column("scheme", String, nullable=False, default=""),
        Column("display_name", String, nullable=False, default=""),
        Index(f"ix_{name}_code", "code", "scheme"),
        comment=doc,
    )
    return t


document_event_code = _code_table(
    "document_event_code", "document_entry", "DocumentEntry eventCodeList; $XDSDocumentEntryEventCodeList."
)
document_confidentiality_code = _code_table(
    "document_confidentiality_code",
    "document_entry",
    "DocumentEntry confidentialityCode; $XDSDocumentEntryConfidentialityCode.",
)


document_author = Table(
    "document_author",
    metadata,
    _owner("document_entry"),
    _position(),
    Column(
        "person", String, nullable=True, doc="authorPerson XCN, matched with LIKE (ITI TF-2a 3.18.4.1.2.3.5)"
    ),
    Column("institutions", JSON, nullable=False, default=list),
    Column("roles", JSON, nullable=False, default=list),
    Column("specialties", JSON, nullable=False, default=list),
    Index("ix_document_author_person", "person"),
    comment="DocumentEntry author classifications; $XDSDocumentEntryAuthorPerson.",
)


document_reference_id = Table(
    "document_reference_id",
    metadata,
    _owner("document_entry"),
    _position(),
    Column("value", String, nullable=False, doc="the whole CXi value as submitted"),
    Column("id", String, nullable=False, doc="CXi.1"),
    Column("id_type", String, nullable=False, default="", doc="CXi.5, e.g. urn:ihe:iti:xds:2013:accession"),
    Index("ix_document_reference_id_value", "value"),
    Index("ix_document_reference_id_id", "id", "id_type"),
    comment="DocumentEntry referenceIdList (ITI TF-3 4.2.3.2.28); FindDocumentsByReferenceId.",
)


folder = Table(
    "folder",
    metadata,
    _uuid(),
    Column("unique_id", String, nullable=False),
    Column("logical_id", String, nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("patient_id", String, nullable=False),
    Column("status", String, nullable=False),
    Column("last_update_time", String, nullable=True, doc="normalised DTM"),
    Column("home_community_id", String, nullable=True),
    Column("fragment", Text, nullable=False, doc="canonical rim:RegistryPackage"),
    UniqueConstraint("unique_id", "version"),
    UniqueConstraint("logical_id", "version"),
    Index("ix_folder_patient_status", "patient_id", "status"),
    Index("ix_folder_patient_last_update", "patient_id", "last_update_time"),
    comment="XDSFolder (ITI TF-3 4.2.3.4).",
)
"""One row per XDSFolder version (ITI TF-3 4.2.3.4): FindFolders, GetFolders,
GetFolderAndContents, GetFoldersForDocument. ``last_update_time`` is set by the registry when the
folder is created or a document is added to it (ITI TF-3 4.2.3.4.4)."""

folder_code = _code_table("folder_code", "folder", "Folder codeList; $XDSFolderCodeList.")


association = Table(
    "association",
    metadata,
    _uuid(),
    Column("association_type", String, nullable=False),
    Column("source_uuid", String, nullable=False),
    Column("target_uuid", String, nullable=False),
    Column("status", String, nullable=False),
    Column("submission_set_status", String, nullable=True, doc="Original | Reference (SS HasMember)"),
    Column("submission_set_uuid", String, nullable=True, doc="the SubmissionSet that brought it"),
    Column("home_community_id", String, nullable=True),
    Column("fragment", Text, nullable=False, doc="canonical rim:Association"),
    Index("ix_association_source", "source_uuid", "association_type"),
    Index("ix_association_target", "target_uuid", "association_type"),
    comment="ebRIM Association between XDS objects (ITI TF-3 4.2.2).",
)
"""One row per Association (ITI TF-3 4.2.2): HasMember (SubmissionSet/Folder
membership, SubmissionSet->Association for folder additions), RPLC/APND/XFRM/XFRM_RPLC/signs,
IsSnapshotOf. Source and target are not foreign keys: either end may be any object table, and a
HasMember's target may be another association."""


DOCUMENT_ENTRY_CHILDREN = (
    document_event_code,
    document_confidentiality_code,
    document_author,
    document_reference_id,
)
