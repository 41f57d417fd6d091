"""The node's DICOM listener under TLS (its ``dicom`` context handed to pynetdicom) and its audit
trail: DICOM Instances Transferred (110104) per study per association, Security Alert for a refused
handshake. In-process node (Starlette's TestClient), no HTTP traffic."""

from __future__ import annotations

import dataclasses
import ssl
from collections.abc import Iterator

import pydicom
import pytest
from lxml import etree
from pynetdicom import AE

from tests.imaging.conftest import AE_TITLE, ImagingNode, node_config, serve
from tests.imaging.studies import CT, MR, Patient, Study, make_study
from tests.security import flows
from xds.audit.message import validate
from xds.config import TlsConfig


def store(port: int, study: Study, tls: ssl.SSLContext | None, calling: str = "PACS") -> list[int] | None:
    """C-STORE every file of ``study`` in one association; None when it was not established."""
    return store_datasets(port, [pydicom.dcmread(f) for f in study.files], tls, calling)


def store_datasets(port: int, datasets: list[pydicom.Dataset], tls: ssl.SSLContext | None = None,
                   calling: str = "PACS") -> list[int] | None:
    """C-STORE ``datasets`` (as they are, however broken) in one association."""
    ae = AE(ae_title=calling)
    ae.acse_timeout = ae.network_timeout = 5
    for sop_class, ts in {(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets}:
        ae.add_requested_context(sop_class, ts)
    assoc = ae.associate("127.0.0.1", port, ae_title=AE_TITLE, tls_args=(tls, "localhost") if tls else None)
    if not assoc.is_established:
        return None
    try:
        return [int(assoc.send_c_store(d).Status) for d in datasets]
    finally:
        assoc.release()


def messages(node: ImagingNode, transaction: str | None = None) -> list[etree._Element]:
    return flows.audit_messages(node.node.config.data_path("audit.sqlite").parent, transaction)


def transferred(node: ImagingNode, study: Study) -> list[etree._Element]:
    def found() -> list[etree._Element]:
        return [m for m in messages(node, "C-STORE") if study.uid in flows.objects(m).get("110180", [])]

    flows.wait_until(lambda: bool(found()), timeout=5)
    return found()


def sop_uids(study: Study) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in study.files}


@pytest.fixture(scope="module")
def tls_node(tmp_path_factory, dev_pki) -> Iterator[ImagingNode]:
    cfg = node_config(tmp_path_factory.mktemp("dicom-tls") / "node", host="127.0.0.1")
    tls = TlsConfig(enabled=True, cert=dev_pki.path("node"), key=dev_pki.path("node", "key"), ca=dev_pki.path("ca"))
    with serve(dataclasses.replace(cfg, tls=tls)) as n:
        yield n


def test_trusted_client_certificate_stores_and_the_transfer_is_audited(tls_node, dev_pki, tmp_path):
    study = make_study(tmp_path, Patient("MRN-TLS", flows.new_hn()), "ACC-TLS", ((CT, 2, False), (MR, 1, True)))
    assert store(tls_node.port, study, dev_pki.client_context("pacs")) == [0, 0, 0]
    assert tls_node.imaging.instances.study(study.uid) is not None
    [m] = transferred(tls_node, study)
    assert validate(m) == []
    assert m.find("EventIdentification/EventID").get("csd-code") == "110104"
    assert m.find("EventIdentification").get("EventActionCode") == "C"
    assert m.find("EventIdentification").get("EventOutcomeIndicator") == "0"
    objects = flows.objects(m)
    assert objects["110180"] == [study.uid] and objects["2"] == [study.patient.affinity_id]
    assert {i.get("UID") for i in m.iter("Instance")} == sop_uids(study)
    sender = next(ap for ap in m.findall("ActiveParticipant") if ap.find("RoleIDCode").get("csd-code") == "110153")
    assert (sender.get("UserID"), sender.get("UserIsRequestor"), sender.get("NetworkAccessPointID")) == (
        "PACS", "true", "127.0.0.1")
    assert "CN=pacs" in sender.get("UserName", "")
    receiver = next(ap for ap in m.findall("ActiveParticipant") if ap.find("RoleIDCode").get("csd-code") == "110152")
    assert receiver.get("UserID").startswith(f"dicom://{AE_TITLE}@")


@pytest.mark.parametrize("cert", ["stranger", None])
def test_untrusted_or_missing_client_certificate_is_refused_with_a_security_alert(tls_node, dev_pki, tmp_path, cert):
    before = len(messages(tls_node))
    study = make_study(tmp_path, Patient("MRN-NO", flows.new_hn()), "ACC-NO", ((CT, 1, False),))
    assert store(tls_node.port, study, dev_pki.client_context(cert)) is None
    assert tls_node.imaging.instances.study(study.uid) is None

    def alerts() -> list[etree._Element]:
        return [m for m in messages(tls_node)[before:] if flows.event_codes(m)[0] == "110113"]

    assert flows.wait_until(lambda: bool(alerts()), timeout=5)
    [alert] = alerts()
    assert validate(alert) == []
    assert flows.event_codes(alert)[1] == "110126"
    assert alert.find("EventIdentification").get("EventOutcomeIndicator") == "4"
    assert flows.objects(alert)["12"][0].startswith(f"dicom://{AE_TITLE}@")


def test_plain_listener_audits_one_record_per_study_of_an_association(tmp_path):
    with serve(node_config(tmp_path / "node", host="127.0.0.1")) as node:
        first = make_study(tmp_path / "a", Patient("MRN-A", flows.new_hn()), "ACC-A", ((CT, 1, False),))
        second = make_study(tmp_path / "b", Patient("MRN-B", flows.new_hn()), "ACC-B", ((MR, 2, True),))
        both = Study(first.patient, "", uid="", files=first.files + second.files)
        assert store(node.port, both, None) == [0, 0, 0]
        for study in (first, second):
            [m] = transferred(node, study)
            assert flows.objects(m)["2"] == [study.patient.affinity_id]
            assert {i.get("UID") for i in m.iter("Instance")} == sop_uids(study)


