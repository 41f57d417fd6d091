"""Start-up reconciliation: what a crash left between store and registry is repaired according to
orphan_policy, so neither side holds what the other lacks (DESIGN.md section 4)."""

from __future__ import annotations

import io
import logging
import time

import pytest

from tests.repository.conftest import node_config, serve, stored_not_registered
from tests.repository.messages import PATIENT, REPOSITORY_ID, document_entry, submission
from xds.repository.index import PENDING, REGISTERED
from xds.repository.registry_client import RegistryClient, RegistryUnavailable
from xds.repository.store import new_key


def registered_not_marked(node, content: bytes = b"kept") -> tuple[str, str]:
    """Killed after the registry committed, before the row was marked registered."""
    repo = node.repository
    de = document_entry()
    key = stored_not_registered(repo, de.unique_id, content)
    row = repo.index.get(de.unique_id)
    de.hash, de.size, de.repository_unique_id = row.hash, row.size, REPOSITORY_ID
    assert node.registry.register(submission(de)) == []
    return de.unique_id, key


def test_stored_but_never_registered_document_is_removed(dir_node):
    repo = dir_node.repository
    key = stored_not_registered(repo, "1.2.3.4.1")
    report = repo.reconcile()
    assert report.orphans == ["1.2.3.4.1"]
    assert not repo.store.exists(key)
    assert repo.index.get("1.2.3.4.1") is None


def test_registered_document_left_pending_is_confirmed_and_retrievable(dir_node):
    repo = dir_node.repository
    uid, key = registered_not_marked(dir_node)
    report = repo.reconcile()
    assert report.confirmed == [uid] and report.orphans == []
    assert repo.index.get(uid).state == REGISTERED
    assert repo.store.open(key).read() == b"kept"


def test_pending_row_of_an_upload_cut_short_is_removed(dir_node):
    repo = dir_node.repository
    key = new_key()
    repo.index.claim("1.2.3.4.2", key, "text/plain")  # the object was never completed
    partial = repo.store.path(key).parent
    partial.mkdir(parents=True, exist_ok=True)
    (partial / f".{key}.xyz.tmp").write_bytes(b"half a document")
    report = repo.reconcile()
    assert report.orphans == ["1.2.3.4.2"] and report.incomplete_removed == 1
    assert repo.index.count() == 0
    assert not any(partial.iterdir())


def test_object_no_row_names_is_removed(dir_node):
    repo = dir_node.repository
    stray = repo.store.put(io.BytesIO(b"stray")).key
    report = repo.reconcile()
    assert report.unindexed == [stray]
    assert list(repo.store.list()) == []


def test_orphan_policy_log_keeps_and_reports(tmp_path, caplog):
    with serve(node_config(tmp_path / "node", orphan_policy="log")) as node:
        node.feed(PATIENT)
        repo = node.repository
        key = stored_not_registered(repo, "1.2.3.4.3")
        stray = repo.store.put(io.BytesIO(b"stray")).key
        with caplog.at_level(logging.WARNING, logger="xds.repository.reconcile"):
            report = repo.reconcile()
        assert report.orphans == ["1.2.3.4.3"] and report.unindexed == [stray] and not report.removed
        assert repo.store.exists(key) and repo.store.exists(stray)
        assert repo.index.get("1.2.3.4.3").state == PENDING
        assert key in caplog.text and stray in caplog.text


def test_recent_pending_documents_are_left_to_the_submission_in_flight(dir_node):
    repo = dir_node.repository
    key = stored_not_registered(repo, "1.2.3.4.4")
    report = repo.reconcile(min_age=600)
    assert report.orphans == [] and report.unindexed == []
    assert repo.store.exists(key)
    assert repo.reconcile(min_age=0).orphans == ["1.2.3.4.4"]


class Unreachable(RegistryClient):
    def register(self, submission):
        raise RegistryUnavailable("down")

    def lookup(self, unique_ids):
        raise RegistryUnavailable("down")


def test_registry_unavailable_leaves_pending_documents_for_the_next_start(dir_node):
    repo = dir_node.repository
    key = stored_not_registered(repo, "1.2.3.4.5")
    local, repo.registry = repo.registry, Unreachable()
    report = repo.reconcile()
    assert report.registry_unavailable and report.orphans == []
    assert repo.store.exists(key) and repo.index.get("1.2.3.4.5").state == PENDING
    repo.registry = local
    assert repo.reconcile().orphans == ["1.2.3.4.5"]


def test_node_start_reconciles(tmp_path):
    cfg = node_config(tmp_path / "node")
    with serve(cfg) as node:
        node.feed(PATIENT)
        key = stored_not_registered(node.repository, "1.2.3.4.6")
        uid, kept = registered_not_marked(node)
    time.sleep(0.01)
    with serve(cfg) as node:
        assert not node.repository.store.exists(key)
        assert node.repository.index.get(uid).state == REGISTERED
        assert [e.key for e in node.repository.store.list()] == [kept]


@pytest.mark.parametrize("policy", ["remove"])
def test_reconcile_with_s3_store(tmp_path, s3_settings, policy):
    cfg = node_config(tmp_path / "node", store="s3", s3_endpoint=s3_settings["endpoint_url"],
                      s3_bucket=s3_settings["bucket"], s3_access_key=s3_settings["access_key"],
                      s3_secret_key=s3_settings["secret_key"], orphan_policy=policy)
    with serve(cfg) as node:
        node.feed(PATIENT)
        repo = node.repository
        key = stored_not_registered(repo, "1.2.3.4.7")
        uid, kept = registered_not_marked(node)
        report = repo.reconcile()
        assert report.orphans == ["1.2.3.4.7"] and report.confirmed == [uid]
        assert not repo.store.exists(key) and repo.store.exists(kept)
