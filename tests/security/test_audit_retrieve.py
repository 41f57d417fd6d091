"""Export audit records (110106, action R) of RAD-69, ITI-39 and RAD-75: the documents and studies
disclosed and, when the instances tell, the patient; in-process node (Starlette's TestClient)."""

from __future__ import annotations

import pydicom
import pytest

from tests.imaging.conftest import HOME, IMAGING_ID, REPOSITORY_ID, ImagingNode, c_store, node_config, serve
from tests.imaging.studies import CT, Patient, Study, make_study
from tests.security import flows
from tests.xca import wire
from xds.audit.message import validate

SOP_INSTANCE = "9"  # Report Number
STUDY = "110180"
PATIENT = "2"


@pytest.fixture(scope="module")
def node(tmp_path_factory) -> ImagingNode:
    with serve(node_config(tmp_path_factory.mktemp("audit") / "node")) as n:
        yield n


@pytest.fixture(scope="module")
def study(node: ImagingNode, tmp_path_factory) -> Study:
    s = make_study(tmp_path_factory.mktemp("src"), Patient("MRN-AUD", flows.new_hn()), "ACC-AUD", ((CT, 2, False),))
    assert set(c_store(node.port, s.files)) == {0}
    return s


def requests_of(study: Study, home: str | None = None) -> list[wire.InstanceRequest]:
    out = []
    for f in study.files:
        h = pydicom.dcmread(f, stop_before_pixels=True)
        out.append(wire.InstanceRequest(home, IMAGING_ID, study.uid, h.SeriesInstanceUID, h.SOPInstanceUID))
    return out


def audited(node: ImagingNode, transaction: str, marker: str) -> object:
    messages = [m for m in flows.audit_messages(node.node.config.data_path("audit.sqlite").parent, transaction)
                if marker in {v for ids in flows.objects(m).values() for v in ids}]
    assert len(messages) == 1, [flows.objects(m) for m in messages]
    assert validate(messages[0]) == []
    return messages[0]


def sop_uids(study: Study) -> set[str]:
    return {str(pydicom.dcmread(f, stop_before_pixels=True).SOPInstanceUID) for f in study.files}


@pytest.mark.parametrize(("transaction", "path", "home"), [("RAD-69", "/xds/imaging", None),
                                                            ("RAD-75", "/xca/respond", HOME)])
def test_imaging_retrieve_is_an_export_of_the_study_its_instances_and_patient(node, study, transaction, path, home):
    action = wire.RAD69 if transaction == "RAD-69" else wire.RAD75
    node.soap(path, wire.retrieve_imaging(requests_of(study, home), action))
    m = audited(node, transaction, study.uid)
    assert flows.event_codes(m) == ("110106", transaction, "R", "0")
    objects = flows.objects(m)
    assert objects[STUDY] == [study.uid]
    assert set(objects[SOP_INSTANCE]) == sop_uids(study)
    assert objects[PATIENT] == [study.patient.affinity_id]
    [study_object] = [po for po in m.findall("ParticipantObjectIdentification") if po.get("ParticipantObjectID") == study.uid]
    assert {i.get("UID") for i in study_object.iter("Instance")} == sop_uids(study)
    roles = {ap.find("RoleIDCode").get("csd-code"): ap.get("UserIsRequestor") for ap in m.findall("ActiveParticipant")}
    assert roles == {"110153": "false", "110152": "true"}  # the node exports to the requestor


def test_imaging_retrieve_of_nothing_held_names_what_was_asked(node):
    request = wire.InstanceRequest(None, IMAGING_ID, "2.25.77001", "2.25.77002", "2.25.77003")
    node.soap("/xds/imaging", wire.retrieve_imaging([request]))
    m = audited(node, "RAD-69", "2.25.77003")
    assert flows.event_codes(m) == ("110106", "RAD-69", "R", "8")
    assert flows.objects(m) == {SOP_INSTANCE: ["2.25.77003"], STUDY: ["2.25.77001"]}


def test_cross_gateway_retrieve_is_an_export_of_the_documents(node):
    patient = flows.cx(flows.new_hn())
    node.feed(patient)
    document, _ = flows.provide(node.client, "", patient)
    node.soap("/xca/respond", wire.retrieve_documents([(HOME, REPOSITORY_ID, document)], wire.ITI39))
    m = audited(node, "ITI-39", document)
    assert flows.event_codes(m) == ("110106", "ITI-39", "R", "0")
    [po] = [po for po in m.findall("ParticipantObjectIdentification") if po.get("ParticipantObjectID") == document]
    details = {d.get("type"): d.get("value") for d in po.findall("ParticipantObjectDetail")}
    assert set(details) == {"Repository Unique Id", "ihe:homeCommunityID"}
