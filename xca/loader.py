"""Load a synthetic province (:mod:`xca.demo`) into running DIR nodes through the real
transactions, as the hospitals of each region would:

* ITI-8 Patient Identity Feed: an HL7 v2.5 ADT^A04 per patient over MLLP, before anything else;
* DICOM C-STORE of each study's images to the DIR's Storage SCP; the node's Imaging Document
  Source then publishes the study's KOS manifest with RAD-68 once the study is quiet;
* ITI-41 Provide and Register Document Set-b of each report (MTOM/XOP) to the DIR's repository.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from lxml import etree

from xca import demo
from xca.soap_client import SOAP_CT, request_bytes
from xds.config import NodeConfig
from xds.hl7.mllp import frame
from xds.metadata import ebrim
from xds.metadata import model as m
from xds.namespaces import QUERY, RIM, RS, XDSB
from xds.soap import envelope, mtom
from xds.soap.fault import SoapFault
from xds.soap.message import Attachment, xop_include
from xds.soap.xmlparse import parse_xml

log = logging.getLogger("xca.loader")

ITI18_ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI41_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DICOM_MIME_TYPE = "application/dicom"
DEMO_SOURCE_ID = "2.25.310851370823717428106417431958930839077"  # the demo's Document Source
LOINC, SNOMED, DCM = "2.16.840.1.113883.6.1", "2.16.840.1.113883.6.96", "1.2.840.10008.2.16.4"
RAD_FORMATS = "1.3.6.1.4.1.19376.1.2.3"  # IHE format codes (XDS-I.b report formats)


class LoadError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    """One DIR node as a hospital reaches it."""

    name: str
    base_url: str
    home_community_id: str
    mllp: tuple[str, int]
    receiving_application: str
    receiving_facility: str
    dicom: tuple[str, int]
    ae_title: str

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> Target:
        return cls(
            name=cfg.name,
            base_url=cfg.base_url,
            home_community_id=cfg.home_community_id,
            mllp=(cfg.mllp.host, cfg.mllp.port),
            receiving_application=cfg.mllp.receiving_application,
            receiving_facility=cfg.mllp.receiving_facility,
            dicom=(cfg.imaging.host, cfg.imaging.port),
            ae_title=cfg.imaging.ae_title,
        )


# --- ITI-8 ---------------------------------------------------------------------------------------


def adt_a04(patient: demo.Patient, target: Target, local_ids: list[str]) -> bytes:
    """ADT^A04 (HL7 v2.5): PID-3 carries the HN of the affinity domain, then the local MRNs."""
    now = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    ids = "~".join([f"{patient.hn}^^^&{demo.HN_AUTHORITY}&ISO", *local_ids])
    segments = [
        f"MSH|^~\\&|DEMO|PROVINCE|{target.receiving_application}|{target.receiving_facility}|{now}||"
        f"ADT^A04^ADT_A01|{uuid.uuid4().hex[:20]}|P|2.5",
        f"EVN|A04|{now}",
        f"PID|1||{ids}||{patient.family}^{patient.given}||{patient.birth_date}|{patient.sex}|||"
        f"{patient.street}^^{patient.city}^ON^{patient.postal_code}^CA",
        "PV1|1|O",
    ]
    return "\r".join(segments).encode("latin-1") + b"\r"


async def feed_patient(target: Target, patient: demo.Patient, local_ids: list[str], timeout: float = 10) -> None:
    reader, writer = await asyncio.wait_for(asyncio.open_connection(*target.mllp), timeout)
    try:
        writer.write(frame(adt_a04(patient, target, local_ids)))
        await writer.drain()
        ack = await asyncio.wait_for(reader.readuntil(b"\x1c\x0d"), timeout)
    finally:
        writer.close()
    msa = next((s for s in ack.strip(b"\x0b\x1c\r").split(b"\r") if s.startswith(b"MSA")), b"")
    if msa.split(b"|")[1:2] not in ([b"AA"], [b"CA"]):
        raise LoadError(f"{target.name}: ITI-8 for a demo patient was not accepted: {msa.decode('latin-1')[:200]}")


# --- ITI-41 --------------------------------------------------------------------------------------


def report_submission(exam: demo.Exam, mime_type: str) -> m.Submission:
    """The XDS-I.b metadata of a diagnostic imaging report (RAD TF-3 4.68.4.1.2.3 for reports)."""
    p = exam.patient
    when = exam.when.strftime("%Y%m%d")
    institution = f"{exam.site.hospital}^^^^^^^^^{exam.site_oid}"
    source_patient = f"{exam.mrn}^^^&{exam.site_oid}&ISO"
    pdf = mime_type == "application/pdf"
    entry = m.DocumentEntry(
        entry_uuid=f"urn:uuid:{uuid.uuid4()}",
        unique_id=exam.report_uid,
        patient_id=p.patient_id,
        mime_type=mime_type,
        title=f"{exam.description} - report",
        class_code=m.Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports"),
        type_code=m.Code("18748-4", LOINC, "Diagnostic imaging study"),
        format_code=m.Code("urn:ihe:rad:PDF" if pdf else "urn:ihe:rad:TEXT", RAD_FORMATS, "PDF" if pdf else "TEXT"),
        healthcare_facility_type_code=m.Code("22232009", SNOMED, "Hospital"),
        practice_setting_code=m.Code("309964003", SNOMED, "Radiology department (environment)"),
        confidentiality_codes=[m.Code("N", "2.16.840.1.113883.5.25", "Normal")],
        event_codes=[m.Code(exam.modality, DCM, exam.modality)],
        authors=[m.Author(person="^Osler^William^^^Dr", institutions=[institution], roles=["Radiologist"])],
        creation_time=when + "120000",
        service_start_time=when + "0930",
        language_code="en-CA",
        source_patient_id=source_patient,
        source_patient_info=[
            f"PID-3|{source_patient}",
            f"PID-5|{p.family}^{p.given}^^^",
            f"PID-7|{p.birth_date}",
            f"PID-8|{p.sex}",
            f"PID-11|{p.street}^^{p.city}^ON^{p.postal_code}^CA",
        ],
        reference_ids=[
            f"{exam.study_uid}^^^^{m.REF_STUDY_INSTANCE_UID}",
            f"{exam.accession}^^^&{exam.site_oid}&ISO^{m.REF_ACCESSION}",
        ],
    )
    ss = m.SubmissionSet(
        entry_uuid=f"urn:uuid:{uuid.uuid4()}",
        unique_id=f"2.25.{uuid.uuid4().int}",
        source_id=DEMO_SOURCE_ID,
        patient_id=p.patient_id,
        submission_time=datetime.now(UTC).strftime("%Y%m%d%H%M%S"),
        title="Diagnostic imaging report",
        content_type_code=m.Code("18748-4", LOINC, "Diagnostic imaging study"),
        authors=list(entry.authors),
    )
    member = m.Association(
        entry_uuid=f"urn:uuid:{uuid.uuid4()}", association_type=m.HAS_MEMBER, source=ss.entry_uuid,
        target=entry.entry_uuid, submission_set_status="Original",
    )
    return m.Submission(submission_set=ss, document_entries=[entry], associations=[member])


async def provide_and_register(
    client: httpx.AsyncClient, url: str, submission: m.Submission, documents: dict[str, Attachment]
) -> None:
    """ITI-41 as MTOM/XOP; raises LoadError unless the repository answers Success."""
    body = etree.Element(f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xdsb": XDSB})
    body.append(ebrim.serialize_submit_objects_request(submission))
    for entry_uuid, att in documents.items():
        mtom.assign_content_id(att)
        xop_include(etree.SubElement(body, f"{{{XDSB}}}Document", id=entry_uuid), att)
    content_type, stream = mtom.mtom_response(request_bytes(body, ITI41_ACTION, url), list(documents.values()),
                                              action=ITI41_ACTION)
    response = await client.post(url, content=b"".join(stream), headers={"content-type": content_type})
    answer_ct = response.headers.get("content-type", "")
    if answer_ct.startswith("multipart/"):
        package = await mtom.parse_multipart_related(
            response.aiter_bytes(), answer_ct, spool_threshold=1 << 20, max_total=1 << 24, max_root=1 << 24
        )
        root = package.root
    else:
        root = response.content
    rr = etree.fromstring(root).find(f".//{{{RS}}}RegistryResponse")
    if rr is None or not rr.get("status", "").endswith(":Success"):
        codes = [] if rr is None else [e.get("errorCode") for e in rr.iter(f"{{{RS}}}RegistryError")]
        raise LoadError(f"ITI-41 to {url} was not a Success (HTTP {response.status_code}, {codes})")


# --- C-STORE -------------------------------------------------------------------------------------


def store_study(target: Target, exam: demo.Exam, calling_ae: str = "PROVDEMO") -> None:
    """C-STORE the study's images to the DIR (blocking; run it in a thread)."""
    from pynetdicom import AE

    datasets = exam.instances()
    ae = AE(ae_title=calling_ae)
    for sop_class in {ds.SOPClassUID for ds in datasets}:
        ae.add_requested_context(sop_class, "1.2.840.10008.1.2.1")
    assoc = ae.associate(target.dicom[0], target.dicom[1], ae_title=target.ae_title)
    if not assoc.is_established:
        raise LoadError(f"{target.name}: DICOM association to {target.dicom} refused")
    try:
        for ds in datasets:
            status = assoc.send_c_store(ds)
            if not status or status.Status != 0:
                raise LoadError(f"{target.name}: C-STORE refused (status {getattr(status, 'Status', None)})")
    finally:
        assoc.release()


