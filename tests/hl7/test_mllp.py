"""MLLP framing and the listener's behaviour under hostile or broken peers (HL7 v2.5 Appendix C.4)."""

from __future__ import annotations

import asyncio
import random
import threading
import time

import pytest

from tests.hl7.conftest import (
    ONTARIO_HN,
    MemorySink,
    ack_code,
    error_code,
    exchange,
    feed_server,
    fields,
    read_reply,
    run,
)
from xds.config import MllpConfig
from xds.hl7.mllp import FrameDecoder, MllpServer, frame
from xds.hl7.patient_feed import start_patient_feed


def a01(control_id: str = "MSG1", number: str = "9876543210") -> bytes:
    return (
        f"MSH|^~\\&|HIS|HOSP|XDSREG|DIR|20240101120000||ADT^A01^ADT_A01|{control_id}|P|2.5\r"
        f"EVN|A01|20240101120000\r"
        f"PID|1||{number}^^^&{ONTARIO_HN}&ISO||DOE^JOHN||19700101|M\r"
        "PV1|1|O\r"
    ).encode()


# --- framing, without sockets ---


def test_decoder_finds_frames_split_anywhere_in_the_stream():
    stream = frame(b"one") + frame(b"two") + frame(b"three")
    for size in (1, 2, 5, len(stream)):
        decoder = FrameDecoder()
        got = []
        for i in range(0, len(stream), size):
            got += [f.payload for f in decoder.feed(stream[i : i + size])]
        assert got == [b"one", b"two", b"three"]
        assert not decoder.in_frame and decoder.discarded_bytes == 0


def test_decoder_drops_bytes_outside_frames_and_accepts_end_block_without_cr():
    decoder = FrameDecoder()
    frames = decoder.feed(b"noise\r\n" + b"\x0bone\x1c" + b"junk" + frame(b"two"))
    assert [f.payload for f in frames] == [b"one", b"two"]
    assert decoder.discarded_bytes == len(b"noise\r\n") + len(b"junk")


def test_decoder_abandons_a_frame_that_a_new_start_block_interrupts():
    decoder = FrameDecoder()
    frames = decoder.feed(b"\x0bunfinished" + frame(b"next"))
    assert [f.payload for f in frames] == [b"next"]
    assert decoder.abandoned_frames == 1


def test_decoder_drains_an_oversized_frame_keeping_only_its_head():
    decoder = FrameDecoder(max_message_bytes=100)
    big = b"MSH|" + b"x" * 10_000
    frames = []
    for i in range(0, len(big), 333):
        frames += decoder.feed((b"\x0b" if i == 0 else b"") + big[i : i + 333])
    frames += decoder.feed(b"\x1c\r" + frame(b"a" * 100))
    assert [f.oversized for f in frames] == [True, False]
    assert frames[0].payload.startswith(b"MSH|") and len(frames[0].payload) <= 4096
    assert frames[1].payload == b"a" * 100  # exactly the limit is accepted


# --- the listener ---


def test_garbage_before_a_frame_is_ignored_and_the_message_acknowledged():
    async def scenario():
        async with feed_server() as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"GET / HTTP/1.1\r\n\r\n\x00\xff\x1c\r" + frame(a01()))
            reply = await read_reply(reader)
            writer.close()
            return reply

    assert ack_code(run(scenario())) == "AA"


def test_frame_without_end_then_a_good_frame_on_the_same_connection():
    async def scenario():
        async with feed_server() as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"\x0b" + a01("LOST")[:40])
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(frame(a01("KEPT")))
            reply = await read_reply(reader)
            writer.close()
            return reply

    reply = run(scenario())
    assert (ack_code(reply), fields(reply, "MSA")[2]) == ("AA", "KEPT")


def test_oversized_frame_gets_AR_and_the_connection_keeps_serving():
    sink = MemorySink()

    async def scenario():
        async with feed_server(sink=sink, max_message_bytes=2048) as server:
            big = a01("BIG1") + b"NTE|1||" + b"z" * 50_000 + b"\r"
            return await exchange(server.port, big, a01("SMALL1"))

    big_ack, small_ack = run(scenario())
    assert (ack_code(big_ack), fields(big_ack, "MSA")[2]) == ("AR", "BIG1")
    assert "larger than 2048 bytes" in fields(big_ack, "ERR")[8]
    assert error_code(big_ack) == "104"
    assert ack_code(small_ack) == "AA"
    assert [c[3] for c in sink.calls] == ["SMALL1"]


def test_connection_closed_mid_frame_leaves_the_listener_serving():
    async def scenario():
        async with feed_server() as server:
            for _ in range(3):
                _, writer = await asyncio.open_connection("127.0.0.1", server.port)
                writer.write(b"\x0b" + a01()[:30])
                await writer.drain()
                writer.close()
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"\x0b" + b"y" * 10_000)  # oversized and never ended
            writer.close()
            replies = await exchange(server.port, a01())
            for _ in range(50):
                if server.connection_count == 0:
                    break
                await asyncio.sleep(0.01)
            return replies, server.connection_count

    replies, open_connections = run(scenario())
    assert ack_code(replies[0]) == "AA"
    assert open_connections == 0


