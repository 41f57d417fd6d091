"""Imaging Document Source: publish a study's KOS manifest with RAD-68 (RAD TF-3 4.68).

A study is *complete* when no instance has arrived for ``study_quiet_seconds`` (or when
:meth:`Publisher.publish` is called for it). Its manifest (:mod:`xds.imaging.kos`) is then sent as
an ITI-41 Provide and Register Document Set-b with the XDS-I.b metadata of RAD TF-3 4.68.4.1.2.3,
derived from the DICOM header:

* patientId: the affinity domain's id (the HN), which :mod:`xds.imaging.patient` finds: the HN the
  identity store links to the header's Patient ID + Issuer of Patient ID (ITI-8 feeds), else an
  Other Patient IDs Sequence (0010,1002) entry issued by the affinity domain's assigning authority,
  else Patient ID (0010,0020) when Issuer of Patient ID (0010,0021) is that authority. A study whose
  couplet has no HN yet is held until an ADT links one (or refused, ``identity.unknown_local_id``);
  the manifest's Other Patient IDs Sequence carries the HN it is registered under;
* sourcePatientId / sourcePatientInfo: Patient ID and Issuer of Patient ID, name, birth date, sex;
* referenceIdList: the Study Instance UID (urn:ihe:iti:xds:2016:studyInstanceUID) and the Accession
  Number (urn:ihe:iti:xds:2013:accession, with its issuer when the header names one);
* eventCodeList: the study's modalities (DCM); serviceStartTime: Study Date and Time;
* formatCode 1.2.840.10008.5.1.4.1.1.88.59 (1.2.840.10008.2.6.1), mimeType application/dicom;
* classCode, typeCode, confidentialityCode, healthcareFacilityTypeCode, practiceSettingCode,
  contentTypeCode from :class:`PublishSettings`.

The manifest goes to the node's own Document Repository in process, or over SOAP (MTOM) to
``repository_url``. A study that changed after its manifest was registered gets a new manifest
that replaces the old one (RPLC, ITI TF-3 4.2.2.2.3).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from pydicom.dataset import Dataset

from xds.identity.domain import Couplet
from xds.imaging import kos
from xds.imaging.instance_store import InstanceError, InstanceStore, StoredInstance, Study
from xds.imaging.patient import DICOM_STUDY, StudyPatient, UnmappedPatient, study_patient
from xds.metadata import model as m
from xds.metadata.errors import RegistryError, has_errors
from xds.soap.message import Attachment

if TYPE_CHECKING:
    from xds.config import CodeConfig, NodeConfig
    from xds.identity.mapping import HeldItem, PatientMapping

log = logging.getLogger("xds.imaging")

KOS_FORMAT = m.Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document")
DICOM_MIME_TYPE = "application/dicom"
DCM_SCHEME = "1.2.840.10008.2.16.4"  # DICOM Controlled Terminology (PS3.16) as an OID

# PS3.16 CID 29 Acquisition Modality (and CID 33 for the non-acquisition ones a study may hold)
MODALITY_NAMES = {
    "CR": "Computed Radiography", "CT": "Computed Tomography", "DX": "Digital Radiography",
    "ES": "Endoscopy", "IO": "Intra-oral Radiography", "MG": "Mammography", "MR": "Magnetic Resonance",
    "NM": "Nuclear Medicine", "OT": "Other", "PT": "Positron emission tomography", "PX": "Panoramic X-Ray",
    "RF": "Radio Fluoroscopy", "RG": "Radiographic imaging", "US": "Ultrasound", "XA": "X-Ray Angiography",
    "XC": "External-camera Photography", "BMD": "Bone Mineral Densitometry", "OP": "Ophthalmic Photography",
    "OPT": "Ophthalmic Tomography", "IVUS": "Intravascular Ultrasound", "SR": "SR Document", "DOC": "Document",
}
# Objects that are not images of the study: not event codes (RAD TF-3 4.68.4.1.2.3.2 "modalities").
_NOT_ACQUISITION = {"KO", "PR", "SR", "DOC", "REG", "SEG", "FID", "PLAN"}
# A held study is looked at again this often even if no ADT release reaches it (a safety net).
HELD_RECHECK_SECONDS = 3600.0


def _code(c: CodeConfig) -> m.Code:
    return m.Code(c.code, c.scheme, c.display_name)


def _configured(key: str) -> Any:
    """A code whose default is :class:`xds.config.ImagingConfig`'s."""

    def default() -> m.Code:
        from xds.config import ImagingConfig

        return _code(getattr(ImagingConfig(), key))

    return field(default_factory=default)


