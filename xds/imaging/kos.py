"""The XDS-I.b imaging manifest: a DICOM Key Object Selection Document (RAD TF-3 4.68.4.1.2.1).

A KOS (PS3.3 A.35.4, SOP class 1.2.840.10008.5.1.4.1.1.88.59) titled (113030, DCM, "Manifest")
after template TID 2010, referencing every instance of one study. Its Current Requested Procedure
Evidence Sequence (PS3.3 C.17.6.2.1, Hierarchical SOP Instance Reference macro, Table C.17-3) lists
the instances per series with the Imaging Document Source's repositoryUniqueId as Retrieve Location
UID (0040,E011), which is what an Imaging Document Consumer puts in its RAD-69 request.

The Patient and General Study modules are copied from the instances, so the manifest carries the
identifiers the PACS sent.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

KOS_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.59"
MANIFEST = ("113030", "DCM", "Manifest")
IMPLEMENTATION_CLASS_UID = "2.25.142532357106214539414286335307474458393"
IMPLEMENTATION_VERSION = "XDS_IMAGING_1"

# PS3.3 C.7.1.1 Patient, C.7.2.1 General Study: what a manifest copies from the study's instances.
PATIENT_STUDY_KEYWORDS = (
    "SpecificCharacterSet",
    "PatientName",
    "PatientID",
    "IssuerOfPatientID",
    "IssuerOfPatientIDQualifiersSequence",
    "PatientBirthDate",
    "PatientSex",
    "OtherPatientIDsSequence",
    "StudyInstanceUID",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
    "IssuerOfAccessionNumberSequence",
    "StudyDescription",
)
_TYPE_2 = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
           "ReferringPhysicianName", "StudyID", "AccessionNumber")

# SOP classes that are not images: referenced by COMPOSITE (or WAVEFORM) content items (TID 2010).
_NON_IMAGE_PREFIXES = (
    "1.2.840.10008.5.1.4.1.1.88.",  # structured reports and KOS
    "1.2.840.10008.5.1.4.1.1.104.",  # encapsulated documents
    "1.2.840.10008.5.1.4.1.1.11.",  # presentation states
    "1.2.840.10008.5.1.4.1.1.481.",  # RT objects other than RT Image are not images either
    "1.2.840.10008.5.1.4.1.1.66",  # raw data, registration, segmentation...
)
_WAVEFORM_PREFIX = "1.2.840.10008.5.1.4.1.1.9."
_RT_IMAGE = "1.2.840.10008.5.1.4.1.1.481.1"


@dataclass(frozen=True)
class Reference:
    """One instance a manifest lists."""

    study_instance_uid: str
    series_instance_uid: str
    sop_class_uid: str
    sop_instance_uid: str


def value_type_of(sop_class_uid: str) -> str:
    if sop_class_uid.startswith(_WAVEFORM_PREFIX):
        return "WAVEFORM"
    if sop_class_uid != _RT_IMAGE and sop_class_uid.startswith(_NON_IMAGE_PREFIXES):
        return "COMPOSITE"
    return "IMAGE"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue = value
    c.CodingSchemeDesignator = scheme
    c.CodeMeaning = meaning
    return c


def build_manifest(
    source: Dataset,
    references: Iterable[Reference],
    *,
    retrieve_location_uid: str,
    retrieve_ae_title: str | None = None,
    sop_instance_uid: str | None = None,
    series_instance_uid: str | None = None,
    manufacturer: str = "",
    now: datetime | None = None,
) -> Dataset:
    """A KOS manifest of ``references`` (one or more studies), patient and study copied from ``source``
    (a header of one of the study's instances). Times are UTC (Timezone Offset From UTC +0000)."""
    refs = list(references)
    if not refs:
        raise ValueError("a manifest references at least one instance")
    now = (now or datetime.now(UTC)).astimezone(UTC)
    date, time_ = now.strftime("%Y%m%d"), now.strftime("%H%M%S")

    ds = Dataset()
    for keyword in PATIENT_STUDY_KEYWORDS:
        if keyword in source:
            ds[keyword] = source[keyword]
    for keyword in _TYPE_2:
        if keyword not in ds:
            setattr(ds, keyword, "")
    if "SpecificCharacterSet" not in ds:
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: anything we add stays encodable

    # SOP Common (C.12.1)
    ds.SOPClassUID = KOS_SOP_CLASS
    ds.SOPInstanceUID = sop_instance_uid or generate_uid()
    ds.InstanceCreationDate, ds.InstanceCreationTime = date, time_
    ds.TimezoneOffsetFromUTC = "+0000"
    # Key Object Document Series (C.17.6.1)
    ds.Modality = "KO"
    ds.SeriesInstanceUID = series_instance_uid or generate_uid()
    ds.SeriesNumber = 999
    ds.SeriesDate, ds.SeriesTime = date, time_
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    # General Equipment (C.7.5.1)
    ds.Manufacturer = manufacturer
    # Key Object Document (C.17.6.2)
    ds.InstanceNumber = 1
    ds.ContentDate, ds.ContentTime = date, time_
    ds.CurrentRequestedProcedureEvidenceSequence = _evidence(refs, retrieve_location_uid, retrieve_ae_title)
    if str(source.get("AccessionNumber", "") or ""):
        ds.ReferencedRequestSequence = Sequence([_request(source)])
    # SR Document Content (C.17.3), TID 2010 Key Object Selection
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([_code(*MANIFEST)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "2010"
    ds.ContentTemplateSequence = Sequence([template])
    ds.ContentSequence = Sequence(_content_item(r) for r in refs)

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION
    ds.file_meta = meta
    return ds


def set_affinity_patient_id(ds: Dataset, patient_id: str) -> None:
    """Make the affinity-domain entry of the Other Patient IDs Sequence (0010,1002; Issuer of Patient
    ID Macro, PS3.3 Table 10-18) ``patient_id`` (an ``id^^^&OID&ISO`` CX): the manifest names the
    patient it is registered under, whatever the header of its instances said. Other entries stay."""
    from xds.metadata.datatypes import CX

    cx = CX.parse(patient_id)
    number, authority = cx.id_number, cx.assigning_authority.universal_id
    if not (number and authority):
        return
    if ds.get("IssuerOfPatientID", "") == authority and ds.get("PatientID", "") == number:
        return  # Patient ID is the affinity-domain id itself

    def issuer_of(item: Dataset) -> str:
        for q in item.get("IssuerOfPatientIDQualifiersSequence", []) or []:
            if str(q.get("UniversalEntityIDType", "")) == "ISO" and q.get("UniversalEntityID"):
                return str(q.UniversalEntityID)
        return str(item.get("IssuerOfPatientID", "") or "").strip()

    current = list(ds.get("OtherPatientIDsSequence", []) or [])
    ours = [i for i in current if issuer_of(i) == authority]
    if [str(i.get("PatientID", "")) for i in ours] == [number]:
        return  # as the instances carry it
    items = [i for i in current if issuer_of(i) != authority]
    entry = Dataset()
    entry.PatientID = number
    entry.IssuerOfPatientID = authority
    qualifiers = Dataset()
    qualifiers.UniversalEntityID = authority
    qualifiers.UniversalEntityIDType = "ISO"
    entry.IssuerOfPatientIDQualifiersSequence = Sequence([qualifiers])
    entry.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([entry, *items])


def _evidence(refs: list[Reference], location: str, ae_title: str | None) -> Sequence:
    studies: dict[str, dict[str, list[Reference]]] = {}
    for r in refs:
        studies.setdefault(r.study_instance_uid, {}).setdefault(r.series_instance_uid, []).append(r)
    out = Sequence()
    for study_uid, series in studies.items():
        study = Dataset()
        study.StudyInstanceUID = study_uid
        study.ReferencedSeriesSequence = Sequence()
        for series_uid, members in series.items():
            s = Dataset()
            s.SeriesInstanceUID = series_uid
            if ae_title:
                s.RetrieveAETitle = ae_title
            s.RetrieveLocationUID = location
            s.ReferencedSOPSequence = Sequence()
            for r in members:
                item = Dataset()
                item.ReferencedSOPClassUID = r.sop_class_uid
                item.ReferencedSOPInstanceUID = r.sop_instance_uid
                s.ReferencedSOPSequence.append(item)
            study.ReferencedSeriesSequence.append(s)
        out.append(study)
    return out


def _request(source: Dataset) -> Dataset:
    """An item of the Referenced Request Sequence (C.17.6.2, Table C.17-2 Request Attributes)."""
    r = Dataset()
    r.StudyInstanceUID = source.StudyInstanceUID
    r.ReferencedStudySequence = Sequence()
    r.AccessionNumber = source.AccessionNumber
    if "IssuerOfAccessionNumberSequence" in source:
        r.IssuerOfAccessionNumberSequence = source.IssuerOfAccessionNumberSequence
    r.PlacerOrderNumberImagingServiceRequest = ""
    r.FillerOrderNumberImagingServiceRequest = ""
    r.RequestedProcedureID = str(source.get("RequestedProcedureID", "") or "")
    r.RequestedProcedureDescription = str(source.get("RequestedProcedureDescription", "") or "")
    r.RequestedProcedureCodeSequence = Sequence()
    return r


def _content_item(r: Reference) -> Dataset:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = value_type_of(r.sop_class_uid)
    ref = Dataset()
    ref.ReferencedSOPClassUID = r.sop_class_uid
    ref.ReferencedSOPInstanceUID = r.sop_instance_uid
    item.ReferencedSOPSequence = Sequence([ref])
    return item


def encode(ds: Dataset) -> bytes:
    """The manifest as a PS3.10 file (Explicit VR Little Endian)."""
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()
