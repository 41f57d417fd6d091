"""The Document Repository actor (IHE XDS.b, XDS-I.b): ITI-41 / RAD-68 in, ITI-43 out.

:class:`Repository` ties together what a node's ``[repository]`` configuration names: the document
store (:mod:`~xds.repository.filesystem` or :mod:`~xds.repository.s3`), the repository's own index
of what it holds (:mod:`~xds.repository.index`, also the pending journal of store-then-register),
and the Document Registry it registers with (in process, or ITI-42 over SOAP to ``registry_url``).
The transactions are :mod:`~xds.repository.provide` and :mod:`~xds.repository.retrieve`;
:mod:`~xds.repository.service` mounts them on the node's ``/xds/repository`` endpoint and
:mod:`~xds.repository.reconcile` repairs what a crash left between store and registry.
"""

from __future__ import annotations

import logging
from typing import Any

from xds.config import NodeConfig
from xds.repository.index import DocumentIndex
from xds.repository.reconcile import ReconcileReport, reconcile
from xds.repository.registry_client import LocalRegistry, RegistryClient, RemoteRegistry
from xds.repository.store import DocumentStore

log = logging.getLogger("xds.repository")

# A start-up reconciliation leaves pending documents younger than this alone when several worker
# processes may be serving already (a submission in flight is never longer than this between its
# store and its registration; older ones are repaired at the next start).
MULTI_WORKER_RECONCILE_MIN_AGE = 900.0


def store_from_config(cfg: NodeConfig) -> DocumentStore:
    rc = cfg.repository
    if rc.store == "s3":
        from xds.repository.s3 import S3Store

        if not rc.s3_bucket:
            from xds.config import ConfigError

            raise ConfigError("configuration key 'repository.s3_bucket' is required when repository.store is s3")
        return S3Store(
            bucket=rc.s3_bucket,
            endpoint_url=rc.s3_endpoint or None,
            region=rc.s3_region,
            access_key=rc.s3_access_key or None,
            secret_key=rc.s3_secret_key or None,
        )
    from pathlib import Path

    from xds.repository.filesystem import FilesystemStore

    path = Path(rc.path)
    return FilesystemStore(path if path.is_absolute() else cfg.data_path(rc.path))


class Repository:
    """A Document Repository: one repositoryUniqueId, one store, one index, one registry."""

    def __init__(
        self,
        *,
        repository_unique_id: str,
        store: DocumentStore,
        index: DocumentIndex,
        registry: RegistryClient,
        home_community_id: str = "",
        orphan_policy: str = "remove",
    ) -> None:
        self.repository_unique_id = repository_unique_id
        self.store = store
        self.index = index
        self.registry = registry
        self.home_community_id = home_community_id
        self.orphan_policy = orphan_policy

    @classmethod
    def from_config(cls, cfg: NodeConfig, registry: Any = None) -> Repository:
        """Build from ``cfg``. ``registry`` is this node's :class:`xds.registry.Registry`, used
        when ``repository.registry_url`` is empty."""
        from xds.registry.db import create_registry_engine

        rc = cfg.repository
        if rc.registry_url:
            client: RegistryClient = RemoteRegistry(rc.registry_url)
        elif registry is not None:
            client = LocalRegistry(registry)
        else:
            from xds.config import ConfigError

            raise ConfigError("the repository needs repository.registry_url or the registry enabled in this node")
        engine = create_registry_engine(cfg.database_url, echo=cfg.database.echo, pool_size=cfg.database.pool_size)
        return cls(
            repository_unique_id=rc.repository_unique_id,
            store=store_from_config(cfg),
            index=DocumentIndex(engine),
            registry=client,
            home_community_id=cfg.home_community_id,
            orphan_policy=rc.orphan_policy,
        )

    @classmethod
    def open(cls, cfg: NodeConfig, registry: Any = None) -> Repository:
        """:meth:`from_config`, then the start-up reconciliation (:mod:`.reconcile`)."""
        repository = cls.from_config(cfg, registry)
        min_age = 0.0 if cfg.http.workers <= 1 else MULTI_WORKER_RECONCILE_MIN_AGE
        try:
            repository.reconcile(min_age=min_age)
        except Exception:
            log.exception("start-up reconciliation of the document repository failed; serving anyway")
        return repository

    def reconcile(self, min_age: float = 0.0, scan_store: bool = True) -> ReconcileReport:
        """Start-up repair of what a crash left between store and registry (:mod:`.reconcile`)."""
        return reconcile(
            self.index,
            self.store,
            self.registry,
            self.repository_unique_id,
            policy=self.orphan_policy,
            min_age=min_age,
            scan_store=scan_store,
        )

    def close(self) -> None:
        self.store.close()
        self.registry.close()
        self.index.engine.dispose()


__all__ = ["Repository", "store_from_config"]
