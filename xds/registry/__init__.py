"""The Document Registry actor (IHE XDS.b): persistence and ITI-42 Register Document Set-b.

:class:`Registry` is what a node builds from its configuration: the engine and
:class:`~xds.registry.store.RegistryStore` (migrated at start-up), the affinity domain's code list,
and the registry settings. The repository of the same node registers in process through
:meth:`Registry.register`; remote Document Sources reach it over SOAP (:mod:`xds.registry.service`).
The ITI-8 listener writes patients through ``registry.store.record_patient``.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from xds.config import NodeConfig, RegistryConfig
from xds.metadata import model as m
from xds.metadata.errors import RegistryError
from xds.registry.db import create_registry_engine, migrate
from xds.registry.register import AfterWrite, register_submission
from xds.registry.store import RegistryStore

if TYPE_CHECKING:
    from lxml import etree

    from xds.identity import Identity
    from xds.metadata.codes import CodeList

log = logging.getLogger("xds.registry")


class Registry:
    """A Document Registry over one database."""

    def __init__(
        self,
        store: RegistryStore,
        settings: RegistryConfig,
        codes: CodeList | None = None,
        home_community_id: str = "",
    ) -> None:
        self.store = store
        self.settings = settings
        self.codes = codes
        self.home_community_id = home_community_id
        self.identity: Identity | None = None  # local ids -> HN (xds.identity); None: HNs only

    @classmethod
    def from_config(cls, cfg: NodeConfig, *, run_migrations: bool = True) -> Registry:
        engine = create_registry_engine(
            cfg.database_url, echo=cfg.database.echo, pool_size=cfg.database.pool_size
        )
        if run_migrations:
            migrate(engine)
        codes = None
        if cfg.registry.codes_file:
            from xds.metadata.codes import load_codes

            codes = load_codes(cfg.registry.codes_file)
        registry = cls(RegistryStore(engine), cfg.registry, codes, cfg.home_community_id)
        from xds.identity import Identity

        registry.identity = Identity.for_registry(cfg, registry)
        return registry

    @property
    def engine(self):  # type: ignore[no-untyped-def]
        return self.store.engine

    def validate(self, submission: m.Submission, *, check_patient_authority: bool = True) -> list[RegistryError]:
        """The stateless checks of an ITI-42 submission (ITI TF-3 4.1, 4.2.3, Table 4.3.1-3).
        ``check_patient_authority`` false: patient ids of another authority (local ids) pass."""
        from xds.metadata import rules

        authority = self.settings.patient_assigning_authority if check_patient_authority else ""
        return rules.validate_submission(
            submission,
            profile=rules.Profile.ITI_42,
            codes=self.codes if self.settings.check_codes else None,
            patient_assigning_authority=authority or None,
            unknown_codes_as_warnings=self.settings.unknown_codes == "warn",
        )

    def register(self, submission: m.Submission | etree._Element, *,
                 after_write: AfterWrite | None = None) -> list[RegistryError]:
        """ITI-42 in process: register a parsed Submission or an ``lcm:SubmitObjectsRequest``
        element. Returns the response's RegistryErrors: empty or warnings only means Success.
        ``after_write`` runs in the registration's database transaction once the submission is
        written (not at all when nothing is written: refused, or held for its patient's ADT); the
        repository of this node records its documents as registered there, atomically with them."""
        if not isinstance(submission, m.Submission):
            from xds.metadata import ebrim

            submission = ebrim.parse_submit_objects_request(submission)
        if self.identity is not None:
            from xds.identity.mapping import register

            return register(self, self.identity.mapping, submission, after_write=after_write)
        return register_submission(self.store, submission, self.settings, validate=self.validate,
                                   after_write=after_write)

    def close(self) -> None:
        self.store.dispose()


__all__ = ["Registry", "RegistryStore"]