@dataclass
class PublishSettings:
    """The metadata a manifest's DocumentEntry takes from configuration, not from the header."""

    affinity_domain: str = ""  # the patientId assigning authority OID (registry.patient_assigning_authority)
    source_id: str = ""  # SubmissionSet.sourceId: this Imaging Document Source's OID
    repository_url: str = ""  # "" = the node's own repository, in process
    class_code: m.Code = _configured("class_code")
    type_code: m.Code = _configured("type_code")
    confidentiality_code: m.Code = _configured("confidentiality_code")
    healthcare_facility_type_code: m.Code = _configured("healthcare_facility_type_code")
    practice_setting_code: m.Code = _configured("practice_setting_code")
    content_type_code: m.Code = _configured("content_type_code")
    event_code_scheme: str = DCM_SCHEME
    language_code: str = "en-CA"
    retrieve_ae_title: str = ""  # Retrieve AE Title in the manifest ("" = none: RAD-69 only)
    manufacturer: str = "xds"
    # Issuer of Patient ID namespaces -> OIDs, for PACS that send a local name instead of an OID
    issuer_oids: dict[str, str] = field(default_factory=dict)
    http_timeout: float = 60.0

    @classmethod
    def from_config(cls, cfg: NodeConfig) -> PublishSettings:
        im = cfg.imaging
        issuers = {f.issuer: f.issuer_oid for f in cfg.identity.feeds if f.issuer and f.issuer_oid}
        return cls(
            affinity_domain=cfg.registry.patient_assigning_authority,
            source_id=im.repository_unique_id,
            repository_url=im.publish_url,
            class_code=_code(im.class_code),
            type_code=_code(im.type_code),
            confidentiality_code=_code(im.confidentiality_code),
            healthcare_facility_type_code=_code(im.healthcare_facility_type_code),
            practice_setting_code=_code(im.practice_setting_code),
            content_type_code=_code(im.content_type_code),
            retrieve_ae_title=im.retrieve_ae_title,
            issuer_oids={**issuers, **im.issuer_oids},
        )


