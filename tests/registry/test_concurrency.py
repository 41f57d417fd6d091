"""Concurrent ITI-42 submissions: every one is atomic, and races on the same registry state end
with one winner and the loser's exact error code (SQLite BEGIN IMMEDIATE; PostgreSQL row locks and
unique constraints)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.registry.builders import document_entry, relationship, submission
from xds.metadata import model as m
from xds.metadata.errors import RegistryError
from xds.registry import Registry
from xds.registry.store import DOCUMENT_ENTRY, RegistryStore


def race(n: int, make: Callable[[int], m.Submission], registry: Registry) -> list[list[RegistryError]]:
    subs = [make(i) for i in range(n)]
    barrier = threading.Barrier(n)

    def go(sub: m.Submission) -> list[RegistryError]:
        barrier.wait()
        return registry.register(sub)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(go, subs))


def test_concurrent_independent_submissions_all_succeed(registry: Registry, store: RegistryStore) -> None:
    results = race(8, lambda i: submission(document_entry(), document_entry("Document02")), registry)
    assert results == [[]] * 8
    assert store.count(DOCUMENT_ENTRY) == 16


def test_concurrent_replacements_of_one_document_have_one_winner(
    registry: Registry, store: RegistryStore
) -> None:
    original = document_entry()
    assert registry.register(submission(original)) == []
    results = race(
        4,
        lambda i: submission(
            document_entry("New"), associations=(relationship(m.RPLC, "New", original.entry_uuid),)
        ),
        registry,
    )
    assert sorted(len(r) for r in results) == [0, 1, 1, 1]
    assert {e.code for r in results for e in r} == {"XDSRegistryDeprecatedDocumentError"}
    assert store.document_entry(original.entry_uuid).status == m.STATUS_DEPRECATED  # type: ignore[union-attr]


def test_concurrent_submissions_with_one_submission_set_unique_id_have_one_winner(registry: Registry) -> None:
    shared = submission().submission_set.unique_id  # type: ignore[union-attr]

    def make(i: int) -> m.Submission:
        sub = submission(document_entry())
        sub.submission_set.unique_id = shared  # type: ignore[union-attr]
        return sub

    results = race(4, make, registry)
    assert sorted(len(r) for r in results) == [0, 1, 1, 1]
    assert {e.code for r in results for e in r} == {"XDSDuplicateUniqueIdInRegistry"}
