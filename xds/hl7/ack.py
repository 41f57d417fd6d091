"""General acknowledgment (ACK) in original acknowledgment mode (HL7 v2.5 2.9.2, v2.9 2.9.2).

MSA-1 is AA (accepted), AE (error in the content: the sender must fix the message) or AR (rejected:
MSH-9/11/12 not acceptable, or a failure unrelated to content that a resend may cure). The ACK
answers in the message's version, delimiters and character set, and swaps its sending and receiving
application/facility.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from datetime import datetime

from xds.hl7.message import ERROR_TEXT, STANDARD_DELIMITERS, Message

ACCEPT, ERROR, REJECT = "AA", "AE", "AR"
FALLBACK_VERSION = "2.3.1"  # the ITI-8 base version, for a message whose MSH could not be read

_counter = itertools.count(1)
_prefix = f"{os.getpid() % 100000:05d}"


@dataclass(frozen=True)
class AckError:
    """One error: HL7 table 0357 ``code``, a ``reason`` for people, where it is (ERR-2 / ERR-1)."""

    code: str
    reason: str
    segment: str = "MSH"
    field: int = 0
    sequence: int = 1


def version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return ()


def _control_id() -> str:
    # MSH-10 is ST(20) in v2.3.1: process prefix + counter, unique within and across node processes
    return f"A{_prefix}{next(_counter):014d}"


def build_ack(
    message: Message | None,
    code: str,
    error: AckError | None = None,
    *,
    application: str = "",
    facility: str = "",
    now: datetime | None = None,
) -> str:
    """The ACK for ``message`` (``None`` when its MSH could not be read), segments ended by CR.

    ``application``/``facility`` fill MSH-3/MSH-4 when the message named no receiver (MSH-5/6).
    """
    d = message.delimiters if message else STANDARD_DELIMITERS
    version = (message.version if message else "") or FALLBACK_VERSION
    vt = version_tuple(version) or (2, 3, 1)
    event = d.escaped(message.trigger_event) if message else ""
    if vt >= (2, 3, 1):
        msg_type = d.component.join(["ACK", event, "ACK"]) if event else "ACK"
    else:
        msg_type = d.component.join(["ACK", event]) if event else "ACK"
    msh = response_header(message, msg_type, application=application, facility=facility, now=now)
    msa = ["MSA", code, message.control_id if message else ""]
    if error and vt < (2, 7):
        msa.append(d.escaped(error.reason))  # MSA-3, withdrawn in v2.7
    segments = [d.field.join(msh), d.field.join(msa)]
    if error:
        segments.append(d.field.join(_err(error, vt, d)))
    return "\r".join(segments) + "\r"


def response_header(
    message: Message | None, message_type: str, *, application: str = "", facility: str = "",
    now: datetime | None = None,
) -> list[str]:
    """MSH fields of a response to ``message``: its delimiters, version and charset, sender and
    receiver swapped; ``message_type`` already encoded (``RSP^K23^RSP_K23``)."""
    d = message.delimiters if message else STANDARD_DELIMITERS
    version = (message.version if message else "") or FALLBACK_VERSION
    stamp = (now or datetime.now().astimezone()).strftime("%Y%m%d%H%M%S%z")
    msh = [
        "MSH",
        d.encoding_characters,
        (message.receiving_application if message else "") or d.escaped(application),
        (message.receiving_facility if message else "") or d.escaped(facility),
        message.sending_application if message else "",
        message.sending_facility if message else "",
        stamp,
        "",
        message_type,
        _control_id(),
        (message.processing_id_raw if message else "") or "P",
        d.escaped(version),
    ]
    if message and message.charset:
        msh += [""] * 5 + [d.escaped(message.charset)]
    return msh


def _err(error: AckError, vt: tuple[int, ...], d) -> list[str]:
    text = ERROR_TEXT.get(error.code, "")
    where = [error.segment, str(error.sequence), str(error.field) if error.field else ""]
    if vt < (2, 5):
        # ERR-1 ELD: segment ID ^ sequence ^ field position ^ code identifying error (CE)
        ce = d.subcomponent.join([error.code, d.escaped(text), "HL70357"])
        return ["ERR", d.component.join([*where, ce])]
    # ERR-2 ERL, ERR-3 HL7 error code (CWE), ERR-4 severity, ERR-8 user message (v2.5 2.15.5)
    cwe = d.component.join([error.code, d.escaped(text), "HL70357"])
    return ["ERR", "", d.component.join(where).rstrip(d.component), cwe, "E", "", "", "", d.escaped(error.reason)]
