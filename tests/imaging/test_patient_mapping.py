"""Mapping at ingest for DICOM studies (docs/identity.md, issue 6 item 3): a study that carries
only its hospital's Patient ID + Issuer of Patient ID is registered under the health number the
ADT feed links to that couplet, the couplet kept as sourcePatientId; a couplet with no HN yet is
held in the identity layer's queue (or refused), and published once the ADT arrives; a header HN
that disagrees with the identity store loses to it, and that is logged and audited."""

from __future__ import annotations

import asyncio
import io
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pydicom
import pytest
from lxml import etree

from tests.identity.conftest import HN_OID, HOSPA_OID, HOSPB_OID, adt, hn, identity_config, pid_hn, pid_local
from tests.imaging.conftest import ImagingNode, c_store, node_config, serve, wait_for
from tests.imaging.studies import CT, MR, Patient, make_study
from tests.registry.stored_query_data import ask, q1, qs
from xds.hl7.patient_feed import PatientIdentityFeed
from xds.identity.schema import RELEASED
from xds.imaging.patient import DICOM_STUDY
from xds.imaging.scp import CANNOT_UNDERSTAND
from xds.metadata import model as m
from xds.namespaces import RIM

EXTERNAL_ID_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"


@pytest.fixture
def node(tmp_path: Path) -> Iterator[ImagingNode]:
    cfg = node_config(tmp_path / "node")
    cfg.identity = identity_config()
    with serve(cfg) as n:
        yield n


def send_adt(node: ImagingNode, raw: bytes) -> None:
    identity = node.registry.identity
    handler = PatientIdentityFeed(identity.domain, identity.feed, "XDSREG", "HDIRS", pix=identity.pix)
    ack = asyncio.run(handler.handle(raw)).decode()
    assert "MSA|AA" in ack, ack


def local_patient(mrn: str, issuer: str = "HOSPA", **kw: object) -> Patient:
    return Patient(mrn, issuer=issuer, **kw)  # type: ignore[arg-type]


def find_documents(node: ImagingNode, patient_id: str) -> dict[str, etree._Element]:
    """FindDocuments (ITI-18) under ``patient_id``: uniqueId -> ExtrinsicObject."""
    answer = ask(node.registry.engine, "FindDocuments", [("$XDSDocumentEntryPatientId", q1(patient_id)),
                 ("$XDSDocumentEntryStatus", qs(m.STATUS_APPROVED))], config=node.registry.settings)
    assert answer.status == "Success", answer.error_codes
    out = {}
    for eo in answer.element.iter(f"{{{RIM}}}ExtrinsicObject"):
        [uid] = [e.get("value") for e in eo.iter(f"{{{RIM}}}ExternalIdentifier")
                 if e.get("identificationScheme") == EXTERNAL_ID_UNIQUE_ID]
        out[uid] = eo
    return out


def slot(eo: etree._Element, name: str) -> list[str]:
    return [v.text for s in eo.iter(f"{{{RIM}}}Slot") if s.get("name") == name
            for v in s.iter(f"{{{RIM}}}Value")]


def manifest_of(node: ImagingNode, unique_id: str) -> pydicom.Dataset:
    repository = node.node.components["repository"]
    doc = repository.index.get(unique_id)
    with repository.store.open(doc.storage_key) as f:
        return pydicom.dcmread(io.BytesIO(f.read()))


def other_patient_ids(ds: pydicom.Dataset) -> list[tuple[str, str]]:
    return [(str(i.PatientID), str(i.IssuerOfPatientID)) for i in ds.get("OtherPatientIDsSequence", [])]


def test_a_study_with_only_a_local_couplet_is_registered_under_the_hn_its_adt_linked(node: ImagingNode,
                                                                                      tmp_path: Path) -> None:
    send_adt(node, adt("A01", f"{pid_local('MRN-M1')}~{pid_hn('1111111111')}"))
    study = make_study(tmp_path / "s", local_patient("MRN-M1"), "ACC-M1")
    assert set(c_store(node.port, study.files)) == {0}
    assert node.published(study) is not None

    [(uid, eo)] = find_documents(node, hn("1111111111")).items()
    assert slot(eo, "sourcePatientId") == [f"MRN-M1^^^&{HOSPA_OID}&ISO"]
    # the manifest names the patient it is registered under; its Patient ID stays the hospital's
    kos = manifest_of(node, uid)
    assert (kos.PatientID, kos.IssuerOfPatientID) == ("MRN-M1", "HOSPA")
    assert other_patient_ids(kos) == [("1111111111", HN_OID)]
    # queried by the local couplet, the node answers the HN's record
    assert set(find_documents(node, f"MRN-M1^^^&{HOSPA_OID}&ISO")) == {uid}
    # the audit trail names the HN too (DICOM Instances Transferred, when the association closes)
    audit = node.node.components["audit"]
    assert wait_for(lambda: "C-STORE" in {a.transaction for a in audit.store.accesses(patient=hn("1111111111"))})


