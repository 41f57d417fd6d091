"""Shared pieces of the HL7 tests: the sample corpus, an in-memory registry sink, MLLP helpers."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from xds.config import MllpConfig
from xds.hl7.mllp import END_BLOCK, frame
from xds.hl7.patient_feed import start_patient_feed

SHARED = Path(__file__).resolve().parents[2].parent / "shared"
CORPUS = SHARED / "corpus" / "hl7"
HARNESS_MLLP = SHARED / "conformance" / "harness" / "mllp.py"

# the universal id of the MPI domain in the IPF PIX samples
IPF_MPI = "2.16.840.1.113883.3.37.4.1.1.2.1.1"
ONTARIO_HN = "2.16.840.1.113883.4.59"

needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no HL7 corpus at {CORPUS}")


class MemorySink:
    """PatientIdentitySink over a dict: demographics of a patient are merged like an upsert."""

    def __init__(self) -> None:
        self.patients: dict[str, dict[str, str]] = {}
        self.calls: list[tuple[str, dict[str, str], str, str]] = []

    def record_patient(
        self, patient_id: str, demographics: dict[str, str], source: str, message_control_id: str
    ) -> None:
        self.calls.append((patient_id, dict(demographics), source, message_control_id))
        self.patients.setdefault(patient_id, {}).update(demographics)


def run(coro):
    return asyncio.run(coro)


@asynccontextmanager
async def feed_server(authority: str = ONTARIO_HN, sink=None, **kwargs):
    server = await start_patient_feed(MllpConfig(host="127.0.0.1", port=0), authority,
                                      sink if sink is not None else MemorySink(), **kwargs)
    try:
        yield server
    finally:
        await server.close()


async def read_reply(reader: asyncio.StreamReader, timeout: float = 5.0) -> bytes:
    data = await asyncio.wait_for(reader.readuntil(END_BLOCK + b"\r"), timeout)
    assert data[:1] == b"\x0b", data[:20]
    return data[1:-2]


async def exchange(port: int, *messages: bytes) -> list[bytes]:
    """Send each message framed on one connection and read its ACK before the next."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        replies = []
        for message in messages:
            writer.write(frame(message))
            await writer.drain()
            replies.append(await read_reply(reader))
        return replies
    finally:
        writer.close()


def fields(ack: bytes | str, segment_id: str) -> list[str]:
    text = ack.decode("latin-1") if isinstance(ack, bytes) else ack
    for seg in text.split("\r"):
        if seg.startswith(segment_id + "|"):
            return seg.split("|")
    raise AssertionError(f"no {segment_id} in {text!r}")


def ack_code(ack: bytes | str) -> str:
    return fields(ack, "MSA")[1]


def error_code(ack: bytes | str) -> str:
    """HL7 table 0357 code of the ERR segment: ERR-3 from v2.5 on, ERR-1.4 (ELD) before."""
    err = fields(ack, "ERR")
    if len(err) > 3 and err[3]:
        return err[3].split("^")[0]
    return err[1].split("^")[3].split("&")[0]


def corpus_file(relative: str) -> bytes:
    return (CORPUS / relative).read_bytes()


def harness_mllp():
    """The conformance harness's MLLP module, loaded from its file (it is not a package of ours)."""
    spec = importlib.util.spec_from_file_location("conformance_harness_mllp", HARNESS_MLLP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while being defined
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module
