"""Cost of XUA replay detection (issue 8): the replay memory is written on every request of an
XUA-protected endpoint (xds.security.replay).

1. In process, on a SQLite file like the node's ``xua.sqlite``: ``ReplayCache.present`` (one
   ``INSERT ... ON CONFLICT DO NOTHING``), next to the ``XuaVerifier.authenticate`` it belongs to
   (signature and conditions) with and without it; the same with ``--rows`` live rows in the table;
   a purge of ``--rows`` expired rows.
2. Live: two nodes (conf/hdirs.toml, XUA required on the registry, ``--workers`` HTTP workers each)
   in alternating rounds: one with ``replay = "refuse"`` (a row per request), one with
   ``replay = "one-time-use"`` (the assertions carry no OneTimeUse: the same verification, no row).
   ``--clients`` threads send ITI-18 FindDocuments (ObjectRef: a small answer, so that fixed costs
   show), each request with an assertion of its own, signed before the round.

    .venv/bin/python bench/bench_xua.py
    .venv/bin/python bench/bench_xua.py --workers 2 --clients 8 --seconds 10 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from lxml import etree  # noqa: E402

from bench.bench_security import drive  # noqa: E402
from tests.live import live_node  # noqa: E402
from tests.security import flows, saml  # noqa: E402
from xds.security import pki  # noqa: E402
from xds.security.replay import ReplayCache, message_fingerprint, xua_assertion  # noqa: E402
from xds.security.xua import IdentityProvider, XuaVerifier  # noqa: E402
from xds.soap import envelope as soap_envelope  # noqa: E402
from xds.soap.message import Addressing, SoapRequest  # noqa: E402

HOME = "urn:oid:2.25.54627942955341654235830037839802956048"  # conf/hdirs.toml: the assertions' audience


def signed_assertions(idp: pki.Issued, count: int) -> list[str]:
    until = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    return [saml.security_header(saml.sign(saml.assertion(HOME, not_on_or_after=until), idp)) for _ in range(count)]


@dataclass
class Timing:
    """Microseconds per call: median and mean wall time, and CPU time of this process (on a shared
    machine the median and the CPU time say more than the mean)."""

    p50: float
    mean: float
    cpu: float

    def __str__(self) -> str:
        return f"p50 {self.p50:6.0f} us, mean {self.mean:6.0f} us, CPU {self.cpu:6.0f} us"


def per_call(fn, items) -> Timing:
    times = []
    cpu = time.process_time()
    for item in items:
        t = time.perf_counter()
        fn(item)
        times.append(time.perf_counter() - t)
    cpu = time.process_time() - cpu
    return Timing(statistics.median(times) * 1e6, statistics.mean(times) * 1e6, cpu * 1e6 / len(times))


def in_process(work: Path, idp: pki.Issued, calls: int, rows: int) -> None:
    cache = ReplayCache.open(f"sqlite:///{work / 'xua.sqlite'}", purge_seconds=1e9)
    expires = time.time() + 3600
    present = per_call(lambda i: cache.present(saml.IDP, f"_{i}", message_fingerprint(f"urn:uuid:{i}", b"<b/>"),
                                               expires), range(calls))
    print(f"ReplayCache.present, empty table, {calls} calls: {present}")

    headers = signed_assertions(idp, calls)

    def request(header: str) -> SoapRequest:
        xml = (f'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header>{header}'
               f'</env:Header><env:Body><x:Q xmlns:x="urn:x"/></env:Body></env:Envelope>')
        root = etree.fromstring(xml.encode())
        h, b = soap_envelope.split_envelope(root)
        return SoapRequest(root, h, b, Addressing(action="urn:x", message_id=f"urn:uuid:{uuid.uuid4()}"))

    requests = [request(h) for h in headers]
    provider = [IdentityProvider(saml.IDP, idp.certificate)]
    without = XuaVerifier(provider, default="required", audiences={HOME})
    with_replay = XuaVerifier(provider, default="required", audiences={HOME}, replay=cache)
    # interleaved, call by call, so that the load of a shared machine weighs on both alike
    base_times: list[float] = []
    full_times: list[float] = []
    base_cpu = full_cpu = 0.0
    for r in requests:
        for verifier, times in ((without, base_times), (with_replay, full_times)):
            c, t = time.process_time(), time.perf_counter()
            verifier.authenticate("registry", r)
            times.append(time.perf_counter() - t)
            if verifier is without:
                base_cpu += time.process_time() - c
            else:
                full_cpu += time.process_time() - c
    base = Timing(statistics.median(base_times) * 1e6, statistics.mean(base_times) * 1e6, base_cpu * 1e6 / calls)
    full = Timing(statistics.median(full_times) * 1e6, statistics.mean(full_times) * 1e6, full_cpu * 1e6 / calls)
    print(f"XuaVerifier.authenticate, {calls} assertions, without replay detection: {base}")
    print(f"                                        with replay detection: {full}   "
          f"(p50 +{full.p50 - base.p50:.0f} us, CPU +{full.cpu - base.cpu:.0f} us)")

    now = time.time()
    with cache.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
        conn.execute(xua_assertion.insert(), [{"issuer": saml.IDP, "assertion_id": f"_live{i}", "message": "m",
                                               "first_seen": now, "expires": now + 3600} for i in range(rows)])
    present = per_call(lambda i: cache.present(saml.IDP, f"_more{i}", "m", expires), range(calls))
    print(f"ReplayCache.present, {len(cache)} rows in the table: {present}")
    with cache.engine.connect().execution_options(xds_write=True) as conn, conn.begin():
        conn.execute(xua_assertion.update().values(expires=now - 1))
    t = time.perf_counter()
    removed = cache.purge()
    print(f"purge of {removed} expired rows: {(time.perf_counter() - t) * 1000:.0f} ms")
    cache.close()


def hammer(node, bodies: list[bytes], clients: int, seconds: float) -> tuple[float, list[float], float]:
    """Requests per second, latencies and node CPU ms per request; each request spends one body
    (a message with an assertion of its own); the round ends early when they run out."""
    lock = threading.Lock()
    pool = iter(bodies)

    def take() -> bytes | None:
        with lock:
            return next(pool, None)

    return drive(node, clients, seconds, take)


def live(work: Path, certs: Path, idp: pki.Issued, args: argparse.Namespace) -> None:
    xua = {"identity_providers": [{"issuer": saml.IDP, "certificate": str(certs / "idp.crt")}],
           "endpoints": {"registry": "required"}}
    nodes = {}
    with contextlib.ExitStack() as stack:
        for replay in ("one-time-use", "refuse"):
            (work / replay).mkdir()
            node = stack.enter_context(live_node(work / replay, overrides={
                "xua": {**xua, "replay": replay}, "http": {"workers": args.workers}}))
            hn = flows.new_hn()
            for attempt in range(60):  # with several workers the MLLP listener runs in a process of its own
                try:
                    flows.feed_patient(node.mllp_port, hn)
                    break
                except ConnectionRefusedError:
                    if attempt == 59:
                        raise
                    time.sleep(0.5)
            with node.client(timeout=60) as client:
                flows.provide(client, node.base_url, flows.cx(hn))
            query = flows.rm.envelope(flows.ITI18, flows.adhoc_query_body(flows.FIND_DOCUMENTS, {
                "$XDSDocumentEntryPatientId": f"'{flows.cx(hn)}'",
                "$XDSDocumentEntryStatus": "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
            }))
            nodes[replay] = (node, query)
        results: dict[str, list[tuple[float, list[float], float]]] = {k: [] for k in nodes}
        for _ in range(args.rounds):
            for name, (node, query) in nodes.items():
                bodies = [query.replace(b"</env:Header>", h.encode() + b"</env:Header>")
                          for h in signed_assertions(idp, args.assertions)]
                results[name].append(hammer(node, bodies, args.clients, args.seconds))
    print(f"ITI-18 FindDocuments (ObjectRef), XUA required, {args.workers} worker(s), {args.clients} clients x "
          f"{args.seconds:.0f} s, {args.rounds} rounds each, alternating")
    best, cpu = {}, {}
    for name, runs in results.items():
        rates = [r for r, _, _ in runs]
        lat = sorted(x for _, xs, _ in runs for x in xs)
        best[name], cpu[name] = max(rates), min(c for _, _, c in runs)
        print(f"  replay = {name:13s} req/s best {max(rates):7.1f}  mean {statistics.mean(rates):7.1f}   "
              f"p50 {lat[len(lat) // 2] * 1000:6.1f} ms  p99 {lat[int(len(lat) * 0.99)] * 1000:6.1f} ms   "
              f"node CPU {cpu[name]:5.2f} ms/request")
    print(f"  with replay detection (refuse vs one-time-use): throughput "
          f"{(best['refuse'] / best['one-time-use'] - 1) * 100:+.1f}%, node CPU per request "
          f"{(cpu['refuse'] / cpu['one-time-use'] - 1) * 100:+.1f}%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--calls", type=int, default=2000, help="in-process calls")
    ap.add_argument("--rows", type=int, default=100_000, help="live rows for the table-size and purge figures")
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--assertions", type=int, default=3000, help="signed per node per round (a round ends early "
                                                                  "when they run out)")
    ap.add_argument("--no-live", action="store_true", help="in-process figures only")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-xua-") as tmp:
        work = Path(tmp)
        certs = work / "certs"
        pki.init_dev_pki(certs)
        idp = pki.load(certs, "idp")
        in_process(work, idp, args.calls, args.rows)
        if not args.no_live:
            live(work, certs, idp, args)


if __name__ == "__main__":
    main()
