from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.repository.messages import AUTHORITY, HOME, PATIENT, REPOSITORY_ID, Outcome, Request, read_response
from tests.repository.seaweedfs import ACCESS_KEY, SECRET_KEY, SeaweedS3, start_seaweedfs
from xds.config import ImagingConfig, MllpConfig, NodeConfig, RegistryConfig, RepositoryConfig
from xds.node import Node, build_node
from xds.repository import Repository
from xds.repository.store import new_key

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedS3]:
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def s3_settings(seaweedfs: SeaweedS3) -> dict[str, str]:
    """Connection settings with a fresh bucket for each test."""
    return {
        "endpoint_url": seaweedfs.endpoint,
        "bucket": f"xds-{uuid.uuid4().hex[:12]}",
        "access_key": ACCESS_KEY,
        "secret_key": SECRET_KEY,
    }


@dataclass
class NodeUnderTest:
    """A DIR node (registry + repository) served through Starlette's TestClient."""

    node: Node
    client: TestClient

    @property
    def repository(self) -> Repository:
        return self.node.components["repository"]

    @property
    def registry(self):  # noqa: ANN201 - xds.registry.Registry
        return self.node.components["registry"]

    def feed(self, patient_id: str) -> None:
        """What the ITI-8 Patient Identity Feed would have done."""
        self.registry.store.record_patient(patient_id, {}, "TEST^FEED", uuid.uuid4().hex[:10])

    def post(self, request: Request, path: str = "/xds/repository") -> Outcome:
        r = self.client.post(path, content=request.body, headers={"content-type": request.content_type})
        assert r.status_code == 200, r.text[:2000]
        return read_response(r.headers["content-type"], r.content)


def node_config(data_dir: Path, **repository: object) -> NodeConfig:
    return NodeConfig(
        name="test",
        home_community_id=HOME,
        data_dir=str(data_dir),
        registry=RegistryConfig(patient_assigning_authority=AUTHORITY),
        repository=RepositoryConfig(repository_unique_id=REPOSITORY_ID, **repository),  # type: ignore[arg-type]
        mllp=MllpConfig(enabled=False),
        imaging=ImagingConfig(enabled=False),
    )


@contextlib.contextmanager
def serve(cfg: NodeConfig) -> Iterator[NodeUnderTest]:
    node = build_node(cfg)
    assert node.app is not None
    with TestClient(node.app) as client:
        yield NodeUnderTest(node, client)


@pytest.fixture
def dir_node(tmp_path: Path) -> Iterator[NodeUnderTest]:
    with serve(node_config(tmp_path / "node")) as n:
        n.feed(PATIENT)
        yield n


def stored_not_registered(repo, unique_id: str, content: bytes = b"orphan") -> str:
    """What a node killed between store and register leaves: a pending row and a complete object."""
    key = new_key()
    assert repo.index.claim(unique_id, key, "text/plain") is None
    stored = repo.store.put(io.BytesIO(content), key)
    repo.index.stored(unique_id, stored.size, stored.sha1)
    return key
