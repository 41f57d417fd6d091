"""RAD-68 Provide and Register Imaging Document Set: the Document Repository's checks of the
manifest against its metadata (RAD TF-3 4.68.4.1.3).

For a DocumentEntry with mimeType ``application/dicom`` the document must be a DICOM PS3.10 Key
Object Selection Document (SOP class 1.2.840.10008.5.1.4.1.1.88.59) and must agree with the
metadata RAD TF-3 4.68.4.1.2.3 derives from it:

* uniqueId is the KOS SOP Instance UID (0008,0018);
* sourcePatientId is Patient ID (0010,0020) with Issuer of Patient ID (0010,0021) when the KOS
  names an issuer (as an OID, directly or in its Qualifiers Sequence);
* patientId, when the KOS carries an id of the same assigning authority (Patient ID or an Other
  Patient IDs Sequence item), is that id;
* referenceIdList studyInstanceUID values are studies the KOS references (its own Study Instance
  UID or a Current Requested Procedure Evidence Sequence item), accession values accession numbers
  it carries (0008,0050, or a Referenced Request Sequence item);
* formatCode, when given, is the KOS SOP class UID.

Each mismatch is an XDSRepositoryMetadataError naming the metadata attribute (the ``KOS_*`` rules of
:mod:`xds.metadata.rules`); a uniqueId that is not the SOP Instance UID is reported as a Warning
only: that rule binds the Imaging Document Source, and the repository keeps what it was sent.
"""

from __future__ import annotations

from pydicom import dcmread
from pydicom.dataset import Dataset

from xds.metadata import model as m
from xds.metadata.datatypes import CX, is_oid
from xds.metadata.errors import RegistryError
from xds.metadata.rules import Rule
from xds.soap.message import Attachment

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
DICOM_MIME_TYPE = "application/dicom"


def _error(rule: Rule, entry: m.DocumentEntry, **fields: object) -> RegistryError:
    return rule.error(location=entry.entry_uuid, id=entry.entry_uuid, **fields)


def read_manifest(attachment: Attachment) -> Dataset:
    """Parse ``attachment`` as a PS3.10 file (or a bare data set), without pixel data."""
    with attachment.open() as f:
        return dcmread(f, stop_before_pixels=True, force=False)


def _issuer(ds: Dataset) -> str:
    for q in ds.get("IssuerOfPatientIDQualifiersSequence", []) or []:
        if str(q.get("UniversalEntityIDType", "")) == "ISO" and q.get("UniversalEntityID"):
            return str(q.UniversalEntityID)
    return str(ds.get("IssuerOfPatientID", "") or "").strip()


def _patient_ids(ds: Dataset) -> list[tuple[str, str]]:
    """(id, issuer) pairs the manifest carries: Patient ID, then Other Patient IDs Sequence."""
    out = [(str(ds.get("PatientID", "") or "").strip(), _issuer(ds))]
    for item in ds.get("OtherPatientIDsSequence", []) or []:
        out.append((str(item.get("PatientID", "") or "").strip(), _issuer(item)))
    return out


def _reference_ids(entry: m.DocumentEntry, kind: str) -> list[str]:
    out = []
    for value in entry.reference_ids:
        parts = value.split("^")
        if len(parts) > 4 and parts[4] == kind and parts[0]:
            out.append(parts[0])
    return out


def _study_uids(ds: Dataset) -> set[str]:
    uids = {str(ds.get("StudyInstanceUID", "") or "")}
    for item in ds.get("CurrentRequestedProcedureEvidenceSequence", []) or []:
        uids.add(str(item.get("StudyInstanceUID", "") or ""))
    return uids - {""}


def _accessions(ds: Dataset) -> set[str]:
    values = {str(ds.get("AccessionNumber", "") or "").strip()}
    for item in ds.get("ReferencedRequestSequence", []) or []:
        values.add(str(item.get("AccessionNumber", "") or "").strip())
    return values - {""}