class PublishError(Exception):
    """The study cannot be published (as it stands): no affinity-domain patient id, or the
    repository answered Failure."""

    def __init__(self, reason: str, errors: list[RegistryError] | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.errors = errors or []


class StudyHeld(PublishError):
    """The study waits in the identity layer's held queue for an ADT that links its couplet to an
    HN; ``held_id`` is its ``identity_held`` row."""

    def __init__(self, reason: str, held_id: int) -> None:
        super().__init__(reason)
        self.held_id = held_id


@dataclass
class Manifest:
    """A built manifest with its submission, ready for RAD-68."""

    dataset: Dataset
    data: bytes
    submission: m.Submission
    entry: m.DocumentEntry
    patient: StudyPatient | None = None


# --- DICOM header -> XDS values -------------------------------------------------------------------


def _is_oid(value: str) -> bool:
    from xds.metadata.datatypes import is_oid

    return bool(value) and is_oid(value)


def issuer_oid(ds: Dataset, settings: PublishSettings) -> str:
    """The OID of the Issuer of Patient ID: from its Qualifiers Sequence (type ISO), the issuer
    itself when it is an OID, or the configured namespace mapping."""
    for q in ds.get("IssuerOfPatientIDQualifiersSequence", []) or []:
        if str(q.get("UniversalEntityIDType", "")) == "ISO" and _is_oid(str(q.get("UniversalEntityID", ""))):
            return str(q.UniversalEntityID)
    issuer = str(ds.get("IssuerOfPatientID", "") or "").strip()
    if _is_oid(issuer):
        return issuer
    return settings.issuer_oids.get(issuer, "")


def affinity_patient_id(ds: Dataset, settings: PublishSettings) -> str | None:
    """``id^^^&OID&ISO`` in the affinity domain, or None when the header carries no such id."""
    domain = settings.affinity_domain
    for other in ds.get("OtherPatientIDsSequence", []) or []:
        pid = str(other.get("PatientID", "") or "").strip()
        if pid and issuer_oid(other, settings) == domain:
            return f"{pid}^^^&{domain}&ISO"
    pid = str(ds.get("PatientID", "") or "").strip()
    if pid and issuer_oid(ds, settings) == domain:
        return f"{pid}^^^&{domain}&ISO"
    return None


def source_patient_id(ds: Dataset, settings: PublishSettings) -> str | None:
    pid = str(ds.get("PatientID", "") or "").strip()
    oid = issuer_oid(ds, settings)
    return f"{pid}^^^&{oid}&ISO" if pid and oid else None


def _xpn(name: object) -> str:
    """DICOM PN (family^given^middle^prefix^suffix, PS3.5 6.2) as HL7 XPN (family^given^middle^suffix^prefix)."""
    parts = (str(name or "").split("=")[0].split("^") + [""] * 5)[:5]
    family, given, middle, prefix, suffix = parts
    return "^".join([family, given, middle, suffix, prefix]).rstrip("^")


def source_patient_info(ds: Dataset, source_id: str | None) -> list[str]:
    out = []
    if source_id:
        out.append(f"PID-3|{source_id}")
    if ds.get("PatientName"):
        out.append(f"PID-5|{_xpn(ds.PatientName)}")
    if ds.get("PatientBirthDate"):
        out.append(f"PID-7|{ds.PatientBirthDate}")
    if str(ds.get("PatientSex", "") or "") in ("M", "F", "O"):
        out.append(f"PID-8|{ds.PatientSex}")
    return out


def reference_ids(ds: Dataset) -> list[str]:
    """referenceIdList (ITI TF-3 4.2.3.2.28, RAD TF-3 4.68.4.1.2.3.2): study and accession."""
    out = [f"{ds.StudyInstanceUID}^^^^{m.REF_STUDY_INSTANCE_UID}"]
    accession = str(ds.get("AccessionNumber", "") or "").strip()
    if accession:
        authority = ""
        for issuer in ds.get("IssuerOfAccessionNumberSequence", []) or []:
            uid, kind = str(issuer.get("UniversalEntityID", "")), str(issuer.get("UniversalEntityIDType", ""))
            if kind == "ISO" and _is_oid(uid):
                authority = f"&{uid}&ISO"
            elif issuer.get("LocalNamespaceEntityID"):
                authority = str(issuer.LocalNamespaceEntityID)
        out.append(f"{accession}^^^{authority}^{m.REF_ACCESSION}")
    return out


def dicom_dtm(date: object, time_: object = "", offset: object = "") -> str | None:
    """DA + TM (+ Timezone Offset From UTC) as an XDS DTM in UTC, to the second (ITI TF-3 4.2.3.1.5).
    Without an offset the local time is taken as it is."""
    d = str(date or "").strip()
    if len(d) != 8 or not d.isdigit():
        return None
    t = str(time_ or "").strip().replace(":", "").split(".")[0]
    t = t[:6] if t.isdigit() else ""
    off = str(offset or "").strip()
    if not t or len(off) != 5 or off[0] not in "+-" or not off[1:].isdigit():
        return d + t
    stamp = datetime.strptime(d + t.ljust(6, "0"), "%Y%m%d%H%M%S")
    delta = timedelta(hours=int(off[1:3]), minutes=int(off[3:5]))
    stamp = stamp - delta if off[0] == "+" else stamp + delta
    return stamp.strftime("%Y%m%d%H%M%S")[: 8 + len(t)]


def event_codes(modalities: list[str], settings: PublishSettings) -> list[m.Code]:
    seen: list[str] = []
    for mod in modalities:
        mod = mod.strip().upper()
        if mod and mod not in _NOT_ACQUISITION and mod not in seen:
            seen.append(mod)
    return [m.Code(mod, settings.event_code_scheme, MODALITY_NAMES.get(mod, mod)) for mod in seen]


# --- the submission ------------------------------------------------------------------------------


def build_submission(
    manifest: Dataset,
    source: Dataset,
    modalities: list[str],
    settings: PublishSettings,
    *,
    replaces: str | None = None,
    now: datetime | None = None,
    patient_id: str | None = None,
    source_id: str | None = None,
) -> tuple[m.Submission, m.DocumentEntry]:
    """The RAD-68 metadata of ``manifest`` (ITI TF-3 4.1, RAD TF-3 4.68.4.1.2.3). ``replaces`` is
    the entryUUID of the manifest this one replaces; ``patient_id`` the affinity-domain id (by
    default the one the header carries), ``source_id`` the sourcePatientId (by default the
    header's Patient ID with its issuer's OID)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    patient = patient_id or affinity_patient_id(source, settings)
    if patient is None:
        raise PublishError(
            f"the study has no patient id of the affinity domain {settings.affinity_domain} "
            "(Other Patient IDs Sequence, or Patient ID with that Issuer of Patient ID)"
        )
    spid = source_id or source_patient_id(source, settings)
    authors = []
    institution = str(source.get("InstitutionName", "") or "").strip()
    if institution:
        authors.append(m.Author(institutions=[institution.replace("^", " ")]))
    entry = m.DocumentEntry(
        entry_uuid=f"urn:uuid:{uuid.uuid4()}",
        unique_id=str(manifest.SOPInstanceUID),
        patient_id=patient,
        mime_type=DICOM_MIME_TYPE,
        title=str(source.get("StudyDescription", "") or "").strip() or "Imaging study",
        class_code=settings.class_code,
        type_code=settings.type_code,
        format_code=KOS_FORMAT,
        healthcare_facility_type_code=settings.healthcare_facility_type_code,
        practice_setting_code=settings.practice_setting_code,
        confidentiality_codes=[settings.confidentiality_code],
        event_codes=event_codes(modalities, settings),
        authors=authors,
        creation_time=dicom_dtm(manifest.ContentDate, manifest.ContentTime, manifest.get("TimezoneOffsetFromUTC")),
        service_start_time=dicom_dtm(source.get("StudyDate"), source.get("StudyTime"), source.get("TimezoneOffsetFromUTC")),
        language_code=settings.language_code,
        source_patient_id=spid,
        source_patient_info=source_patient_info(source, spid),
        reference_ids=reference_ids(source),
    )
    ss = m.SubmissionSet(
        entry_uuid=f"urn:uuid:{uuid.uuid4()}",
        unique_id=f"2.25.{uuid.uuid4().int}",
        source_id=settings.source_id,
        patient_id=patient,
        submission_time=now.strftime("%Y%m%d%H%M%S"),
        title="Imaging study manifest",
        content_type_code=settings.content_type_code,
        authors=list(authors),
    )
    associations = [
        m.Association(
            entry_uuid=f"urn:uuid:{uuid.uuid4()}",
            association_type=m.HAS_MEMBER,
            source=ss.entry_uuid,
            target=entry.entry_uuid,
            submission_set_status="Original",
        )
    ]
    if replaces:
        associations.append(
            m.Association(
                entry_uuid=f"urn:uuid:{uuid.uuid4()}", association_type=m.RPLC, source=entry.entry_uuid, target=replaces
            )
        )
    return m.Submission(submission_set=ss, document_entries=[entry], associations=associations), entry


# --- sending -------------------------------------------------------------------------------------

Sender = Callable[[m.Submission, dict[str, Attachment]], list[RegistryError]]


def in_process(repository: Any) -> Sender:
    """RAD-68 to the node's own Document Repository (:class:`xds.repository.Repository`)."""

    def send(submission: m.Submission, documents: dict[str, Attachment]) -> list[RegistryError]:
        from xds.repository.provide import Provide

        return Provide(repository, submission, documents).run()

    return send


PNR_ACTION = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"


def pnr_message(sor: Any, documents: dict[str, Attachment], to: str | None = None) -> tuple[str, bytes]:
    """An ITI-41 / RAD-68 request: ``sor`` (an lcm:SubmitObjectsRequest element) and the documents
    by DocumentEntry id as XOP parts; returns (Content-Type, body)."""
    from lxml import etree

    from xds.namespaces import WSA, XDSB
    from xds.soap import envelope, mtom
    from xds.soap.message import xop_include

    body = etree.Element(f"{{{XDSB}}}ProvideAndRegisterDocumentSetRequest", nsmap={"xdsb": XDSB})
    body.append(sor)
    attachments = []
    for doc_id, att in documents.items():
        el = etree.SubElement(body, f"{{{XDSB}}}Document", id=doc_id)
        mtom.assign_content_id(att)
        xop_include(el, att)
        attachments.append(att)
    headers = []
    if to:
        headers.append(etree.Element(f"{{{WSA}}}To"))
        headers[0].text = to
    env = envelope.build_envelope(
        body, action=PNR_ACTION, relates_to=None, message_id=f"urn:uuid:{uuid.uuid4()}", extra_headers=headers
    )
    content_type, stream = mtom.mtom_response(envelope.serialize(env), attachments, action=PNR_ACTION)
    return content_type, b"".join(stream)


def over_soap(url: str, timeout: float = 60.0) -> Sender:
    """RAD-68 as an MTOM/XOP SOAP 1.2 request to a Document Repository at ``url``."""

    def send(submission: m.Submission, documents: dict[str, Attachment]) -> list[RegistryError]:
        import httpx

        from xds.metadata import ebrim
        from xds.namespaces import RS

        content_type, body = pnr_message(ebrim.serialize_submit_objects_request(submission), documents, url)
        response = httpx.post(url, content=body, headers={"content-type": content_type}, timeout=timeout)
        answer = _root_part(response)
        rr = answer.find(f".//{{{RS}}}RegistryResponse")
        if rr is None:
            raise PublishError(f"the repository answered HTTP {response.status_code} without a RegistryResponse")
        out = []
        for e in rr.iter(f"{{{RS}}}RegistryError"):
            out.append(RegistryError(e.get("errorCode", ""), e.get("codeContext", ""), e.get("severity", ""), e.get("location", "")))
        if rr.get("status", "").endswith(":Failure") and not has_errors(out):
            out.append(RegistryError("XDSRepositoryError", "the repository answered Failure"))
        return out

    return send


def _root_part(response: Any) -> Any:
    """The SOAP envelope of an HTTP response, plain or the root part of multipart/related."""
    import email
    import email.policy

    from lxml import etree

    ct = response.headers.get("content-type", "")
    content = response.content
    if ct.lower().startswith("multipart/"):
        msg = email.message_from_bytes(b"Content-Type: " + ct.encode("latin-1") + b"\r\n\r\n" + content,
                                       policy=email.policy.HTTP)
        content = next(msg.iter_parts()).get_payload(decode=True)
    return etree.fromstring(content, etree.XMLParser(resolve_entities=False, no_network=True))


# --- the Imaging Document Source's publisher -------------------------------------------------------


class Publisher:
    """Builds and sends manifests for the studies of ``instances``; optionally watches for studies
    whose quiet period has passed (:meth:`start`)."""

    def __init__(
        self,
        instances: InstanceStore,
        send: Sender,
        settings: PublishSettings,
        *,
        retrieve_location_uid: str,
        quiet_seconds: float = 60.0,
        retry_seconds: float = 60.0,
        mapping: PatientMapping | None = None,
        held_recheck_seconds: float = HELD_RECHECK_SECONDS,
    ) -> None:
        self.instances = instances
        self.send = send
        self.settings = settings
        self.retrieve_location_uid = retrieve_location_uid
        self.quiet_seconds = quiet_seconds
        self.retry_seconds = retry_seconds
        self.mapping = mapping  # the node's identity layer (couplet -> HN, held queue); None: HNs only
        self.held_recheck_seconds = held_recheck_seconds
        self.audit: Any = None  # xds.audit.trail.AuditTrail: identity disagreements
        self.audit_node: Any = None  # xds.audit.events.Party: this Imaging Document Source
        self._admitted: set[str] = set()  # Study Instance UIDs :meth:`admit` found an HN for
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._next_check = 0.0  # when the watch wakes next (time.time())
        self._thread: threading.Thread | None = None

    def build(self, study: Study, instances: list[StoredInstance] | None = None) -> Manifest:
        """The study's manifest and its submission; raises :class:`UnmappedPatient` when the study
        has no HN yet, PublishError when it cannot be built."""
        instances = instances if instances is not None else self.instances.instances(study.study_instance_uid)
        if not instances:
            raise PublishError(f"study {study.study_instance_uid} has no instances")
        source = self.instances.read_dataset(instances[0])
        patient = study_patient(source, self.settings, self.mapping)
        refs = [
            kos.Reference(i.study_instance_uid, i.series_instance_uid, i.sop_class_uid, i.sop_instance_uid)
            for i in instances
        ]
        manifest = kos.build_manifest(
            source,
            refs,
            retrieve_location_uid=self.retrieve_location_uid,
            retrieve_ae_title=self.settings.retrieve_ae_title or None,
            manufacturer=self.settings.manufacturer,
        )
        kos.set_affinity_patient_id(manifest, patient.patient_id)
        modalities = list(self.instances.series_modalities(study.study_instance_uid).values())
        submission, entry = build_submission(
            manifest, source, modalities, self.settings, replaces=study.manifest_entry_uuid,
            patient_id=patient.patient_id, source_id=patient.couplet.xds_cx() if patient.couplet else None,
        )
        return Manifest(manifest, kos.encode(manifest), submission, entry, patient)

    def publish(self, study_instance_uid: str) -> Manifest:
        """Build and send the study's manifest now (the explicit trigger). Raises PublishError."""
        with self._lock:
            study = self.instances.study(study_instance_uid)
            if study is None:
                raise PublishError(f"no study {study_instance_uid}")
            try:
                manifest = self.build(study)
            except UnmappedPatient as e:
                if e.hold and e.couplet is not None and self.mapping is not None:
                    raise StudyHeld(e.reason, self._hold(study, e.couplet, e.reason)) from None
                raise PublishError(f"XDSUnknownPatientId: {e.reason}") from None
            if manifest.patient is not None and manifest.patient.conflict:
                log.warning("RAD-68: study %s: the health number in its header is another patient than the one "
                            "ADT links to its Patient ID + Issuer of Patient ID; registered under the latter",
                            study_instance_uid)
            attachment = Attachment(data=manifest.data, content_type=DICOM_MIME_TYPE)
            errors = self.send(manifest.submission, {manifest.entry.entry_uuid: attachment})
            if has_errors(errors):
                raise PublishError("; ".join(f"{e.code}: {e.context}" for e in errors if e.is_error), errors)
            self.instances.mark_published(
                study_instance_uid, study.revision, str(manifest.dataset.SOPInstanceUID), manifest.entry.entry_uuid
            )
            log.info(
                "RAD-68: manifest %s for study %s registered (%d instances%s)",
                manifest.dataset.SOPInstanceUID, study_instance_uid,
                len(manifest.dataset.ContentSequence), ", replacing the previous one" if study.manifest_entry_uuid else "",
            )
            if manifest.patient is not None and manifest.patient.conflict:
                self._audit_conflict(study_instance_uid, manifest.patient)
            return manifest

    def _hold(self, study: Study, couplet: Couplet, reason: str) -> int:
        """Put the study in the identity layer's held queue (once: a held study whose instances
        keep coming is not queued again) and out of the watch's way until it is released (or,
        should a release be missed, for ``held_recheck_seconds``). The study is set aside before
        the item exists, so that a release can only come after; an ADT applied between the
        lookup that found no HN and the item's creation released nothing, so the couplet is looked
        up again once the item exists."""
        assert self.mapping is not None
        uid = study.study_instance_uid
        self.instances.mark_failed(uid, f"held: {reason}", self.held_recheck_seconds)
        with self.mapping.store.reading() as tx:
            held = [r.id for r in tx.held(keys=[couplet.key]) if r.kind == DICOM_STUDY and r.payload == uid.encode()]
        held_id = held[0] if held else self.mapping.hold(DICOM_STUDY, couplet, uid.encode(), f"DICOM study {uid}")
        if self.mapping.resolve(couplet) is not None:
            self.mapping.release([couplet.key])
        return held_id

    def release(self, item: HeldItem, hn: str) -> None:
        """The identity layer's release handler of held studies (:meth:`PatientMapping.on_release`):
        the study is due at once; it is published by the watch, under the HN it resolves to then."""
        self.instances.make_due(item.payload.decode(), self.quiet_seconds, claim=item.claim)
        self.wake()

    def _audit_conflict(self, study_instance_uid: str, patient: StudyPatient) -> None:
        if self.audit is None:
            return
        from xds.audit import events

        node = self.audit_node or events.Party(self.settings.source_id)
        self.audit.record(events.patient_id_conflict(
            registered=patient.patient_id, header=patient.header_patient_id or "", study=study_instance_uid,
            node=node, source=self.audit.source,
            description="the health number in the study's header is not the one the identity feed links to its "
                        "Patient ID + Issuer of Patient ID; the manifest is registered under the identity feed's",
        ))

    def publish_due(self, now: float | None = None) -> int:
        """Publish every study whose quiet period is over; returns how many were published."""
        done = 0
        for study in self.instances.studies_due(self.quiet_seconds, now):
            if self._stop.is_set():
                break
            try:
                self.publish(study.study_instance_uid)
                done += 1
            except StudyHeld as e:
                log.info("RAD-68: study %s held (identity_held #%d) until an ADT links its Patient ID + Issuer "
                         "of Patient ID to a health number", study.study_instance_uid, e.held_id)
            except PublishError as e:
                log.warning("RAD-68: study %s not published: %s", study.study_instance_uid, e.reason)
                self.instances.mark_failed(study.study_instance_uid, e.reason, self.retry_seconds)
            except Exception as e:
                log.exception("RAD-68: study %s not published", study.study_instance_uid)
                self.instances.mark_failed(study.study_instance_uid, repr(e), self.retry_seconds)
        return done

    # --- background watch ---

    def notify(self, instance: StoredInstance | None = None) -> None:
        """An instance arrived: its study falls due ``quiet_seconds`` later. The watch is woken only
        when that is before its next check (a new study), not once per C-STORE of a pending one."""
        arrived = instance.received_at if instance is not None else time.time()
        if arrived + self.quiet_seconds < self._next_check:
            self._next_check = arrived + self.quiet_seconds
            self._wake.set()

    def admit(self, header: Dataset) -> None:
        """With ``identity.unknown_local_id = "reject"``, the instance store's admission check: an
        instance of a study with no HN (none in its header, none the identity store links to its
        couplet) is refused at C-STORE, as an ITI-41 would be with XDSUnknownPatientId, so that the
        PACS keeps it and sends it again once the ADT is in; nothing is stored. A study admitted
        once is not looked up again."""
        study = str(header.get("StudyInstanceUID", "") or "")
        if study in self._admitted:
            return
        try:
            study_patient(header, self.settings, self.mapping)
        except UnmappedPatient as e:
            raise InstanceError(f"XDSUnknownPatientId: {e.reason}") from None
        if len(self._admitted) >= 10_000:
            self._admitted.clear()
        self._admitted.add(study)

    def wake(self) -> None:
        """Look for due studies now (a held study was released)."""
        self._next_check = 0.0
        self._wake.set()

    def start(self) -> Publisher:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="imaging-publisher", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        idle_check = max(0.2, min(5.0, self.quiet_seconds / 4))
        while not self._stop.is_set():
            self._wake.clear()
            wait = idle_check
            try:
                self.publish_due()
                self._next_check = float("inf")  # an arrival while the next due time is read wakes us
                due = self.instances.next_due(self.quiet_seconds)
                if due is not None:
                    wait = min(max(0.0, due - time.time()), idle_check * 12)
            except Exception:
                log.exception("imaging publisher")
            self._next_check = time.time() + wait
            self._wake.wait(wait)

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None

    async def close(self) -> None:
        import asyncio

        await asyncio.to_thread(self.stop)

