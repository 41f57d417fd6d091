"""The DICOM listener: C-ECHO, C-STORE of every storage SOP class a PACS feed sends, data sets kept
exactly as received, studies indexed, the calling-AE allow-list."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pydicom
from pynetdicom import AE, evt

from tests.imaging.conftest import AE_TITLE, ImagingNode, c_store, node_config, serve
from tests.imaging.studies import CR, CT, MR, PDF, SC, SR, Patient, dataset_bytes, make_study


def test_c_echo_is_answered(imaging_node: ImagingNode) -> None:
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", imaging_node.port, ae_title=AE_TITLE)
    assert assoc.is_established
    assert assoc.send_c_echo().Status == 0x0000
    assoc.release()


def test_c_store_keeps_each_data_set_as_received_and_indexes_the_study(imaging_node: ImagingNode, tmp_path: Path) -> None:
    study = make_study(
        tmp_path / "src",
        Patient("MRN100", "1111111116"),
        "ACC100",
        ((CT, 2, False), (MR, 1, True), (CR, 1, False), (SC, 1, True), (PDF, 1, True), (SR, 1, False)),
    )
    assert c_store(imaging_node.port, study.files) == [0] * len(study.files)

    store = imaging_node.imaging.instances
    held = store.instances(study.uid)
    assert len(held) == len(study.files)
    by_uid = {i.sop_instance_uid: i for i in held}
    for f in study.files:
        sent = f.read_bytes()
        inst = by_uid[f.stem]
        with store.open(inst) as stored:
            kept = stored.read()
        assert dataset_bytes(kept) == dataset_bytes(sent)
        assert inst.calling_ae == "PACS"
    row = store.study(study.uid)
    assert (row.patient_id, row.issuer_of_patient_id, row.accession_number) == ("MRN100", study.patient.issuer, "ACC100")
    assert sorted(store.series_modalities(study.uid).values()) == ["CR", "CT", "DOC", "MR", "OT", "SR"]
    assert {i.transfer_syntax_uid for i in held} == {"1.2.840.10008.1.2", "1.2.840.10008.1.2.1"}


def test_an_instance_sent_again_replaces_the_first_copy_without_a_new_revision(imaging_node: ImagingNode, tmp_path: Path) -> None:
    study = make_study(tmp_path / "src", Patient("MRN101"), "ACC101", ((CT, 1, True),))
    c_store(imaging_node.port, study.files)
    store = imaging_node.imaging.instances
    before = store.study(study.uid)
    c_store(imaging_node.port, study.files)
    assert store.count() == 1
    assert store.study(study.uid).revision == before.revision
    assert len(list(store.store.list())) == 1


def test_unknown_calling_ae_is_rejected_when_configured(tmp_path: Path) -> None:
    cfg = node_config(tmp_path / "node", reject_unknown_calling_ae=True, calling_ae_titles=["PACS_TGH"])
    study = make_study(tmp_path / "src", Patient("MRN102"), "ACC102", ((CT, 1, True),))
    with serve(cfg) as n:
        assert c_store(n.port, study.files, calling="INTRUDER") == []
        assert c_store(n.port, study.files, calling="PACS_TGH", called="OTHER") == []
        assert c_store(n.port, study.files, calling="PACS_TGH") == [0]
        assert n.imaging.instances.count() == 1


def test_every_read_is_acknowledged_at_once_so_a_nagling_scu_is_not_stalled(imaging_node: ImagingNode) -> None:
    # An SCU writing a PDU's header and data apart without TCP_NODELAY waits for the ACK of the
    # header; the default delayed ACK (40 ms on Linux) would stall every C-STORE.
    quick_ack: list[tuple[str, int]] = []

    def on_pdu(event: evt.Event) -> None:
        sock = event.assoc.dul.socket.socket
        quick_ack.append((type(event.pdu).__name__, sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK)))

    imaging_node.imaging.scp._server.bind(evt.EVT_PDU_RECV, on_pdu)
    ae = AE(ae_title="MODALITY")
    ae.add_requested_context("1.2.840.10008.1.1")
    assoc = ae.associate("127.0.0.1", imaging_node.port, ae_title=AE_TITLE)
    for _ in range(3):
        assert assoc.send_c_echo().Status == 0x0000
    assoc.release()
    deadline = time.monotonic() + 5
    while len(quick_ack) < 5 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [q for q in quick_ack if q[0] == "P_DATA_TF"] == [("P_DATA_TF", 1)] * 3


def test_a_studys_instances_share_one_store_directory(imaging_node: ImagingNode, tmp_path: Path) -> None:
    first = make_study(tmp_path / "a", Patient("MRN103"), "ACC103", ((CT, 3, True), (MR, 2, False)))
    second = make_study(tmp_path / "b", Patient("MRN104"), "ACC104", ((CT, 2, True),))
    c_store(imaging_node.port, first.files + second.files)
    store = imaging_node.imaging.instances
    for study in (first, second):
        held = store.instances(study.uid)
        assert len({store.store.path(i.storage_key).parent for i in held}) == 1
        assert len({i.storage_key for i in held}) == len(held)
    assert store.instances(first.uid)[0].storage_key[:4] != store.instances(second.uid)[0].storage_key[:4]


def test_a_data_set_with_an_undecodable_header_element_is_refused_with_cannot_understand(
    imaging_node: ImagingNode, tmp_path: Path, caplog
) -> None:
    # found by tests/fuzz: the header was decoded only after the parse, outside its error handling,
    # so the SCU got A700 (Out of Resources) and the log a stack trace
    import logging

    from pynetdicom import _config

    study = make_study(tmp_path / "src", Patient("MRN401", "4010000001"), "ACC401", ((CT, 1, True),))
    data = study.files[0].read_bytes()
    sop_instance_uid = b"\x08\x00\x18\x00UI"  # (0008,0018), explicit VR little endian
    assert sop_instance_uid in dataset_bytes(data)
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(data[:-len(dataset_bytes(data))] + dataset_bytes(data).replace(sop_instance_uid, b"\x08\x00\x18\x00UH"))
    ae = AE(ae_title="PACS")
    ae.add_requested_context(CT, "1.2.840.10008.1.2.1")
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True  # sent as it is on disk
    try:
        assoc = ae.associate("127.0.0.1", imaging_node.port, ae_title=AE_TITLE)
        assert assoc.is_established
        with caplog.at_level(logging.INFO):
            status = assoc.send_c_store(bad)
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
    assert int(status.Status) == 0xC000
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert imaging_node.imaging.instances.count() == 0


def test_values_pydicom_finds_invalid_are_not_written_to_the_log(imaging_node: ImagingNode, tmp_path: Path, caplog) -> None:
    # found by tests/fuzz: pydicom's read validation logs "Invalid value for VR ...: <the value>" at
    # WARNING, and a malformed data set's values are patient data
    import logging

    from pynetdicom import _config

    study = make_study(tmp_path / "src", Patient("MRN402", "4020000002"), "ACC402", ((CT, 1, True),))
    data = study.files[0].read_bytes()
    ds = pydicom.dcmread(study.files[0])
    not_a_uid = b"1.2.3.MRN402.Doe^Jane"  # pydicom warns, quoting it, when it reads it as a UI
    uid = ds.SOPInstanceUID.encode()
    uid += b"\0" * (len(uid) % 2)
    padded = not_a_uid + b"\0" * (len(not_a_uid) % 2)
    old = b"\x08\x00\x18\x00UI" + len(uid).to_bytes(2, "little") + uid
    assert old in data
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(data.replace(old, b"\x08\x00\x18\x00UI" + len(padded).to_bytes(2, "little") + padded))
    ae = AE(ae_title="PACS")
    ae.add_requested_context(CT, "1.2.840.10008.1.2.1")
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True  # sent as it is on disk
    try:
        assoc = ae.associate("127.0.0.1", imaging_node.port, ae_title=AE_TITLE)
        assert assoc.is_established
        with caplog.at_level(logging.INFO):
            status = assoc.send_c_store(bad)
        assoc.release()
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
    assert int(status.Status) in (0x0000, 0xC000)
    assert not [r.getMessage() for r in caplog.records if "MRN402" in r.getMessage()]


def test_a_stored_instance_whose_patient_sequence_does_not_decode_is_audited_with_the_indexed_patient(
    imaging_node: ImagingNode, tmp_path: Path, caplog
) -> None:
    # found by tests/fuzz: the data set is stored as received (its header tags decode), but reading
    # its patient for the DICOM Instances Transferred record raised: a stack trace in the log and a
    # record naming no patient
    import logging

    from pydicom.dataelem import RawDataElement
    from pydicom.tag import Tag
    from pynetdicom import _config

    study = make_study(tmp_path / "src", Patient("MRN403", "4030000003"), "ACC403", ((CT, 1, True),))
    ds = pydicom.dcmread(study.files[0])
    other_ids = Tag(0x00101002)  # Other Patient IDs Sequence: an item cut in the middle of a tag
    ds[other_ids] = RawDataElement(other_ids, "SQ", 4, b"\x20\x00\x0d\x00", 0, False, True)
    bad = tmp_path / "bad.dcm"
    ds.save_as(bad)
    ae = AE(ae_title="PACS")
    ae.add_requested_context(CT, "1.2.840.10008.1.2.1")
    chunked, _config.STORE_SEND_CHUNKED_DATASET = _config.STORE_SEND_CHUNKED_DATASET, True  # sent as it is on disk
    try:
        with caplog.at_level(logging.INFO):
            assoc = ae.associate("127.0.0.1", imaging_node.port, ae_title=AE_TITLE)
            assert assoc.is_established
            assert int(assoc.send_c_store(bad).Status) == 0
            assoc.release()
            audit = imaging_node.node.components["audit"].store
            deadline = time.monotonic() + 10
            while not audit.accesses(study=study.uid) and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = chunked
    assert audit.accesses(study=study.uid) and audit.accesses(patient="MRN403")
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
