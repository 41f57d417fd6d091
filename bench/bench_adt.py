"""ITI-8 throughput: ADT^A01 messages/s through the real MLLP listener (not run by the tests).

The listener (xds.hl7.patient_feed.start_patient_feed with an in-memory sink) runs in a child
process; clients in this process send distinct A01s and wait for each ACK (original mode), over one
connection and over several concurrent ones; next to the rate, the listener's CPU time per message
(from /proc) and the clients'. With ``--database`` the sink is the node's identity
store (xds.identity: couplet, HN, history, applied-message record, held-item release) over that
database: ``sqlite`` (a fresh file) or a SQLAlchemy URL of an empty PostgreSQL database. With
``--audit`` every message is also audited as ``xds serve`` does it: an ATNA record (ITI-8) committed
to the node's local audit store (SQLite, beside the identity store) before the ACK leaves.

    .venv/bin/python bench/bench_adt.py [--messages 4000] [--connections 8] [--repeat 3] [--database URL] [--audit]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

AUTHORITY = "2.16.840.1.113883.4.59"


class MemorySink:
    def __init__(self) -> None:
        self.patients: dict[str, dict[str, str]] = {}

    def record_patient(self, patient_id, demographics, source, message_control_id) -> None:
        self.patients[patient_id] = demographics


def a01(n: int) -> bytes:
    return (
        f"MSH|^~\\&|HIS|HOSP|XDSREG|DIR|20240101120000||ADT^A01^ADT_A01|B{n:09d}|P|2.5\r"
        "EVN|A01|20240101120000\r"
        f"PID|1||{n:010d}^^^&{AUTHORITY}&ISO~M{n}^^^HOSP&1.2.3&ISO||DOE^JOHN^Q||19700101|M|||"
        "1 KING ST W^^TORONTO^ON^M5H 1A1^CAN^H||(416)555-0100\r"
        "PV1|1|O|RAD^^^HOSP\r"
    ).encode()


def identity_sink(url: str):  # type: ignore[no-untyped-def]
    """The identity layer of a registry over ``url``, HOSP (1.2.3) configured as a feed."""
    import tempfile

    from xds.config import IdentityFeedConfig, NodeConfig
    from xds.identity import Identity
    from xds.registry import Registry

    cfg = NodeConfig()
    cfg.registry.patient_assigning_authority = AUTHORITY
    cfg.identity.feeds = [IdentityFeedConfig(sending_facility="HOSP", issuer="HOSP", issuer_oid="1.2.3")]
    cfg.database.url = url if url != "sqlite" else f"sqlite:///{tempfile.mkdtemp()}/registry.sqlite"
    registry = Registry.from_config(cfg)
    identity = Identity.for_registry(cfg, registry)
    return identity.domain, identity.feed


def audit_trail():  # type: ignore[no-untyped-def]
    """The node's ATNA audit trail over a fresh local store (no syslog repository)."""
    import tempfile

    from xds.audit.trail import AuditTrail
    from xds.config import NodeConfig

    cfg = NodeConfig()
    cfg.data_dir = tempfile.mkdtemp()
    return AuditTrail.from_config(cfg)


async def serve(database: str = "", audit: bool = False) -> None:
    from xds.config import MllpConfig
    from xds.hl7.patient_feed import start_patient_feed

    authority, sink = identity_sink(database) if database else (AUTHORITY, MemorySink())
    server = await start_patient_feed(MllpConfig(host="127.0.0.1", port=0), authority, sink,
                                      audit=audit_trail() if audit else None)
    print(server.port, flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    await server.close()


async def client(port: int, first: int, count: int, latencies: list[float]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    accepted = 0
    try:
        for n in range(first, first + count):
            t0 = time.perf_counter()
            writer.write(b"\x0b" + a01(n) + b"\x1c\r")
            reply = await reader.readuntil(b"\x1c\r")
            latencies.append(time.perf_counter() - t0)
            accepted += b"MSA|AA|" in reply
    finally:
        writer.close()
    return accepted


async def measure(port: int, connections: int, total: int) -> dict[str, float]:
    per = total // connections
    latencies: list[float] = []
    t0 = time.perf_counter()
    accepted = await asyncio.gather(*(client(port, 10_000_000 * (c + 1), per, latencies) for c in range(connections)))
    elapsed = time.perf_counter() - t0
    latencies.sort()
    return {
        "connections": connections,
        "messages": per * connections,
        "accepted": sum(accepted),
        "seconds": elapsed,
        "rate": per * connections / elapsed,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/<pid>/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measured(child: subprocess.Popen, port: int, connections: int, total: int) -> dict[str, float]:
    """One run, with the listener's CPU time per message and this process's (the clients')."""
    node0, client0 = cpu_seconds(child.pid), time.process_time()
    row = asyncio.run(measure(port, connections, total))
    row["node_ms"] = (cpu_seconds(child.pid) - node0) * 1000 / row["messages"]
    row["client_ms"] = (time.process_time() - client0) * 1000 / row["messages"]
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000)
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="runs per row; the best is shown")
    parser.add_argument("--database", default="", help="identity store: 'sqlite' or a database URL")
    parser.add_argument("--audit", action="store_true", help="audit every message as xds serve does")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(args.database, args.audit))
        return

    child = subprocess.Popen([sys.executable, __file__, "--serve", "--database", args.database,
                              *(["--audit"] if args.audit else [])],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        port = int(child.stdout.readline())
        asyncio.run(measure(port, 1, 300))  # warm-up
        rows = []
        for connections in (1, args.connections):
            runs = [measured(child, port, connections, args.messages) for _ in range(args.repeat)]
            rows.append(max(runs, key=lambda r: r["rate"]))
    finally:
        child.stdin.close()
        child.wait(10)

    sink = f"identity store on {args.database.split('://')[0]}" if args.database else "in-memory sink"
    sink += ", ATNA audit record per message" if args.audit else ", no audit"
    print(f"ITI-8 ADT^A01 over MLLP, {sink}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
          f"load average {os.getloadavg()[0]:.1f}, best of {args.repeat}")
    print(f"{'connections':>11} {'messages':>8} {'AA':>6} {'seconds':>8} {'msg/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
          f"{'node CPU ms/msg':>15} {'client CPU ms/msg':>17}")
    for r in rows:
        print(f"{r['connections']:>11} {r['messages']:>8} {r['accepted']:>6} {r['seconds']:>8.2f} "
              f"{r['rate']:>8.0f} {r['p50']:>7.2f} {r['p99']:>7.2f} {r['node_ms']:>15.3f} {r['client_ms']:>17.3f}")


if __name__ == "__main__":
    main()
