"""RAD-69 Retrieve Imaging Document Set on /xds/imaging (RAD TF-3 4.69): instances returned as
stored, transcoding between the uncompressed syntaxes, per-document errors and PartialSuccess."""

from __future__ import annotations

import io
from pathlib import Path

import pydicom
import pytest

from tests.imaging.conftest import IMAGING_ID, ImagingNode, c_store
from tests.imaging.studies import CT, MR, PDF, Patient, Study, dataset_bytes, make_study
from tests.imaging.wire import RetrieveAnswer, Series, read_retrieve, retrieve_imaging

IMPLICIT, EXPLICIT, JPEG_BASELINE, JPEG_LOSSLESS = (
    "1.2.840.10008.1.2", "1.2.840.10008.1.2.1", "1.2.840.10008.1.2.4.50", "1.2.840.10008.1.2.4.70",
)
CANNOT_ENCODE = "IDS cannot encode the pixel data using any of the requested transfer syntaxes"


def series_of(study: Study) -> dict[str, list[Series]]:
    out: dict[str, Series] = {}
    for f in study.files:
        h = pydicom.dcmread(f, stop_before_pixels=True)
        out.setdefault(h.SeriesInstanceUID, Series(h.SeriesInstanceUID, [])).instances.append(h.SOPInstanceUID)
    return {study.uid: list(out.values())}


def rad69(node: ImagingNode, body: bytes) -> RetrieveAnswer:
    r = node.client.post("/xds/imaging", content=body, headers={"content-type": "application/soap+xml"})
    assert r.status_code == 200, r.text[:2000]
    return read_retrieve(r.headers["content-type"], r.content)


@pytest.fixture
def stored(imaging_node: ImagingNode, tmp_path: Path) -> Study:
    study = make_study(tmp_path / "src", Patient("MRN500", "5000000000"), "ACC500",
                       ((CT, 3, True), (MR, 2, False), (PDF, 1, True)))
    assert set(c_store(imaging_node.port, study.files)) == {0}
    return study


def test_every_instance_comes_back_byte_identical_in_its_stored_syntax(imaging_node: ImagingNode, stored: Study) -> None:
    answer = rad69(imaging_node, retrieve_imaging(IMAGING_ID, series_of(stored), [EXPLICIT, IMPLICIT]))
    assert (answer.action, answer.status, answer.errors) == ("urn:ihe:iti:2007:RetrieveDocumentSetResponse", "Success", [])
    assert set(answer.documents) == {f.stem for f in stored.files}
    for f in stored.files:
        assert dataset_bytes(answer.documents[f.stem]) == dataset_bytes(f.read_bytes())
    assert set(answer.mime_types.values()) == {"application/dicom"}


def test_uncompressed_instances_are_transcoded_to_the_listed_syntax(imaging_node: ImagingNode, stored: Study) -> None:
    for wanted in (IMPLICIT, EXPLICIT):
        answer = rad69(imaging_node, retrieve_imaging(IMAGING_ID, series_of(stored), [JPEG_BASELINE, wanted]))
        assert (answer.status, answer.errors) == ("Success", [])
        for f in stored.files:
            got = pydicom.dcmread(io.BytesIO(answer.documents[f.stem]))
            sent = pydicom.dcmread(f)
            assert got.file_meta.TransferSyntaxUID == wanted
            assert got.SOPInstanceUID == sent.SOPInstanceUID and got.PatientID == sent.PatientID
            if "PixelData" in sent:
                assert got.PixelData == sent.PixelData


def test_no_acceptable_syntax_is_XDSRepositoryError_per_instance(imaging_node: ImagingNode, stored: Study) -> None:
    answer = rad69(imaging_node, retrieve_imaging(IMAGING_ID, series_of(stored), [JPEG_BASELINE, JPEG_LOSSLESS]))
    assert answer.status == "Failure" and answer.documents == {}
    assert sorted(answer.errors) == sorted(("XDSRepositoryError", f.stem, CANNOT_ENCODE) for f in stored.files)


def test_unknown_instances_and_repositories_give_PartialSuccess_with_per_document_errors(
    imaging_node: ImagingNode, stored: Study
) -> None:
    studies = series_of(stored)
    [first, second, _] = studies[stored.uid]
    request = {
        stored.uid: [Series(first.uid, [first.instances[0], "1.2.3.999"]), Series(second.uid, [first.instances[1]])],
        "1.2.3.4.5": [Series("1.2.3.4.6", [second.instances[0]])],
    }
    answer = rad69(imaging_node, retrieve_imaging(IMAGING_ID, request, [EXPLICIT, IMPLICIT], home_community_id="urn:oid:1.2.3"))
    assert answer.status == "PartialSuccess"
    assert list(answer.documents) == [first.instances[0]]
    assert sorted(answer.errors) == sorted([
        ("XDSDocumentUniqueIdError", "1.2.3.999", "Document '1.2.3.999' is not available"),
        ("XDSDocumentUniqueIdError", first.instances[1], f"Document '{first.instances[1]}' is not available"),
        ("XDSDocumentUniqueIdError", second.instances[0], f"Document '{second.instances[0]}' is not available"),
    ])
    other = rad69(imaging_node, retrieve_imaging("1.2.3.4", studies, [EXPLICIT]))
    assert other.status == "Failure"
    assert {code for code, _, _ in other.errors} == {"XDSUnknownRepositoryId"}
    assert len(other.errors) == len(stored.files)


def test_a_request_without_document_requests_is_a_sender_fault(imaging_node: ImagingNode) -> None:
    r = imaging_node.client.post("/xds/imaging", content=retrieve_imaging(IMAGING_ID, {}, [EXPLICIT]),
                                 headers={"content-type": "application/soap+xml"})
    assert r.status_code == 400 and b"Sender" in r.content
