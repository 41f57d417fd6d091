"""A synthetic province for demonstrations and tests: patients with Ontario-style health numbers
and postal codes, imaging exams spread over the three DIRs, each a small DICOM study (real
headers, a few pixels) with its radiology report (text or PDF).

Nothing here is real patient data; a seed makes the province reproducible.

Ontario health number (HN): 10 digits, the last a check digit computed with the Luhn (mod 10)
algorithm over the first nine, as the Ministry of Health validates it (the two-letter version code
of the card is not part of the number). Postal codes are ``A1A 1A1`` with Ontario first letters
(K, L, M, N, P) and without the letters Canada Post never uses (D F I O Q U, and W Z first).
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field
from datetime import date, timedelta

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

HN_AUTHORITY = "2.16.840.1.113883.4.59"  # Ontario health number (registry.patient_assigning_authority)
UID_ROOT = "2.25"

# --- health numbers and postal codes -------------------------------------------------------------


def luhn_check_digit(payload: str) -> str:
    """The Luhn check digit for ``payload`` (digits): from the right, every other digit doubled."""
    total = 0
    for i, ch in enumerate(reversed(payload)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def is_valid_health_number(hn: str) -> bool:
    return len(hn) == 10 and hn.isdigit() and hn[0] != "0" and luhn_check_digit(hn[:9]) == hn[9]


def health_number(rng: random.Random) -> str:
    payload = str(rng.randint(1, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(8))
    return payload + luhn_check_digit(payload)


_POSTAL_LETTERS = "ABCEGHJKLMNPRSTVWXYZ"


def postal_code(rng: random.Random, fsa: str) -> str:
    """A postal code in the forward sortation area ``fsa`` (e.g. ``M5G``)."""
    return f"{fsa} {rng.randint(0, 9)}{rng.choice(_POSTAL_LETTERS)}{rng.randint(0, 9)}"


# --- the regions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    hospital: str
    city: str
    fsa: str  # a forward sortation area of the city


@dataclass(frozen=True)
class Region:
    name: str  # the community (DIR) name, as in conf/<name>.toml
    sites: tuple[Site, ...]


REGIONS = (
    Region("HDIRS", (
        Site("Toronto General Hospital", "Toronto", "M5G"),
        Site("Sunnybrook Health Sciences Centre", "Toronto", "M4N"),
        Site("Trillium Health Partners", "Mississauga", "L5B"),
        Site("Hamilton General Hospital", "Hamilton", "L8L"),
    )),
    Region("SWODIN", (
        Site("London Health Sciences Centre", "London", "N6A"),
        Site("Windsor Regional Hospital", "Windsor", "N9A"),
        Site("Grand River Hospital", "Kitchener", "N2G"),
    )),
    Region("NEODIN", (
        Site("Health Sciences North", "Sudbury", "P3E"),
        Site("North Bay Regional Health Centre", "North Bay", "P1B"),
        Site("Sault Area Hospital", "Sault Ste. Marie", "P6B"),
        Site("Timmins and District Hospital", "Timmins", "P4N"),
    )),
)

FAMILY = ("Tremblay", "Martin", "Roy", "Wilson", "MacDonald", "Gagnon", "Smith", "Brown", "Singh", "Patel",
          "Nguyen", "Chen", "Wong", "Lee", "Campbell", "Anderson", "Kowalski", "Lapointe", "Bouchard", "Morin")
GIVEN_F = ("Marie", "Olivia", "Emma", "Sophie", "Amelia", "Chloe", "Priya", "Mei", "Anna", "Claire")
GIVEN_M = ("Liam", "Noah", "Jacob", "William", "Lucas", "Ethan", "Arjun", "Wei", "Luc", "Thomas")

# (modality, SOP class, study description, body part, instances, findings)
PROCEDURES = (
    ("CT", "1.2.840.10008.5.1.4.1.1.2", "CT CHEST WITH CONTRAST", "CHEST", 3,
     "No pulmonary embolism. No consolidation or effusion."),
    ("CT", "1.2.840.10008.5.1.4.1.1.2", "CT HEAD WITHOUT CONTRAST", "HEAD", 3,
     "No acute intracranial haemorrhage, mass effect or territorial infarct."),
    ("MR", "1.2.840.10008.5.1.4.1.1.4", "MR LUMBAR SPINE", "LSPINE", 3,
     "Mild degenerative disc disease at L4-L5 without canal stenosis."),
    ("MR", "1.2.840.10008.5.1.4.1.1.4", "MR BRAIN WITH AND WITHOUT CONTRAST", "BRAIN", 2,
     "No enhancing lesion. Ventricles normal in size."),
    ("CR", "1.2.840.10008.5.1.4.1.1.1", "XR CHEST PA AND LATERAL", "CHEST", 2,
     "Lungs are clear. Heart size is normal. No pneumothorax."),
    ("DX", "1.2.840.10008.5.1.4.1.1.1.1", "XR KNEE 3 VIEWS LEFT", "KNEE", 2,
     "Mild medial compartment joint space narrowing. No fracture."),
    ("US", "1.2.840.10008.5.1.4.1.1.6.1", "US ABDOMEN COMPLETE", "ABDOMEN", 2,
     "Normal liver echotexture. No gallstones. Kidneys unremarkable."),
)


@dataclass
class Patient:
    hn: str
    family: str
    given: str
    sex: str
    birth_date: str  # YYYYMMDD
    street: str
    city: str
    postal_code: str
    home: str  # the region the patient lives in

    @property
    def patient_id(self) -> str:
        """The affinity domain's patient id (CX): the HN and its assigning authority."""
        return f"{self.hn}^^^&{HN_AUTHORITY}&ISO"

    @property
    def dicom_name(self) -> str:
        return f"{self.family}^{self.given}"


