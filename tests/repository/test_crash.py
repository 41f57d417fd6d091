"""Crash consistency with real node processes (`xds serve`), killed with SIGKILL:

* between store and register: the repository node registers with a registry that holds the ITI-42
  request (and, in one case, passes it on first); the node is killed while it waits;
* mid-upload: the node is killed while a large document is being written to its store.

After a restart (start-up reconciliation) the registry and the store must agree: every registered
document is retrievable, nothing is stored that is not registered.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.live import live_node
from tests.repository.messages import (
    AUTHORITY,
    PATIENT,
    REPOSITORY_ID,
    Request,
    document_entry,
    provide_and_register,
    read_response,
    retrieve_document_set,
    submission,
)
from xds.config import NodeConfig
from xds.registry import Registry
from xds.registry.db import create_registry_engine
from xds.repository.index import DocumentIndex

pytestmark = pytest.mark.slow


class HoldingRegistry:
    """A registry endpoint that takes an ITI-42 request and never answers it. With ``forward_to``
    it first passes the request on to a real registry (which commits it)."""

    def __init__(self, forward_to: str | None = None) -> None:
        self.forward_to = forward_to
        self.received = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.server.getsockname()[1]}/xds/registry"
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        with contextlib.suppress(OSError):
            while True:
                conn, _ = self.server.accept()
                self.connections.append(conn)
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                head, _, body = data.partition(b"\r\n\r\n")
                headers = dict(
                    line.decode("latin-1").split(":", 1) for line in head.split(b"\r\n")[1:] if b":" in line
                )
                headers = {k.strip().lower(): v.strip() for k, v in headers.items()}
                length = int(headers.get("content-length", "0"))
                while len(body) < length:
                    body += conn.recv(65536)
                if self.forward_to:
                    r = httpx.post(self.forward_to, content=body, headers={"content-type": headers["content-type"]})
                    assert r.status_code == 200
                self.received.set()

    def close(self) -> None:
        self.server.close()
        for c in self.connections:
            c.close()


def registry_node_overrides() -> dict:
    return {
        "registry": {"patient_assigning_authority": AUTHORITY},
        "repository": {"enabled": False, "repository_unique_id": ""},
        "mllp": {"enabled": False},
        "imaging": {"enabled": False},
    }


def repository_node_overrides(registry_url: str) -> dict:
    return {
        "registry": {"enabled": False},
        "repository": {"repository_unique_id": REPOSITORY_ID, "registry_url": registry_url},
        "mllp": {"enabled": False},
        "imaging": {"enabled": False},
    }


@contextlib.contextmanager
def registry_node(tmp_path: Path) -> Iterator:
    (tmp_path / "registry").mkdir(exist_ok=True)
    (tmp_path / "repository").mkdir(exist_ok=True)
    with live_node(tmp_path / "registry", overrides=registry_node_overrides()) as node:
        cfg = NodeConfig(data_dir=str(node.data_dir))
        cfg.registry.patient_assigning_authority = AUTHORITY
        registry = Registry.from_config(cfg, run_migrations=False)
        registry.store.record_patient(PATIENT, {}, "TEST^FEED", "1")
        node.registry = registry
        try:
            yield node
        finally:
            registry.close()


def index_of(data_dir: Path) -> DocumentIndex:
    return DocumentIndex(create_registry_engine(NodeConfig(data_dir=str(data_dir)).database_url))


def objects_in(data_dir: Path) -> list[Path]:
    return [p for p in (data_dir / "documents").rglob("*") if p.is_file()]


def send_in_background(url: str, request: Request) -> threading.Thread:
    def send() -> None:
        with contextlib.suppress(httpx.HTTPError):
            httpx.post(url, content=request.body, headers={"content-type": request.content_type}, timeout=120)

    t = threading.Thread(target=send, daemon=True)
    t.start()
    return t


def post(url: str, request: Request):
    r = httpx.post(url, content=request.body, headers={"content-type": request.content_type}, timeout=120)
    assert r.status_code == 200, r.text[:1000]
    return read_response(r.headers["content-type"], r.content)


def kill(node) -> None:
    node.proc.kill()
    node.proc.wait(timeout=30)


def for_a_while(condition, timeout: float = 60.0, step: float = 0.005) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


@pytest.mark.parametrize("registry_committed", [False, True], ids=["orphan", "registered"])
def test_killed_between_store_and_register(tmp_path: Path, registry_committed: bool) -> None:
    content = b"stored before registration\n" * 100
    de = document_entry()
    with registry_node(tmp_path) as registry:
        holder = HoldingRegistry(forward_to=registry.url("/xds/registry") if registry_committed else None)
        data_dir = tmp_path / "repository-data"
        try:
            with live_node(tmp_path / "repository", overrides=repository_node_overrides(holder.url),
                           data_dir=data_dir) as node:
                sender = send_in_background(node.url("/xds/repository"),
                                            provide_and_register(submission(de), {"Document01": content}))
                assert holder.received.wait(60), "the repository never asked the registry"
                # stored, pending, the registry asked: now the node dies
                assert len(objects_in(data_dir)) == 1
                assert index_of(data_dir).get(de.unique_id).state == "pending"
                kill(node)
                sender.join(30)
        finally:
            holder.close()

        in_registry = registry.registry.store.document_entries_by_unique_id(de.unique_id)
        assert bool(in_registry) is registry_committed

        with live_node(tmp_path / "repository", overrides=repository_node_overrides(registry.url("/xds/registry")),
                       data_dir=data_dir) as node:
            index = index_of(data_dir)
            if registry_committed:
                assert index.get(de.unique_id).state == "registered"
                out = post(node.url("/xds/repository"), retrieve_document_set((REPOSITORY_ID, de.unique_id)))
                assert [d["content"] for d in out.documents()] == [content]
            else:
                assert index.get(de.unique_id) is None
                assert objects_in(data_dir) == []
            # and the node keeps working
            again = document_entry()
            out = post(node.url("/xds/repository"), provide_and_register(submission(again), {"Document01": b"after"}))
            assert out.short_status == "Success", out.errors


def test_killed_mid_upload_into_the_store(tmp_path: Path) -> None:
    size = 400 * 1024 * 1024
    block = bytes(range(256)) * 4096

    def chunks() -> Iterator[bytes]:
        for _ in range(size // len(block)):
            yield block

    de = document_entry()
    with registry_node(tmp_path) as registry:
        data_dir = tmp_path / "repository-data"
        overrides = repository_node_overrides(registry.url("/xds/registry"))
        with live_node(tmp_path / "repository", overrides=overrides, data_dir=data_dir) as node:
            send_in_background(node.url("/xds/repository"), provide_and_register(submission(de), {"Document01": chunks()}))
            writing = for_a_while(lambda: any(p.name.endswith(".tmp") for p in objects_in(data_dir)), timeout=120)
            assert writing, "the document never reached the store"
            kill(node)
        assert [p.name.endswith(".tmp") for p in objects_in(data_dir)] == [True]
        assert index_of(data_dir).get(de.unique_id).state == "pending"

        with live_node(tmp_path / "repository", overrides=overrides, data_dir=data_dir):
            assert objects_in(data_dir) == []
            assert index_of(data_dir).count() == 0
        assert registry.registry.store.document_entries_by_unique_id(de.unique_id) == []
