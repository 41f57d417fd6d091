"""The consent directive table, in the registry's database and metadata (one Alembic history,
revision ``0006_consent``).

One row per directive a patient gave: ``withdraw`` or ``reinstate`` consent to share, for all the
patient's documents (``scope`` ``patient``), one document (``document``, by uniqueId) or one imaging
study (``study``, by Study Instance UID). Rows are never updated except to be superseded and never
deleted: a newer directive for the same patient and target sets ``superseded_by`` /
``superseded_at`` on the one it replaces, so the table is the patient's whole consent history and
the *active* directives are the rows with ``superseded_by`` NULL. Enforcement
(:mod:`xds.consent.enforcement`) reads the active ``withdraw`` rows only.
"""

from __future__ import annotations

from sqlalchemy import Column, DateTime, ForeignKey, Index, Integer, String, Table, Text

from xds.registry.schema import metadata

WITHDRAW, REINSTATE = "withdraw", "reinstate"
PATIENT, DOCUMENT, STUDY = "patient", "document", "study"
ACTIONS = (WITHDRAW, REINSTATE)
SCOPES = (PATIENT, DOCUMENT, STUDY)

consent_directive = Table(
    "consent_directive",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("patient_id", String, nullable=False, doc="affinity-domain CX (the HN) as the registry keys it"),
    Column("action", String, nullable=False, doc="withdraw | reinstate"),
    Column("scope", String, nullable=False, doc="patient | document | study"),
    Column("target", String, nullable=False, default="", doc="document uniqueId, Study Instance UID, or ''"),
    Column("set_by", String, nullable=False, doc="who recorded it (operator, privacy office, ...)"),
    Column("set_at", DateTime(timezone=True), nullable=False),
    Column("reason", Text, nullable=False, default=""),
    Column("superseded_by", Integer, ForeignKey("consent_directive.id"), nullable=True),
    Column("superseded_at", DateTime(timezone=True), nullable=True),
    Index("ix_consent_directive_patient_active", "patient_id", "superseded_by"),
    Index("ix_consent_directive_target", "scope", "target"),
    comment="Patients' consent directives (PHIPA): withdrawals and reinstatements, never deleted.",
)
