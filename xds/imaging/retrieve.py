"""RAD-69 Retrieve Imaging Document Set: the Imaging Document Source's side (RAD TF-3 4.69).

The request (``iherad:RetrieveImagingDocumentSetRequest``) names studies, their series and, in each,
``xdsb:DocumentRequest`` elements whose DocumentUniqueId is a SOP Instance UID, plus the transfer
syntaxes the consumer accepts. The answer is an ITI-43 ``xdsb:RetrieveDocumentSetResponse``
(wsa:Action ``urn:ihe:iti:2007:RetrieveDocumentSetResponse``, as the XDS-I.b WSDL declares), always
MTOM, each instance a XOP part streamed from the instance store (RAD TF-3 4.69.4.2).

Per instance (RAD TF-3 4.69.4.1.3):

* a RepositoryUniqueId other than ours: XDSUnknownRepositoryId;
* an instance we do not hold, or not in the study and series the request puts it in:
  XDSDocumentUniqueIdError;
* stored in one of the listed transfer syntaxes: returned as stored, byte for byte;
* stored uncompressed (Implicit or Explicit VR Little Endian) and the other one listed: transcoded;
* otherwise XDSRepositoryError "IDS cannot encode the pixel data using any of the requested
  transfer syntaxes".

Some instances returned and some not: PartialSuccess; none: Failure (ITI TF-2b 3.43.4.2.3).
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from xds.audit.context import AuditContext, DocumentRef, StudyRef
from xds.consent.requester import Requester, requester_of
from xds.consent.retrieval import withheld_by_imaging_source
from xds.metadata import response
from xds.metadata.errors import RegistryError, has_errors
from xds.metadata.rules import ErrorCode, Rule
from xds.namespaces import XDSB, XDSI
from xds.repository.store import DocumentNotFound, StoreError
from xds.soap import mtom
from xds.soap.fault import SoapFault
from xds.soap.message import Attachment, SoapRequest, SoapResponse, xop_include

if TYPE_CHECKING:
    from xds.imaging import ImagingSource
    from xds.imaging.instance_store import StoredInstance
    from xds.soap.dispatch import Endpoint

log = logging.getLogger("xds.imaging")

ACTION = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
RESPONSE_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"  # XDS-I.b_ImagingDocumentSource.wsdl

IMPLICIT_VR_LE = "1.2.840.10008.1.2"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
UNCOMPRESSED = (IMPLICIT_VR_LE, EXPLICIT_VR_LE)
DICOM_MIME_TYPE = "application/dicom"
CANNOT_ENCODE = "IDS cannot encode the pixel data using any of the requested transfer syntaxes"


@dataclass(frozen=True)
class InstanceRequest:
    study_instance_uid: str
    series_instance_uid: str
    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass
class RetrievedInstance:
    request: InstanceRequest
    attachment: Attachment
    instance: StoredInstance | None = None


def read_request(body: etree._Element) -> tuple[list[InstanceRequest], list[str]]:
    """The instance requests in document order, and the TransferSyntaxUIDList."""
    if body.tag != f"{{{XDSI}}}RetrieveImagingDocumentSetRequest":
        raise SoapFault("Sender", "Expected iherad:RetrieveImagingDocumentSetRequest in the SOAP Body")
    out: list[InstanceRequest] = []
    for study in body.findall(f"{{{XDSI}}}StudyRequest"):
        study_uid = (study.get("studyInstanceUID") or "").strip()
        for series in study.findall(f"{{{XDSI}}}SeriesRequest"):
            series_uid = (series.get("seriesInstanceUID") or "").strip()
            for dr in series.findall(f"{{{XDSB}}}DocumentRequest"):
                out.append(
                    InstanceRequest(
                        study_instance_uid=study_uid,
                        series_instance_uid=series_uid,
                        repository_unique_id=(dr.findtext(f"{{{XDSB}}}RepositoryUniqueId") or "").strip(),
                        document_unique_id=(dr.findtext(f"{{{XDSB}}}DocumentUniqueId") or "").strip(),
                        home_community_id=(dr.findtext(f"{{{XDSB}}}HomeCommunityId") or "").strip() or None,
                    )
                )
    if not out:
        raise SoapFault("Sender", "The RetrieveImagingDocumentSetRequest has no DocumentRequest")
    syntaxes = [
        (t.text or "").strip()
        for t in body.findall(f"{{{XDSI}}}TransferSyntaxUIDList/{{{XDSI}}}TransferSyntaxUID")
        if (t.text or "").strip()
    ]
    return out, syntaxes


def transcode(data: bytes, transfer_syntax_uid: str) -> bytes:
    """Re-encode an uncompressed PS3.10 file in the other uncompressed Little Endian syntax."""
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(data))
    ds.file_meta.TransferSyntaxUID = transfer_syntax_uid
    buf = io.BytesIO()
    ds.save_as(buf, implicit_vr=transfer_syntax_uid == IMPLICIT_VR_LE, little_endian=True, enforce_file_format=True)
    return buf.getvalue()


def _repository_error(uid: str, reason: str) -> RegistryError:
    return RegistryError(ErrorCode.XDS_REPOSITORY_ERROR.value, reason, location=uid)


def retrieve(
    source: ImagingSource, requests: list[InstanceRequest], syntaxes: list[str], requester: Requester | None = None
) -> tuple[list[RetrievedInstance], list[RegistryError]]:
    """The instances returned and an error for each one not. An instance of a study consent
    directives withhold from ``requester`` (None: an external requester) is answered as one this
    source does not hold, XDSDocumentUniqueIdError (:mod:`xds.consent.retrieval`)."""
    ours = source.repository_unique_id
    held = source.instances.get_many(
        [r.document_unique_id for r in requests if r.repository_unique_id == ours and r.document_unique_id]
    )
    withheld = withheld_by_imaging_source(source, {i.study_instance_uid for i in held.values()}, requester)
    found: list[RetrievedInstance] = []
    errors: list[RegistryError] = []
    for r in requests:
        uid = r.document_unique_id
        if r.repository_unique_id != ours:
            errors.append(Rule.UNKNOWN_REPOSITORY_ID.error(location=uid, value=r.repository_unique_id))
            continue
        inst = held.get(uid)
        if inst is not None and inst.study_instance_uid in withheld:
            inst = None  # withheld by consent: as if not held
        if inst is None or (inst.study_instance_uid, inst.series_instance_uid) != (
            r.study_instance_uid,
            r.series_instance_uid,
        ):
            errors.append(Rule.DOCUMENT_NOT_AVAILABLE.error(location=uid, value=uid))
            continue
        try:
            attachment = _attachment(source, inst, syntaxes)
        except (DocumentNotFound, StoreError) as e:
            log.error("RAD-69: instance %s is indexed but its file %s is unreadable: %r", uid, inst.storage_key, e)
            errors.append(Rule.DOCUMENT_NOT_AVAILABLE.error(location=uid, value=uid))
            continue
        if attachment is None:
            errors.append(_repository_error(uid, CANNOT_ENCODE))
            continue
        found.append(RetrievedInstance(r, attachment, inst))
    return found, errors


def _attachment(source: ImagingSource, inst: StoredInstance, syntaxes: list[str]) -> Attachment | None:
    stored = inst.transfer_syntax_uid
    if not syntaxes or stored in syntaxes:
        opener = source.instances.store.opener(inst.storage_key)
        return Attachment(content_type=DICOM_MIME_TYPE, opener=opener, size=inst.size)
    if stored in UNCOMPRESSED:
        target = next((ts for ts in syntaxes if ts in UNCOMPRESSED), None)
        if target is not None:
            with source.instances.open(inst) as f:
                data = f.read()
            return Attachment(content_type=DICOM_MIME_TYPE, data=transcode(data, target))
    return None


def status_of(found: list[RetrievedInstance], errors: list[RegistryError]) -> str:
    if not has_errors(errors):
        return response.SUCCESS
    return response.PARTIAL_SUCCESS if found else response.FAILURE


def build_response(found: list[RetrievedInstance], errors: list[RegistryError]) -> etree._Element:
    out = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetResponse", nsmap={"xdsb": XDSB})
    out.append(response.registry_response(errors, status=status_of(found, errors)))
    for item in found:
        r = item.request
        dr = etree.SubElement(out, f"{{{XDSB}}}DocumentResponse")
        if r.home_community_id:
            etree.SubElement(dr, f"{{{XDSB}}}HomeCommunityId").text = r.home_community_id
        etree.SubElement(dr, f"{{{XDSB}}}RepositoryUniqueId").text = r.repository_unique_id
        etree.SubElement(dr, f"{{{XDSB}}}DocumentUniqueId").text = r.document_unique_id
        etree.SubElement(dr, f"{{{XDSB}}}mimeType").text = DICOM_MIME_TYPE
        mtom.assign_content_id(item.attachment)
        xop_include(etree.SubElement(dr, f"{{{XDSB}}}Document"), item.attachment)
    return out


def patient_of(source: ImagingSource, instance: StoredInstance) -> str:
    """The patient of a held instance as a CX, for the audit trail: the affinity domain id its study
    is (or will be) registered under (:func:`xds.imaging.patient.study_patient`: the HN the identity
    store links to its Patient ID + Issuer, or the one the header carries), else the id its issuer
    assigned (when that issuer has an OID); "" otherwise."""
    from xds.imaging.patient import UnmappedPatient, study_patient
    from xds.imaging.publish import source_patient_id

    publisher = source.publisher
    ds = source.instances.read_dataset(instance)
    try:
        return study_patient(ds, publisher.settings, publisher.mapping).patient_id
    except UnmappedPatient:
        return source_patient_id(ds, publisher.settings) or ""


def audit_context(source: ImagingSource | None, requests: list[InstanceRequest],
                  found: list[RetrievedInstance]) -> AuditContext:
    """RAD-69 / RAD-75 Export (RAD TF-3 4.69.4.1.4, ITI-43 3.43.5.1.2 pattern): the instances
    disclosed (all requested when none was) as documents and by study, and their patients."""
    disclosed = [f.request for f in found] or requests
    classes = {f.request.document_unique_id: f.instance.sop_class_uid for f in found if f.instance is not None}
    studies: dict[str, list[tuple[str, str]]] = {}
    for r in disclosed:
        instances = studies.setdefault(r.study_instance_uid, [])
        if r.document_unique_id in classes:
            instances.append((classes[r.document_unique_id], r.document_unique_id))
    patients: list[str] = []
    first: dict[str, StoredInstance] = {}
    for f in found:
        if f.instance is not None:
            first.setdefault(f.request.study_instance_uid, f.instance)
    if source is not None:
        for uid, instance in first.items():
            try:
                patient = patient_of(source, instance)
            except Exception:
                log.exception("audit: the patient of study %s could not be read", uid)
                patient = ""
            if patient and patient not in patients:
                patients.append(patient)
    return AuditContext(
        patient_ids=patients,
        documents=[DocumentRef(r.document_unique_id, r.repository_unique_id, r.home_community_id or "")
                   for r in disclosed],
        studies=[StudyRef(uid, tuple(instances)) for uid, instances in studies.items() if uid],
    )


def handle(source: ImagingSource, request: SoapRequest) -> SoapResponse:
    requests, syntaxes = read_request(request.body_element)
    found, errors = retrieve(source, requests, syntaxes, requester_of(request))
    log.info(
        "RAD-69 from %s: %d instance(s) returned, %d error(s)", request.client_host or "-", len(found), len(errors)
    )
    return SoapResponse(build_response(found, errors), RESPONSE_ACTION, attachments=[f.attachment for f in found],
                        mtom=True, audit=audit_context(source, requests, found))


def register_operations(endpoint: Endpoint, source: ImagingSource) -> None:
    """RAD-69 on ``endpoint`` (the node's ``/xds/imaging``)."""

    def retrieve_imaging_document_set(request: SoapRequest) -> SoapResponse:
        return handle(source, request)

    endpoint.add_operation(ACTION, RESPONSE_ACTION, retrieve_imaging_document_set, "RAD-69")