# --- the outcome of a transfer: what the C-STOREs of each study came to (PS3.15 A.5.1) -------------


def without(path, *keywords: str) -> pydicom.Dataset:
    ds = pydicom.dcmread(path)
    for keyword in keywords:
        delattr(ds, keyword)
    return ds


def outcome(m: etree._Element) -> tuple[str, str]:
    ev = m.find("EventIdentification")
    return ev.get("EventOutcomeIndicator"), ev.findtext("EventOutcomeDescription") or ""


@pytest.fixture(scope="module")
def plain_node(tmp_path_factory) -> Iterator[ImagingNode]:
    with serve(node_config(tmp_path_factory.mktemp("dicom-outcome") / "node", host="127.0.0.1")) as n:
        yield n


def test_a_study_with_some_instances_refused_is_a_minor_failure_naming_what_failed(plain_node, tmp_path):
    study = make_study(tmp_path, Patient("MRN-P", flows.new_hn()), "ACC-P", ((CT, 3, False),))
    broken = without(study.files[1], "SeriesInstanceUID")
    datasets = [pydicom.dcmread(study.files[0]), broken, pydicom.dcmread(study.files[2])]
    assert store_datasets(plain_node.port, datasets) == [0, 0xC000, 0]
    [m] = transferred(plain_node, study)
    assert validate(m) == []
    indicator, description = outcome(m)
    assert indicator == "4"
    assert "1 of 3 instances not stored" in description and "C000" in description and "SeriesInstanceUID" in description
    assert str(broken.SOPInstanceUID) in description
    assert {i.get("UID") for i in m.iter("Instance")} == sop_uids(study) - {str(broken.SOPInstanceUID)}
    assert flows.objects(m)["2"] == [study.patient.affinity_id]
    assert study.patient.mrn not in description


def test_a_study_whose_every_instance_was_refused_is_a_serious_failure(plain_node, tmp_path):
    study = make_study(tmp_path, Patient("MRN-S", flows.new_hn()), "ACC-S", ((CT, 2, False),))
    assert store_datasets(plain_node.port, [without(f, "SeriesInstanceUID") for f in study.files]) == [0xC000] * 2
    [m] = transferred(plain_node, study)
    assert validate(m) == []
    indicator, description = outcome(m)
    assert indicator == "8" and "2 of 2 instances not stored" in description
    assert list(m.iter("Instance")) == []


def test_a_study_the_node_could_not_store_is_a_major_failure(plain_node, tmp_path, monkeypatch):
    study = make_study(tmp_path, Patient("MRN-F", flows.new_hn()), "ACC-F", ((CT, 2, False),))

    def disk_full(data: bytes, calling_ae: str = "", received_at: float | None = None):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(plain_node.imaging.instances, "add", disk_full)
    assert store_datasets(plain_node.port, [pydicom.dcmread(f) for f in study.files]) == [0xA700] * 2
    [m] = transferred(plain_node, study)
    assert validate(m) == []
    indicator, description = outcome(m)
    assert indicator == "12" and "A700" in description and "No space" not in description


def test_data_sets_without_a_readable_study_are_audited_apart(plain_node, tmp_path):
    study = make_study(tmp_path, Patient("MRN-U", flows.new_hn()), "ACC-U", ((CT, 2, False),))
    orphan = without(study.files[1], "StudyInstanceUID")
    before = len(messages(plain_node, "C-STORE"))
    assert store_datasets(plain_node.port, [pydicom.dcmread(study.files[0]), orphan]) == [0, 0xC000]
    [m] = transferred(plain_node, study)
    assert outcome(m) == ("0", "")

    def unknown() -> list[etree._Element]:
        return [x for x in messages(plain_node, "C-STORE")[before:] if flows.objects(x).get("110180") == ["unknown"]]

    assert flows.wait_until(lambda: bool(unknown()), timeout=5)
    [u] = unknown()
    assert validate(u) == []
    indicator, description = outcome(u)
    assert indicator == "8" and str(orphan.SOPInstanceUID) in description and "StudyInstanceUID" in description


def test_an_association_from_an_unknown_calling_ae_is_a_security_alert(tmp_path):
    cfg = node_config(tmp_path / "node", host="127.0.0.1", reject_unknown_calling_ae=True, calling_ae_titles=["PACS"])
    with serve(cfg) as node:
        study = make_study(tmp_path / "s", Patient("MRN-R", flows.new_hn()), "ACC-R", ((CT, 1, False),))
        assert store_datasets(node.port, [pydicom.dcmread(study.files[0])], calling="ROGUE") is None
        assert store_datasets(node.port, [pydicom.dcmread(study.files[0])], calling="PACS") == [0]

        def alerts() -> list[etree._Element]:
            return [m for m in messages(node) if m.find("EventIdentification/EventID").get("csd-code") == "110113"]

        assert flows.wait_until(lambda: bool(alerts()), timeout=5)
        [alert] = alerts()
        assert validate(alert) == []
        assert flows.event_codes(alert) == ("110113", "110126", "E", "4")
        assert "'ROGUE' is not accepted" in outcome(alert)[1]
        performer = next(ap for ap in alert.findall("ActiveParticipant") if ap.get("UserIsRequestor") == "true")
        assert performer.get("AlternativeUserID") == "AETITLES=ROGUE"
        assert outcome(transferred(node, study)[0])[0] == "0"