@dataclass
class Exam:
    """One imaging study and its report, performed at ``site`` and sent to ``community``."""

    patient: Patient
    community: str
    site: Site
    site_oid: str  # the hospital's OID: issuer of its MRNs and accession numbers
    mrn: str
    accession: str
    study_uid: str
    series_uid: str
    procedure: tuple
    when: date
    report_format: str  # "text" or "pdf"
    report_uid: str
    sop_uids: list[str] = field(default_factory=list)

    @property
    def modality(self) -> str:
        return self.procedure[0]

    @property
    def description(self) -> str:
        return self.procedure[2]

    def instances(self) -> list[Dataset]:
        """The study's images: PS3.10 data sets in Explicit VR Little Endian with small pixel data."""
        return [_image(self, n) for n in range(1, len(self.sop_uids) + 1)]

    def report(self) -> tuple[bytes, str]:
        """The signed report: (content, mime type)."""
        p = self.patient
        lines = [
            f"{self.site.hospital} - Department of Diagnostic Imaging",
            f"Patient: {p.family.upper()}, {p.given}   HN: {p.hn}   DOB: {p.birth_date}   Sex: {p.sex}",
            f"Exam: {self.description}   Date: {self.when:%Y-%m-%d}   Accession: {self.accession}",
            "",
            f"FINDINGS: {self.procedure[5]}",
            "",
            "IMPRESSION: No acute abnormality.",
            "",
            "Electronically signed (synthetic demonstration data).",
        ]
        if self.report_format == "pdf":
            return simple_pdf(lines), "application/pdf"
        return ("\n".join(lines) + "\n").encode(), "text/plain"


def _uid(rng: random.Random) -> str:
    return f"{UID_ROOT}.{rng.getrandbits(122)}"


def _image(exam: Exam, number: int) -> Dataset:
    p = exam.patient
    modality, sop_class, description, body_part, _, _ = exam.procedure
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = exam.sop_uids[number - 1]
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = exam.when.strftime("%Y%m%d")
    ds.StudyTime = ds.SeriesTime = "0930" + f"{number:02d}"
    ds.ContentTime = ds.StudyTime
    ds.AccessionNumber = exam.accession
    issuer = Dataset()
    issuer.UniversalEntityID = exam.site_oid
    issuer.UniversalEntityIDType = "ISO"
    ds.IssuerOfAccessionNumberSequence = Sequence([issuer])
    ds.Modality = modality
    ds.Manufacturer = "Synthetic"
    ds.InstitutionName = exam.site.hospital
    ds.ReferringPhysicianName = "Osler^William"
    ds.StudyDescription = description
    ds.SeriesDescription = description
    ds.PatientName = p.dicom_name
    ds.PatientID = exam.mrn
    ds.IssuerOfPatientID = exam.site_oid
    ds.PatientBirthDate = p.birth_date
    ds.PatientSex = p.sex
    ds.PatientAddress = f"{p.street}^^{p.city}^ON^{p.postal_code}^CA"
    other = Dataset()
    other.PatientID = p.hn
    other.IssuerOfPatientID = HN_AUTHORITY
    other.TypeOfPatientID = "TEXT"
    ds.OtherPatientIDsSequence = Sequence([other])
    ds.StudyInstanceUID = exam.study_uid
    ds.SeriesInstanceUID = exam.series_uid
    ds.StudyID = exam.accession[-8:]
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.BodyPartExamined = body_part
    ds.PatientOrientation = ""
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 16, 12, 11
    ds.PixelRepresentation = 0
    ds.PixelData = struct.pack("<256H", *(((x * 53 + y * 97 + number * 211) % 4096) for y in range(16) for x in range(16)))
    if modality == "CT":
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
        ds.KVP = "120"
        ds.SliceThickness = "5"
    elif modality == "MR":
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        ds.ScanningSequence, ds.SequenceVariant, ds.ScanOptions = "SE", "NONE", ""
        ds.MRAcquisitionType = "2D"
        ds.EchoTime, ds.RepetitionTime = "12", "500"
        ds.MagneticFieldStrength = "1.5"
    elif modality in ("DX", "US"):
        ds.ImageType = ["ORIGINAL", "PRIMARY"]
        if modality == "DX":
            ds.PresentationIntentType = "FOR PRESENTATION"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds.file_meta = meta
    return ds


