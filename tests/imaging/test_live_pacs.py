"""End to end on a real node process (`xds serve`): a PACS sends a multi-series study (dcmtk's
storescu, or Orthanc through its REST API's C-STORE), the ITI-8 feed made the patient known, the
node publishes the study's KOS (RAD-68), a consumer finds it with ITI-18 (FindDocuments by patient,
FindDocumentsByReferenceId by Study Instance UID) and retrieves every instance byte-identical with
RAD-69. Orthanc also accepts and indexes our KOS."""

from __future__ import annotations

import io
import socket
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pydicom
import pytest

from tests.imaging.conftest import wait_for
from tests.imaging.orthanc import Orthanc, start_orthanc
from tests.imaging.studies import CT, HN_AUTHORITY, MR, PDF, SC, Patient, Study, dataset_bytes, make_study
from tests.imaging.wire import (
    SOAP_CT,
    Series,
    document_unique_ids,
    find_documents,
    find_documents_by_reference_id,
    read_retrieve,
    retrieve_document_set,
    retrieve_imaging,
)
from tests.live import LiveNode, live_node
from xds.imaging import kos
from xds.imaging.publish import PublishSettings, build_submission, over_soap
from xds.soap.message import Attachment

EXPLICIT, IMPLICIT = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LiveNode, dict]]:
    tmp = tmp_path_factory.mktemp("live-imaging")
    with live_node(tmp, overrides={"imaging": {"study_quiet_seconds": 1}}) as n:
        with open(tmp / "node.toml", "rb") as f:
            yield n, tomllib.load(f)


def admit(mllp_port: int, patient: Patient) -> None:
    """ITI-8 Patient Identity Feed: ADT^A01 with the health number and the hospital MRN in PID-3."""
    segments = [
        "MSH|^~\\&|ADT|TGH|XDSREG|HDIRS|20240115100000||ADT^A01^ADT_A01|" + patient.mrn + "|P|2.5",
        "EVN|A01|20240115100000",
        f"PID|||{patient.hn}^^^&{HN_AUTHORITY}&ISO~{patient.mrn}^^^&{patient.issuer}&ISO||Tremblay^Marie||19700312|F",
        "PV1||O",
    ]
    with socket.create_connection(("127.0.0.1", mllp_port), timeout=10) as s:
        s.sendall(b"\x0b" + "\r".join(segments).encode() + b"\r\x1c\r")
        ack = s.recv(4096)
    assert b"MSA|AA" in ack, ack


