"""Model-object submissions for registry tests (what the ebRIM parser would hand over)."""

from __future__ import annotations

import itertools
import uuid
from pathlib import Path

from lxml import etree

from tests.registry.conftest import PATIENT
from xds.metadata import model as m
from xds.namespaces import RIM

_seq = itertools.count(1)


def oid() -> str:
    return f"1.3.6.1.4.1.21367.2005.3.99.{uuid.uuid4().int % 10**10}.{next(_seq)}"


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def document_entry(symbol: str = "Document01", patient: str = PATIENT, **kw: object) -> m.DocumentEntry:
    de = m.DocumentEntry(
        entry_uuid=symbol,
        unique_id=oid(),
        patient_id=patient,
        mime_type="text/plain",
        class_code=m.Code("DEMO-Consult", "1.3.6.1.4.1.21367.100.1", "Consultation"),
        type_code=m.Code("34108-1", "2.16.840.1.113883.6.1", "Outpatient Note"),
        format_code=m.Code("urn:ihe:rad:TEXT", "1.2.840.10008.2.6.1", "TEXT"),
        healthcare_facility_type_code=m.Code("Outpatient", "Connect-a-thon healthcareFacilityTypeCodes"),
        practice_setting_code=m.Code("General Medicine", "Connect-a-thon practiceSettingCodes"),
        confidentiality_codes=[m.Code("N", "2.16.840.1.113883.5.25")],
        creation_time="20041224",
        language_code="en-us",
        source_patient_id="89765a87b^^^&3.4.5&ISO",
        hash="4cf4f82d78b5e2aac35c31bca8cb79fe6bd6a41e",
        size=36,
        repository_unique_id="1.19.6.24.109.42.1.5",
    )
    for k, v in kw.items():
        setattr(de, k, v)
    return de


def folder(symbol: str = "Folder01", patient: str = PATIENT) -> m.Folder:
    return m.Folder(
        entry_uuid=symbol,
        unique_id=oid(),
        patient_id=patient,
        title="Folder",
        codes=[m.Code("Referrals", "Connect-a-thon folderCodeList")],
    )


def has_member(
    source: str, target: str, status: str | None = "Original", symbol: str | None = None
) -> m.Association:
    return m.Association(
        entry_uuid=symbol or f"Assoc-{next(_seq)}",
        association_type=m.HAS_MEMBER,
        source=source,
        target=target,
        submission_set_status=status,
    )


def relationship(kind: str, source: str, target: str) -> m.Association:
    return m.Association(
        entry_uuid=f"Assoc-{next(_seq)}", association_type=kind, source=source, target=target
    )


def submission(
    *docs: m.DocumentEntry,
    folders: tuple[m.Folder, ...] = (),
    associations: tuple[m.Association, ...] = (),
    patient: str = PATIENT,
    members: bool = True,
) -> m.Submission:
    """A SubmissionSet ``SubmissionSet01`` holding ``docs`` and ``folders`` (HasMember Original)."""
    ss = m.SubmissionSet(
        entry_uuid="SubmissionSet01",
        unique_id=oid(),
        source_id="1.3.6.1.4.1.21367.2005.3.7",
        patient_id=patient,
        submission_time="20041225235050",
        content_type_code=m.Code("Communication", "Connect-a-thon contentTypeCodes"),
        authors=[m.Author(person="^Dopplemeyer^Sherry^^^", institutions=["Cleveland Clinic"])],
    )
    assocs = list(associations)
    if members:
        assocs = (
            [has_member(ss.entry_uuid, d.entry_uuid) for d in docs]
            + [has_member(ss.entry_uuid, f.entry_uuid, None) for f in folders]
            + assocs
        )
    return m.Submission(
        submission_set=ss, document_entries=list(docs), folders=list(folders), associations=assocs
    )


_UNIQUE_ID_SCHEMES = (m.DE_UNIQUE_ID, m.SS_UNIQUE_ID, m.FOL_UNIQUE_ID)
_PATIENT_ID_SCHEMES = (m.DE_PATIENT_ID, m.SS_PATIENT_ID, m.FOL_PATIENT_ID)


def nist_metadata(path: Path, patient_id: str | None = None, **placeholders: str) -> bytes:
    """A NIST testkit metadata file as the toolkit sends it: ``$name$`` placeholders substituted,
    uniqueIds replaced by fresh OIDs (its default ``AssignUids`` step) and, with ``patient_id``,
    every patientId set to the test's patient (what the toolkit does unless ``NoPatientId``)."""
    text = path.read_text()
    for name, value in placeholders.items():
        text = text.replace(f"${name}$", value)
    root = etree.fromstring(text.encode())
    for ei in root.iter(f"{{{RIM}}}ExternalIdentifier"):
        if ei.get("identificationScheme") in _UNIQUE_ID_SCHEMES:
            ei.set("value", oid())
        elif patient_id and ei.get("identificationScheme") in _PATIENT_ID_SCHEMES:
            ei.set("value", patient_id)
    return etree.tostring(root)
