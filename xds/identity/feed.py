"""ITI-8 Patient Identity Feed applied to the identity store (ITI TF-2a 3.8; HL7 v2.5 3.3.40, 3.3.47).

:class:`AdtEvent` is what :mod:`xds.hl7.patient_feed` reads from one ADT message; :class:`IdentityFeed`
applies it in one database transaction:

* A01/A04/A05/A08: the HN becomes (or stays) a patient of the registry; each couplet of the message
  is created or updated and linked to the HN. A couplet linked to another HN before is a
  *correction*: it is relinked, and the registry objects registered through it move to the new HN.
* A40 (merge): an HN in MRG-1 is merged into the PID-3 HN (registry queries and new submissions
  follow ``patient.merged_into``); a couplet in MRG-1 is retired into the PID-3 couplet of the same
  issuer (or into the PID-3 HN), and what was registered through it follows.
* A47 (change of identifier): the MRG-1 couplet is replaced by the PID-3 one of the same issuer
  (AE 205 if that one already exists: that would be a merge, A40); on an HN, as A40.

A message already applied (same sender, same MSH-10, same content) is acknowledged again and not
applied twice. After the commit, held submissions of the couplets concerned are released.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from xds.hl7.ack import AckError
from xds.hl7.message import DUPLICATE_KEY_IDENTIFIER
from xds.identity import schema as t
from xds.identity.domain import Couplet
from xds.identity.store import CoupletRow, IdentityStore, IdentityTransaction, event_values

log = logging.getLogger("xds.identity.feed")

MERGE_EVENTS = frozenset({"A40"})
CHANGE_ID_EVENTS = frozenset({"A47"})


@dataclass
class AdtEvent:
    """One ADT message as the identity layer needs it. ``hn`` is the affinity-domain CX of PID-3
    (None: the message carries none), ``couplets`` the local ids of PID-3 this feed may assert,
    ``prior_hns``/``prior_couplets`` those of MRG-1 (A40, A47)."""

    trigger: str
    sender: str
    source: str
    control_id: str
    digest: str
    hn: str | None
    couplets: list[Couplet] = field(default_factory=list)
    demographics: dict[str, str] = field(default_factory=dict)
    prior_hns: list[str] = field(default_factory=list)
    prior_couplets: list[Couplet] = field(default_factory=list)

    def touched(self) -> list[tuple[str, str]]:
        return [c.key for c in (*self.couplets, *self.prior_couplets)]


class Refused(Exception):
    """The message cannot be applied as sent (AE); nothing of it is written."""

    def __init__(self, error: AckError) -> None:
        super().__init__(error.reason)
        self.error = error


class _Apply:
    def __init__(self, tx: IdentityTransaction, event: AdtEvent) -> None:
        self.tx = tx
        self.e = event
        self.events: list[dict[str, Any]] = []  # history rows, written together at the end

    def record_event(self, event: str, **kw: Any) -> None:
        self.events.append(event_values(event, source=self.e.source, control_id=self.e.control_id, **kw))

    def run(self) -> None:
        self.apply()
        self.tx.record_events(self.events)

    def apply(self) -> None:
        e = self.e
        if e.trigger in CHANGE_ID_EVENTS:
            self.check_change_targets()
        if e.hn is not None:
            self.tx.registry.record_patient(e.hn, e.demographics, e.source, e.control_id)
        rows = [self.upsert(c) for c in e.couplets]
        for prior in e.prior_hns:
            if prior == e.hn:
                continue
            assert e.hn is not None
            self.tx.merge_hn(prior, e.hn, e.control_id)
            self.record_event("hn-merged", hn=prior, detail={"into": e.hn, "trigger": e.trigger})
        by_issuer = {r.issuer: r for r in rows}
        for prior in e.prior_couplets:
            self.retire(prior, by_issuer.get(prior.issuer.key))

    def check_change_targets(self) -> None:
        for prior in self.e.prior_couplets:
            new = next((c for c in self.e.couplets if c.issuer.key == prior.issuer.key), None)
            if new is None or new.key == prior.key:
                continue
            old_row, new_row = self.tx.couplet(prior), self.tx.couplet(new)
            if old_row is not None and new_row is not None and new_row.active:
                raise Refused(AckError(DUPLICATE_KEY_IDENTIFIER, f"A47: the new patient id (PID-3) of issuer "
                                       f"{new.issuer.key} is already in use; merging two ids is A40", "PID", 3))

    def upsert(self, couplet: Couplet) -> CoupletRow:
        e, tx = self.e, self.tx
        row = tx.couplet(couplet, lock=True)
        if row is None:
            row = tx.add_couplet(couplet, e.hn, e.demographics, e.source, e.control_id)
            self.record_event(e.trigger, couplet_id=row.id, hn=e.hn, detail={"created": True})
            if e.hn:
                self.record_event("hn-linked", couplet_id=row.id, hn=e.hn)
            return row
        if not row.active:
            # an update naming a retired id: keep it retired; its successor carries the person
            log.warning("ITI-8 %s control_id=%s names a %s local id; not reactivated", e.trigger, e.control_id,
                        row.status)
            return row
        demographics = {**row.demographics, **e.demographics}
        values: dict[str, object] = {"demographics": demographics, "source": e.source,
                                     "message_control_id": e.control_id}
        if e.hn and e.hn != row.hn:
            values["hn"] = e.hn
        tx.update_couplet(row.id, **values)
        self.record_event(e.trigger, couplet_id=row.id, hn=e.hn or row.hn)
        if e.hn and row.hn and e.hn != row.hn:
            moved = tx.move_registered(row.id, e.hn)
            self.record_event("hn-corrected", couplet_id=row.id, hn=e.hn,
                              detail={"from": row.hn, "to": e.hn, "moved": moved})
            log.info("ITI-8 %s control_id=%s: HN of a local id corrected; %d registry object(s) moved",
                     e.trigger, e.control_id, moved)
        elif e.hn and not row.hn:
            self.record_event("hn-linked", couplet_id=row.id, hn=e.hn)
        return dataclasses.replace(row, **values)  # the row as updated

    def retire(self, prior: Couplet, successor: CoupletRow | None) -> None:
        e, tx = self.e, self.tx
        if successor is not None and successor.key == prior.key:
            return
        status = t.REPLACED if e.trigger in CHANGE_ID_EVENTS else t.MERGED
        row = tx.couplet(prior, lock=True)
        if row is None:
            row = tx.add_couplet(prior, None, {}, e.source, e.control_id)
        target = (successor.hn if successor is not None else None) or e.hn or row.hn
        if successor is not None and not successor.hn and target:
            tx.update_couplet(successor.id, hn=target)
        tx.retire_couplet(row, status, successor, target, e.source, e.control_id)
        moved = tx.move_registered(successor.id if successor else row.id, target) if target else 0
        self.record_event("id-changed" if status == t.REPLACED else "merged", couplet_id=row.id, hn=target,
                          detail={"successor": successor.id if successor else None, "from_hn": row.hn,
                                  "moved": moved, "trigger": e.trigger})


class IdentityFeed:
    """The node's PatientIdentitySink: applies ADT events, then releases what they unblock."""

    def __init__(self, store: IdentityStore, release: Callable[[list[tuple[str, str]]], object] | None = None,
                 attempts: int = 3) -> None:
        self.store = store
        self.release = release
        self.attempts = attempts
        # SQLite has one writer: queue here rather than in its busy handler, which sleeps and polls
        self._writer = threading.Lock() if store.engine.dialect.name == "sqlite" else contextlib.nullcontext()

    def apply_adt(self, event: AdtEvent) -> AckError | None:
        """None when applied (or already applied: a resend), the AE's error when refused. Database
        failures raise (the feed answers AR: resend later)."""
        waiting = False
        for attempt in range(1, self.attempts + 1):
            try:
                with self._writer, self.store.transaction() as tx:
                    seen = tx.message_digest(event.sender, event.control_id)
                    if seen == event.digest:
                        log.info("ITI-8 %s control_id=%s from %s: already applied; acknowledged again",
                                 event.trigger, event.control_id, event.sender)
                        return None
                    _Apply(tx, event).run()
                    tx.remember_message(event.sender, event.control_id, event.digest, "AA", exists=seen is not None)
                    waiting = tx.any_held(event.touched())
                break
            except Refused as refused:
                return refused.error
            except (IntegrityError, OperationalError):
                # a concurrent message created the same couplet or applied the same message first
                if attempt == self.attempts:
                    raise
                log.info("ITI-8 %s control_id=%s: concurrent update; retrying", event.trigger, event.control_id)
        if self.release is not None and waiting:
            try:
                self.release(event.touched())
            except Exception as exc:  # the ADT is recorded; the start-up sweep releases what is left
                log.error("releasing held items after ITI-8 control_id=%s failed (%s)", event.control_id,
                          type(exc).__name__)
                log.debug("release failure", exc_info=True)
        return None


__all__ = ["AdtEvent", "IdentityFeed", "Refused"]
