"""HL7 v2 (xds.hl7.message), the ITI-8/ITI-9 receiver (xds.hl7.patient_feed) and the node's live
MLLP listener (xds.hl7.mllp) under mutated dcm4che, IPF and NIST HL7 samples.

Properties: parsing gives a message whose every field reads without raising, or an HL7ParseError
with a table 0357 code; every message is answered, with an ACK (or RSP^K23) that is itself valid
HL7, MSA-1 AA/AE/AR and MSA-2 the message's control id; no PID value reaches a log record at INFO
or above; on a live connection every frame gets its answer, in order, whatever noise surrounds the
frames and however the bytes are cut; the listener serves the next connection.
"""

from __future__ import annotations

import asyncio
import logging
import re
import socket

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.fuzz import seeds
from tests.fuzz.conftest import fuzz, leaks, tracebacks
from tests.fuzz.mutations import HL7_TOKENS, chunked, mutated_bytes, mutated_hl7
from tests.fuzz.sentinel import mllp_exchange
from xds.hl7.message import ERROR_TEXT, HL7ParseError, Message
from xds.hl7.mllp import END_BLOCK, START_BLOCK, frame
from xds.hl7.patient_feed import PatientIdentityFeed

pytestmark = [seeds.needs_corpus, pytest.mark.filterwarnings("ignore::DeprecationWarning")]  # python-hl7's logger.warn

HL7 = seeds.hl7_messages()
PHI = set(seeds.PHI).union(*(seeds.hl7_phi(m) for m in HL7))
structured = mutated_hl7(HL7)
messages = st.one_of(structured, structured, mutated_bytes(HL7, HL7_TOKENS), st.binary(max_size=300))


def phi_not_in_header(data: bytes) -> set[str]:
    """The seeds' patient data, less what the message's MSH carries (MSH fields are logged)."""
    first = re.split(rb"\r\n|\n|\r", data.lstrip(), maxsplit=1)[0].decode("latin-1")
    return {v for v in PHI if v not in first}


def read_all(message: Message) -> None:
    """Every accessor a receiver uses, on every segment that parses."""
    for name in ("message_type", "trigger_event", "message_structure", "control_id", "processing_id",
                 "version", "sending_application", "sending_facility", "receiving_application",
                 "receiving_facility"):
        assert isinstance(getattr(message, name), str)
    for index in range(len(message.segment_ids)):
        try:
            seg = message.segments()[index]
        except HL7ParseError as e:
            assert e.code in ERROR_TEXT
            continue
        for n in range(0, 14):
            seg.repetition_count(n)
            for rep in (1, 2):
                seg.components(n, rep)
                for comp in (None, 1, 2, 5):
                    for sub in (None, 1, 3) if comp else (None,):
                        assert isinstance(seg.value(n, rep, comp, sub), str)


@fuzz(300)
@given(data=messages)
def test_parser_gives_a_readable_message_or_a_coded_error(data):
    try:
        message = Message.parse(data)
    except HL7ParseError as e:
        assert e.code in ERROR_TEXT, e.code
        return
    read_all(message)


def check_reply(request: bytes, reply: bytes) -> str:
    """The reply is HL7 with an MSA answering ``request``; returns MSA-1."""
    ack = Message.parse(reply)
    assert ack.message_type in ("ACK", "RSP"), reply
    msa = ack.segment("MSA")
    assert msa is not None, reply
    code = msa.raw(1)
    assert code in ("AA", "AE", "AR"), reply
    try:
        message = Message.parse(request)
    except HL7ParseError:
        return code
    assert msa.raw(2) == message.control_id, (reply, message.control_id)
    return code


@fuzz(250)
@given(data=messages)
def test_feed_answers_every_message(intact, caplog, data):
    identity = intact.registry.identity
    feed = PatientIdentityFeed(identity.domain, identity.feed, "XDSREG", "DIR", pix=identity.pix)
    caplog.clear()
    with caplog.at_level(logging.INFO):
        reply = asyncio.run(feed.handle(data))
    code = check_reply(data, reply)
    event(code)
    assert not tracebacks(caplog.records)
    assert not leaks(caplog.records, phi_not_in_header(data))