def test_an_hn_correction_by_adt_moves_the_studys_manifest(node: ImagingNode, tmp_path: Path) -> None:
    send_adt(node, adt("A01", f"{pid_local('MRN-M2')}~{pid_hn('2222222222')}"))
    study = make_study(tmp_path / "s", local_patient("MRN-M2"), "ACC-M2", ((CT, 2, True),))
    c_store(node.port, study.files)
    assert node.published(study) is not None
    [uid] = find_documents(node, hn("2222222222"))

    send_adt(node, adt("A08", f"{pid_local('MRN-M2')}~{pid_hn('2222222229')}"))
    assert find_documents(node, hn("2222222222")) == {}
    assert set(find_documents(node, hn("2222222229"))) == {uid}


def test_a_study_before_its_adt_is_held_once_and_published_when_the_adt_arrives(node: ImagingNode,
                                                                                 tmp_path: Path) -> None:
    patient = local_patient("MRN-M3")
    study = make_study(tmp_path / "s", patient, "ACC-M3", ((CT, 2, True),))
    c_store(node.port, study.files)
    mapping = node.registry.identity.mapping
    wait_for(lambda: mapping.held())
    s = wait_for(lambda: (st := node.imaging.instances.study(study.uid)) and st.publish_error and st)
    assert s.publish_error.startswith("held:") and s.manifest_uid is None
    # more instances of the held study: still one held item
    more = make_study(tmp_path / "more", patient, "ACC-M3", ((MR, 1, True),))
    for f in more.files:  # the same study
        ds = pydicom.dcmread(f)
        ds.StudyInstanceUID = study.uid
        ds.save_as(f)
    c_store(node.port, more.files)
    # looked at again after its quiet period, and put back to wait (its next look an hour away)
    again = wait_for(lambda: (st := node.imaging.instances.study(study.uid)) and st.revision == s.revision + 1
                     and st.last_received > time.time() + 600 and st)
    assert again and again.publish_error.startswith("held:")
    [held] = mapping.held()
    assert (held.kind, held.payload, held.patient_id, held.issuer) == (DICOM_STUDY, study.uid.encode(), "MRN-M3",
                                                                      HOSPA_OID)
    assert "MRN-M3" not in held.summary  # no patient data in the operators' summary

    send_adt(node, adt("A04", f"{pid_local('MRN-M3')}~{pid_hn('3333333333')}"))
    published = node.published(study, revision=again.revision)
    assert published is not None and published.publish_error is None
    assert [h.status for h in mapping.held(status=None)] == [RELEASED]
    [(uid, eo)] = find_documents(node, hn("3333333333")).items()
    assert len(manifest_of(node, uid).ContentSequence) == 3


def test_a_couplet_without_hn_is_refused_at_c_store_when_the_policy_is_reject(tmp_path: Path, caplog) -> None:
    cfg = node_config(tmp_path / "node")
    cfg.identity = identity_config(unknown_local_id="reject")
    with serve(cfg) as node:
        study = make_study(tmp_path / "s", local_patient("MRN-M4"), "ACC-M4", ((CT, 2, True),))
        with caplog.at_level(logging.WARNING, logger="xds.imaging"):
            assert c_store(node.port, study.files) == [CANNOT_UNDERSTAND] * 2
        assert any("XDSUnknownPatientId" in r.getMessage() for r in caplog.records)
        assert node.imaging.instances.count() == 0 and list(node.imaging.instances.store.list()) == []
        assert node.registry.identity.mapping.held(status=None) == []
        # the PACS sends it again once the ADT is in
        send_adt(node, adt("A01", f"{pid_local('MRN-M4')}~{pid_hn('4040404040')}"))
        assert c_store(node.port, study.files) == [0, 0]
        assert node.published(study) is not None
        assert len(find_documents(node, hn("4040404040"))) == 1
        # an HN in the header's Other Patient IDs Sequence is enough
        node.feed(hn("4141414141"))
        with_hn = make_study(tmp_path / "h", local_patient("MRN-M41", hn="4141414141"), "ACC-M41", ((CT, 1, True),))
        assert c_store(node.port, with_hn.files) == [0]
        assert node.published(with_hn) is not None


