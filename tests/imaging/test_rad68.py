"""RAD-68 inbound: the repository's checks of a KOS against its DocumentEntry (RAD TF-3 4.68.4.1.3),
on the NIST Imaging Document Source test data and on manifests made to disagree with their metadata."""

from __future__ import annotations

import copy
import io
import uuid
from pathlib import Path

import pydicom
import pytest

from tests.imaging.conftest import CORPUS, REPOSITORY_ID, node_config, serve
from tests.imaging.nist import DOMAIN, KosSample, samples, submit_objects_request
from tests.imaging.studies import CR, CT, Patient, make_study
from tests.imaging.wire import NS, envelope_of
from xds.imaging import kos
from xds.imaging.publish import PublishSettings, build_submission, pnr_message
from xds.imaging.rad68 import check_kos, check_submission
from xds.metadata import ebrim
from xds.metadata import model as m
from xds.metadata.rules import ErrorCode, Rule
from xds.soap.message import Attachment

SAMPLES = samples()
HN = "2.16.840.1.113883.4.59"


def entry_of(sample: KosSample) -> m.DocumentEntry:
    [de] = ebrim.parse_submit_objects_request(submit_objects_request(sample.metadata)).document_entries
    return de


def test_the_corpus_holds_the_nist_kos_samples() -> None:
    assert len(SAMPLES) == 17


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_nist_kos_matches_its_rad68_metadata(sample: KosSample) -> None:
    assert check_kos(entry_of(sample), Attachment(path=str(sample.kos))) == []


@pytest.mark.parametrize("sample", [s for s in SAMPLES if s.selftest], ids=[s.name for s in SAMPLES if s.selftest])
def test_another_kos_under_the_metadata_is_XDSRepositoryMetadataError_naming_uniqueId(sample: KosSample) -> None:
    [error] = check_kos(entry_of(sample), Attachment(path=str(sample.selftest)))
    assert error.code == "XDSRepositoryMetadataError" and "uniqueId" in error.context
    assert error.location == "Document01" and not error.is_error  # a Warning: the source's rule


@pytest.mark.parametrize("sample", SAMPLES, ids=[s.name for s in SAMPLES])
def test_nist_rad68_submission_is_accepted_by_the_repository(tmp_path: Path, sample: KosSample) -> None:
    cfg = node_config(tmp_path / "node")
    cfg.registry.patient_assigning_authority = DOMAIN
    cfg.imaging.enabled = False
    sor = submit_objects_request(sample.metadata)
    sub = ebrim.parse_submit_objects_request(sor)
    assert check_submission(sub.document_entries, {"Document01": Attachment(path=str(sample.kos))}) == []
    content_type, body = pnr_message(sor, {"Document01": Attachment(path=str(sample.kos), content_type="application/dicom")})
    with serve(cfg) as n:
        n.feed(sub.submission_set.patient_id)
        r = n.client.post("/xds/repository", content=body, headers={"content-type": content_type})
        rr = envelope_of(r.headers["content-type"], r.content).find(".//rs:RegistryResponse", NS)
        assert rr.get("status").endswith(":Success"), r.text[:3000]
        [row] = n.registry.store.document_entries_by_unique_id(sub.document_entries[0].unique_id)
        assert row.repository_unique_id == REPOSITORY_ID and row.size == sample.kos.stat().st_size


@pytest.fixture
def manifest(tmp_path: Path) -> tuple[m.DocumentEntry, bytes]:
    study = make_study(tmp_path / "src", Patient("MRN400", "4000000000"), "ACC400", ((CT, 2, True),))
    h = pydicom.dcmread(study.files[0], stop_before_pixels=True)
    refs = [kos.Reference(h.StudyInstanceUID, h.SeriesInstanceUID, h.SOPClassUID, str(f.stem)) for f in study.files]
    ds = kos.build_manifest(h, refs, retrieve_location_uid="1.2.3")
    _, de = build_submission(ds, h, ["CT"], PublishSettings(affinity_domain=HN))
    return de, kos.encode(ds)


