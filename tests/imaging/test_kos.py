"""Our KOS manifest (RAD TF-3 4.68.4.1.2.1, PS3.3 A.35.4) passes dicom3tools' dciodvfy with no
errors and has the XDS-I.b structure: title (113030, DCM, Manifest), evidence per series with the
Imaging Document Source's repositoryUniqueId as Retrieve Location UID, patient/study copied."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pydicom
import pytest

from tests.imaging.studies import CR, CT, MR, PDF, SC, SR, Patient, make_study
from xds.imaging import kos

LOCATION = "1.3.6.1.4.1.21367.13.71.101"


def manifest_of(tmp_path: Path, series, hn: str | None = "2222222222") -> tuple[Path, list[pydicom.Dataset]]:
    study = make_study(tmp_path / "src", Patient("MRN200", hn), "ACC200", series)
    headers = [pydicom.dcmread(f, stop_before_pixels=True) for f in study.files]
    refs = [kos.Reference(h.StudyInstanceUID, h.SeriesInstanceUID, h.SOPClassUID, h.SOPInstanceUID) for h in headers]
    ds = kos.build_manifest(headers[0], refs, retrieve_location_uid=LOCATION, retrieve_ae_title="HDIRS")
    path = tmp_path / "kos.dcm"
    path.write_bytes(kos.encode(ds))
    return path, headers


def dciodvfy(path: Path) -> list[str]:
    r = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True, timeout=60)
    return [line for line in (r.stdout + r.stderr).splitlines() if line.startswith("Error")]


@pytest.mark.parametrize(
    "series",
    [
        ((CT, 1, True),),
        ((CT, 3, True), (CT, 2, False), (SC, 1, True)),
        ((MR, 2, True), (CR, 1, False), (PDF, 1, True), (SR, 1, True)),
    ],
    ids=["single-image", "multi-series", "multi-modality-with-documents"],
)
def test_our_kos_passes_dciodvfy_without_errors(tmp_path: Path, series) -> None:
    path, _ = manifest_of(tmp_path, series)
    assert dciodvfy(path) == []


def test_kos_without_accession_or_other_ids_passes_dciodvfy(tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", Patient("MRN201"), "", ((CT, 1, True),))
    h = pydicom.dcmread(study.files[0])
    del h.AccessionNumber, h.IssuerOfAccessionNumberSequence, h.ReferringPhysicianName
    ds = kos.build_manifest(h, [kos.Reference(h.StudyInstanceUID, h.SeriesInstanceUID, h.SOPClassUID, h.SOPInstanceUID)],
                            retrieve_location_uid=LOCATION)
    path = tmp_path / "kos.dcm"
    path.write_bytes(kos.encode(ds))
    assert dciodvfy(path) == []


def test_manifest_lists_every_instance_per_series_with_the_retrieve_location(tmp_path: Path) -> None:
    path, headers = manifest_of(tmp_path, ((CT, 3, True), (CT, 2, False), (PDF, 1, True)))
    ds = pydicom.dcmread(path)
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert (ds.SOPClassUID, ds.Modality) == ("1.2.840.10008.5.1.4.1.1.88.59", "KO")
    title = ds.ConceptNameCodeSequence[0]
    assert (title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning) == ("113030", "DCM", "Manifest")
    [study] = ds.CurrentRequestedProcedureEvidenceSequence
    assert study.StudyInstanceUID == headers[0].StudyInstanceUID
    listed = {
        s.SeriesInstanceUID: sorted(r.ReferencedSOPInstanceUID for r in s.ReferencedSOPSequence)
        for s in study.ReferencedSeriesSequence
    }
    expected: dict[str, list[str]] = {}
    for h in headers:
        expected.setdefault(h.SeriesInstanceUID, []).append(h.SOPInstanceUID)
    assert listed == {k: sorted(v) for k, v in expected.items()}
    assert {s.RetrieveLocationUID for s in study.ReferencedSeriesSequence} == {LOCATION}
    assert {s.RetrieveAETitle for s in study.ReferencedSeriesSequence} == {"HDIRS"}
    kinds = {i.ReferencedSOPSequence[0].ReferencedSOPClassUID: i.ValueType for i in ds.ContentSequence}
    assert kinds == {CT: "IMAGE", PDF: "COMPOSITE"}
    for keyword in ("PatientName", "PatientID", "IssuerOfPatientID", "PatientBirthDate", "PatientSex",
                    "OtherPatientIDsSequence", "StudyInstanceUID", "StudyDate", "AccessionNumber"):
        assert ds[keyword].value == headers[0][keyword].value, keyword
    assert ds.ReferencedRequestSequence[0].AccessionNumber == "ACC200"
