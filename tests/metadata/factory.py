"""Valid model-object submissions to break one rule at a time, and the corpus paths."""

from __future__ import annotations

from pathlib import Path

from xds.metadata import model as m

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
NIST = CORPUS / "nist-testkit"
CODES_XML = NIST / "_toolkit-resources/xdstools2/src/main/webapp/toolkitx/environment/default/codes.xml"
EBRS = CORPUS / "schemas/ihe-iti-rahulsom/iti/schema/ebRS"

AUTHORITY = "1.3.6.1.4.1.21367.13.20.1000"
PATIENT = f"P0924175725.3^^^&{AUTHORITY}&ISO"
OTHER_PATIENT = f"P0000000001.1^^^&{AUTHORITY}&ISO"


def author() -> m.Author:
    return m.Author(
        person="^Smitty^Gerald^^^",
        institutions=["Cleveland Clinic", "Parma Community^^^^^&1.2.3&ISO^^^^PC1"],
        roles=["Attending"],
        specialties=["Orthopedic"],
        telecommunications=["^^Internet^gerald@example.org"],
    )


def document_entry(
    symbol: str = "Document01", unique_id: str = "1.42.20100312105241.2", **kw: object
) -> m.DocumentEntry:
    de = m.DocumentEntry(
        entry_uuid=symbol,
        unique_id=unique_id,
        patient_id=PATIENT,
        mime_type="application/dicom",
        title="CT chest",
        comments="Key images",
        # codes from the NIST codes.xml (the affinity domain of the tests)
        class_code=m.Code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images"),
        type_code=m.Code("11488-4", "2.16.840.1.113883.6.1", "Consultation Note"),
        format_code=m.Code(
            "1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document"
        ),
        healthcare_facility_type_code=m.Code(
            "225728007", "2.16.840.1.113883.6.96", "Accident and Emergency department"
        ),
        practice_setting_code=m.Code("309927009", "2.16.840.1.113883.6.96", "General medical department"),
        confidentiality_codes=[m.Code("N", "2.16.840.1.113883.5.25", "normal")],
        event_codes=[m.Code("CT", "1.2.840.10008.2.16.4", "Computed Tomography")],
        authors=[author()],
        creation_time="20041224",
        service_start_time="200412230800",
        service_stop_time="200412230801",
        language_code="en-us",
        legal_authenticator="11375^Welby^Marcus^J^Jr. MD^Dr^^^&1.2.840.113619.6.197&ISO",
        source_patient_id="89765a87b^^^&1.3.4.5&ISO",
        source_patient_info=["PID-3|pid1^^^&1.2.3&ISO", "PID-5|Doe^John^^^", "PID-7|19560527", "PID-8|M"],
        hash="4cf4f82d78b5e2aac35c31bca8cb79fe6bd6a41e",
        size=36,
        repository_unique_id="1.19.6.24.109.42.1.5",
        reference_ids=["2013001^^^&1.2.3.4.5.6&ISO^urn:ihe:iti:xds:2013:accession"],
    )
    for k, v in kw.items():
        setattr(de, k, v)
    return de


def submission_set(symbol: str = "SubmissionSet01", **kw: object) -> m.SubmissionSet:
    ss = m.SubmissionSet(
        entry_uuid=symbol,
        unique_id="1.42.20100312105241.4",
        source_id="1.3.6.1.4.1.21367.2009.1.2.1",
        patient_id=PATIENT,
        submission_time="20041225235050",
        title="Physical",
        content_type_code=m.Code("225728007", "2.16.840.1.113883.6.96", "Accident and Emergency department"),
        authors=[author()],
        intended_recipients=[
            "Some Hospital^^^^^^^^^1.2.3.9.1789.45|^Wel^Marcus^^^Dr^MD|^^Internet^mwel@healthcare.example.org"
        ],
    )
    for k, v in kw.items():
        setattr(ss, k, v)
    return ss


def folder(symbol: str = "Folder01", unique_id: str = "1.42.20100312105241.7", **kw: object) -> m.Folder:
    f = m.Folder(
        entry_uuid=symbol,
        unique_id=unique_id,
        patient_id=PATIENT,
        title="Referrals",
        codes=[m.Code("Referrals", "1.3.6.1.4.1.21367.2017.3", "Referrals")],
    )
    for k, v in kw.items():
        setattr(f, k, v)
    return f


def association(
    symbol: str, type_: str, source: str, target: str, status: str | None = None
) -> m.Association:
    return m.Association(
        entry_uuid=symbol, association_type=type_, source=source, target=target, submission_set_status=status
    )


def submission(documents: int = 1, folders: int = 0) -> m.Submission:
    """One SubmissionSet with ``documents`` DocumentEntries and ``folders`` Folders, each a member
    of the SubmissionSet, every DocumentEntry also filed in the first Folder."""
    sub = m.Submission(submission_set=submission_set())
    for i in range(1, documents + 1):
        de = document_entry(f"Document{i:02d}", f"1.42.20100312105241.2.{i}")
        sub.document_entries.append(de)
        sub.associations.append(
            association(f"ss-de-{i}", m.HAS_MEMBER, "SubmissionSet01", de.entry_uuid, "Original")
        )
    for i in range(1, folders + 1):
        f = folder(f"Folder{i:02d}", f"1.42.20100312105241.7.{i}")
        sub.folders.append(f)
        sub.associations.append(association(f"ss-fol-{i}", m.HAS_MEMBER, "SubmissionSet01", f.entry_uuid))
    if folders:
        for i in range(1, documents + 1):
            sub.associations.append(association(f"fol-de-{i}", m.HAS_MEMBER, "Folder01", f"Document{i:02d}"))
            sub.associations.append(association(f"ss-fd-{i}", m.HAS_MEMBER, "SubmissionSet01", f"fol-de-{i}"))
    return sub
