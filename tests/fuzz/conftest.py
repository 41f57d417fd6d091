"""The fuzz suite's settings, log checks and the node under attack.

Every property declares how many examples it runs by default (:func:`fuzz`): the whole folder
stays around two minutes in CI, derandomized so that every run tries the same inputs. Environment:

* ``XDS_FUZZ_EXAMPLES=N``: every property runs N examples instead (a long run);
* ``XDS_FUZZ_RANDOM=1``: fresh random inputs each run, and Hypothesis' example database in
  ``.hypothesis/`` so that a failure found once is replayed first next time.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis.database import DirectoryBasedExampleDatabase
from starlette.testclient import TestClient

from tests.fuzz import seeds
from xds.config import ImagingConfig, MllpConfig, NodeConfig, RegistryConfig, RepositoryConfig
from xds.node import Node, build_node

EXAMPLES = int(os.environ.get("XDS_FUZZ_EXAMPLES", "0") or 0)
RANDOM = os.environ.get("XDS_FUZZ_RANDOM", "") not in ("", "0")


def fuzz(examples: int) -> settings:
    """Hypothesis settings of one property: ``examples`` by default (see the module docstring)."""
    return settings(
        max_examples=EXAMPLES or examples,
        deadline=None,
        derandomize=not RANDOM,
        database=DirectoryBasedExampleDatabase(".hypothesis/fuzz") if RANDOM else None,
        print_blob=True,
        suppress_health_check=list(HealthCheck),
    )


# --- logs -----------------------------------------------------------------------------------------


def leaks(records: Iterable[logging.LogRecord], phi: Iterable[str], level: int = logging.INFO) -> list[str]:
    """Messages of ``records`` at ``level`` or above that contain a value of ``phi``."""
    values = [v for v in phi if v]
    out = []
    for r in records:
        if r.levelno < level:
            continue
        text = r.getMessage()
        if r.exc_info and r.exc_info[1] is not None:
            text += "\n" + str(r.exc_info[1])
        if any(v in text for v in values):
            out.append(f"{r.name} {r.levelname}: {text[:500]}")
    return out


def tracebacks(records: Iterable[logging.LogRecord]) -> list[str]:
    """Records at ERROR or above: with ``exc_info`` an exception escaped into a handler's safety
    net, which for malformed input is a bug, whatever the answer said."""
    return [
        f"{r.name}: {r.getMessage()[:300]} ({type(r.exc_info[1]).__name__ if r.exc_info and r.exc_info[1] else '-'})"
        for r in records
        if r.levelno >= logging.ERROR
    ]


# --- the node ---------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def node_config(data_dir: Path) -> NodeConfig:
    return NodeConfig(
        name="fuzz",
        home_community_id=seeds.HOME,
        data_dir=str(data_dir),
        registry=RegistryConfig(patient_assigning_authority=seeds.AUTHORITY),
        repository=RepositoryConfig(repository_unique_id=seeds.REPOSITORY_ID),
        imaging=ImagingConfig(repository_unique_id=seeds.IMAGING_ID, port=free_port(), study_quiet_seconds=3600),
        mllp=MllpConfig(host="127.0.0.1", port=free_port()),
    )


@dataclass
class LiveNode:
    """A whole DIR node (registry, repository, imaging source, responding gateway, ITI-8 over
    MLLP, DICOM C-STORE) served through Starlette's TestClient, its listeners running."""

    node: Node
    client: TestClient

    @property
    def registry(self):  # noqa: ANN201 - xds.registry.Registry
        return self.node.components["registry"]

    @property
    def repository(self):  # noqa: ANN201 - xds.repository.Repository
        return self.node.components["repository"]

    @property
    def imaging(self):  # noqa: ANN201 - xds.imaging.ImagingSource
        return self.node.components["imaging"]

    @property
    def mllp_port(self) -> int:
        return self.node.config.mllp.port

    @property
    def dicom_port(self) -> int:
        return self.node.config.imaging.port


@contextlib.contextmanager
def serve(data_dir: Path) -> Iterator[LiveNode]:
    node = build_node(node_config(data_dir))
    assert node.app is not None
    with TestClient(node.app, raise_server_exceptions=False) as client:
        yield LiveNode(node, client)


@pytest.fixture(scope="session")
def live_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveNode]:
    """One node for the whole fuzz session, its patient fed and a sentinel document registered
    (see :mod:`tests.fuzz.sentinel`) before anything hostile is sent."""
    from tests.fuzz import sentinel

    with serve(tmp_path_factory.mktemp("fuzz-node")) as n:
        sentinel.admit_patient(n)
        sentinel.register(n)
        yield n
        sentinel.check(n)


@pytest.fixture
def intact(live_node: LiveNode) -> Iterator[LiveNode]:
    """``live_node``; after the test, the sentinel document is still retrievable and found."""
    from tests.fuzz import sentinel

    yield live_node
    sentinel.check(live_node)


def unique() -> str:
    return uuid.uuid4().hex[:10]