def test_a_couplet_of_an_issuer_no_feed_sends_is_neither_published_nor_held(node: ImagingNode, tmp_path: Path) -> None:
    study = make_study(tmp_path / "s", local_patient("MRN-M5", issuer="ELSEWHERE"), "ACC-M5", ((CT, 1, True),))
    c_store(node.port, study.files)
    s = wait_for(lambda: (st := node.imaging.instances.study(study.uid)) and st.publish_error and st)
    assert "ELSEWHERE" in s.publish_error and "no identity feed" in s.publish_error
    assert node.registry.identity.mapping.held(status=None) == []


def test_the_same_patient_id_from_two_issuers_is_two_patients(node: ImagingNode, tmp_path: Path) -> None:
    send_adt(node, adt("A01", f"{pid_local('MRN-SAME')}~{pid_hn('4444444444')}"))
    send_adt(node, adt("A01", f"{pid_local('MRN-SAME', 'HOSPB')}~{pid_hn('5555555555')}", facility="HOSPB"))
    a = make_study(tmp_path / "a", local_patient("MRN-SAME"), "ACC-A", ((CT, 1, True),))
    b = make_study(tmp_path / "b", local_patient("MRN-SAME", issuer="HOSPB"), "ACC-B", ((CT, 1, True),))
    c_store(node.port, a.files + b.files)
    assert node.published(a) is not None and node.published(b) is not None
    [(in_a, eo_a)] = find_documents(node, hn("4444444444")).items()
    [(in_b, eo_b)] = find_documents(node, hn("5555555555")).items()
    assert in_a != in_b
    assert slot(eo_a, "sourcePatientId") == [f"MRN-SAME^^^&{HOSPA_OID}&ISO"]
    assert slot(eo_b, "sourcePatientId") == [f"MRN-SAME^^^&{HOSPB_OID}&ISO"]
    assert manifest_of(node, in_a).StudyInstanceUID == a.uid
    assert manifest_of(node, in_b).StudyInstanceUID == b.uid


def test_a_header_hn_that_disagrees_with_the_identity_store_loses_and_is_logged_and_audited(
    node: ImagingNode, tmp_path: Path, caplog
) -> None:
    send_adt(node, adt("A01", f"{pid_local('MRN-M6')}~{pid_hn('6666666666')}"))
    node.feed(hn("6666666669"))  # the header's HN is a known patient too: another one
    study = make_study(tmp_path / "s", local_patient("MRN-M6", hn="6666666669"), "ACC-M6", ((CT, 1, True),))
    with caplog.at_level(logging.WARNING, logger="xds.imaging"):
        c_store(node.port, study.files)
        assert node.published(study) is not None
    assert find_documents(node, hn("6666666669")) == {}
    [uid] = find_documents(node, hn("6666666666"))
    assert other_patient_ids(manifest_of(node, uid)) == [("6666666666", HN_OID)]
    assert any("another patient" in r.getMessage() and study.uid in r.getMessage() for r in caplog.records)
    assert not any("6666666669" in r.getMessage() for r in caplog.records)  # no patient data in the log
    audit = node.node.components["audit"]
    [event] = [a for a in audit.store.accesses(study=study.uid) if a.transaction == "RAD-68"]
    assert (event.action, event.outcome) == ("R", 4)
    assert [a.transaction for a in audit.store.accesses(patient=hn("6666666666"))].count("RAD-68") == 1


def test_a_header_hn_with_no_adt_for_its_couplet_is_used_as_sent(node: ImagingNode, tmp_path: Path) -> None:
    node.feed(hn("7777777777"))
    study = make_study(tmp_path / "s", local_patient("MRN-M7", hn="7777777777"), "ACC-M7", ((CT, 1, True),))
    c_store(node.port, study.files)
    assert node.published(study) is not None
    [(uid, eo)] = find_documents(node, hn("7777777777")).items()
    assert slot(eo, "sourcePatientId") == [f"MRN-M7^^^&{HOSPA_OID}&ISO"]


def test_an_adt_applied_while_the_study_is_being_held_still_releases_it(node: ImagingNode, tmp_path: Path,
                                                                        monkeypatch) -> None:
    mapping = node.registry.identity.mapping
    real_hold = mapping.hold

    def adt_first(*args: object, **kw: object) -> int:  # the ADT lands after the lookup, before the item
        send_adt(node, adt("A01", f"{pid_local('MRN-M8')}~{pid_hn('8080808080')}"))
        return real_hold(*args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(mapping, "hold", adt_first)
    study = make_study(tmp_path / "s", local_patient("MRN-M8"), "ACC-M8", ((CT, 1, True),))
    c_store(node.port, study.files)
    assert node.published(study) is not None
    assert len(find_documents(node, hn("8080808080"))) == 1
    assert [h.status for h in mapping.held(status=None)] == [RELEASED]
