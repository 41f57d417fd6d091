"""What a transaction handler tells the audit trail about the data it touched.

A handler sets ``SoapResponse.audit`` to an :class:`AuditContext`; the endpoint's guard turns it into
the participant objects of the transaction's audit message (DICOM PS3.15 A.5.3, and the "Audit
Record Considerations" section of each IHE transaction). Everything is optional: a handler that
sets nothing still gets an audit record with the event, the outcome and the active participants.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DocumentRef:
    """A document disclosed or received (ITI-41/42/43, ITI-39)."""

    unique_id: str
    repository_unique_id: str = ""
    home_community_id: str = ""


@dataclass(frozen=True)
class StudyRef:
    """A DICOM study disclosed or received (RAD-68/69/75): instances by SOP Class UID."""

    study_instance_uid: str
    instances: tuple[tuple[str, str], ...] = ()  # (SOP Class UID, SOP Instance UID) pairs


@dataclass(frozen=True)
class QueryRef:
    """A stored query as asked (ITI-18, ITI-38): the query id and the request as received."""

    query_id: str
    request: bytes = b""  # the AdhocQueryRequest element, serialised (ParticipantObjectQuery)
    home_community_id: str = ""
    encoding: str = "UTF-8"


@dataclass
class AuditContext:
    patient_ids: list[str] = field(default_factory=list)  # CX, e.g. 9876543210^^^&2.16.840.1.113883.4.59&ISO
    documents: list[DocumentRef] = field(default_factory=list)
    studies: list[StudyRef] = field(default_factory=list)
    submission_set_unique_id: str = ""
    query: QueryRef | None = None
    # the transaction when the action alone does not tell (RAD-68 travels as ITI-41's action)
    transaction: str = ""


_PATIENT_SLOTS = ("$XDSDocumentEntryPatientId", "$XDSSubmissionSetPatientId", "$XDSFolderPatientId", "$patientId")


def query_context(request: object) -> AuditContext:
    """The audit context of an ``query:AdhocQueryRequest`` (ITI-18, ITI-38): the stored query id,
    the request itself, its ``home`` and the patient id it names, if any."""
    from lxml import etree

    from xds.namespaces import RIM

    if not isinstance(request, etree._Element):
        return AuditContext()
    query = request.find(f"{{{RIM}}}AdhocQuery")
    if query is None:
        return AuditContext(query=QueryRef("", etree.tostring(request)))
    patients: list[str] = []
    for slot in query.iterfind(f"{{{RIM}}}Slot"):
        if (slot.get("name") or "").strip() in _PATIENT_SLOTS:
            for value in slot.iterfind(f"{{{RIM}}}ValueList/{{{RIM}}}Value"):
                text = (value.text or "").strip()
                if len(text) >= 2 and text[0] == text[-1] == "'":
                    text = text[1:-1].replace("''", "'")
                if text:
                    patients.append(text)
    ref = QueryRef(query.get("id", ""), etree.tostring(request), query.get("home") or "")
    return AuditContext(patient_ids=patients, query=ref)


def submission_context(submission: object, repository_unique_id: str = "") -> AuditContext:
    """The audit context of an ITI-41/42 (or RAD-68) submission (a parsed
    :class:`xds.metadata.model.Submission`): its patient, SubmissionSet, documents and the studies
    their referenceIdList names (urn:ihe:iti:xds:2016:studyInstanceUID); RAD-68 when it carries a
    DICOM manifest."""
    from xds.metadata.model import REF_STUDY_INSTANCE_UID, Submission

    if not isinstance(submission, Submission):
        return AuditContext()
    ss = submission.submission_set
    entries = submission.document_entries
    patients = [ss.patient_id] if ss is not None and ss.patient_id else [e.patient_id for e in entries if e.patient_id]
    studies: dict[str, None] = {}
    for e in entries:
        for ref in e.reference_ids:
            value, _, kind = ref.partition("^^^^")
            if kind.split("^")[0] == REF_STUDY_INSTANCE_UID and value:
                studies[value] = None
    return AuditContext(
        patient_ids=list(dict.fromkeys(patients)),
        documents=[DocumentRef(e.unique_id, e.repository_unique_id or repository_unique_id) for e in entries],
        studies=[StudyRef(uid) for uid in studies],
        submission_set_unique_id=ss.unique_id if ss is not None else "",
        transaction="RAD-68" if any(e.mime_type == "application/dicom" for e in entries) else "",
    )
