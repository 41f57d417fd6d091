"""Mapping at ingest for DICOM studies, end to end on a real node process (`xds serve`): ADT over
MLLP (ITI-8), studies over DICOM (dcmtk's storescu) that carry only their hospital's Patient ID +
Issuer of Patient ID, manifests found with ITI-18 FindDocuments under the health number. A study
that comes before its ADT is held, survives a restart, and is registered when the ADT arrives (or,
when the ADT was applied while the node was down, by the start-up sweep). The same Patient ID from
two issuers is two patients."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.hl7.conftest import exchange
from tests.identity.conftest import HN_OID, HOSPA_OID, HOSPB_OID, ack_code, adt, hn, pid_hn, pid_local
from tests.imaging.conftest import wait_for
from tests.imaging.studies import CT, MR, Patient, Study, make_study
from tests.imaging.test_live_pacs import soap, storescu
from tests.imaging.wire import document_unique_ids, find_documents
from tests.live import LiveNode, live_node
from xds.identity.domain import Couplet, IdentityDomain
from xds.identity.feed import AdtEvent, IdentityFeed
from xds.identity.schema import HELD
from xds.identity.store import IdentityStore
from xds.imaging.patient import DICOM_STUDY
from xds.registry.db import create_registry_engine

FEEDS = [
    {"name": "hospa-adt", "sending_facility": "HOSPA", "issuer": "HOSPA", "issuer_oid": HOSPA_OID},
    {"name": "hospb-adt", "sending_facility": "HOSPB", "issuer": "HOSPB", "issuer_oid": HOSPB_OID},
]
OVERRIDES = {"imaging": {"study_quiet_seconds": 1}, "identity": {"feeds": FEEDS}}
AE_TITLE = "HDIRS"  # conf/hdirs.toml


def imaging_port(tmp: Path) -> int:
    import tomllib

    with open(tmp / "node.toml", "rb") as f:
        return int(tomllib.load(f)["imaging"]["port"])


def send_adt(node: LiveNode, raw: bytes) -> None:
    [ack] = asyncio.run(exchange(node.mllp_port, raw))
    assert ack_code(ack) == "AA", ack


def found(node: LiveNode, patient_id: str) -> list[str]:
    return document_unique_ids(soap(node.url("/xds/registry"), find_documents(patient_id)).content)


def wait_found(node: LiveNode, patient_id: str, count: int = 1) -> list[str]:
    return wait_for(lambda: (ids := found(node, patient_id)) and len(ids) >= count and ids, timeout=30) or []


def held_studies(data: Path) -> set[bytes]:
    engine = create_registry_engine(f"sqlite:///{data / 'registry.sqlite'}")
    try:
        return {h.payload for h in IdentityStore(engine).held(status=HELD) if h.kind == DICOM_STUDY}
    finally:
        engine.dispose()


def study(tmp: Path, mrn: str, issuer: str, accession: str) -> Study:
    return make_study(tmp / accession, Patient(mrn, issuer=issuer), accession, ((CT, 2, True), (MR, 1, False)))


def test_a_study_with_only_its_local_couplet_is_found_under_the_hn_the_adt_linked(tmp_path: Path) -> None:
    with live_node(tmp_path, overrides=OVERRIDES) as node:
        send_adt(node, adt("A01", f"{pid_local('MRN-L1')}~{pid_hn('1212121212')}"))
        s = study(tmp_path, "MRN-L1", "HOSPA", "ACC-L1")
        storescu(imaging_port(tmp_path), s, AE_TITLE)
        [manifest] = wait_found(node, hn("1212121212"))
        # the consumer's own couplet finds the same record
        assert found(node, f"MRN-L1^^^&{HOSPA_OID}&ISO") == [manifest]


def test_a_study_held_for_its_adt_survives_a_restart_and_is_registered_when_the_adt_arrives(tmp_path: Path) -> None:
    data = tmp_path / "data"
    (tmp_path / "first").mkdir()
    with live_node(tmp_path / "first", overrides=OVERRIDES, data_dir=data) as node:
        waits = study(tmp_path, "MRN-L2", "HOSPA", "ACC-L2")
        offline = study(tmp_path, "MRN-L3", "HOSPB", "ACC-L3")
        storescu(imaging_port(tmp_path / "first"), waits, AE_TITLE)
        storescu(imaging_port(tmp_path / "first"), offline, AE_TITLE)
        assert wait_for(lambda: held_studies(data) == {waits.uid.encode(), offline.uid.encode()}, timeout=30,
                        interval=0.25)
        assert found(node, f"MRN-L2^^^&{HOSPA_OID}&ISO") == []

    # node down: MRN-L3's ADT is applied, but its release never ran (as after a crash in between)
    engine = create_registry_engine(f"sqlite:///{data / 'registry.sqlite'}")
    try:
        domain = IdentityDomain.build(HN_OID)
        issuer = domain.issuer("HOSPB", HOSPB_OID)
        assert issuer is not None
        event = AdtEvent("A08", "ADT^HOSPB", "hospb-adt", "OFFLINE-L3", "d1", hn("3434343434"),
                         [Couplet("MRN-L3", issuer)])
        assert IdentityFeed(IdentityStore(engine)).apply_adt(event) is None
    finally:
        engine.dispose()

    (tmp_path / "second").mkdir()
    with live_node(tmp_path / "second", overrides=OVERRIDES, data_dir=data) as node:
        assert len(wait_found(node, hn("3434343434"))) == 1  # released by the start-up sweep
        assert found(node, hn("2323232323")) == []
        send_adt(node, adt("A01", f"{pid_local('MRN-L2')}~{pid_hn('2323232323')}"))
        assert len(wait_found(node, hn("2323232323"))) == 1
        assert held_studies(data) == set()


def test_the_same_patient_id_from_two_issuers_is_two_patients(tmp_path: Path) -> None:
    with live_node(tmp_path, overrides=OVERRIDES) as node:
        send_adt(node, adt("A01", f"{pid_local('MRN-TWIN')}~{pid_hn('5656565656')}"))
        send_adt(node, adt("A01", f"{pid_local('MRN-TWIN', 'HOSPB')}~{pid_hn('6565656565')}", facility="HOSPB"))
        a = study(tmp_path, "MRN-TWIN", "HOSPA", "ACC-TWIN-A")
        b = study(tmp_path, "MRN-TWIN", "HOSPB", "ACC-TWIN-B")
        storescu(imaging_port(tmp_path), a, AE_TITLE)
        storescu(imaging_port(tmp_path), b, AE_TITLE)
        [in_a] = wait_found(node, hn("5656565656"))
        [in_b] = wait_found(node, hn("6565656565"))
        assert in_a != in_b
        assert found(node, f"MRN-TWIN^^^&{HOSPA_OID}&ISO") == [in_a]
        assert found(node, f"MRN-TWIN^^^&{HOSPB_OID}&ISO") == [in_b]
