"""The Imaging Document Source actor (IHE XDS-I.b, RAD TF-1 18) of a DIR node.

PACS feeds send studies over DICOM (:mod:`~xds.imaging.scp`, C-STORE) into the
:mod:`~xds.imaging.instance_store`, whose files are kept in the node's document store
(:mod:`~xds.imaging.storage`); when a study has been quiet for ``study_quiet_seconds`` its KOS
manifest (:mod:`~xds.imaging.kos`) is published with RAD-68 (:mod:`~xds.imaging.publish`); consumers
retrieve the instances with RAD-69 on ``/xds/imaging`` (:mod:`~xds.imaging.retrieve`). The
repository's RAD-68 content checks are in :mod:`~xds.imaging.rad68`.
"""

from __future__ import annotations

import logging
from typing import Any

from xds.config import ImagingConfig, NodeConfig
from xds.imaging.instance_store import InstanceStore
from xds.imaging.publish import Publisher, PublishSettings, Sender, in_process, over_soap
from xds.imaging.scp import StorageSCP

log = logging.getLogger("xds.imaging")

# pydicom's read validation logs the values it finds invalid ("Invalid value for VR ...: <value>") at
# WARNING, the level pydicom sets for itself; received data sets carry patient data, so only its
# errors reach the node's log.
logging.getLogger("pydicom").setLevel(logging.ERROR)


class ImagingSource:
    """Instance store, DICOM listener and manifest publisher under one repositoryUniqueId."""

    def __init__(
        self,
        settings: ImagingConfig,
        instances: InstanceStore,
        publisher: Publisher,
        *,
        orphan_policy: str = "remove",
        reconcile_min_age: float = 0.0,
    ) -> None:
        self.settings = settings
        self.instances = instances
        self.publisher = publisher
        self.orphan_policy = orphan_policy  # repository.orphan_policy: the node's one rule for orphans
        self.reconcile_min_age = reconcile_min_age
        self.scp: StorageSCP | None = None

    @property
    def repository_unique_id(self) -> str:
        return self.settings.repository_unique_id

    @classmethod
    def from_config(cls, cfg: NodeConfig, repository: Any = None, identity: Any = None) -> ImagingSource:
        """Build from ``cfg``; ``repository`` is this node's Document Repository, the RAD-68
        destination unless a remote repository URL is configured; ``identity`` the node's
        :class:`xds.identity.Identity`, which maps the studies' local patient ids to HNs and holds
        the studies whose ids have none yet (None: the HN must be in the DICOM header)."""
        from xds.config import ConfigError
        from xds.imaging.storage import instance_storage
        from xds.registry.db import create_registry_engine
        from xds.repository import MULTI_WORKER_RECONCILE_MIN_AGE

        im = cfg.imaging
        if not im.repository_unique_id:
            raise ConfigError("configuration key 'imaging.repository_unique_id' is required when imaging is enabled")
        settings = PublishSettings.from_config(cfg)
        send: Sender
        if settings.repository_url:
            send = over_soap(settings.repository_url, settings.http_timeout)
        elif repository is not None:
            send = in_process(repository)
        else:
            raise ConfigError("the imaging document source needs the repository enabled in this node")
        engine = create_registry_engine(cfg.database_url, echo=cfg.database.echo, pool_size=cfg.database.pool_size)
        instances = InstanceStore(engine, instance_storage(cfg))
        publisher = Publisher(
            instances,
            send,
            settings,
            retrieve_location_uid=im.repository_unique_id,
            quiet_seconds=im.study_quiet_seconds,
            mapping=identity.mapping if identity is not None else None,
        )
        if identity is not None:
            # registered before the node's start-up sweep releases what an ADT unblocked meanwhile
            from xds.identity.domain import REJECT
            from xds.imaging.patient import DICOM_STUDY

            identity.mapping.on_release(DICOM_STUDY, publisher.release)
            if identity.domain.unknown_local_id == REJECT:
                instances.admit = publisher.admit
        min_age = 0.0 if cfg.http.workers <= 1 else MULTI_WORKER_RECONCILE_MIN_AGE
        return cls(im, instances, publisher, orphan_policy=cfg.repository.orphan_policy, reconcile_min_age=min_age)

    def reconcile(self) -> None:
        """The start-up repair of the instance store (:func:`xds.imaging.storage.reconcile`)."""
        from xds.imaging.storage import reconcile

        try:
            reconcile(self.instances, policy=self.orphan_policy, min_age=self.reconcile_min_age)
        except Exception:
            log.exception("start-up reconciliation of the imaging instance store failed; serving anyway")

    async def start(self, security: Any = None) -> list[Any]:
        """Start the DICOM listener and the publisher; returns them as closeable listeners.
        ``security`` (:class:`xds.security.guard.NodeSecurity`): the listener's TLS context and the
        audit trail of what it receives."""
        import asyncio

        from xds.imaging.retrieve import patient_of

        await asyncio.to_thread(self.reconcile)  # before the listener stores anything
        tls = security.ssl_context("dicom") if security is not None else None
        audit = security.audit if security is not None else None
        uri = security.listener_uri("dicom") if security is not None else ""
        self.publisher.audit = audit
        if security is not None:
            from xds.audit.events import Party

            self.publisher.audit_node = Party(uri, alternative_user_id=f"AETITLES={self.settings.ae_title}")
        self.scp = StorageSCP(self.settings, self.instances, on_stored=self.publisher.notify, ssl_context=tls,
                              audit=audit, listener_uri=uri, patient_of=lambda i: patient_of(self, i)).start()
        self.publisher.start()
        return [self.publisher, self.scp]

    def close(self) -> None:
        if self.scp is not None:
            self.scp.stop()
        self.publisher.stop()
        self.instances.close()


__all__ = ["ImagingSource", "InstanceStore", "Publisher", "PublishSettings", "StorageSCP"]
