"""Imaging Document Source publication (RAD-68): XDS-I.b metadata from the DICOM header, the quiet
period, the explicit trigger, replacement manifests (RPLC), and the registry finding them (ITI-18)."""

from __future__ import annotations

import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.imaging.conftest import (
    IMAGING_ID,
    REPOSITORY_ID,
    ImagingNode,
    c_store,
    node_config,
    serve,
    wait_for,
)
from tests.imaging.studies import CT, HN_AUTHORITY, LOCAL_AUTHORITY, MR, SC, Patient, make_study
from tests.imaging.wire import document_unique_ids, find_documents, find_documents_by_reference_id
from xds.imaging import kos
from xds.imaging.publish import PublishError, PublishSettings, build_submission, dicom_dtm
from xds.metadata import model as m

SETTINGS = PublishSettings(affinity_domain=HN_AUTHORITY, source_id=IMAGING_ID)


def header(tmp_path: Path, patient: Patient, accession: str = "ACC300") -> Dataset:
    study = make_study(tmp_path / "src", patient, accession, ((CT, 1, True),))
    return pydicom.dcmread(study.files[0], stop_before_pixels=True)


def submission_for(h: Dataset, settings: PublishSettings = SETTINGS, **kw: object) -> tuple[m.Submission, m.DocumentEntry]:
    ref = kos.Reference(h.StudyInstanceUID, h.SeriesInstanceUID, h.SOPClassUID, h.SOPInstanceUID)
    manifest = kos.build_manifest(h, [ref], retrieve_location_uid=IMAGING_ID)
    return build_submission(manifest, h, ["CT", "MR", "CT", "SR"], settings, **kw)  # type: ignore[arg-type]


def test_document_entry_metadata_comes_from_the_dicom_header(tmp_path: Path) -> None:
    h = header(tmp_path, Patient("MRN300", "3333333333"))
    sub, de = submission_for(h)
    assert de.patient_id == f"3333333333^^^&{HN_AUTHORITY}&ISO"
    assert de.source_patient_id == f"MRN300^^^&{LOCAL_AUTHORITY}&ISO"
    assert de.source_patient_info == [f"PID-3|MRN300^^^&{LOCAL_AUTHORITY}&ISO", "PID-5|Tremblay^Marie", "PID-7|19700312", "PID-8|F"]
    assert de.reference_ids == [
        f"{h.StudyInstanceUID}^^^^urn:ihe:iti:xds:2016:studyInstanceUID",
        f"ACC300^^^&{LOCAL_AUTHORITY}&ISO^urn:ihe:iti:xds:2013:accession",
    ]
    assert de.mime_type == "application/dicom"
    assert de.format_code == m.Code("1.2.840.10008.5.1.4.1.1.88.59", "1.2.840.10008.2.6.1", "Key Object Selection Document")
    assert [c.code for c in de.event_codes] == ["CT", "MR"]
    assert {c.scheme for c in de.event_codes} == {"1.2.840.10008.2.16.4"}
    assert de.service_start_time == "20240115101530"
    assert de.class_code == SETTINGS.class_code and de.type_code == SETTINGS.type_code
    assert de.authors[0].institutions == ["Toronto General Hospital"]
    assert sub.submission_set.patient_id == de.patient_id and sub.submission_set.source_id == IMAGING_ID
    [member] = sub.associations
    assert (member.association_type, member.source, member.target) == (m.HAS_MEMBER, sub.submission_set.entry_uuid, de.entry_uuid)


def test_patient_id_is_taken_when_its_issuer_is_the_affinity_domain(tmp_path: Path) -> None:
    h = header(tmp_path, Patient("4444444444", issuer=HN_AUTHORITY))
    _, de = submission_for(h)
    assert de.patient_id == f"4444444444^^^&{HN_AUTHORITY}&ISO" == de.source_patient_id


def test_issuer_qualifiers_sequence_and_configured_namespaces_name_the_issuer(tmp_path: Path) -> None:
    h = header(tmp_path, Patient("5555555555", issuer="OHIP"))
    with pytest.raises(PublishError, match="affinity domain"):
        submission_for(h)
    q = Dataset()
    q.UniversalEntityID, q.UniversalEntityIDType = HN_AUTHORITY, "ISO"
    h.IssuerOfPatientIDQualifiersSequence = Sequence([q])
    assert submission_for(h)[1].patient_id == f"5555555555^^^&{HN_AUTHORITY}&ISO"
    del h.IssuerOfPatientIDQualifiersSequence
    mapped = PublishSettings(affinity_domain=HN_AUTHORITY, issuer_oids={"OHIP": HN_AUTHORITY})
    assert submission_for(h, mapped)[1].patient_id == f"5555555555^^^&{HN_AUTHORITY}&ISO"


def test_a_replacement_manifest_carries_an_rplc_association(tmp_path: Path) -> None:
    h = header(tmp_path, Patient("MRN301", "3010000000"))
    sub, de = submission_for(h, replaces="urn:uuid:11111111-2222-3333-4444-555555555555")
    rplc = [a for a in sub.associations if a.association_type == m.RPLC]
    assert [(a.source, a.target) for a in rplc] == [(de.entry_uuid, "urn:uuid:11111111-2222-3333-4444-555555555555")]


@pytest.mark.parametrize(
    ("date", "time", "offset", "dtm"),
    [
        ("20240115", "101530.123", "", "20240115101530"),
        ("20240115", "1015", "", "202401151015"),
        ("20240115", "", "", "20240115"),
        ("20240115", "231530", "-0500", "20240116041530"),
        ("", "101530", "", None),
    ],
)
def test_dicom_date_and_time_become_an_xds_dtm(date: str, time: str, offset: str, dtm: str | None) -> None:
    assert dicom_dtm(date, time, offset) == dtm


