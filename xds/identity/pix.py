"""ITI-9 PIX Query, Patient Identifier Cross-reference Manager side (ITI TF-2a 3.9, HL7 v2.5).

QBP^Q23^QBP_Q21 asks for the ids one person has in other identifier domains: QPD-3 is the id
(CX with its assigning authority), QPD-4 the domains wanted (CX-4 only; empty: every domain). The
cross-references are the couplets linked to one HN, and the HN itself (the affinity domain). The
answer is RSP^K23^RSP_K23 (3.9.4.2.2.6):

* the id is known and has ids in the domains asked: AA, QAK-2 ``OK``, PID-3 the ids (the queried
  one left out), PID-5 an empty name then ``^^^^^^S`` (no demographics are returned);
* known, nothing in those domains: AA, QAK-2 ``NF``, no PID;
* QPD-3's domain is not one this DIR knows: AE, ERR-2 ``QPD^1^3^1^4``, code 204;
* the id is not known in that domain (or was merged away / replaced): AE, ERR-2 ``QPD^1^3^1^1``, 204;
* a domain of QPD-4 is unknown: AE, ERR-2 ``QPD^1^4^n`` (one ERR each), 204.

Messages that are not a PIX query get an ACK with AR, as the feed does (HL7 v2.5 2.9.2).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import select

from xds.hl7.ack import ACCEPT, ERROR, REJECT, AckError, build_ack, response_header, version_tuple
from xds.hl7.message import (
    APPLICATION_INTERNAL_ERROR,
    ERROR_TEXT,
    REQUIRED_FIELD_MISSING,
    UNKNOWN_KEY_IDENTIFIER,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_VERSION_ID,
    Delimiters,
    Message,
)
from xds.identity import schema as t
from xds.identity.domain import Couplet, IdentityDomain, Issuer
from xds.identity.store import IdentityStore, IdentityTransaction

log = logging.getLogger("xds.identity.pix")

OK, NO_DATA, APPLICATION_ERROR = "OK", "NF", "AE"  # HL7 table 0208 (query response status)


@dataclass(frozen=True)
class _Error:
    where: str  # ERR-2 (ERL) components
    code: str
    reason: str


@dataclass
class _Answer:
    code: str
    status: str
    ids: list[str]
    errors: list[_Error]


class PixManager:
    """Answers ITI-9 from the identity store."""

    def __init__(self, store: IdentityStore, domain: IdentityDomain, application: str = "",
                 facility: str = "") -> None:
        self.store = store
        self.domain = domain
        self.application = application
        self.facility = facility

    def answer(self, message: Message) -> str:
        """The RSP^K23 (or AR ACK) text for one message; never raises."""
        rejected = _check_header(message)
        if rejected is not None:
            log.warning("ITI-9 control_id=%s -> AR (%s)", message.control_id, rejected.reason)
            return build_ack(message, REJECT, rejected, application=self.application, facility=self.facility)
        try:
            answer = self._query(message)
        except Exception as exc:
            log.error("ITI-9 control_id=%s: query failed (%s)", message.control_id, type(exc).__name__)
            log.debug("ITI-9 failure", exc_info=True)
            return build_ack(message, REJECT, AckError(APPLICATION_INTERNAL_ERROR, "internal error; resend later"),
                             application=self.application, facility=self.facility)
        log.info("ITI-9 control_id=%s -> %s %s (%d id(s))", message.control_id, answer.code, answer.status,
                 len(answer.ids))
        return self._response(message, answer)

    # --- the query ---

    def _query(self, message: Message) -> _Answer:
        qpd = message.segment("QPD")
        if qpd is None:
            return _Answer(ERROR, APPLICATION_ERROR, [],
                           [_Error("QPD", REQUIRED_FIELD_MISSING, "the query has no QPD segment")])
        comps = qpd.components(3, 1)
        number = comps[0][0] if comps else ""
        hd = (comps[3] if len(comps) > 3 else []) + ["", "", ""]
        if not number or not (hd[0] or hd[1]):
            return _Answer(ERROR, APPLICATION_ERROR, [], [_Error("QPD^1^3^1", REQUIRED_FIELD_MISSING,
                           "QPD-3 needs an id and its assigning authority")])
        with self.store.reading() as tx:
            known = self._domains(tx)
            asked_issuer = self._recognise(hd[0], hd[1], known)
            if asked_issuer is None:
                return _Answer(ERROR, APPLICATION_ERROR, [], [_Error("QPD^1^3^1^4", UNKNOWN_KEY_IDENTIFIER,
                               "the assigning authority of QPD-3 is not a domain of this DIR")])
            wanted: list[Issuer] = []
            errors = []
            for rep in range(1, qpd.repetition_count(4) + 1):
                want = (qpd.components(4, rep)[3:4] or [[]])[0] + ["", ""]
                if not (want[0] or want[1]):
                    continue
                issuer = self._recognise(want[0], want[1], known)
                if issuer is None:
                    errors.append(_Error(f"QPD^1^4^{rep}", UNKNOWN_KEY_IDENTIFIER,
                                         f"domain {want[0] or want[1]} (QPD-4 repetition {rep}) is not known"))
                else:
                    wanted.append(issuer)
            if errors:
                return _Answer(ERROR, APPLICATION_ERROR, [], errors)
            person = self._person(tx, number, asked_issuer)
            if person is None:
                return _Answer(ERROR, APPLICATION_ERROR, [], [_Error("QPD^1^3^1^1", UNKNOWN_KEY_IDENTIFIER,
                               "the id of QPD-3 is not known in its domain")])
        keys = {i.key for i in wanted}
        ids = [cx for key, cx in person if not keys or key in keys]
        return _Answer(ACCEPT, OK if ids else NO_DATA, ids, [])

    def _domains(self, tx: IdentityTransaction) -> list[Issuer]:
        """Every identifier domain this DIR knows: the HN's, the feeds' issuers, issuers seen."""
        c = t.couplet
        out = [Issuer(self.domain.hn_authority, "", self.domain.hn_authority)]
        out += list(self.domain.known_issuers())
        rows = tx.conn.execute(select(c.c.issuer, c.c.issuer_namespace, c.c.issuer_oid).distinct())
        out += [Issuer(*r) for r in rows]
        return out

    def _recognise(self, namespace: str, oid: str, known: list[Issuer]) -> Issuer | None:
        if self.domain.is_hn_authority(namespace, oid):
            return known[0]
        for issuer in known[1:]:
            if (oid and oid == issuer.oid) or (namespace and namespace == issuer.namespace and
                                               (not oid or not issuer.oid)):
                return issuer
        return None

    def _person(self, tx: IdentityTransaction, number: str, issuer: Issuer) -> list[tuple[str, str]] | None:
        """(domain key, CX) of every id of the person, the queried one left out; None if unknown."""
        hn_key = self.domain.hn_authority
        if issuer.key == hn_key:
            hn = self.domain.hn_cx(number)
            patient = tx.registry.patient(hn)
            if patient is None or patient.merged_into:
                return None
        else:
            row = tx.couplet(Couplet(number, issuer))
            if row is None or not row.active:
                return None
            hn = tx.surviving_hn(row.hn) if row.hn else None
            if hn is None:
                return []
        out = [] if issuer.key == hn_key else [(hn_key, hn)]
        for row in tx.couplets_of([hn]):
            if (row.patient_id, row.issuer) != (number, issuer.key):
                out.append((row.issuer, row.couplet.cx()))
        return out

    # --- the response ---

    def _response(self, message: Message, answer: _Answer) -> str:
        d = message.delimiters
        msh = response_header(message, d.component.join(["RSP", "K23", "RSP_K23"]),
                              application=self.application, facility=self.facility)
        segments = [d.field.join(msh), d.field.join(["MSA", answer.code, message.control_id])]
        segments += [d.field.join(_err(e, d)) for e in answer.errors]
        qpd = message.segment("QPD")
        tag = qpd.raw(2) if qpd is not None else ""
        segments.append(d.field.join(["QAK", tag, answer.status]))
        raw_qpd = message.raw_segment("QPD")
        if raw_qpd is not None:
            segments.append(raw_qpd)
        if answer.ids:
            pid3 = d.repetition.join(_encode_cx(cx, d) for cx in answer.ids)
            pid5 = d.repetition + d.component * 6 + "S"
            segments.append(d.field.join(["PID", "", "", pid3, "", pid5]))
        return "\r".join(segments) + "\r"


def _encode_cx(cx: str, d: Delimiters) -> str:
    """A CX held in standard encoding (``^``, ``&``) in the message's delimiters."""
    return d.component.join(
        d.subcomponent.join(d.escaped(s) for s in comp.split("&")) for comp in cx.split("^")
    )


def _err(error: _Error, d: Delimiters) -> list[str]:
    cwe = d.component.join([error.code, d.escaped(ERROR_TEXT.get(error.code, "")), "HL70357"])
    return ["ERR", "", error.where.replace("^", d.component), cwe, "E", "", "", "", d.escaped(error.reason)]


def _check_header(message: Message) -> AckError | None:
    if message.message_type != "QBP" or message.trigger_event != "Q23":
        return AckError(UNSUPPORTED_EVENT_CODE, f"{message.message_type}^{message.trigger_event} is not accepted; "
                        "this listener answers QBP^Q23 (ITI-9) and ADT (ITI-8)", "MSH", 9)
    vt = version_tuple(message.version)
    if not vt or vt < (2, 5):
        return AckError(UNSUPPORTED_VERSION_ID, f"HL7 version {message.version or '(none)'} is not accepted for "
                        "ITI-9 (2.5)", "MSH", 12)
    return None


__all__ = ["PixManager"]