def test_random_bytes_never_stop_the_listener():
    rng = random.Random(8)
    alphabet = b"\x0b\x1c\r\n|^~\\&MSHPID0123456789AB \x00\xff"

    async def scenario():
        async with feed_server(max_message_bytes=4096) as server:
            for _ in range(40):
                reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
                blob = bytes(rng.choice(alphabet) for _ in range(rng.randint(1, 3000)))
                writer.write(blob)
                await writer.drain()
                writer.close()
            return await exchange(server.port, a01())

    assert ack_code(run(scenario())[0]) == "AA"


def test_empty_frame_gets_AR():
    async def scenario():
        async with feed_server() as server:
            return await exchange(server.port, b"", a01())

    empty, good = run(scenario())
    assert ack_code(empty) == "AR" and fields(empty, "MSA")[3] == "empty message"
    assert ack_code(good) == "AA"


def test_pipelined_frames_are_acknowledged_in_order():
    async def scenario():
        async with feed_server() as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"".join(frame(a01(f"P{i}", str(i))) for i in range(5)))
            replies = [await read_reply(reader) for _ in range(5)]
            writer.close()
            return replies

    assert [fields(r, "MSA")[2] for r in run(scenario())] == [f"P{i}" for i in range(5)]


def test_many_concurrent_connections_each_get_their_own_acks():
    sink = MemorySink()

    async def client(port: int, n: int) -> list[str]:
        replies = await exchange(port, *(a01(f"C{n}M{i}", f"{n}{i}") for i in range(10)))
        return [fields(r, "MSA")[2] for r in replies if ack_code(r) == "AA"]

    async def scenario():
        async with feed_server(sink=sink) as server:
            return await asyncio.gather(*(client(server.port, n) for n in range(40)))

    results = run(scenario())
    assert results == [[f"C{n}M{i}" for i in range(10)] for n in range(40)]
    assert len(sink.calls) == 400


def test_slow_sink_does_not_block_other_connections():
    release = threading.Event()

    class SlowSink(MemorySink):
        def record_patient(self, patient_id, demographics, source, message_control_id):
            if message_control_id == "SLOW":
                release.wait(5)
            super().record_patient(patient_id, demographics, source, message_control_id)

    async def scenario():
        async with feed_server(sink=SlowSink()) as server:
            slow = asyncio.create_task(exchange(server.port, a01("SLOW")))
            await asyncio.sleep(0.05)
            fast = await exchange(server.port, a01("FAST"))
            release.set()
            return fast, await slow

    fast, slow = run(scenario())
    assert ack_code(fast[0]) == ack_code(slow[0]) == "AA"


def test_close_finishes_the_message_in_hand_then_disconnects():
    started = threading.Event()

    class SlowSink(MemorySink):
        def record_patient(self, *args):
            started.set()
            time.sleep(0.3)
            super().record_patient(*args)

    async def scenario():
        server = await start_patient_feed(MllpConfig(port=0), ONTARIO_HN, SlowSink())
        port = server.port
        idle_reader, idle_writer = await asyncio.open_connection("127.0.0.1", port)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(frame(a01("INFLIGHT")))
        await writer.drain()
        await asyncio.to_thread(started.wait, 2)
        t0 = time.monotonic()
        await server.close()
        took = time.monotonic() - t0
        reply = await read_reply(reader)
        eof = await asyncio.wait_for(reader.read(), 2)
        idle_eof = await asyncio.wait_for(idle_reader.read(), 2)
        writer.close()
        idle_writer.close()
        refused = False
        try:
            await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            refused = True
        return reply, eof, idle_eof, took, refused

    reply, eof, idle_eof, took, refused = run(scenario())
    assert fields(reply, "MSA")[1:3] == ["AA", "INFLIGHT"]
    assert eof == b"" and idle_eof == b""
    assert took < 2
    assert refused


def test_a_failing_handler_drops_only_its_connection():
    async def handler(payload: bytes) -> bytes:
        if payload == b"boom":
            raise RuntimeError("handler bug")
        return b"ok:" + payload

    async def scenario():
        async with MllpServer(handler, "127.0.0.1", 0) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(frame(b"boom"))
            dropped = await asyncio.wait_for(reader.read(), 2)
            writer.close()
            return dropped, await exchange(server.port, b"fine")

    dropped, replies = run(scenario())
    assert dropped == b""
    assert replies == [b"ok:fine"]


def test_unfinished_frame_times_out():
    async def handler(payload: bytes) -> bytes:
        return payload

    async def scenario():
        async with MllpServer(handler, "127.0.0.1", 0, frame_timeout=0.2) as server:
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            writer.write(b"\x0bhalf")
            eof = await asyncio.wait_for(reader.read(), 2)
            writer.close()
            return eof

    assert run(scenario()) == b""


@pytest.mark.parametrize("limit", [2])
def test_connections_above_the_limit_are_closed(limit):
    async def handler(payload: bytes) -> bytes:
        return payload

    async def scenario():
        async with MllpServer(handler, "127.0.0.1", 0, max_connections=limit) as server:
            held = [await asyncio.open_connection("127.0.0.1", server.port) for _ in range(limit)]
            await asyncio.sleep(0.05)
            reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
            extra = await asyncio.wait_for(reader.read(), 2)
            for _, w in [*held, (reader, writer)]:
                w.close()
            return extra

    assert run(scenario()) == b""
