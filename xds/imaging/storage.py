"""Where the Imaging Document Source keeps the DICOM instances it received, and the start-up repair
of what a crash left there (DESIGN.md section 4).

Instances live in the node's document store, the one ``[repository]`` configures (a directory or
an S3-compatible bucket, :func:`xds.repository.store_from_config`), in its key space ``imaging``:
``<repository.path>/imaging/`` on a filesystem, the object-name prefix ``imaging/`` in the bucket.
The key space keeps them apart from the repository's documents, whose reconciliation removes every
object the repository's index does not name.

Nodes older than this kept instances in ``<data_dir>/imaging/`` whatever the store. Such a
directory is still read (:class:`LegacyFallbackStore`): an instance is read from it when it is
there, new instances go to the configured store, and removing an instance removes it from both.
``xds imaging-migrate`` moves the old instances into the configured store (same keys, so the index
is unchanged), after which the directory is empty and no longer consulted.

Repair (:func:`reconcile`). An instance is stored, then indexed; when indexing fails the object is
removed at once. A crash in between, or in the middle of a write, leaves an object no index row
names, a temporary file or an unfinished multipart upload; a replaced instance whose old object
could not be removed leaves one too. At start-up, before the DICOM listener accepts associations,
interrupted writes are removed and objects no ``imaging_instance`` row names are removed
(``repository.orphan_policy = "remove"``) or logged (``"log"``). Objects younger than ``min_age``
are left alone: another process may be storing them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from xds.repository.filesystem import FilesystemStore
from xds.repository.reconcile import LOG, REMOVE, sweep_unindexed
from xds.repository.store import DocumentNotFound, DocumentStore, StoredObject, StoreEntry

if TYPE_CHECKING:
    from xds.config import NodeConfig
    from xds.imaging.instance_store import InstanceStore

log = logging.getLogger("xds.imaging")

KEY_SPACE = "imaging"


class LegacyFallbackStore(DocumentStore):
    """The configured store (``current``), plus the directory instances were kept in before
    (``legacy``): reads look there first (a local stat), writes never go there."""

    def __init__(self, current: DocumentStore, legacy: FilesystemStore) -> None:
        self.current = current
        self.legacy = legacy
        self.name = current.name

    def put(self, stream: BinaryIO, key: str | None = None, size_hint: int | None = None) -> StoredObject:
        return self.current.put(stream, key, size_hint)

    def opener(self, key: str) -> Callable[[], BinaryIO]:
        try:
            legacy = self.legacy.opener(key)
        except DocumentNotFound:
            return self.current.opener(key)

        def open_document() -> BinaryIO:
            try:
                return legacy()
            except DocumentNotFound:  # moved by `xds imaging-migrate` meanwhile
                return self.current.open(key)

        return open_document

    def delete(self, key: str) -> None:
        self.current.delete(key)
        self.legacy.delete(key)

    def exists(self, key: str) -> bool:
        return self.legacy.exists(key) or self.current.exists(key)

    def list(self) -> Iterator[StoreEntry]:
        yield from self.legacy.list()
        yield from self.current.list()

    def purge_incomplete(self, older_than: float) -> int:
        return self.legacy.purge_incomplete(older_than) + self.current.purge_incomplete(older_than)

    def key_space(self, name: str) -> DocumentStore:
        return self.current.key_space(name)

    def migrate(self) -> int:
        """Move every instance of the legacy directory into the current store; returns how many.
        Each is copied under its key, then removed from the directory: interrupted, it is read from
        the directory until the next run copies it again."""
        moved = 0
        for entry in self.legacy.list():
            try:
                f = self.legacy.open(entry.key)
            except DocumentNotFound:  # removed by the node meanwhile (the instance was replaced)
                continue
            with f:
                self.current.put(f, entry.key, size_hint=entry.size)
            self.legacy.delete(entry.key)
            moved += 1
        return moved

    def close(self) -> None:
        self.current.close()
        self.legacy.close()

    def __repr__(self) -> str:
        return f"LegacyFallbackStore({self.current!r}, legacy={self.legacy!r})"


def _has_files(directory: Path) -> bool:
    return directory.is_dir() and next(FilesystemStore(directory).list(), None) is not None


def instance_storage(cfg: NodeConfig) -> DocumentStore:
    """The store of the node's imaging instances: the ``imaging`` key space of the configured
    document store, with the pre-upgrade directory ``<data_dir>/imaging`` behind it while that
    still holds instances."""
    from xds.repository import store_from_config

    store = store_from_config(cfg).key_space(KEY_SPACE)
    legacy = cfg.data_path(KEY_SPACE).resolve()
    if isinstance(store, FilesystemStore) and store.root == legacy:
        return store
    if _has_files(legacy):
        log.info("imaging instances stored before the upgrade are read from %s until `xds imaging-migrate` "
                 "moves them to %r", legacy, store)
        return LegacyFallbackStore(store, FilesystemStore(legacy))
    return store


@dataclass
class ReconcileReport:
    incomplete_removed: int = 0
    unindexed: list[str] = field(default_factory=list)  # storage keys no imaging_instance row names
    removed: bool = False

    def __str__(self) -> str:
        return (f"{len(self.unindexed)} unindexed instance object(s) {'removed' if self.removed else 'kept'}, "
                f"{self.incomplete_removed} interrupted write(s) cleaned")


def reconcile(instances: InstanceStore, *, policy: str = REMOVE, min_age: float = 0.0) -> ReconcileReport:
    """Start-up repair of the instance store (see the module docstring)."""
    if policy not in (REMOVE, LOG):
        raise ValueError(f"orphan policy must be {REMOVE!r} or {LOG!r}")
    store = instances.store
    cutoff = time.time() - min_age
    report = ReconcileReport(removed=policy == REMOVE)
    report.incomplete_removed = store.purge_incomplete(cutoff)
    report.unindexed = sweep_unindexed(store, instances.known_keys, older_than=cutoff, remove=policy == REMOVE,
                                       what="indexed DICOM instance", logger=log)
    if report.unindexed or report.incomplete_removed:
        log.info("imaging instance store reconciliation: %s", report)
    return report


__all__ = ["KEY_SPACE", "LegacyFallbackStore", "ReconcileReport", "instance_storage", "reconcile"]
