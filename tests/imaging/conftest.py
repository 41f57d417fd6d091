from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from pynetdicom import AE
from starlette.testclient import TestClient

from tests.imaging.studies import HN_AUTHORITY, Study
from tests.imaging.wire import SOAP_CT
from tests.live import free_port
from xds.config import ImagingConfig, MllpConfig, NodeConfig, RegistryConfig, RepositoryConfig
from xds.imaging import ImagingSource
from xds.node import Node, build_node

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus"
HOME = "urn:oid:1.3.6.1.4.1.21367.13.70.1"
REPOSITORY_ID = "1.3.6.1.4.1.21367.13.40.216"
IMAGING_ID = "1.3.6.1.4.1.21367.13.71.101"
AE_TITLE = "HDIRS"


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, interval: float = 0.05) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(interval)
    return predicate()


def node_config(data_dir: Path, **imaging: object) -> NodeConfig:
    settings = {"repository_unique_id": IMAGING_ID, "ae_title": AE_TITLE, "port": free_port(),
                "study_quiet_seconds": 1, **imaging}
    return NodeConfig(
        name="test",
        home_community_id=HOME,
        data_dir=str(data_dir),
        registry=RegistryConfig(patient_assigning_authority=HN_AUTHORITY),
        repository=RepositoryConfig(repository_unique_id=REPOSITORY_ID),
        imaging=ImagingConfig(**settings),  # type: ignore[arg-type]
        mllp=MllpConfig(enabled=False),
    )


@dataclass
class ImagingNode:
    """A DIR node with its DICOM listener, served through Starlette's TestClient."""

    node: Node
    client: TestClient

    @property
    def imaging(self) -> ImagingSource:
        return self.node.components["imaging"]

    @property
    def registry(self):  # noqa: ANN201
        return self.node.components["registry"]

    @property
    def port(self) -> int:
        assert self.imaging.scp is not None
        return self.imaging.scp.port

    def feed(self, patient_id: str) -> None:
        """What the ITI-8 Patient Identity Feed would have done."""
        self.registry.store.record_patient(patient_id, {}, "TEST^FEED", uuid.uuid4().hex[:10])

    def soap(self, path: str, body: bytes):  # noqa: ANN201
        r = self.client.post(path, content=body, headers={"content-type": SOAP_CT})
        assert r.status_code == 200, r.text[:2000]
        return r

    def published(self, study: Study, revision: int | None = None):  # noqa: ANN201
        """Wait until the study's current state is described by a registered manifest."""
        def done():  # noqa: ANN202
            s = self.imaging.instances.study(study.uid)
            if s is None or s.needs_manifest or s.manifest_uid is None:
                return None
            return s if revision is None or s.published_revision >= revision else None

        return wait_for(done)


@contextlib.contextmanager
def serve(cfg: NodeConfig) -> Iterator[ImagingNode]:
    node = build_node(cfg)
    assert node.app is not None
    with TestClient(node.app) as client:
        yield ImagingNode(node, client)


@pytest.fixture
def imaging_node(tmp_path: Path) -> Iterator[ImagingNode]:
    with serve(node_config(tmp_path / "node")) as n:
        yield n


def c_store(port: int, files: list[Path], *, calling: str = "PACS", called: str = AE_TITLE) -> list[int]:
    """Send ``files`` with pynetdicom as SCU, each in its own transfer syntax; the C-STORE statuses."""
    datasets = [pydicom.dcmread(f) for f in files]
    ae = AE(ae_title=calling)
    for sop_class, ts in {(str(d.SOPClassUID), str(d.file_meta.TransferSyntaxUID)) for d in datasets}:
        ae.add_requested_context(sop_class, ts)
    assoc = ae.associate("127.0.0.1", port, ae_title=called)
    if not assoc.is_established:
        return []
    try:
        return [int(assoc.send_c_store(d).Status) for d in datasets]
    finally:
        assoc.release()

