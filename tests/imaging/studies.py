"""Small DICOM studies made with pydicom, as a PACS would send them: CT, MR, CR and SC images with
a few pixels, an encapsulated PDF and a basic text SR, in Implicit or Explicit VR Little Endian."""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, generate_uid

HN_AUTHORITY = "2.16.840.1.113883.4.59"  # the affinity domain (conf/hdirs.toml)
LOCAL_AUTHORITY = "1.3.6.1.4.1.21367.1800.13.20.1000"  # the sending hospital's MRN issuer

CT = "1.2.840.10008.5.1.4.1.1.2"
MR = "1.2.840.10008.5.1.4.1.1.4"
CR = "1.2.840.10008.5.1.4.1.1.1"
SC = "1.2.840.10008.5.1.4.1.1.7"
PDF = "1.2.840.10008.5.1.4.1.1.104.1"
SR = "1.2.840.10008.5.1.4.1.1.88.11"
MODALITY = {CT: "CT", MR: "MR", CR: "CR", SC: "OT", PDF: "DOC", SR: "SR"}


@dataclass
class Patient:
    mrn: str
    hn: str | None = None  # the health number, in Other Patient IDs Sequence when known
    name: str = "Tremblay^Marie^^^"
    birth_date: str = "19700312"
    sex: str = "F"
    issuer: str = LOCAL_AUTHORITY

    @property
    def affinity_id(self) -> str:
        return f"{self.hn}^^^&{HN_AUTHORITY}&ISO"

    @property
    def source_id(self) -> str:
        return f"{self.mrn}^^^&{self.issuer}&ISO"


@dataclass
class Study:
    patient: Patient
    accession: str
    uid: str = field(default_factory=generate_uid)
    description: str = "CT CHEST WITH CONTRAST"
    files: list[Path] = field(default_factory=list)


def instance(study: Study, sop_class: str, series_uid: str, number: int, *, explicit: bool = True,
             series_number: int = 1) -> Dataset:
    p = study.patient
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = "20240115", "101530"
    ds.ContentDate, ds.ContentTime = "20240115", "101612"
    ds.AccessionNumber = study.accession
    issuer = Dataset()
    issuer.LocalNamespaceEntityID = "HOSP"
    issuer.UniversalEntityID = LOCAL_AUTHORITY
    issuer.UniversalEntityIDType = "ISO"
    ds.IssuerOfAccessionNumberSequence = Sequence([issuer])
    ds.Modality = MODALITY[sop_class]
    ds.Manufacturer = "ACME"
    ds.InstitutionName = "Toronto General Hospital"
    ds.ReferringPhysicianName = "Welby^Marcus"
    ds.StudyDescription = study.description
    ds.PatientName = p.name
    ds.PatientID = p.mrn
    ds.IssuerOfPatientID = p.issuer
    ds.PatientBirthDate = p.birth_date
    ds.PatientSex = p.sex
    if p.hn:
        other = Dataset()
        other.PatientID = p.hn
        other.IssuerOfPatientID = HN_AUTHORITY
        other.TypeOfPatientID = "TEXT"
        ds.OtherPatientIDsSequence = Sequence([other])
    ds.StudyInstanceUID = study.uid
    ds.SeriesInstanceUID = series_uid
    ds.StudyID = study.accession[-8:]
    ds.SeriesNumber = series_number
    ds.InstanceNumber = number
    ds.BodyPartExamined = "CHEST"
    if sop_class == PDF:
        ds.BurnedInAnnotation = "YES"
        ds.DocumentTitle = "Requisition"
        ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
        ds.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
        ds.ConceptNameCodeSequence = Sequence()
    elif sop_class == SR:
        ds.ValueType = "CONTAINER"
        ds.CompletionFlag, ds.VerificationFlag = "COMPLETE", "UNVERIFIED"
        ds.ContinuityOfContent = "SEPARATE"
        ds.ConceptNameCodeSequence = Sequence([_code("18748-4", "LN", "Diagnostic Imaging Report")])
        text = Dataset()
        text.RelationshipType, text.ValueType = "CONTAINS", "TEXT"
        text.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", "Finding")])
        text.TextValue = "No acute findings."
        ds.ContentSequence = Sequence([text])
    else:
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = 8
        ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
        ds.PixelRepresentation = 0
        ds.PixelData = struct.pack("<64H", *((i * 37 + number * 101) % 4096 for i in range(64)))
        if sop_class == CT:
            ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
            ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
            ds.KVP = "120"
            ds.AcquisitionNumber = 1
        if sop_class == SC:
            ds.ConversionType = "WSD"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian if explicit else ImplicitVRLittleEndian
    ds.file_meta = meta
    return ds


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    c = Dataset()
    c.CodeValue, c.CodingSchemeDesignator, c.CodeMeaning = value, scheme, meaning
    return c


def encode(ds: Dataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


def make_study(directory: Path, patient: Patient, accession: str,
               series: tuple[tuple[str, int, bool], ...] = ((CT, 3, True), (CT, 2, False), (SC, 1, True))) -> Study:
    """Write a study as PS3.10 files: ``series`` is (SOP class, instance count, explicit VR)."""
    study = Study(patient, accession)
    directory.mkdir(parents=True, exist_ok=True)
    for n, (sop_class, count, explicit) in enumerate(series, start=1):
        series_uid = generate_uid()
        for i in range(1, count + 1):
            ds = instance(study, sop_class, series_uid, i, explicit=explicit, series_number=n)
            path = directory / f"{ds.SOPInstanceUID}.dcm"
            path.write_bytes(encode(ds))
            study.files.append(path)
    return study


def dataset_bytes(part10: bytes) -> bytes:
    """The data set of a PS3.10 file, after its File Meta Information (PS3.10 7.1)."""
    assert part10[128:132] == b"DICM"
    group_length = int.from_bytes(part10[140:144], "little")
    return part10[144 + group_length :]
