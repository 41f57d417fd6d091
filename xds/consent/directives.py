"""Recording consent directives: withdraw, reinstate, and read a patient's state and history.

:class:`ConsentDirectives` works over the registry's database (:mod:`xds.consent.schema`). A
directive names a patient by the affinity-domain id (the HN CX, ``<hn>^^^&<authority>&ISO``, as the
registry's ``patient`` table keys it) and covers:

* everything of the patient (no documents, no studies given);
* the documents whose uniqueIds are given;
* the imaging studies whose Study Instance UIDs are given (their KOS manifests and, through
  RAD-69, their instances).

``withdraw`` records one directive per target, superseding an active directive of the same target.
``reinstate`` without targets supersedes every active directive of the patient (consent fully
restored) and records one patient-wide reinstatement; with targets it supersedes the withdrawal of
each, and refuses (:class:`ConsentError`) a target with no active withdrawal, or while everything
is withdrawn (reinstate the patient first: a partial reinstatement under a full withdrawal has no
effect, so it is not recorded as if it had one). Each change is one transaction, then audited
(:mod:`xds.consent.audit`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, text, update

from xds.consent.audit import AuditSink, DirectiveChange, directive_changed
from xds.consent.schema import (
    DOCUMENT,
    PATIENT,
    REINSTATE,
    STUDY,
    WITHDRAW,
    consent_directive,
)

T = consent_directive


class ConsentError(ValueError):
    """A directive that cannot be recorded (what is wrong is the message)."""


@dataclass(frozen=True)
class Directive:
    id: int
    patient_id: str
    action: str
    scope: str
    target: str
    set_by: str
    set_at: datetime
    reason: str
    superseded_by: int | None
    superseded_at: datetime | None

    @property
    def active(self) -> bool:
        return self.superseded_by is None

    @property
    def withholds(self) -> bool:
        """An active withdrawal: what enforcement reads."""
        return self.active and self.action == WITHDRAW


def _utc(value: datetime | None) -> datetime | None:
    """Times are written in UTC; SQLite gives them back without their zone."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _row(row: Any) -> Directive:
    values = {k: row._mapping[k] for k in Directive.__dataclass_fields__}
    values["set_at"], values["superseded_at"] = _utc(values["set_at"]), _utc(values["superseded_at"])
    return Directive(**values)


def _targets(documents: Iterable[str], studies: Iterable[str]) -> list[tuple[str, str]]:
    out = [(DOCUMENT, d.strip()) for d in documents] + [(STUDY, s.strip()) for s in studies]
    if any(not t for _, t in out):
        raise ConsentError("an empty document uniqueId or Study Instance UID")
    return list(dict.fromkeys(out))


class ConsentDirectives:
    """The consent directives of a registry database."""

    def __init__(self, engine: Engine, *, audit_sinks: Sequence[AuditSink] = ()) -> None:
        self.engine = engine
        self.audit_sinks = list(audit_sinks)

    # --- changes ---

    def withdraw(
        self,
        patient_id: str,
        *,
        documents: Iterable[str] = (),
        studies: Iterable[str] = (),
        set_by: str,
        reason: str = "",
        at: datetime | None = None,
    ) -> list[Directive]:
        """Withdraw consent to share all of the patient's documents, or the ones named."""
        targets = _targets(documents, studies) or [(PATIENT, "")]
        return self._change(patient_id, WITHDRAW, targets, set_by, reason, at)

    def reinstate(
        self,
        patient_id: str,
        *,
        documents: Iterable[str] = (),
        studies: Iterable[str] = (),
        set_by: str,
        reason: str = "",
        at: datetime | None = None,
    ) -> list[Directive]:
        """Reinstate consent: entirely (no targets), or for the documents / studies named."""
        return self._change(patient_id, REINSTATE, _targets(documents, studies), set_by, reason, at)

    def _change(
        self,
        patient_id: str,
        action: str,
        targets: list[tuple[str, str]],
        set_by: str,
        reason: str,
        at: datetime | None,
    ) -> list[Directive]:
        patient_id = patient_id.strip()
        if not patient_id:
            raise ConsentError("no patient id")
        if not set_by.strip():
            raise ConsentError("who sets the directive is required")
        now = (at or datetime.now(UTC)).astimezone(UTC)
        with self.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
            _lock_patient(conn, patient_id)
            active = [
                _row(r)
                for r in conn.execute(
                    select(T).where(T.c.patient_id == patient_id, T.c.superseded_by.is_(None))
                )
            ]
            superseded: list[int] = []
            recorded: list[Directive] = []
            if action == REINSTATE and not targets:
                targets = [(PATIENT, "")]
                replaces = {(PATIENT, ""): [d.id for d in active]}
            else:
                if action == REINSTATE:
                    _check_reinstatable(active, targets)
                replaces = {t: [d.id for d in active if (d.scope, d.target) == t] for t in targets}
            for scope, target in targets:
                new_id = conn.execute(
                    T.insert()
                    .values(
                        patient_id=patient_id,
                        action=action,
                        scope=scope,
                        target=target,
                        set_by=set_by.strip(),
                        set_at=now,
                        reason=reason.strip(),
                    )
                    .returning(T.c.id)
                ).scalar_one()
                old = replaces.get((scope, target), [])
                if old:
                    conn.execute(
                        update(T).where(T.c.id.in_(old)).values(superseded_by=new_id, superseded_at=now)
                    )
                superseded += old
                recorded.append(_row(conn.execute(select(T).where(T.c.id == new_id)).one()))
        directive_changed(
            DirectiveChange(patient_id, action, recorded, superseded, set_by.strip(), reason.strip()),
            self.audit_sinks,
        )
        return recorded

    # --- reads ---

    def active(self, patient_id: str) -> list[Directive]:
        """The patient's active withdrawals (what is withheld now)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(T)
                .where(T.c.patient_id == patient_id, T.c.superseded_by.is_(None), T.c.action == WITHDRAW)
                .order_by(T.c.id)
            )
            return [_row(r) for r in rows]

    def history(self, patient_id: str) -> list[Directive]:
        """Every directive the patient gave, oldest first, superseded ones included."""
        with self.engine.connect() as conn:
            return [
                _row(r) for r in conn.execute(select(T).where(T.c.patient_id == patient_id).order_by(T.c.id))
            ]


def _check_reinstatable(active: list[Directive], targets: list[tuple[str, str]]) -> None:
    withdrawn = {(d.scope, d.target) for d in active if d.action == WITHDRAW}
    if (PATIENT, "") in withdrawn:
        raise ConsentError(
            "consent is withdrawn for all of the patient's documents: reinstate the patient (no "
            "--document/--study) first, then withdraw what stays withheld"
        )
    missing = [f"{scope} {target}" for scope, target in targets if (scope, target) not in withdrawn]
    if missing:
        raise ConsentError("no active withdrawal to reinstate for " + ", ".join(missing))


def _lock_patient(conn: Connection, patient_id: str) -> None:
    """Serialise directive changes of one patient (SQLite: BEGIN IMMEDIATE already does)."""
    if conn.dialect.name == "postgresql":
        key = int.from_bytes(
            hashlib.sha256(b"consent:" + patient_id.encode()).digest()[:8], "big", signed=True
        )
        conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": key})
