"""The audit hook of consent directive changes.

Every withdrawal and reinstatement calls :func:`directive_changed` once, after its transaction
committed, with a :class:`DirectiveChange`: the directives recorded, the ones they superseded, who,
when and why. The directive table itself is the durable, append-only record (rows are superseded,
never deleted). The hook writes one log record (logger ``xds.consent.audit``, no more than the
directive says) and calls the sinks given to :class:`~xds.consent.directives.ConsentDirectives`;
:func:`atna_sink` is the one that puts the change in the node's ATNA audit trail (ITI-20,
:mod:`xds.audit`): a DICOM "Patient Record" event (PS3.15 A.5.3, EventID 110110, EventActionCode
``U``) with the operator who set the directive as the requesting participant, the node as the
application, the patient as participant object (the directive, its targets and reason as details)
and each document (Report Number) or study named.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xds.consent.directives import Directive

log = logging.getLogger("xds.consent.audit")


@dataclass(frozen=True)
class DirectiveChange:
    """One withdrawal or reinstatement as recorded: the new rows and the rows they superseded."""

    patient_id: str
    action: str
    recorded: Sequence[Directive]
    superseded: Sequence[int]
    set_by: str
    reason: str

    @property
    def targets(self) -> list[str]:
        return [f"{d.scope}:{d.target}" if d.target else d.scope for d in self.recorded]


AuditSink = Callable[[DirectiveChange], None]


def directive_changed(change: DirectiveChange, sinks: Sequence[AuditSink] = ()) -> None:
    """Audit one directive change. A failing sink is logged and never undoes the change."""
    log.info(
        "consent %s for patient %s (%s) by %r: %r; directives %s recorded, %s superseded",
        change.action,
        change.patient_id,
        ", ".join(change.targets),
        change.set_by,
        change.reason,
        [d.id for d in change.recorded],
        list(change.superseded),
    )
    for sink in sinks:
        try:
            sink(change)
        except Exception:
            log.exception("consent audit sink %r failed", sink)


def atna_sink(trail: Any, application: str = "xds consent") -> AuditSink:
    """A sink recording each change in ``trail`` (:class:`xds.audit.trail.AuditTrail`)."""
    from xds.audit import codes as c
    from xds.audit.events import patient_object, study_object
    from xds.audit.message import ActiveParticipant, AuditMessage, ParticipantObject

    def record(change: DirectiveChange) -> None:
        details = [("consent", f"{change.action} {' '.join(change.targets)}".encode())]
        if change.reason:
            details.append(("reason", change.reason.encode()))
        objects = [patient_object(change.patient_id, details)]
        for d in change.recorded:
            if d.scope == "document":
                objects.append(ParticipantObject(d.target, c.SYSTEM_OBJECT, c.ROLE_REPORT, c.REPORT_NUMBER))
            elif d.scope == "study":
                objects.append(study_object(d.target))
        source = trail.source
        participants = [
            ActiveParticipant(change.set_by, True, [], kind="person"),
            ActiveParticipant(
                application,
                False,
                [c.APPLICATION],
                alternative_user_id=source.process_id,
                network_access_point=source.host,
                kind="node",
            ),
        ]
        trail.record(
            AuditMessage(
                event_id=c.PATIENT_RECORD,
                action=c.UPDATE,
                outcome=c.SUCCESS,
                source_id=source.source_id,
                enterprise_site_id=source.enterprise_site_id,
                participants=participants,
                objects=objects,
                outcome_description=f"consent {change.action}",
            )
        )

    return record