def check_kos(document_entry: m.DocumentEntry, attachment: Attachment) -> list[RegistryError]:
    """The RAD-68 content checks of one document; no errors for a DocumentEntry that is not
    ``application/dicom``."""
    entry = document_entry
    if entry.mime_type != DICOM_MIME_TYPE:
        return []
    try:
        ds = read_manifest(attachment)
        sop_class = str(ds.get("SOPClassUID", "") or "")
    except Exception as e:  # pydicom raises many kinds on what is not DICOM
        return [_error(Rule.KOS_NOT_DICOM, entry, reason=type(e).__name__)]
    if not sop_class:
        return [_error(Rule.KOS_NOT_DICOM, entry, reason="no SOP Class UID")]
    if sop_class != KOS_SOP_CLASS:
        return [_error(Rule.KOS_WRONG_SOP_CLASS, entry, value=sop_class)]
    try:
        return _mismatches(entry, ds, sop_class)
    except Exception as e:  # pydicom decodes an element when it is first read: a malformed one raises here
        return [_error(Rule.KOS_NOT_DICOM, entry, reason=f"a malformed data element, {type(e).__name__}")]


def _mismatches(entry: m.DocumentEntry, ds: Dataset, sop_class: str) -> list[RegistryError]:
    """Where the manifest's attributes disagree with the DocumentEntry's."""
    errors: list[RegistryError] = []

    sop_instance = str(ds.get("SOPInstanceUID", "") or "")
    if entry.unique_id != sop_instance:
        errors.append(_error(Rule.KOS_UNIQUE_ID_MISMATCH, entry, value=entry.unique_id, actual=sop_instance))

    if entry.format_code is not None and entry.format_code.code != KOS_SOP_CLASS:
        errors.append(_error(Rule.KOS_METADATA_MISMATCH, entry, field="formatCode", value=entry.format_code.code,
                             what="SOP Class UID", actual=sop_class))

    pid, issuer = _patient_ids(ds)[0]
    if entry.source_patient_id:
        cx = CX.parse(entry.source_patient_id)
        aa = cx.assigning_authority
        if is_oid(issuer):
            other_issuer = aa.universal_id != issuer
        else:  # a local namespace: comparable only with a namespace
            other_issuer = bool(issuer and aa.namespace_id and aa.namespace_id != issuer)
        if cx.id_number != pid or other_issuer:
            actual = f"{pid}^^^&{issuer}&ISO" if is_oid(issuer) else (f"{pid}^^^{issuer}" if issuer else pid)
            errors.append(_error(Rule.KOS_METADATA_MISMATCH, entry, field="sourcePatientId", value=entry.source_patient_id,
                                 what="Patient ID / Issuer of Patient ID", actual=actual))

    if entry.patient_id:
        cx = CX.parse(entry.patient_id)
        domain = cx.assigning_authority.universal_id
        same_issuer = [p for p, i in _patient_ids(ds) if domain and i == domain]
        if same_issuer and cx.id_number not in same_issuer:
            errors.append(_error(Rule.KOS_METADATA_MISMATCH, entry, field="patientId", value=entry.patient_id,
                                 what=f"patient id issued by {domain}", actual=same_issuer[0]))

    studies = _study_uids(ds)
    for uid in _reference_ids(entry, m.REF_STUDY_INSTANCE_UID):
        if uid not in studies:
            errors.append(_error(Rule.KOS_REFERENCE_NOT_IN_MANIFEST, entry, value=uid, what="study (Study Instance UID)"))
    accessions = _accessions(ds)
    for number in _reference_ids(entry, m.REF_ACCESSION):
        if number not in accessions:
            errors.append(_error(Rule.KOS_REFERENCE_NOT_IN_MANIFEST, entry, value=number, what="request (Accession Number)"))
    return errors


def check_submission(entries: list[m.DocumentEntry], documents: dict[str, Attachment]) -> list[RegistryError]:
    """:func:`check_kos` for every DocumentEntry whose document is in ``documents`` (by entry id)."""
    errors: list[RegistryError] = []
    for entry in entries:
        attachment = documents.get(entry.entry_uuid)
        if attachment is not None:
            errors.extend(check_kos(entry, attachment))
    return errors
