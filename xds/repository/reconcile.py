"""Start-up repair: neither the repository nor the registry may hold what the other lacks
(DESIGN.md section 4).

A document is stored before it is registered (ITI-41 then ITI-42). If the node stops in between,
its index row stays ``pending``; if it stops mid-write, the store keeps a temporary file or an
unfinished multipart upload. At start-up:

1. interrupted writes are removed (:meth:`DocumentStore.purge_incomplete`);
2. every pending row is checked against the registry: a DocumentEntry with this uniqueId, this
   repositoryUniqueId and the same hash means the registration went through, and the row becomes
   ``registered``; otherwise the document is an orphan;
3. the store is listed for objects no row names (written by hand, or left by an older version);
   they are orphans too.

Orphans are deleted (``orphan_policy = "remove"``) or only logged (``"log"``). Rows and objects
younger than ``min_age`` seconds are left alone: with several workers or nodes sharing one store,
they may belong to a submission still in flight.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from xds.repository.index import DocumentIndex
from xds.repository.registry_client import RegistryClient, RegistryUnavailable
from xds.repository.store import DocumentStore

log = logging.getLogger("xds.repository.reconcile")

REMOVE = "remove"
LOG = "log"


@dataclass
class ReconcileReport:
    incomplete_removed: int = 0
    confirmed: list[str] = field(default_factory=list)  # pending uniqueIds the registry holds
    orphans: list[str] = field(default_factory=list)  # pending uniqueIds it does not hold
    unindexed: list[str] = field(default_factory=list)  # storage keys no row names
    removed: bool = False  # orphans and unindexed objects were deleted (policy "remove")
    registry_unavailable: bool = False  # pending rows left for the next start

    def __str__(self) -> str:
        return (
            f"{len(self.confirmed)} pending document(s) confirmed registered, {len(self.orphans)} orphan(s), "
            f"{len(self.unindexed)} unindexed object(s) {'removed' if self.removed else 'kept'}, "
            f"{self.incomplete_removed} interrupted write(s) cleaned"
        )


def sweep_unindexed(
    store: DocumentStore,
    known_keys: Callable[[list[str]], set[str]],
    *,
    older_than: float,
    remove: bool,
    what: str,
    logger: logging.Logger,
) -> list[str]:
    """The keys of the objects ``store`` holds from before ``older_than`` that ``known_keys`` (the
    owner's index, asked 1000 keys at a time) does not name; removed when ``remove``, else only
    logged. ``what`` names an object's owner in the log (a document, an instance)."""
    unindexed: list[str] = []
    entries = (e for e in store.list() if e.modified < older_than)
    while batch := list(itertools.islice(entries, 1000)):
        known = known_keys([e.key for e in batch])
        for entry in batch:
            if entry.key in known:
                continue
            unindexed.append(entry.key)
            if remove:
                store.delete(entry.key)
                logger.warning("removed unindexed object %s from the document store", entry.key)
            else:
                logger.warning("object %s in the document store belongs to no %s", entry.key, what)
    return unindexed


def reconcile(
    index: DocumentIndex,
    store: DocumentStore,
    registry: RegistryClient,
    repository_unique_id: str,
    *,
    policy: str = REMOVE,
    min_age: float = 0.0,
    scan_store: bool = True,
) -> ReconcileReport:
    if policy not in (REMOVE, LOG):
        raise ValueError(f"orphan policy must be {REMOVE!r} or {LOG!r}")
    cutoff = time.time() - min_age
    report = ReconcileReport(removed=policy == REMOVE)
    report.incomplete_removed = store.purge_incomplete(cutoff)

    pending = index.pending(older_than=cutoff)
    if pending:
        try:
            held = registry.lookup(p.unique_id for p in pending)
        except RegistryUnavailable as e:
            log.warning("cannot reconcile %d pending document(s) now, the registry is unavailable: %s",
                        len(pending), e.reason)
            report.registry_unavailable = True
            held = None
        if held is not None:
            for doc in pending:
                ours = [
                    e for e in held.get(doc.unique_id, [])
                    if e.repository_unique_id == repository_unique_id and (doc.hash is None or e.hash == doc.hash)
                ]
                (report.confirmed if ours else report.orphans).append(doc.unique_id)
            if report.confirmed:
                index.mark_registered(report.confirmed)
            by_uid = {d.unique_id: d for d in pending}
            for uid in report.orphans:
                doc = by_uid[uid]
                if policy == REMOVE:
                    store.delete(doc.storage_key)
                    index.remove([uid])
                    log.warning("removed orphan document %s (stored, never registered)", doc.storage_key)
                else:
                    log.warning("orphan document %s: stored but not registered (orphan_policy=log keeps it)",
                                doc.storage_key)

    if scan_store:
        report.unindexed = sweep_unindexed(store, index.known_keys, older_than=cutoff, remove=policy == REMOVE,
                                           what="document", logger=log)

    if report.confirmed or report.orphans or report.unindexed or report.incomplete_removed:
        log.info("repository reconciliation: %s", report)
    return report
