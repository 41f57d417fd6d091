"""The DI Common Service's own ATNA audit trail (ITI-20; issue 8): what consumers asked of it, and
what it asked of the communities on their behalf.

The service audits as a DIR node does (:mod:`xds.audit`), into its own store (the ``[audit]`` table
of ``conf/dics.toml``: SQLite ``<data_dir>/audit.sqlite`` unless ``audit.database_url``; syslog to
``audit.repository`` when set), with its start and stop:

* as the recipient of a consumer's ITI-18, ITI-43 and RAD-69 (ITI TF-2a 3.18.5.1.2, 3.43.5.1.2,
  RAD TF-3 4.69.4.1.4): the messages a DIR's registry, repository or imaging source writes
  (Query; Export), the consumer (its wsa:ReplyTo and address) the requestor; written by the
  endpoint's guard (:class:`GatewayGuard`, an :class:`xds.security.guard.EndpointGuard`);
* as the initiator of each ITI-38, ITI-39 and RAD-75 it sends (ITI TF-2b 3.38.5.1.1, 3.39.5.1.1,
  RAD TF-3 4.75): one message per community asked (:func:`xds.audit.events.initiated_message`),
  with that community's outcome; one that did not answer is a major failure whose
  EventOutcomeDescription says why.

"Who accessed this patient's exams" (``xds audit query --patient`` on the service's store): a
query names its patient; a retrieve names only documents and studies, which the store ties to their
patient (``audit_link``) from what the service's own queries disclosed: each DocumentEntry's
patientId with its uniqueId, and with the Study Instance UID of a KOS manifest's referenceIdList.

All of a transaction's messages are in the store before its answer leaves, as on a node.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from lxml import etree

from xca.config import CommunityConfig, DicsConfig
from xds.audit import codes, events
from xds.audit.context import AuditContext
from xds.audit.message import AuditMessage
from xds.audit.trail import AuditTrail
from xds.security.guard import ANONYMOUS, EndpointGuard, NodeSecurity, response_outcome
from xds.soap.dispatch import Endpoint
from xds.soap.message import SoapResponse

if TYPE_CHECKING:
    from xca.initiating_gateway import Entry

log = logging.getLogger("xca.audit")

_KNOWN_LINKS_MAX = 200_000  # links remembered as stored, not to be looked up again


@dataclass
class GatewayContext(AuditContext):
    """What a transaction the service answered touched, plus the messages of the transactions it
    initiated for it and the (kind, id, patient) links its answer taught."""

    initiated: list[AuditMessage] = field(default_factory=list)
    links: list[tuple[str, str, str]] = field(default_factory=list)
    # initiator messages already on their way to the store (GatewayAudit.write)
    written: asyncio.Future | None = None


class GatewayGuard(EndpointGuard):
    """The guard of ``/xca/initiate``: the service's transaction as a node's endpoint audits it,
    once the initiator messages the handler started writing are stored, and together with those
    it left to write (one group commit, :class:`xds.audit.trail.AuditWriter`)."""

    async def record(self, request, soap, action, result, person) -> None:  # type: ignore[no-untyped-def]
        audit = self.security.audit
        if audit is None or result is None:
            return
        context = result.audit if isinstance(result, SoapResponse) else None
        mine = isinstance(context, GatewayContext)
        try:
            message, links = self._message(request, soap, action, result, person)
        except Exception:
            log.exception("audit message for %s on %s could not be built", action, self.path)
            message, links = None, []
        pending = [audit.committed(m) for m in (context.initiated if mine else [])]
        if message is not None:
            pending.append(audit.committed(message, (context.links if mine else []) + links))
        if mine and context.written is not None:
            pending.append(context.written)
        await asyncio.gather(*pending)


class GatewayAudit:
    """The service's audit trail, and the messages of what it initiates."""

    def __init__(self, cfg: DicsConfig) -> None:
        self.node_cfg = cfg.node_config()
        self.security = NodeSecurity(self.node_cfg, AuditTrail.from_config(self.node_cfg), None)
        self.trail: AuditTrail = self.security.audit  # type: ignore[assignment]
        self._linked: set[tuple[str, str, str]] = set()

    @classmethod
    def from_config(cls, cfg: DicsConfig) -> GatewayAudit | None:
        return cls(cfg) if cfg.audit.enabled else None

    def guard(self, endpoint: Endpoint) -> GatewayGuard:
        endpoint.guard = GatewayGuard(self.security, endpoint.name, endpoint.path)
        return endpoint.guard

    async def start(self) -> None:
        await self.security.start()

    async def stop(self) -> None:
        await self.security.stop()
        self.security.close()

    # --- the transactions the service initiates ---

    def write(self, messages: list[AuditMessage]) -> asyncio.Future:
        """Store ``messages``, starting now (the guard awaits them before the answer leaves)."""
        return asyncio.gather(*(self.trail.committed(m) for m in messages))

    def initiated(self, transaction: str, community: CommunityConfig, answer: etree._Element | None,
                  failure: str, context: AuditContext) -> AuditMessage:
        """The message of one ITI-38 / ITI-39 / RAD-75 to ``community``: its outcome from the
        answer's status and errors, or a major failure naming why there was none."""
        if answer is None:
            outcome, description = codes.MAJOR_FAILURE, f"XDSUnavailableCommunity: {failure}"
        else:
            outcome, description = response_outcome(SoapResponse(answer, ""))
        peer = events.Party(community.url, urlsplit(community.url).hostname or "")
        return events.initiated_message(events.TRANSACTIONS[transaction], outcome=outcome,
                                        node=events.Party(ANONYMOUS), peer=peer, source=self.trail.source,
                                        context=context, description=description)

    # --- what an answer disclosed ---

    def disclosed(self, entries: Iterable[Entry]) -> tuple[list[str], list[tuple[str, str, str]]]:
        """The patients of the DocumentEntries an answer returned, and the links from their
        uniqueIds and manifest studies to the patient not yet known to be stored."""
        patients: dict[str, None] = {}
        links: list[tuple[str, str, str]] = []
        for entry in entries:
            patient = entry.patient_id
            if not patient:
                continue
            patients[patient] = None
            for link in (("document", entry.unique_id, patient), ("study", entry.study, patient)):
                if link[1] and link not in self._linked:
                    links.append(link)  # type: ignore[arg-type]
        if len(self._linked) > _KNOWN_LINKS_MAX:
            self._linked.clear()
        self._linked.update(links)
        return list(patients), links

