"""Synthetic Diagnostic Imaging registry content: one ITI-42 submission per imaging study.

A study brings what an XDS-I.b Imaging Document Source and the reporting system register for it
(RAD-68 / ITI-41): a DICOM KOS manifest (``application/dicom``) and the radiologist's report
(CDA imaging report or PDF), both carrying the study's accession number and Study Instance UID in
referenceIdList, the modality and body region as eventCodeList, a LOINC procedure typeCode, the
performing facility and the reading radiologist as author; and a SubmissionSet with a HasMember
for each. Patient ids are health numbers of the affinity domain (the HDIRS one by default).

Everything derives from a seed, so a run is reproducible; two generators with different seeds
give disjoint ids. The submissions are :class:`xds.metadata.model.Submission` objects with
``urn:uuid:`` entryUUIDs (as a migration from another registry has them), to feed the bulk
loader in process (:class:`xds.registry.bulk_load.BulkLoader`), or written as
SubmitObjectsRequest files (:func:`write_files`) for ``xds bulk-load``::

    PYTHONPATH=. .venv/bin/python bench/registry_data.py --studies 100 --patients 20 OUTDIR
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from xds.metadata import ebrim
from xds.metadata import model as m

HDIRS_AUTHORITY = "2.16.840.1.113883.4.59"  # conf/hdirs.toml registry.patient_assigning_authority
HDIRS_REPOSITORY = "2.25.194578161177471140042198828596590154623"  # conf/hdirs.toml repository id

LOINC = "2.16.840.1.113883.6.1"
SNOMED = "2.16.840.1.113883.6.96"
DCM = "1.2.840.10008.2.16.4"
CONFIDENTIALITY = "2.16.840.1.113883.5.25"
FACILITY_TYPES = "2.16.840.1.113883.5.111"  # HL7 ServiceDeliveryLocationRoleType

CLASS_IMAGES = m.Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images")
CLASS_REPORTS = m.Code("REPORTS", "1.3.6.1.4.1.19376.1.2.6.1", "Reports")
FORMAT_KOS = m.Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document")
FORMAT_CDA = m.Code(
    "urn:ihe:rad:CDA:ImagingReportStructuredHeadings:2013", "1.3.6.1.4.1.19376.1.2.3", "CDA Imaging Report"
)
FORMAT_PDF = m.Code("urn:ihe:rad:PDF", "1.3.6.1.4.1.19376.1.2.3", "PDF Report")
CONTENT_TYPE = m.Code("18748-4", LOINC, "Diagnostic imaging study")
PRACTICE_RADIOLOGY = m.Code("394914008", SNOMED, "Radiology")
PRACTICE_NUCLEAR = m.Code("394649004", SNOMED, "Nuclear medicine")

# (modality, LOINC procedure, SNOMED CT body region, weight): a regional mix, plain films first
PROCEDURES = [
    (
        "CR",
        m.Code("36643-5", LOINC, "XR Chest 2 Views"),
        m.Code("51185008", SNOMED, "Thoracic structure"),
        24,
    ),
    ("DX", m.Code("37637-6", LOINC, "XR Knee Views"), m.Code("72696002", SNOMED, "Knee region structure"), 8),
    ("CT", m.Code("24627-2", LOINC, "CT Chest"), m.Code("51185008", SNOMED, "Thoracic structure"), 10),
    ("CT", m.Code("24725-4", LOINC, "CT Head"), m.Code("69536005", SNOMED, "Head structure"), 10),
    ("CT", m.Code("79103-8", LOINC, "CT Abdomen and Pelvis"), m.Code("818983003", SNOMED, "Abdomen"), 8),
    ("MR", m.Code("24590-2", LOINC, "MR Brain"), m.Code("12738006", SNOMED, "Brain structure"), 8),
    ("MR", m.Code("36158-4", LOINC, "MR Knee"), m.Code("72696002", SNOMED, "Knee region structure"), 5),
    ("US", m.Code("24558-9", LOINC, "US Abdomen"), m.Code("818983003", SNOMED, "Abdomen"), 12),
    (
        "MG",
        m.Code("24606-6", LOINC, "MG Breast Screening"),
        m.Code("76752008", SNOMED, "Breast structure"),
        10,
    ),
    ("NM", m.Code("39632-5", LOINC, "NM Bone scan"), m.Code("272673000", SNOMED, "Bone structure"), 3),
    (
        "PT",
        m.Code("44136-0", LOINC, "PET+CT Whole body"),
        m.Code("38266002", SNOMED, "Entire body as a whole"),
        2,
    ),
]
_WEIGHTS = [p[3] for p in PROCEDURES]

FACILITIES = [
    ("Toronto General Hospital", "2.16.840.1.113883.3.239.18.101", "HOSP"),
    ("Kingston Health Sciences Centre", "2.16.840.1.113883.3.239.18.102", "HOSP"),
    ("Ottawa Imaging Clinic", "2.16.840.1.113883.3.239.18.103", "RADDX"),
    ("Sudbury Regional Hospital", "2.16.840.1.113883.3.239.18.104", "HOSP"),
    ("London Diagnostic Imaging", "2.16.840.1.113883.3.239.18.105", "RADDX"),
    ("Hamilton Emergency Department", "2.16.840.1.113883.3.239.18.106", "ER"),
]
FACILITY_NAMES = {"HOSP": "Hospital", "RADDX": "Radiology diagnostics unit", "ER": "Emergency room"}
PHYSICIAN_AUTHORITY = "2.16.840.1.113883.4.347"  # CPSO numbers
FAMILY = ["Tremblay", "Wong", "Singh", "MacDonald", "Gagnon", "Patel", "Roy", "Smith", "Nguyen", "Martin"]
GIVEN = ["Anne", "Raj", "Marie", "David", "Li", "Sarah", "Omar", "Claire", "Paul", "Fatima"]
RADIOLOGISTS = [
    f"{60000 + i}^{FAMILY[i % 10]}^{GIVEN[(i * 7) % 10]}^^^Dr^^^&{PHYSICIAN_AUTHORITY}&ISO" for i in range(40)
]


def patient_id(index: int, authority: str = HDIRS_AUTHORITY) -> str:
    """The ``index``-th synthetic health number of the affinity domain."""
    return f"{9000000000 + index}^^^&{authority}&ISO"


@dataclass
class RegistryData:
    """Studies for ``patients`` patients (ids ``patient_id(first_patient + i)``)."""

    patients: int
    seed: int = 1
    first_patient: int = 1
    authority: str = HDIRS_AUTHORITY
    repository_unique_id: str = HDIRS_REPOSITORY
    source_id: str = "2.16.840.1.113883.3.239.18.100"

    def __post_init__(self) -> None:
        self.rnd = random.Random(self.seed)
        self.count = 0

    def __getstate__(self) -> dict[str, object]:  # recipes travel without the random state
        return {k: v for k, v in self.__dict__.items() if k not in ("rnd", "count")}

    def __setstate__(self, state: dict[str, object]) -> None:
        self.__dict__.update(state)
        self.__post_init__()

    def study(self, patient: str | None = None) -> m.Submission:
        """The next study's submission: SubmissionSet, KOS and report DocumentEntries, 2 HasMember."""
        self.count += 1
        return self._study(self.rnd, patient)

    def study_at(self, index: int, patient: str | None = None) -> m.Submission:
        """Study number ``index`` of this seed, the same whenever and wherever it is made."""
        return self._study(random.Random(f"{self.seed}/{index}"), patient)

    def _study(self, rnd: random.Random, patient: str | None) -> m.Submission:
        def new_uuid() -> str:
            return f"urn:uuid:{uuid.UUID(int=rnd.getrandbits(128), version=4)}"

        def new_oid() -> str:
            return f"2.25.{uuid.UUID(int=rnd.getrandbits(128), version=4).int}"

        pid = patient or patient_id(self.first_patient + rnd.randrange(self.patients), self.authority)
        modality, procedure, region, _ = rnd.choices(PROCEDURES, _WEIGHTS)[0]
        facility, facility_oid, facility_type = rnd.choice(FACILITIES)
        when = f"20{rnd.randint(5, 25):02d}{rnd.randint(1, 12):02d}{rnd.randint(1, 28):02d}{rnd.randint(7, 20):02d}{rnd.randint(0, 59):02d}"
        reported = when[:8] + f"{min(int(when[8:10]) + 2, 23):02d}" + when[10:12] + "00"
        accession = f"{facility_oid.rsplit('.', 1)[1]}{rnd.randrange(10**9):09d}"
        study_uid = new_oid()
        refs = [
            f"{accession}^^^&{facility_oid}.1&ISO^urn:ihe:iti:xds:2013:accession",
            f"{study_uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
        ]
        radiologist = rnd.choice(RADIOLOGISTS)
        institution = f"{facility}^^^^^&{facility_oid}&ISO^^^^{facility_oid}"
        confidentiality = "N" if rnd.random() < 0.9 else rnd.choice("RV")
        common = dict(
            patient_id=pid,
            healthcare_facility_type_code=m.Code(
                facility_type, FACILITY_TYPES, FACILITY_NAMES[facility_type]
            ),
            practice_setting_code=PRACTICE_NUCLEAR if modality in ("NM", "PT") else PRACTICE_RADIOLOGY,
            type_code=procedure,
            confidentiality_codes=[m.Code(confidentiality, CONFIDENTIALITY)],
            event_codes=[m.Code(modality, DCM, modality), region],
            service_start_time=when,
            service_stop_time=when,
            language_code="en-CA",
            source_patient_id=f"MRN{rnd.randrange(10**7):07d}^^^&{facility_oid}.2&ISO",
            source_patient_info=[f"PID-3|{pid}"],
            repository_unique_id=self.repository_unique_id,
            reference_ids=refs,
        )
        kos_size = rnd.randint(2_000, 40_000)
        kos = m.DocumentEntry(
            entry_uuid=new_uuid(),
            unique_id=new_oid(),
            mime_type="application/dicom",
            title=f"{procedure.display_name} images",
            class_code=CLASS_IMAGES,
            format_code=FORMAT_KOS,
            creation_time=when,
            authors=[m.Author(institutions=[institution], roles=["Imaging Document Source"])],
            hash=hashlib.sha1(study_uid.encode()).hexdigest(),
            size=kos_size,
            **common,  # type: ignore[arg-type]
        )
        pdf = rnd.random() < 0.3
        report = m.DocumentEntry(
            entry_uuid=new_uuid(),
            unique_id=new_oid(),
            mime_type="application/pdf" if pdf else "text/xml",
            title=f"{procedure.display_name} report",
            class_code=CLASS_REPORTS,
            format_code=FORMAT_PDF if pdf else FORMAT_CDA,
            creation_time=reported,
            authors=[
                m.Author(
                    person=radiologist,
                    institutions=[institution],
                    roles=["Radiologist"],
                    specialties=["Diagnostic Radiology"],
                )
            ],
            legal_authenticator=radiologist,
            hash=hashlib.sha1(accession.encode()).hexdigest(),
            size=rnd.randint(8_000, 120_000),
            **common,  # type: ignore[arg-type]
        )
        ss = m.SubmissionSet(
            entry_uuid=new_uuid(),
            unique_id=new_oid(),
            source_id=self.source_id,
            patient_id=pid,
            submission_time=reported,
            title=f"{procedure.display_name} {accession}",
            content_type_code=CONTENT_TYPE,
            authors=[m.Author(person=radiologist, institutions=[institution])],
        )
        associations = [
            m.Association(
                entry_uuid=new_uuid(),
                association_type=m.HAS_MEMBER,
                source=ss.entry_uuid,
                target=de.entry_uuid,
                submission_set_status="Original",
            )
            for de in (kos, report)
        ]
        return m.Submission(submission_set=ss, document_entries=[kos, report], associations=associations)

    def submissions(self, entries: int, patient: str | None = None) -> Iterator[tuple[str, m.Submission]]:
        """Studies until ``entries`` DocumentEntries (2 per study), for random patients or all
        for ``patient``; labelled ``study-<seed>-<n>`` for the load report."""
        for _ in range((entries + 1) // 2):
            yield f"study-{self.seed}-{self.count + 1}", self.study(patient)

    def recipes(
        self, entries: int, patient: str | None = None, first: int = 0
    ) -> Iterator[tuple[str, Callable[[], m.Submission]]]:
        """Like :meth:`submissions`, but each study as a recipe (a picklable call of
        :meth:`study_at`) that the bulk loader's worker processes run, so generating the data
        does not load the process that writes it."""
        for i in range(first, first + (entries + 1) // 2):
            yield f"study-{self.seed}-{i}", functools.partial(self.study_at, i, patient)


def write_files(directory: Path, submissions: Iterator[tuple[str, m.Submission]]) -> int:
    """Each submission as ``<label>.xml``, an lcm:SubmitObjectsRequest; returns how many."""
    directory.mkdir(parents=True, exist_ok=True)
    n = 0
    for label, sub in submissions:
        xml = etree.tostring(
            ebrim.serialize_submit_objects_request(sub), xml_declaration=True, encoding="UTF-8"
        )
        (directory / f"{label}.xml").write_bytes(xml)
        n += 1
    return n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", type=Path)
    ap.add_argument("--studies", type=int, default=100)
    ap.add_argument("--patients", type=int, default=20)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--authority", default=HDIRS_AUTHORITY, help="affinity domain patient id OID")
    args = ap.parse_args()
    data = RegistryData(args.patients, seed=args.seed, authority=args.authority)
    n = write_files(args.outdir, data.submissions(2 * args.studies))
    print(f"{n} SubmitObjectsRequest files in {args.outdir}")


if __name__ == "__main__":
    main()