def test_our_manifest_matches_our_metadata(manifest: tuple[m.DocumentEntry, bytes]) -> None:
    de, data = manifest
    assert check_kos(de, Attachment(data=data)) == []


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("uniqueId", lambda de: setattr(de, "unique_id", "1.2.3.4.5")),
        ("sourcePatientId", lambda de: setattr(de, "source_patient_id", "MRN999^^^&1.3.6.1.4.1.21367.1800.13.20.1000&ISO")),
        ("sourcePatientId", lambda de: setattr(de, "source_patient_id", "MRN400^^^&1.2.3.4&ISO")),
        ("patientId", lambda de: setattr(de, "patient_id", f"4000000009^^^&{HN}&ISO")),
        ("referenceIdList", lambda de: de.reference_ids.append("1.2.3.9^^^^urn:ihe:iti:xds:2016:studyInstanceUID")),
        ("referenceIdList", lambda de: de.reference_ids.append("ACC999^^^^urn:ihe:iti:xds:2013:accession")),
        ("formatCode", lambda de: setattr(de, "format_code", m.Code("urn:ihe:rad:TEXT", "1.2.840.10008.2.6.1"))),
    ],
)
def test_manifest_disagreeing_with_its_metadata_is_XDSRepositoryMetadataError_naming_the_field(
    manifest: tuple[m.DocumentEntry, bytes], field: str, change
) -> None:
    de, data = manifest
    de = copy.deepcopy(de)
    change(de)
    [error] = check_kos(de, Attachment(data=data))
    assert error.code == "XDSRepositoryMetadataError"
    assert field in error.context and error.location == de.entry_uuid
    assert error.is_error is (field != "uniqueId")


def test_a_dicom_document_that_is_not_dicom_or_not_a_kos_is_refused(manifest: tuple[m.DocumentEntry, bytes]) -> None:
    de, _ = manifest
    [not_dicom] = check_kos(de, Attachment(data=b"%PDF-1.4 not a DICOM file" * 10))
    assert not_dicom.code == "XDSRepositoryMetadataError" and "not DICOM" in not_dicom.context
    image = next((CORPUS / "dicom").rglob("rig-5429/*.dcm"))
    [not_kos] = check_kos(de, Attachment(path=str(image)))
    assert not_kos.code == "XDSRepositoryMetadataError" and "not a Key Object Selection" in not_kos.context
    assert pydicom.dcmread(image).SOPClassUID == CR


def test_a_document_that_is_not_application_dicom_is_not_checked(manifest: tuple[m.DocumentEntry, bytes]) -> None:
    de, _ = manifest
    de = copy.deepcopy(de)
    de.mime_type = "text/plain"
    de.entry_uuid = f"urn:uuid:{uuid.uuid4()}"
    assert check_kos(de, Attachment(data=b"plain text")) == []


def test_the_rad68_checks_are_rules_of_the_catalogue_raising_XDSRepositoryMetadataError() -> None:
    kos_rules = [r for r in Rule if r.name.startswith("KOS_")]
    assert len(kos_rules) == 5
    assert {r.code for r in kos_rules} == {ErrorCode.XDS_REPOSITORY_METADATA_ERROR}
    message = Rule.KOS_METADATA_MISMATCH.message(
        id="urn:uuid:1", field="uniqueId", value="1.2", what="SOP Instance UID", actual="1.3"
    )
    assert message == "DocumentEntry urn:uuid:1: uniqueId '1.2' does not match the manifest's SOP Instance UID '1.3'"


@pytest.mark.parametrize(
    "keyword,vr,value",
    [
        ("CurrentRequestedProcedureEvidenceSequence", "SQ", b"\x20\x00\x0d\x00"),
        ("OtherPatientIDsSequence", "US", b"\x01\x00"),
        ("AccessionNumber", "FD", b"\x00\x00\x00\x00"),
    ],
)
def test_a_kos_with_a_malformed_element_is_XDSRepositoryMetadataError_not_an_exception(
    manifest: tuple[m.DocumentEntry, bytes], keyword: str, vr: str, value: bytes
) -> None:
    # found by tests/fuzz: pydicom decodes an element when it is first read, after the parse
    de, data = manifest
    ds = pydicom.dcmread(io.BytesIO(data))
    tag = pydicom.datadict.tag_for_keyword(keyword)
    ds[tag] = pydicom.dataelem.RawDataElement(pydicom.tag.Tag(tag), vr, len(value), value, 0, False, True)
    out = io.BytesIO()
    ds.save_as(out)
    [error] = check_kos(de, Attachment(data=out.getvalue()))
    assert error.code == "XDSRepositoryMetadataError" and error.location == de.entry_uuid
