"""ITI-18 throughput with TLS + audit on vs. off, in one run (issue 8 target: overhead <= 25%).

Two live nodes (``xds serve``, conf/hdirs.toml, one worker each) with the same data: one patient
fed over ITI-8 and ``--documents`` DocumentEntries provided over ITI-41.

* plain: HTTP, ``[audit] enabled = false``;
* secure: mutual TLS (development PKI) on HTTP and MLLP, the audit trail on, every message
  delivered as syslog over TLS to a local audit repository.

Load: ``--clients`` threads, each with its own keep-alive connection, sending FindDocuments
(LeafClass) for the patient one after the other for ``--seconds``; the nodes are measured in
alternating rounds (plain, secure, plain, secure...) so that a busy machine hurts both alike.
Next to the throughput: the node's CPU per request (its processes, from /proc), and the bench
process's own (the client threads and the syslog repository). ``--split`` adds a node with the
audit trail only and one with TLS only, to tell the two costs apart.

    .venv/bin/python bench/bench_security.py
    .venv/bin/python bench/bench_security.py --clients 16 --seconds 20 --rounds 3 --documents 50
    .venv/bin/python bench/bench_security.py --seconds 4 --rounds 3 --split
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests.live import live_node  # noqa: E402
from tests.security import flows  # noqa: E402
from xds.security import pki  # noqa: E402


def load(node, documents: int, mllp_ssl) -> str:
    hn = flows.new_hn()
    flows.feed_patient(node.mllp_port, hn, mllp_ssl)
    patient = flows.cx(hn)
    with node.client(timeout=60) as client:
        for _ in range(documents):
            flows.provide(client, node.base_url, patient)
    return patient


def cpu_seconds(node) -> float:
    """User + system CPU time of the node process (and its children)."""
    proc = psutil.Process(node.proc.pid)
    total = 0.0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            total += t.user + t.system
    return total


def hammer(node, patient: str, clients: int, seconds: float) -> tuple[float, list[float], float]:
    """Requests per second, per-request latencies (s) and the node's CPU ms per request, of
    ``clients`` threads for ``seconds``."""
    query = flows.adhoc_query_body(flows.FIND_DOCUMENTS, {
        "$XDSDocumentEntryPatientId": f"'{patient}'",
        "$XDSDocumentEntryStatus": "('urn:oasis:names:tc:ebxml-regrep:StatusType:Approved')",
    }, "LeafClass")
    body = flows.rm.envelope(flows.ITI18, query)
    return drive(node, clients, seconds, lambda: body, warm_up=body)


def drive(node, clients: int, seconds: float, next_body: Callable[[], bytes | None],
          warm_up: bytes | None = None) -> tuple[float, list[float], float]:
    """ITI-18 requests to the node's registry from ``clients`` keep-alive threads for ``seconds``
    (or until ``next_body`` gives None): requests per second, per-request latencies (s) and the
    node's CPU ms per request. Each thread connects first (and handshakes), by posting
    ``warm_up`` or else by a GET of /health, before the clock starts."""
    headers = {"content-type": f'application/soap+xml; charset=UTF-8; action="{flows.ITI18}"'}
    latencies: list[list[float]] = [[] for _ in range(clients)]
    failures: list[bytes] = []
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def run(i: int) -> None:
        with node.client(timeout=60) as client:
            if warm_up is None:
                client.get(node.url("/health"))
            else:
                client.post(node.url("/xds/registry"), content=warm_up, headers=headers)
            start.wait()
            while time.monotonic() < deadline[0] and (body := next_body()) is not None:
                t = time.monotonic()
                r = client.post(node.url("/xds/registry"), content=body, headers=headers)
                if r.status_code != 200 or b"ResponseStatusType:Success" not in r.content:
                    failures.append(r.content[:300])
                latencies[i].append(time.monotonic() - t)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    deadline[0] = time.monotonic() + 3600
    start.wait()
    began, cpu = time.monotonic(), cpu_seconds(node)
    deadline[0] = began + seconds
    for t in threads:
        t.join()
    elapsed, cpu = time.monotonic() - began, cpu_seconds(node) - cpu
    if failures:
        raise RuntimeError(f"{len(failures)} failed requests, e.g. {failures[0]!r}")
    flat = [x for xs in latencies for x in xs]
    return len(flat) / elapsed, flat, cpu * 1000 / max(1, len(flat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--documents", type=int, default=20, help="DocumentEntries of the queried patient")
    ap.add_argument("--split", action="store_true",
                    help="also measure a node with the audit trail only and one with TLS only")
    args = ap.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-security-") as tmp:
        work = Path(tmp)
        certs = work / "certs"
        pki.init_dev_pki(certs)
        ca, node_cert, node_key = str(certs / "ca.crt"), str(certs / "node.crt"), str(certs / "node.key")
        client_ctx = ssl.create_default_context(cafile=ca)
        client_ctx.load_cert_chain(str(certs / "client.crt"), str(certs / "client.key"))
        repo_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
        repo_ctx.load_cert_chain(node_cert, node_key)
        repo_ctx.verify_mode = ssl.CERT_REQUIRED
        repository = flows.SyslogRepository(repo_ctx)
        secure_overrides = {
            "tls": {"enabled": True, "cert": node_cert, "key": node_key, "ca": ca},
            "audit": {"repository": f"127.0.0.1:{repository.port}", "ca": ca, "cert": node_cert, "key": node_key},
        }
        (work / "plain").mkdir()
        (work / "secure").mkdir()
        with contextlib.ExitStack() as stack:
            plain = stack.enter_context(live_node(work / "plain", overrides={"audit": {"enabled": False}}))
            secure = stack.enter_context(live_node(work / "secure", overrides=secure_overrides,
                                                   client_cert=(str(certs / "client.crt"), str(certs / "client.key"))))
            targets = {"plain": (plain, load(plain, args.documents, None)),
                       "TLS + audit": (secure, load(secure, args.documents, client_ctx))}
            if args.split:
                (work / "audit").mkdir()
                (work / "tls").mkdir()
                audit_only = stack.enter_context(live_node(work / "audit", overrides={
                    "audit": secure_overrides["audit"]}))
                tls_only = stack.enter_context(live_node(work / "tls", overrides={
                    "tls": secure_overrides["tls"], "audit": {"enabled": False}},
                    client_cert=(str(certs / "client.crt"), str(certs / "client.key"))))
                targets["audit only"] = (audit_only, load(audit_only, args.documents, None))
                targets["TLS only"] = (tls_only, load(tls_only, args.documents, client_ctx))
            results: dict[str, list[tuple[float, list[float], float]]] = {k: [] for k in targets}
            client_cpu: dict[str, list[float]] = {k: [] for k in targets}
            for _ in range(args.rounds):
                for name, (node, patient) in targets.items():
                    before = time.process_time()
                    results[name].append(hammer(node, patient, args.clients, args.seconds))
                    client_cpu[name].append((time.process_time() - before) * 1000 / max(1, len(results[name][-1][1])))
            delivered = len(repository.messages)
        repository.close()

    print(f"ITI-18 FindDocuments (LeafClass, {args.documents} entries), {args.clients} clients x "
          f"{args.seconds:.0f} s, {args.rounds} rounds each, alternating")
    best, cpu = {}, {}
    for name, runs in results.items():
        rates = [r for r, _, _ in runs]
        lat = sorted(x for _, xs, _ in runs for x in xs)
        best[name] = max(rates)
        cpu[name] = min(c for _, _, c in runs)
        print(f"  {name:12s} req/s best {max(rates):7.1f}  mean {statistics.mean(rates):7.1f}   "
              f"p50 {lat[len(lat) // 2] * 1000:6.1f} ms  p99 {lat[int(len(lat) * 0.99)] * 1000:6.1f} ms   "
              f"node CPU {cpu[name]:5.2f} ms/request  (bench process {min(client_cpu[name]):5.2f})")
    print(f"  throughput overhead (best vs best): {(1 - best['TLS + audit'] / best['plain']) * 100:.1f}%; "
          f"node CPU per request: +{(cpu['TLS + audit'] / cpu['plain'] - 1) * 100:.1f}%   (target <= 25%)")
    print(f"  audit messages delivered by syslog: {delivered}")


if __name__ == "__main__":
    main()