WITH_PID = [m for m in HL7 if b"\rPID|" in m]
ESCAPES = ("\\Zxx\\", "\\C2842\\", "\\M2442\\", "\\Xzz\\", "\\X0D\\", "\\\\", "\\.sp3\\", "\\H\\", "\\")


@st.composite
def escapes_in_patient_fields(draw) -> bytes:
    """A seed with an escape sequence, resolvable or not, inside PID-3, -5, -7, -8 or -11."""
    segments = draw(st.sampled_from(WITH_PID)).decode("latin-1").split("\r")
    i = next(n for n, seg in enumerate(segments) if seg.startswith("PID|"))
    fields = segments[i].split("|") + [""] * 12
    n = draw(st.sampled_from((3, 5, 7, 8, 11)))
    k = draw(st.integers(0, len(fields[n])))
    fields[n] = fields[n][:k] + draw(st.sampled_from(ESCAPES)) + fields[n][k:]
    segments[i] = "|".join(fields).rstrip("|")
    return "\r".join(segments).encode("latin-1")


@fuzz(100)
@given(data=escapes_in_patient_fields())
def test_escape_sequences_in_patient_fields_are_not_logged(intact, caplog, data):
    identity = intact.registry.identity
    feed = PatientIdentityFeed(identity.domain, identity.feed, "XDSREG", "DIR", pix=identity.pix)
    caplog.clear()
    with caplog.at_level(logging.DEBUG):
        check_reply(data, asyncio.run(feed.handle(data)))
    assert not tracebacks(caplog.records)
    assert not leaks(caplog.records, phi_not_in_header(data), level=logging.DEBUG)


def clean(data: bytes) -> bytes:
    """A payload that cannot end or restart its frame."""
    return data.replace(START_BLOCK, b"").replace(END_BLOCK, b"")


def read_frames(sock: socket.socket, count: int) -> list[bytes]:
    data = b""
    while data.count(END_BLOCK + b"\r") < count:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    return [f[1:] for f in data.split(END_BLOCK + b"\r") if f][:count]


@fuzz(80)
@given(
    payloads=st.lists(messages.map(clean), min_size=1, max_size=4),
    noise=st.lists(st.binary(max_size=20).map(lambda b: b.replace(START_BLOCK, b"")), min_size=5, max_size=5),
    data=st.data(),
)
def test_live_listener_answers_every_frame_in_order(intact, caplog, payloads, noise, data):
    stream = b"".join(noise[i] + frame(p) for i, p in enumerate(payloads)) + noise[-1]
    caplog.clear()
    with caplog.at_level(logging.INFO), socket.create_connection(("127.0.0.1", intact.mllp_port), timeout=20) as s:
        for piece in data.draw(chunked(stream)):
            s.sendall(piece)
        replies = read_frames(s, len(payloads))
    assert len(replies) == len(payloads)
    for payload, reply in zip(payloads, replies, strict=True):
        check_reply(payload, reply)
    assert not tracebacks(caplog.records)
    assert not leaks(caplog.records, set.intersection(*(phi_not_in_header(p) for p in payloads)))


@fuzz(60)
@given(stream=st.one_of(st.binary(max_size=2000), mutated_bytes([frame(m) for m in HL7], HL7_TOKENS, max_ops=8)))
def test_live_listener_survives_any_byte_stream(intact, stream):
    with socket.create_connection(("127.0.0.1", intact.mllp_port), timeout=20) as s:
        s.sendall(stream)
        s.shutdown(socket.SHUT_WR)
        while s.recv(65536):
            pass
    ack = mllp_exchange(intact.mllp_port, HL7[0])
    assert check_reply(HL7[0], ack)