def simple_pdf(lines: list[str]) -> bytes:
    """A one-page PDF 1.4 showing ``lines`` in Helvetica (ISO 32000-1 7.5: header, objects, xref)."""

    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")

    stream = "BT /F1 10 Tf 14 TL 56 760 Td " + " ".join(f"({esc(line)}) Tj T*" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        "/Resources << /Font << /F1 5 0 R >> >> >>",
        f"<< /Length {len(stream.encode('latin-1'))} >>\nstream\n{stream}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{i} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    for off in offsets:
        out += f"{off:010d} 00000 n \n".encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# --- the province --------------------------------------------------------------------------------


def _patient(rng: random.Random, region: Region) -> Patient:
    sex = rng.choice("FM")
    site = rng.choice(region.sites)
    born = date(1935, 1, 1) + timedelta(days=rng.randint(0, 365 * 70))
    return Patient(
        hn=health_number(rng),
        family=rng.choice(FAMILY),
        given=rng.choice(GIVEN_F if sex == "F" else GIVEN_M),
        sex=sex,
        birth_date=born.strftime("%Y%m%d"),
        street=f"{rng.randint(1, 999)} {rng.choice(('King', 'Queen', 'Main', 'Elm', 'Lakeshore', 'Yonge'))} St",
        city=site.city,
        postal_code=postal_code(rng, site.fsa),
        home=region.name,
    )


def _exam(rng: random.Random, patient: Patient, region: Region, site_oids: dict[str, str], today: date) -> Exam:
    site = rng.choice(region.sites)
    procedure = rng.choice(PROCEDURES)
    return Exam(
        patient=patient,
        community=region.name,
        site=site,
        site_oid=site_oids[site.hospital],
        mrn=f"{region.name[:2]}{rng.randint(1000000, 9999999)}",
        accession=f"{region.name[:1]}{rng.randint(10**9, 10**10 - 1)}",
        study_uid=_uid(rng),
        series_uid=_uid(rng),
        procedure=procedure,
        when=today - timedelta(days=rng.randint(1, 5 * 365)),
        report_format="pdf" if rng.random() < 0.3 else "text",
        report_uid=_uid(rng),
        sop_uids=[_uid(rng) for _ in range(procedure[4])],
    )


@dataclass
class Province:
    patients: list[Patient]
    exams: list[Exam]

    def exams_of(self, patient: Patient) -> list[Exam]:
        return [e for e in self.exams if e.patient is patient]

    def communities_of(self, patient: Patient) -> list[str]:
        return sorted({e.community for e in self.exams_of(patient)})


def province(patients: int = 12, seed: int = 2011, today: date | None = None,
             regions: tuple[Region, ...] = REGIONS) -> Province:
    """``patients`` patients spread over ``regions``: the first has exams in every region, about a
    third of the others in two, the rest in their home region only (one or two exams each)."""
    rng = random.Random(seed)
    today = today or date(2025, 6, 1)
    site_oids = {s.hospital: _uid(rng) for r in regions for s in r.sites}
    people: list[Patient] = []
    exams: list[Exam] = []
    for i in range(patients):
        home = regions[i % len(regions)]
        p = _patient(rng, home)
        people.append(p)
        if i == 0:
            visited = list(regions)
        elif i % 3 == 1 and len(regions) > 1:
            visited = [home, rng.choice([r for r in regions if r is not home])]
        else:
            visited = [home]
        for region in visited:
            for _ in range(rng.randint(1, 2) if region is home else 1):
                exams.append(_exam(rng, p, region, site_oids, today))
    return Province(people, exams)