def test_a_quiet_study_is_published_and_found_by_patient_and_by_study_instance_uid(imaging_node: ImagingNode, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", Patient("MRN302", "3020000000"), "ACC302", ((CT, 2, True), (MR, 2, False)))
    imaging_node.feed(study.patient.affinity_id)
    assert c_store(imaging_node.port, study.files) == [0, 0, 0, 0]
    published = imaging_node.published(study)
    assert published and published.publish_error is None

    found = document_unique_ids(imaging_node.soap("/xds/registry", find_documents(study.patient.affinity_id)).content)
    assert found == [published.manifest_uid]
    by_study = find_documents_by_reference_id(
        study.patient.affinity_id, f"{study.uid}^^^^urn:ihe:iti:xds:2016:studyInstanceUID"
    )
    assert document_unique_ids(imaging_node.soap("/xds/registry", by_study).content) == [published.manifest_uid]
    held = imaging_node.node.components["repository"].index.get(published.manifest_uid)
    assert held is not None and held.registered and held.mime_type == "application/dicom"
    with imaging_node.node.components["repository"].store.open(held.storage_key) as f:
        manifest = pydicom.dcmread(f)
    refs = {r.ReferencedSOPInstanceUID for s in manifest.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
            for r in s.ReferencedSOPSequence}
    assert refs == {f.stem for f in study.files}


def test_instances_after_publication_produce_a_replacement_manifest(imaging_node: ImagingNode, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", Patient("MRN303", "3030000000"), "ACC303", ((CT, 2, True), (SC, 1, True)))
    imaging_node.feed(study.patient.affinity_id)
    c_store(imaging_node.port, study.files[:2])
    first = imaging_node.published(study)
    assert first
    c_store(imaging_node.port, study.files[2:])
    second = imaging_node.published(study, revision=first.revision + 1)
    assert second and second.manifest_uid != first.manifest_uid

    store = imaging_node.registry.store
    [old] = store.document_entries_by_unique_id(first.manifest_uid)
    [new] = store.document_entries_by_unique_id(second.manifest_uid)
    assert old.status == m.STATUS_DEPRECATED and new.status == m.STATUS_APPROVED
    found = document_unique_ids(imaging_node.soap("/xds/registry", find_documents(study.patient.affinity_id)).content)
    assert found == [second.manifest_uid]


def test_explicit_trigger_publishes_before_the_quiet_period(tmp_path: Path) -> None:
    with serve(node_config(tmp_path / "node", study_quiet_seconds=3600)) as n:
        study = make_study(tmp_path / "src", Patient("MRN304", "3040000000"), "ACC304", ((CT, 1, True),))
        n.feed(study.patient.affinity_id)
        c_store(n.port, study.files)
        assert n.imaging.instances.study(study.uid).needs_manifest
        manifest = n.imaging.publisher.publish(study.uid)
        assert not n.imaging.instances.study(study.uid).needs_manifest
        [row] = n.registry.store.document_entries_by_unique_id(str(manifest.dataset.SOPInstanceUID))
        assert row.repository_unique_id == REPOSITORY_ID


def test_a_study_without_an_affinity_domain_id_is_held_back_with_the_reason(imaging_node: ImagingNode, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", Patient("MRN305"), "ACC305", ((CT, 1, True),))
    c_store(imaging_node.port, study.files)
    row = wait_for(lambda: (s := imaging_node.imaging.instances.study(study.uid)) and s.publish_error and s)
    assert "affinity domain" in row.publish_error and row.needs_manifest


def test_a_registry_refusal_is_recorded_and_retried(imaging_node: ImagingNode, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", Patient("MRN306", "3060000000"), "ACC306", ((CT, 1, True),))
    c_store(imaging_node.port, study.files)  # no ITI-8 feed yet: XDSUnknownPatientId
    row = wait_for(lambda: (s := imaging_node.imaging.instances.study(study.uid)) and s.publish_error and s)
    assert "XDSUnknownPatientId" in row.publish_error
    imaging_node.feed(study.patient.affinity_id)
    imaging_node.imaging.publisher.publish(study.uid)
    assert not imaging_node.imaging.instances.study(study.uid).needs_manifest


def test_a_study_held_back_for_retry_does_not_delay_the_next_studys_manifest(imaging_node: ImagingNode, tmp_path: Path) -> None:
    held = make_study(tmp_path / "held", Patient("MRN307"), "ACC307", ((CT, 1, True),))  # no affinity-domain id
    c_store(imaging_node.port, held.files)
    wait_for(lambda: (s := imaging_node.imaging.instances.study(held.uid)) and s.publish_error)
    study = make_study(tmp_path / "next", Patient("MRN308", "3080000000"), "ACC308", ((CT, 1, True),))
    imaging_node.feed(study.patient.affinity_id)
    c_store(imaging_node.port, study.files)
    published = wait_for(lambda: not imaging_node.imaging.instances.study(study.uid).needs_manifest, timeout=10)
    assert published  # well before the held study's retry (60 s)


def test_instances_of_a_pending_study_do_not_wake_the_publisher_one_by_one(tmp_path: Path) -> None:
    with serve(node_config(tmp_path / "node", study_quiet_seconds=3600)) as n:
        checks: list[float] = []
        store = n.imaging.instances
        studies_due = store.studies_due
        store.studies_due = lambda *a, **k: checks.append(time.time()) or studies_due(*a, **k)  # type: ignore[method-assign]
        study = make_study(tmp_path / "src", Patient("MRN309", "3090000000"), "ACC309", ((CT, 20, True),))
        assert c_store(n.port, study.files) == [0] * 20
        time.sleep(0.3)
        assert len(checks) <= 1