def storescu(port: int, study: Study, ae_title: str) -> None:
    # --required: propose each file's own transfer syntax, so the data sets go out unchanged
    r = subprocess.run(
        ["storescu", "--required", "-aet", "PACS_TGH", "-aec", ae_title, "127.0.0.1", str(port), *map(str, study.files)],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stderr


def soap(url: str, body: bytes) -> httpx.Response:
    r = httpx.post(url, content=body, headers={"content-type": SOAP_CT}, timeout=30)
    assert r.status_code == 200, r.text[:2000]
    return r


def test_storescu_study_is_published_found_and_retrieved_byte_identical(node, tmp_path: Path) -> None:
    live, cfg = node
    patient = Patient("MRN600", "6000000000")
    study = make_study(tmp_path / "src", patient, "ACC600",
                       ((CT, 4, True), (CT, 3, False), (MR, 2, True), (SC, 1, False), (PDF, 1, True)))
    admit(live.mllp_port, patient)
    storescu(cfg["imaging"]["port"], study, cfg["imaging"]["ae_title"])

    registry = live.url("/xds/registry")
    found = wait_for(lambda: document_unique_ids(soap(registry, find_documents(patient.affinity_id)).content), timeout=30)
    assert found and len(found) == 1
    [manifest_uid] = found
    by_study = find_documents_by_reference_id(patient.affinity_id, f"{study.uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID")
    assert document_unique_ids(soap(registry, by_study).content) == [manifest_uid]

    # the consumer reads the manifest (ITI-43) and asks for what it lists (RAD-69)
    iti43 = retrieve_document_set(cfg["repository"]["repository_unique_id"], manifest_uid)
    manifest = pydicom.dcmread(io.BytesIO(read_retrieve(*_post(live.url("/xds/repository"), iti43)).documents[manifest_uid]))
    requests: dict[str, list[Series]] = {}
    locations = set()
    for st in manifest.CurrentRequestedProcedureEvidenceSequence:
        for se in st.ReferencedSeriesSequence:
            locations.add(se.RetrieveLocationUID)
            requests.setdefault(st.StudyInstanceUID, []).append(
                Series(se.SeriesInstanceUID, [i.ReferencedSOPInstanceUID for i in se.ReferencedSOPSequence])
            )
    assert locations == {cfg["imaging"]["repository_unique_id"]}

    answer = read_retrieve(*_post(live.url("/xds/imaging"), retrieve_imaging(locations.pop(), requests, [EXPLICIT, IMPLICIT])))
    assert (answer.status, answer.errors) == ("Success", [])
    assert set(answer.documents) == {f.stem for f in study.files}
    for f in study.files:
        assert dataset_bytes(answer.documents[f.stem]) == dataset_bytes(f.read_bytes()), f.name


def _post(url: str, body: bytes) -> tuple[str, bytes]:
    r = httpx.post(url, content=body, headers={"content-type": SOAP_CT}, timeout=30)
    assert r.status_code == 200, r.text[:2000]
    return r.headers["content-type"], r.content


@pytest.fixture(scope="module")
def orthanc(node, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Orthanc]:
    _, cfg = node
    im = cfg["imaging"]
    pacs = start_orthanc(tmp_path_factory.mktemp("orthanc"), {"hdirs": (im["ae_title"], "127.0.0.1", im["port"])})
    try:
        yield pacs
    finally:
        pacs.stop()


def test_orthanc_pushes_a_study_that_is_published_found_and_retrieved_byte_identical(node, orthanc: Orthanc, tmp_path: Path) -> None:
    live, cfg = node
    patient = Patient("MRN700", "7000000000")
    study = make_study(tmp_path / "src", patient, "ACC700", ((MR, 3, True), (CT, 2, False), (SC, 1, True)))
    admit(live.mllp_port, patient)
    ids = [orthanc.upload(f.read_bytes()) for f in study.files]
    study_id = httpx.get(f"{orthanc.url}/instances/{ids[0]}/study", timeout=10).json()["ID"]
    orthanc.store("hdirs", study_id)

    registry = live.url("/xds/registry")
    found = wait_for(lambda: document_unique_ids(soap(registry, find_documents(patient.affinity_id)).content), timeout=30)
    assert found and len(found) == 1
    by_study = find_documents_by_reference_id(patient.affinity_id, f"{study.uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID")
    assert document_unique_ids(soap(registry, by_study).content) == found

    sent = {orthanc.tags(i)["SOPInstanceUID"]: orthanc.instance_file(i) for i in ids}
    requests: dict[str, Series] = {}
    for uid, data in sent.items():
        h = pydicom.dcmread(io.BytesIO(data), stop_before_pixels=True)
        requests.setdefault(h.SeriesInstanceUID, Series(h.SeriesInstanceUID, [])).instances.append(uid)
    rad69 = retrieve_imaging(cfg["imaging"]["repository_unique_id"], {study.uid: list(requests.values())}, [EXPLICIT, IMPLICIT])
    answer = read_retrieve(*_post(live.url("/xds/imaging"), rad69))
    assert (answer.status, answer.errors) == ("Success", [])
    assert {uid: dataset_bytes(d) for uid, d in answer.documents.items()} == {uid: dataset_bytes(d) for uid, d in sent.items()}


def test_orthanc_accepts_and_indexes_our_kos(node, orthanc: Orthanc, tmp_path: Path) -> None:
    live, cfg = node
    patient = Patient("MRN701", "7010000000")
    study = make_study(tmp_path / "src", patient, "ACC701", ((CT, 2, True),))
    admit(live.mllp_port, patient)
    storescu(cfg["imaging"]["port"], study, cfg["imaging"]["ae_title"])
    registry = live.url("/xds/registry")
    [manifest_uid] = wait_for(lambda: document_unique_ids(soap(registry, find_documents(patient.affinity_id)).content), timeout=30)
    iti43 = retrieve_document_set(cfg["repository"]["repository_unique_id"], manifest_uid)
    manifest = read_retrieve(*_post(live.url("/xds/repository"), iti43)).documents[manifest_uid]

    instance_id = orthanc.upload(manifest)
    tags = orthanc.tags(instance_id)
    assert (tags["SOPInstanceUID"], tags["SOPClassUID"], tags["Modality"]) == (manifest_uid, "1.2.840.10008.5.1.4.1.1.88.59", "KO")
    series = httpx.get(f"{orthanc.url}/instances/{instance_id}/study", timeout=10).json()
    assert series["MainDicomTags"]["StudyInstanceUID"] == study.uid


def test_a_manifest_is_published_over_soap_to_a_remote_repository(node, tmp_path: Path) -> None:
    live, cfg = node
    patient = Patient("MRN800", "8000000000")
    study = make_study(tmp_path / "src", patient, "ACC800", ((CT, 2, True),))
    h = pydicom.dcmread(study.files[0], stop_before_pixels=True)
    refs = [kos.Reference(h.StudyInstanceUID, h.SeriesInstanceUID, h.SOPClassUID, f.stem) for f in study.files]
    settings = PublishSettings(affinity_domain=HN_AUTHORITY, source_id="1.3.6.1.4.1.21367.13.71.999")
    manifest = kos.build_manifest(h, refs, retrieve_location_uid="1.3.6.1.4.1.21367.13.71.999")
    submission, entry = build_submission(manifest, h, ["CT"], settings)
    send = over_soap(live.url("/xds/repository"))
    document = {entry.entry_uuid: Attachment(data=kos.encode(manifest), content_type="application/dicom")}

    [refused] = send(submission, document)  # the registry does not know the patient yet
    assert refused.code == "XDSUnknownPatientId"
    admit(live.mllp_port, patient)
    assert send(submission, document) == []
    found = document_unique_ids(soap(live.url("/xds/registry"), find_documents(patient.affinity_id)).content)
    assert found == [str(manifest.SOPInstanceUID)]
