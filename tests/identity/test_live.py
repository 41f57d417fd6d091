"""A real node process (`xds serve`): held submissions survive a restart, and the ADT that links
their couplet to an HN, sent over MLLP after the restart, registers them; an ADT applied while the
release could not run is released by the start-up sweep. Queried over HTTP by the local id."""

from __future__ import annotations

import asyncio
import uuid

import httpx
from lxml import etree

from tests.hl7.conftest import exchange
from tests.identity.conftest import HN_OID, HOSPA_OID, ack_code, adt, hn, local, pid_hn, pid_local
from tests.live import live_node
from tests.registry.builders import document_entry, submission
from tests.registry.stored_query_data import adhoc_query_request, q1, qs
from xds.identity.domain import Couplet, IdentityDomain
from xds.identity.feed import AdtEvent, IdentityFeed
from xds.identity.store import IdentityStore
from xds.metadata import ebrim
from xds.metadata import model as m
from xds.namespaces import RIM, RS, SOAP12, WSA
from xds.registry.db import create_registry_engine
from xds.registry.service import ITI42_ACTION
from xds.registry.stored_query import ACTION as ITI18_ACTION

FEEDS = {"feeds": [{"name": "hospa-adt", "sending_facility": "HOSPA", "issuer": "HOSPA", "issuer_oid": HOSPA_OID}]}
NS = {"env": SOAP12, "rs": RS, "rim": RIM}


def soap(node, action: str, body: etree._Element) -> etree._Element:
    envelope = (
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
        f'<wsa:Action env:mustUnderstand="true">{action}</wsa:Action>'
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID></env:Header><env:Body>"
    ).encode() + etree.tostring(body) + b"</env:Body></env:Envelope>"
    r = httpx.post(node.url("/xds/registry"), content=envelope, headers={"content-type": "application/soap+xml"},
                   timeout=30)
    assert r.status_code == 200, r.text
    return etree.fromstring(r.content).find("env:Body", NS)[0]


def register(node, patient: str) -> tuple[str, list[str]]:
    doc = document_entry(patient=patient, source_patient_id=None)
    response = soap(node, ITI42_ACTION, ebrim.serialize_submit_objects_request(submission(doc, patient=patient)))
    codes = [e.get("errorCode") for e in response.iterfind("rs:RegistryErrorList/rs:RegistryError", NS)]
    assert response.get("status").endswith(":Success"), codes
    return doc.unique_id, codes


def find_documents(node, patient: str) -> set[str]:
    request = adhoc_query_request("FindDocuments", [("$XDSDocumentEntryPatientId", q1(patient)),
                                                    ("$XDSDocumentEntryStatus", qs(m.STATUS_APPROVED))])
    response = soap(node, ITI18_ACTION, request)
    assert response.get("status").endswith(":Success"), etree.tostring(response)
    return {ei.get("value") for ei in response.iter(f"{{{RIM}}}ExternalIdentifier")
            if ei.get("identificationScheme") == "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"}


def test_a_restart_between_a_held_submission_and_its_adt_loses_nothing(tmp_path):
    data = tmp_path / "data"
    overrides = {"identity": FEEDS}
    (tmp_path / "first").mkdir()
    with live_node(tmp_path / "first", overrides=overrides, data_dir=data) as node:
        waits_for_adt, codes = register(node, local("MRN-R1"))
        assert codes == ["DocumentQueued"]
        released_at_start, codes = register(node, local("MRN-R2"))
        assert codes == ["DocumentQueued"]
        assert find_documents(node, local("MRN-R1")) == set()

    # node down; MRN-R2's ADT applied but its release never ran (as after a crash in between)
    engine = create_registry_engine(f"sqlite:///{data / 'registry.sqlite'}")
    try:
        feed = IdentityFeed(IdentityStore(engine))
        domain = IdentityDomain.build(HN_OID)
        issuer = domain.issuer("HOSPA", HOSPA_OID)
        assert issuer is not None
        event = AdtEvent("A08", "ADT^HOSPA", "hospa-adt", "OFFLINE-1", "d1", hn("2222222222"),
                         [Couplet("MRN-R2", issuer)])
        assert feed.apply_adt(event) is None
    finally:
        engine.dispose()

    (tmp_path / "second").mkdir()
    with live_node(tmp_path / "second", overrides=overrides, data_dir=data) as node:
        assert find_documents(node, hn("2222222222")) == {released_at_start}  # the start-up sweep
        [ack] = asyncio.run(exchange(node.mllp_port, adt("A01", f"{pid_local('MRN-R1')}~{pid_hn('1111111111')}")))
        assert ack_code(ack) == "AA"
        assert find_documents(node, local("MRN-R1")) == {waits_for_adt}
        assert find_documents(node, hn("1111111111")) == {waits_for_adt}
