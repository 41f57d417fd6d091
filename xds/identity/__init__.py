"""Patient identity as Ontario's DIRs do it (DESIGN.md section 7): local ``Patient ID + Issuer``
couplets from many identity pools, the health number (HN) as the one global id.

* :mod:`xds.identity.domain`: issuers, couplets, the HN authority, the configured feeds;
* :mod:`xds.identity.store`: the identity tables (in the registry's database);
* :mod:`xds.identity.feed`: ITI-8 events (A01/A04/A05/A08, A40, A47) applied to the store;
* :mod:`xds.identity.mapping`: couplet -> HN at ingest (with the held queue) and at query;
* :mod:`xds.identity.pix`: ITI-9 PIX Query over the feed's MLLP listener.

:class:`Identity` is what a node builds: one of each, wired to its registry.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from xds.config import NodeConfig
from xds.identity.domain import Couplet, IdentityDomain, Issuer
from xds.identity.feed import AdtEvent, IdentityFeed
from xds.identity.mapping import XDS_SUBMISSION, PatientMapping, registry_release_handler
from xds.identity.pix import PixManager
from xds.identity.store import IdentityStore

if TYPE_CHECKING:
    from xds.registry import Registry


class Identity:
    """The identity layer of one node: ``mapping`` (resolve, hold, release), ``feed`` (the ITI-8
    sink), ``pix`` (ITI-9)."""

    def __init__(self, domain: IdentityDomain, store: IdentityStore, *, application: str = "",
                 facility: str = "") -> None:
        self.domain = domain
        self.store = store
        self.mapping = PatientMapping(store, domain)
        self.feed = IdentityFeed(store, release=self.mapping.release)
        self.pix = PixManager(store, domain, application, facility)

    @classmethod
    def for_registry(cls, cfg: NodeConfig, registry: Registry) -> Identity:
        """Over the registry's database; held ITI-41/42 submissions are registered in it."""
        identity = cls(IdentityDomain.from_config(cfg), IdentityStore(registry.engine),
                       application=cfg.mllp.receiving_application, facility=cfg.mllp.receiving_facility)
        identity.mapping.on_release(XDS_SUBMISSION, registry_release_handler(registry, identity.mapping))
        return identity


__all__ = ["AdtEvent", "Couplet", "Identity", "IdentityDomain", "IdentityFeed", "Issuer", "PatientMapping"]