# --- ITI-18, to wait for the manifests -----------------------------------------------------------


def find_documents_request(patient_id: str, home: str | None = None) -> etree._Element:
    req = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(req, f"{{{QUERY}}}ResponseOption", returnComposedObjects="true", returnType="LeafClass")
    q = etree.SubElement(req, f"{{{RIM}}}AdhocQuery", id=FIND_DOCUMENTS)
    if home:
        q.set("home", home)
    for name, value in (("$XDSDocumentEntryPatientId", f"'{patient_id}'"), ("$XDSDocumentEntryStatus", f"('{APPROVED}')")):
        slot = etree.SubElement(q, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value
    return req


async def manifested_studies(client: httpx.AsyncClient, target: Target, patient_id: str) -> set[str]:
    """Study Instance UIDs of the patient's KOS manifests registered in ``target``."""
    url = target.base_url + "/xds/registry"
    response = await client.post(url, content=request_bytes(find_documents_request(patient_id), ITI18_ACTION, url),
                                 headers={"content-type": f'{SOAP_CT}; action="{ITI18_ACTION}"'})
    try:
        _, body = envelope.split_envelope(parse_xml(response.content, huge=True, what="registry answer"))
    except SoapFault:
        raise LoadError(f"ITI-18 to {url}: HTTP {response.status_code}, not a SOAP answer") from None
    out = set()
    for eo in body.iter(f"{{{RIM}}}ExtrinsicObject"):
        if eo.get("mimeType") != DICOM_MIME_TYPE:
            continue
        for slot in eo.iterfind(f"{{{RIM}}}Slot[@name='urn:ihe:iti:xds:2013:referenceIdList']"):
            for v in slot.iter(f"{{{RIM}}}Value"):
                if (v.text or "").endswith(m.REF_STUDY_INSTANCE_UID):
                    out.add((v.text or "").split("^", 1)[0])
    return out


# --- the whole load ------------------------------------------------------------------------------


async def load(
    targets: dict[str, Target],
    province: demo.Province,
    *,
    wait_manifests: float = 120.0,
    say: Callable[[str], None] = lambda s: None,
) -> None:
    """Feed every patient to each DIR holding an exam of theirs, send the studies and reports, then
    wait until every study's manifest is registered (at most ``wait_manifests`` seconds)."""
    async with httpx.AsyncClient(timeout=60) as client:
        for patient in province.patients:
            for name in province.communities_of(patient):
                mrns = sorted({f"{e.mrn}^^^&{e.site_oid}&ISO" for e in province.exams_of(patient) if e.community == name})
                await feed_patient(targets[name], patient, mrns)
        say(f"ITI-8: {len(province.patients)} patients fed")
        for exam in province.exams:
            target = targets[exam.community]
            await asyncio.to_thread(store_study, target, exam)
            content, mime_type = exam.report()
            submission = report_submission(exam, mime_type)
            attachment = Attachment(data=content, content_type=mime_type)
            await provide_and_register(
                client, target.base_url + "/xds/repository", submission,
                {submission.document_entries[0].entry_uuid: attachment},
            )
        say(f"C-STORE + ITI-41: {len(province.exams)} studies and their reports sent")
        deadline = asyncio.get_running_loop().time() + wait_manifests
        pending = {(e.community, e.patient.patient_id, e.study_uid) for e in province.exams}
        while pending:
            for community, patient_id in {(c, p) for c, p, _ in pending}:
                done = await manifested_studies(client, targets[community], patient_id)
                pending = {x for x in pending if not (x[0] == community and x[1] == patient_id and x[2] in done)}
            if not pending:
                break
            if asyncio.get_running_loop().time() > deadline:
                raise LoadError(f"{len(pending)} study manifest(s) not registered after {wait_manifests:.0f} s")
            await asyncio.sleep(0.5)
        say(f"RAD-68: {len(province.exams)} study manifests registered")
