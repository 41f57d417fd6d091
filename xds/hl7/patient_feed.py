"""ITI-8 Patient Identity Feed, Document Registry side (IHE ITI TF-2a 3.8, HL7 v2.3.1 and v2.5).

Admit/register (A01, A04, A05) and update patient information (A08) messages tell the registry
which affinity-domain patient ids exist; merge (A40, ITI TF-2a 3.8.4.2) and change of identifier
(A47, HL7 v2.5 3.3.47) retire the ids of MRG-1. Of the PID-3 repetitions, the one whose assigning
authority universal id (CX-4.2, type ISO) is the affinity domain's is the HN (ITI TF-2a 3.8.4.1.2.3),
recorded as ``id^^^&OID&ISO``, the form XDS metadata uses (ITI TF-3 4.2.3.1.7); the others are
local ids, couplets ``Patient ID + Issuer`` (:mod:`xds.identity.domain`):

* from a feed listed in ``[[identity.feeds]]``, the repetitions of that feed's issuer (or with no
  assigning authority at all); a message with such a couplet and no HN is accepted (the patient
  has no health number yet);
* from any other sender (when unlisted feeds are accepted), every repetition that names its
  assigning authority, beside an HN, which such a message must carry.

A message is turned into an :class:`~xds.identity.feed.AdtEvent` without side effects
(:func:`evaluate`), then handed to the sink. QBP^Q23 (ITI-9 PIX Query) on the same listener goes
to :mod:`xds.identity.pix`.

ACK codes (HL7 v2.5 2.9.2): AR when MSH-9/11/12 or the sender are not acceptable, or when the store
failed (resend later); AE when the content is wrong (the sender must fix it); AA otherwise.

Logging names the message type, control id and outcome only: no patient data at INFO.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from xds.config import MllpConfig
from xds.hl7.ack import ACCEPT, ERROR, REJECT, AckError, build_ack, version_tuple
from xds.hl7.message import (
    APPLICATION_INTERNAL_ERROR,
    DATA_TYPE_ERROR,
    REQUIRED_FIELD_MISSING,
    SEGMENT_SEQUENCE_ERROR,
    STANDARD_DELIMITERS,
    TABLE_VALUE_NOT_FOUND,
    UNSUPPORTED_EVENT_CODE,
    UNSUPPORTED_MESSAGE_TYPE,
    UNSUPPORTED_PROCESSING_ID,
    UNSUPPORTED_VERSION_ID,
    VALUE_TOO_LONG,
    HL7ParseError,
    Message,
    Segment,
)
from xds.hl7.mllp import DEFAULT_MAX_MESSAGE_BYTES, MllpServer
from xds.identity.domain import Couplet, Feed, IdentityDomain, Issuer
from xds.identity.feed import AdtEvent

log = logging.getLogger(__name__)

# ITI TF-2a 3.8.4.1 (admit inpatient, register outpatient, pre-admit), 3.8.4.2 (update, merge);
# A47 change of patient identifier list (HL7 v2.5 3.3.47, as ITI-30 uses it)
SUPPORTED_EVENTS = frozenset({"A01", "A04", "A05", "A08", "A40", "A47"})
RETIRING_EVENTS = frozenset({"A40", "A47"})
PROCESSING_IDS = frozenset({"P", "T", "D"})  # HL7 table 0103
OLDEST_VERSION = (2, 3)
HL7_NULL = '""'  # HL7 v2.5 2.5.3: "delete the value held by the receiver"


class PatientIdentitySink(Protocol):
    """Where the feed records patients (the registry store).

    ``patient_id`` is the affinity-domain CX ``id^^^&OID&ISO``. ``demographics`` may hold "name"
    (PID-5, XPN), "birth_date" (PID-7), "sex" (PID-8), "address" (PID-11, XAD) and "other_ids"
    (the other PID-3 repetitions as CX, "~"-separated, for local id mapping); composite values are
    in standard encoding (``^`` components, ``&`` subcomponents). A key is absent when the message
    did not send the field, and "" when it sent the HL7 null ``""`` (erase the stored value).
    ``source`` is "MSH-3^MSH-4" (namespace ids). The call blocks; it is run in a worker thread.

    A sink with ``apply_adt(event) -> AckError | None`` (:class:`xds.identity.feed.IdentityFeed`)
    receives every event instead, merges and couplets included; a sink with only
    ``record_patient`` (and optionally ``merge_patient(prior_id, surviving_id, control_id)``)
    receives the HN of each message.
    """

    def record_patient(
        self, patient_id: str, demographics: dict[str, str], source: str, message_control_id: str
    ) -> None: ...


class PixResponder(Protocol):
    """ITI-9 on the same listener (:class:`xds.identity.pix.PixManager`): the RSP^K23 text."""

    def answer(self, message: Message) -> str: ...


@dataclass
class FeedOutcome:
    """What one message did: the ACK code, the error if any, the HN recorded if any, the event."""

    code: str
    error: AckError | None = None
    patient_id: str = ""
    demographics: dict[str, str] = field(default_factory=dict)
    event: AdtEvent | None = None


class PatientIdentityFeed:
    """Turns an ITI-8 message into a sink call and an ACK; never raises on bad input."""

    def __init__(
        self,
        assigning_authority: str | IdentityDomain,
        sink: PatientIdentitySink,
        receiving_application: str = "",
        receiving_facility: str = "",
        pix: PixResponder | None = None,
        audit: Any = None,
    ):
        domain = (assigning_authority if isinstance(assigning_authority, IdentityDomain)
                  else IdentityDomain.build(assigning_authority))
        if not domain.hn_authority:
            raise ValueError("the affinity domain's patient assigning authority OID is required")
        self.domain = domain
        self.sink = sink
        self.receiving_application = receiving_application
        self.receiving_facility = receiving_facility
        self.pix = pix
        self.audit = audit  # xds.audit.trail.AuditTrail: one ITI-8 audit message per ADT message

    @property
    def assigning_authority(self) -> str:
        return self.domain.hn_authority

    async def handle(self, payload: bytes) -> bytes:
        """Answer one message (the MLLP frame's content): an ACK, or RSP^K23 to a PIX query."""
        try:
            message: Message | None = Message.parse(payload)
        except HL7ParseError as exc:
            message = None
            outcome = FeedOutcome(REJECT, AckError(exc.code, exc.reason, exc.location))
            header = _header(payload) if self.audit is not None else None
            if header is not None and header.message_type == "ADT":  # refused, and audited as such
                await asyncio.to_thread(self._audit, header, outcome)
        else:
            if self.pix is not None and message.message_type == "QBP":
                text = await asyncio.to_thread(self.pix.answer, message)
                return text.encode(message.codec, errors="replace")
            try:
                outcome = evaluate(message, self.domain, _digest(payload))
            except HL7ParseError as exc:
                outcome = FeedOutcome(ERROR, AckError(exc.code, exc.reason, exc.location))
            except Exception as exc:  # a bug of ours must still give the sender an answer
                log.error("ITI-8 %s control_id=%s: evaluation failed (%s)", _type(message),
                          message.control_id, type(exc).__name__)
                log.debug("ITI-8 evaluation failure", exc_info=True)
                outcome = FeedOutcome(REJECT, AckError(APPLICATION_INTERNAL_ERROR, "internal error; resend later"))
            audited = self.audit is not None and message.message_type == "ADT"
            if outcome.code == ACCEPT or audited:  # one worker-thread hop: store, then audit
                outcome = await asyncio.to_thread(self._settle, message, outcome, audited)
        self._log(message, outcome)
        text = build_ack(
            message,
            outcome.code,
            outcome.error,
            application=self.receiving_application,
            facility=self.receiving_facility,
        )
        return text.encode(message.codec if message else "ascii", errors="replace")

    def _settle(self, message: Message, outcome: FeedOutcome, audited: bool) -> FeedOutcome:
        """In a worker thread: record an accepted message, then audit what became of it."""
        if outcome.code == ACCEPT:
            outcome = self._record(message, outcome)
        if audited:
            self._audit(message, outcome)
        return outcome

    def _record(self, message: Message, outcome: FeedOutcome) -> FeedOutcome:
        assert outcome.event is not None
        try:
            error = _apply(self.sink, outcome.event)
        except Exception as exc:
            # The store failed, not the message: AR tells the sender to resend (HL7 v2.5 2.9.2.2).
            log.error("ITI-8 %s control_id=%s: recording failed (%s)", _type(message),
                      message.control_id, type(exc).__name__)
            log.debug("ITI-8 sink failure", exc_info=True)
            return FeedOutcome(REJECT, AckError(APPLICATION_INTERNAL_ERROR,
                                                "the registry could not record the patient; resend later"))
        if error is not None:
            return FeedOutcome(ERROR, error, outcome.patient_id, outcome.demographics, outcome.event)
        return outcome

    def _audit(self, message: Message, outcome: FeedOutcome) -> None:
        record = self._audit_message(message, outcome)
        if record is not None:
            self.audit.record(record)

    def _audit_message(self, message: Message, outcome: FeedOutcome) -> Any:
        """ITI TF-2a 3.8.5.1.2 (Document Registry as Patient Identity Consumer): Patient Record,
        C for A01/A04/A05, U for A08/A40/A47; the outcome per :func:`audit_outcome`."""
        from xds.audit import events
        from xds.hl7.mllp import current_peer

        try:
            peer = current_peer.get()
            patient = outcome.patient_id or (outcome.event.hn if outcome.event and outcome.event.hn else "")
            sender = f"{_namespace(message.msh, 3)}|{_namespace(message.msh, 4)}"
            receiver = f"{_namespace(message.msh, 5) or self.receiving_application}|" \
                       f"{_namespace(message.msh, 6) or self.receiving_facility}"
            record = events.patient_identity_feed(
                outcome=audit_outcome(outcome),
                action="C" if message.trigger_event in ("A01", "A04", "A05") else "U",
                patient_id=patient,
                message_control_id=message.control_id,
                sender=events.Party(sender, peer.host if peer else "", peer.certificate if peer else ""),
                receiver=events.Party(receiver),
                source=self.audit.source,
                description=f"{outcome.error.code}: {outcome.error.reason}" if outcome.error else "",
            )
        except Exception:
            log.exception("ITI-8 control_id=%s: audit message could not be built", message.control_id)
            return None
        return record

    def reject_oversize(self, head: bytes, limit: int) -> bytes:
        """AR for a message of more than ``limit`` bytes, answered from its MSH when readable."""
        message = _header(head)
        outcome = FeedOutcome(REJECT, AckError(VALUE_TOO_LONG, f"message larger than {limit} bytes; not read"))
        if self.audit is not None and message is not None and message.message_type == "ADT":
            record = self._audit_message(message, outcome)
            if record is not None:
                self.audit.submit(record)  # called on the event loop: recorded off it
        self._log(message, outcome)
        text = build_ack(message, REJECT, outcome.error, application=self.receiving_application,
                         facility=self.receiving_facility)
        return text.encode(message.codec if message else "ascii", errors="replace")

    def _log(self, message: Message | None, outcome: FeedOutcome) -> None:
        if message is None:
            log.warning("ITI-8 unreadable message -> %s (%s)", outcome.code, outcome.error.reason)
            return
        level = logging.INFO if outcome.code == ACCEPT else logging.WARNING
        detail = f" ({outcome.error.code}: {outcome.error.reason})" if outcome.error else ""
        log.log(level, "ITI-8 %s control_id=%s -> %s%s", _type(message), message.control_id,
                outcome.code, detail)


def audit_outcome(outcome: FeedOutcome) -> int:
    """EventOutcomeIndicator (PS3.15 A.5.1) of an ITI-8 message, read as the node reads SOAP
    transactions: AA 0; AE and AR 8 (serious failure: the message was refused, nothing of it was
    recorded: the sender must fix or stop sending it); AR 207 12 (major failure: the registry could
    not record it, the service was unavailable). An ACK never reports a partly applied message, so
    4 (minor failure) does not occur."""
    if outcome.code == ACCEPT:
        return 0
    if outcome.code == REJECT and outcome.error is not None and outcome.error.code == APPLICATION_INTERNAL_ERROR:
        return 12
    return 8


def evaluate(message: Message, domain: str | IdentityDomain, digest: str = "") -> FeedOutcome:
    """The outcome of ``message`` without side effects: MSH validation (AR), then PID/MRG (AE)."""
    if not isinstance(domain, IdentityDomain):
        domain = IdentityDomain.build(domain)
    rejected = _validate_header(message)
    if rejected:
        return FeedOutcome(REJECT, rejected)
    app, facility = _namespace(message.msh, 3), _namespace(message.msh, 4)
    feed = domain.feed_for(app, facility)
    if feed is None and domain.feeds and domain.unlisted_feeds == "reject":
        return FeedOutcome(REJECT, AckError(TABLE_VALUE_NOT_FOUND, f"sender {app}^{facility} (MSH-3^MSH-4) "
                                            "is not a configured identity feed", "MSH", 4))
    pid = message.segment("PID")
    if pid is None:
        return FeedOutcome(ERROR, AckError(SEGMENT_SEQUENCE_ERROR, "the message has no PID segment", "PID"))
    if pid.repetition_count(3) == 0:
        return FeedOutcome(ERROR, AckError(REQUIRED_FIELD_MISSING, "PID-3 (patient identifier list) is empty",
                                           "PID", 3))
    ids = _identifiers(pid, 3, domain, feed)
    if ids.error:
        return FeedOutcome(ERROR, ids.error)
    if ids.hn is None and (feed is None or not ids.couplets):
        why = "an empty or null id" if ids.null_hn else "no id"
        local = f" nor an id of issuer {feed.issuer.key}" if feed is not None else ""
        return FeedOutcome(ERROR, AckError(REQUIRED_FIELD_MISSING, f"PID-3 has {why} of the affinity domain "
                                           f"(assigning authority universal id {domain.hn_authority}, type ISO)"
                                           f"{local}", "PID", 3))
    event = AdtEvent(message.trigger_event, f"{app}^{facility}", feed.name if feed else f"{app}^{facility}",
                     message.control_id, digest, ids.hn, ids.couplets, _demographics(pid))
    if ids.others:
        event.demographics["other_ids"] = "~".join(ids.others)
    if message.trigger_event in RETIRING_EVENTS:
        error = _prior_ids(message, domain, feed, event)
        if error:
            return FeedOutcome(ERROR, error)
    return FeedOutcome(ACCEPT, None, ids.hn or "", event.demographics, event)


def _prior_ids(message: Message, domain: IdentityDomain, feed: Feed | None, event: AdtEvent) -> AckError | None:
    """MRG-1 (prior patient identifier list) of A40/A47 into ``event``; ITI TF-2a 3.8.4.2.2."""
    trigger = message.trigger_event
    mrg = message.segment("MRG")
    if mrg is None:
        return AckError(SEGMENT_SEQUENCE_ERROR, f"ADT^{trigger} has no MRG segment", "MRG")
    prior = _identifiers(mrg, 1, domain, feed)
    if prior.error:
        return prior.error
    if prior.hn is None and not prior.couplets:
        return AckError(REQUIRED_FIELD_MISSING, "MRG-1 (prior patient identifier list) has no id of the affinity "
                        "domain nor of a known issuer", "MRG", 1)
    if prior.hn is not None:
        if event.hn is None:
            return AckError(REQUIRED_FIELD_MISSING, "MRG-1 names an affinity-domain id; PID-3 must carry the "
                            "surviving one", "PID", 3)
        event.prior_hns.append(prior.hn)
    issuers = {c.issuer.key for c in event.couplets}
    for c in prior.couplets:
        if event.hn is None and c.issuer.key not in issuers:
            return AckError(REQUIRED_FIELD_MISSING, f"MRG-1 names an id of issuer {c.issuer.key}; PID-3 must "
                            "carry the surviving id of that issuer or an affinity-domain id", "PID", 3)
        if trigger == "A47" and c.issuer.key not in issuers:
            return AckError(REQUIRED_FIELD_MISSING, f"A47: PID-3 has no new id of issuer {c.issuer.key}", "PID", 3)
        event.prior_couplets.append(c)
    return None


@dataclass
class _Ids:
    hn: str | None = None
    couplets: list[Couplet] = field(default_factory=list)
    others: list[str] = field(default_factory=list)
    null_hn: bool = False
    error: AckError | None = None


def _validate_header(message: Message) -> AckError | None:
    """HL7 v2.5 2.9.2.1: MSH-9, MSH-11 and MSH-12 must suit the receiver, else AR."""
    if not message.control_id:
        return AckError(REQUIRED_FIELD_MISSING, "MSH-10 (message control id) is empty", "MSH", 10)
    if not message.message_type:
        return AckError(REQUIRED_FIELD_MISSING, "MSH-9 (message type) is empty", "MSH", 9)
    if message.message_type != "ADT":
        return AckError(UNSUPPORTED_MESSAGE_TYPE,
                        f"message type {message.message_type} is not accepted by the ITI-8 feed", "MSH", 9)
    if message.trigger_event not in SUPPORTED_EVENTS:
        return AckError(UNSUPPORTED_EVENT_CODE,
                        f"event {message.trigger_event or '(none)'} is not accepted; "
                        f"accepted: {', '.join(sorted(SUPPORTED_EVENTS))}", "MSH", 9)
    if message.processing_id not in PROCESSING_IDS:
        return AckError(UNSUPPORTED_PROCESSING_ID,
                        f"processing id {message.processing_id or '(none)'} is not P, T or D", "MSH", 11)
    vt = version_tuple(message.version)
    if not vt or vt[0] != 2 or vt < OLDEST_VERSION:
        return AckError(UNSUPPORTED_VERSION_ID,
                        f"HL7 version {message.version or '(none)'} is not accepted (2.3 to 2.x)", "MSH", 12)
    return None


def _identifiers(seg: Segment, n: int, domain: IdentityDomain, feed: Feed | None) -> _Ids:
    """The HN and the couplets of a CX list (PID-3, MRG-1); other ids in standard encoding."""
    out = _Ids()
    conflicting = False
    by_issuer: dict[str, Couplet] = {}
    for rep in range(1, seg.repetition_count(n) + 1):
        comps = seg.components(n, rep)
        number = comps[0][0] if comps else ""
        hd = (comps[3] if len(comps) > 3 else []) + ["", "", ""]
        namespace, universal_id, id_type = hd[0], hd[1], hd[2]
        if domain.is_hn_authority(namespace, universal_id, id_type):
            if not number or number == HL7_NULL:
                out.null_hn = True
            elif _has_delimiters(number):
                out.error = AckError(DATA_TYPE_ERROR, f"the affinity-domain patient id ({seg.id}-{n} CX-1) "
                                     "contains HL7 delimiter characters", seg.id, n)
                return out
            elif out.hn is None:
                out.hn = domain.hn_cx(number)
            elif domain.hn_cx(number) != out.hn:
                conflicting = True
            continue
        if not number or number == HL7_NULL:
            continue
        out.others.append(_standard(comps))
        issuer = _issuer(namespace, universal_id, id_type, domain, feed)
        if issuer is None:
            continue
        if _has_delimiters(number):
            out.error = AckError(DATA_TYPE_ERROR, f"a local patient id ({seg.id}-{n} CX-1) contains HL7 "
                                 "delimiter characters", seg.id, n)
            return out
        if issuer.key in by_issuer:
            conflicting = conflicting or by_issuer[issuer.key].patient_id != number
            continue
        by_issuer[issuer.key] = Couplet(number, issuer)
    out.couplets = list(by_issuer.values())
    if conflicting:
        log.warning("ITI-8 %s-%d carries two ids of one assigning authority; the first is used", seg.id, n)
    return out


def _issuer(namespace: str, universal_id: str, id_type: str, domain: IdentityDomain,
            feed: Feed | None) -> Issuer | None:
    """The issuer of a local id, or None when it is not one this sender may assert."""
    if universal_id == domain.hn_authority or namespace in domain.hn_namespaces:
        return None  # the HN authority with a wrong universal id type: not an id at all
    oid = universal_id if id_type.upper() in ("ISO", "") else ""
    if feed is not None:
        own = feed.issuer
        if not namespace and not universal_id:
            return own  # a listed feed's bare id is its own (ITI TF-2a 3.8.4.1.2.3 asks for CX-4)
        if (namespace and namespace == own.namespace) or (oid and oid == own.oid):
            return own
        return None  # another issuer's id: a hospital feed does not link ids it does not issue
    return domain.issuer(namespace, oid)


def _demographics(pid: Segment) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, n, composite in (("name", 5, True), ("birth_date", 7, False), ("sex", 8, False),
                              ("address", 11, True)):
        if pid.repetition_count(n) == 0:
            continue
        comps = pid.components(n, 1)
        if comps and comps[0] == [HL7_NULL] and all(c == [""] for c in comps[1:]):
            out[key] = ""
        elif composite:
            out[key] = _standard(comps)
        else:
            out[key] = comps[0][0] if comps else ""
    return out


def _standard(comps: list[list[str]]) -> str:
    """A composite in standard encoding (``^``, ``&``), trailing empty parts dropped."""
    d = STANDARD_DELIMITERS
    text = "^".join("&".join(d.escaped(s) for s in subs).rstrip("&") for subs in comps)
    return text.rstrip("^")


_DELIMITER_CHARACTERS = re.compile(r"[|^~\\&\r\n]")


def _has_delimiters(value: str) -> bool:
    return _DELIMITER_CHARACTERS.search(value) is not None


def _namespace(msh: Segment, n: int) -> str:
    """HD namespace id of MSH-3/MSH-4, its universal id when there is none."""
    return msh.value(n, 1, 1, 1) or msh.value(n, 1, 2, 1)


def _digest(payload: bytes) -> str:
    """SHA-256 of the segments after MSH: a resend with a new MSH-7 is still the same message."""
    lines = [line for line in re.split(rb"\r\n|\n|\r", payload) if line.strip()]
    return hashlib.sha256(b"\r".join(lines[1:])).hexdigest()


def _apply(sink: PatientIdentitySink, event: AdtEvent) -> AckError | None:
    apply_adt = getattr(sink, "apply_adt", None)
    if apply_adt is not None:
        return apply_adt(event)
    if event.hn is None:
        return None
    sink.record_patient(event.hn, event.demographics, event.sender, event.control_id)
    merge = getattr(sink, "merge_patient", None)
    for prior in event.prior_hns:
        if merge is not None and prior != event.hn:
            merge(prior, event.hn, event.control_id)
    return None


def _header(payload: bytes) -> Message | None:
    """The message's MSH alone (of a message too large or too broken to read whole), or None."""
    try:
        return Message.parse(re.split(rb"[\r\n]", payload, maxsplit=1)[0])
    except HL7ParseError:
        return None


def _type(message: Message) -> str:
    parts = [message.message_type or "?", message.trigger_event]
    return "^".join(p for p in parts if p)


async def start_patient_feed(
    config: MllpConfig,
    assigning_authority: str | IdentityDomain,
    sink: PatientIdentitySink,
    *,
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    pix: PixResponder | None = None,
    ssl_context: ssl.SSLContext | None = None,
    on_tls_refused: Callable[[Any], None] | None = None,
    audit: Any = None,
) -> MllpServer:
    """Listen for ITI-8 (and ITI-9 when ``pix`` is given) on ``config.host:config.port`` (port 0:
    any free port; see ``.port``); over TLS with ``ssl_context``, audited with ``audit``."""
    feed = PatientIdentityFeed(assigning_authority, sink, config.receiving_application,
                               config.receiving_facility, pix, audit=audit)
    server = MllpServer(feed.handle, config.host, config.port, max_message_bytes=max_message_bytes,
                        oversize_reply=feed.reject_oversize, ssl_context=ssl_context,
                        on_tls_refused=on_tls_refused)
    await server.start()
    log.info("ITI-8 patient identity feed listening on %s:%d", config.host, server.port)
    return server
