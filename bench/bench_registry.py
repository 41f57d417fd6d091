"""Document Registry benchmark (issue 3), against a live node (``xds serve --workers 2``).

(a) ITI-42 Register Document Set-b over HTTP: submissions/s of one DocumentEntry + SubmissionSet
    + HasMember each, from many concurrent connections. Load comes from wrk; a Lua script builds
    every request from a template with its own entryUUIDs (objects, classifications, external
    identifiers), uniqueIds, patient and MessageID, and checks each answer is a Success. wrk's
    own CPU time is reported next to the server's, to show the client is not the bottleneck.
(b) ITI-18 FindDocuments (LeafClass, Approved) for one patient with 200 DocumentEntries, the
    registry preloaded by the bulk loader (:mod:`xds.registry.bulk_load`, data from
    :mod:`bench.registry_data`) with 100k and then 1M DocumentEntries: p50 / p99 latency over
    HTTP from one client, requests one after the other.

Each backend gets a fresh database: SQLite in a temporary directory, PostgreSQL a new database on
127.0.0.1:5432 (user postgres), dropped at the end. Usage::

    .venv/bin/python bench/bench_registry.py                       # both, both backends
    .venv/bin/python bench/bench_registry.py --only iti42 --backends postgresql --seconds 30
    .venv/bin/python bench/bench_registry.py --only find --sizes 100000,1000000
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.registry_data import RegistryData, patient_id  # noqa: E402
from xds.metadata import ebrim  # noqa: E402
from xds.metadata import model as m  # noqa: E402
from xds.namespaces import RIM, SOAP12, WSA  # noqa: E402

PY = sys.executable
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
ITI42_ACTION = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ITI18_ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
FOCUS_PATIENT = patient_id(0)  # the patient FindDocuments asks for: 200 entries
ITI42_PATIENTS = 1000  # patients the ITI-42 submissions are spread over


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- databases and nodes ---------------------------------------------------------------------------


@contextlib.contextmanager
def database(backend: str, tmp: Path, keep: str | None = None) -> Iterator[str]:
    """A fresh, empty registry database URL; a PostgreSQL one is dropped afterwards. ``keep``:
    this database (PostgreSQL name, SQLite file), created if missing and kept afterwards, so a
    long preload can be reused or resumed."""
    if backend == "sqlite":
        yield f"sqlite:///{Path(keep).resolve() if keep else tmp / 'registry.sqlite'}"
        return
    from sqlalchemy import create_engine, text

    name = keep or f"xds_bench_registry_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + "/" + name
    finally:
        if not keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def node_config(tmp: Path, db_url: str) -> tuple[Path, int]:
    """conf/hdirs.toml with this database and free ports; returns (path, HTTP port)."""
    with open(ROOT / "conf" / "hdirs.toml", "rb") as f:
        cfg = tomllib.load(f)
    port = free_port()
    cfg["http"]["port"] = port
    cfg["mllp"]["port"] = free_port()
    cfg["imaging"]["port"] = free_port()
    cfg["database"]["url"] = db_url
    cfg["log_level"] = "WARNING"
    lines = []
    for key, value in cfg.items():
        if not isinstance(value, dict):
            lines.append(f"{key} = {_toml(value)}")
    for key, value in cfg.items():
        if isinstance(value, dict):
            lines.append(f"[{key}]")
            lines += [f"{k} = {_toml(v)}" for k, v in value.items()]
    path = tmp / "node.toml"
    path.write_text("\n".join(lines) + "\n")
    return path, port


def _toml(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


@contextlib.contextmanager
def live_node(config: Path, data_dir: Path, port: int, workers: int = 2) -> Iterator[psutil.Process]:
    log = open(data_dir.parent / "node.log", "ab")
    proc = subprocess.Popen(
        [
            PY,
            "-m",
            "xds.cli",
            "serve",
            "--config",
            str(config),
            "--data-dir",
            str(data_dir),
            "--workers",
            str(workers),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"xds serve exited with {proc.returncode}; see {log.name}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("xds serve did not start")
            time.sleep(0.2)
        yield psutil.Process(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def cpu_seconds(proc: psutil.Process) -> dict[int, float]:
    """User + system CPU of a process and of each of its children (uvicorn's workers), by pid."""
    out = {}
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            t = p.cpu_times()
            out[p.pid] = t.user + t.system
    return out


def cpu_used(before: dict[int, float], after: dict[int, float]) -> float:
    return sum(after[pid] - before.get(pid, 0.0) for pid in after)


def registry(db_url: str, data_dir: Path):  # type: ignore[no-untyped-def]
    from xds import config as config_mod
    from xds.registry import Registry

    cfg = config_mod.NodeConfig()
    cfg.data_dir = str(data_dir)
    cfg.database.url = db_url
    with open(ROOT / "conf" / "hdirs.toml", "rb") as f:
        cfg.registry.patient_assigning_authority = tomllib.load(f)["registry"]["patient_assigning_authority"]
    return Registry.from_config(cfg)


# --- (a) ITI-42 over HTTP --------------------------------------------------------------------------


def iti42_template() -> tuple[list[str], list[str]]:
    """A SOAP 1.2 ITI-42 request (SubmissionSet, the report DocumentEntry of a study, HasMember),
    cut at every value that must differ between requests: (literal chunks, placeholder kinds).
    Kinds: ``uuid<n>`` (the n-th distinct id of the request), ``ss_uid``, ``de_uid``, ``pnum``
    (the patient's number), ``mid`` (MessageID)."""
    gen = RegistryData(1, seed=4242, first_patient=777777)
    sub = gen.study()
    report = sub.document_entries[1]
    sub.document_entries = [report]
    sub.associations = [a for a in sub.associations if a.target == report.entry_uuid]
    sor = ebrim.serialize_submit_objects_request(sub)
    ids = [el.get("id") for el in sor.iter() if el.get("id")]
    body = etree.tostring(sor, encoding="unicode")
    env = (
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
        f'<wsa:Action env:mustUnderstand="true">{ITI42_ACTION}</wsa:Action>'
        f"<wsa:MessageID>@mid@</wsa:MessageID>"
        f"<wsa:To>http://127.0.0.1/xds/registry</wsa:To></env:Header><env:Body>{body}</env:Body></env:Envelope>"
    )
    ss = sub.submission_set
    assert ss is not None
    marks = {ss.unique_id: "@ss_uid@", report.unique_id: "@de_uid@", "9000777777": "@pnum@"}
    for n, i in enumerate(dict.fromkeys(ids)):
        marks[i] = f"@uuid{n}@"
    for value, mark in marks.items():
        assert value in env, value
        env = env.replace(value, mark)
    parts = re.split(r"@(\w+)@", env)
    return parts[0::2], parts[1::2]


def iti42_lua(chunks: list[str], kinds: list[str], patients: int) -> str:
    """wrk script: each request the template with fresh values (thread id, request counter),
    each answer checked for ResponseStatusType:Success."""
    lit = ",\n".join("[==[" + c + "]==]" for c in chunks)
    kinds_lua = ", ".join(f'"{k}"' for k in kinds)
    nonce = random.randrange(1, 2**31)
    return f"""
local chunks = {{ {lit} }}
local kinds = {{ {kinds_lua} }}
local nonce = {nonce}
local threads = {{}}
-- per-thread globals (wrk's thread:set / thread:get reach globals only)
counter = 0
tid = 0
failures = 0
ok = 0

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = 'application/soap+xml; charset=UTF-8; action="{ITI42_ACTION}"'
end

function request()
  counter = counter + 1
  local out = {{}}
  for i = 1, #chunks do
    out[#out + 1] = chunks[i]
    local k = kinds[i]
    if k then
      local v
      if k == "ss_uid" then v = string.format("2.25.%d%03d%010d1", nonce, tid, counter)
      elseif k == "de_uid" then v = string.format("2.25.%d%03d%010d2", nonce, tid, counter)
      elseif k == "pnum" then v = string.format("%d", 9000000001 + (counter * 7 + tid) % {patients})
      elseif k == "mid" then v = string.format("urn:uuid:%08x-%04x-4fff-8fff-%012x", nonce, tid, counter)
      else v = string.format("urn:uuid:%08x-%04x-4%03x-8000-%012x", nonce, tid, tonumber(string.sub(k, 5)), counter)
      end
      out[#out + 1] = v
    end
  end
  return wrk.format(nil, nil, nil, table.concat(out))
end

function response(status, headers, body)
  if status == 200 and string.find(body, "ResponseStatusType:Success", 1, true) then
    ok = ok + 1
  else
    failures = failures + 1
    if failures == 1 then io.stderr:write("first failure: " .. status .. " " .. string.sub(body, 1, 2000) .. "\\n") end
  end
end

function done(summary, latency, requests)
  local f, o = 0, 0
  for _, t in ipairs(threads) do
    f = f + t:get("failures")
    o = o + t:get("ok")
  end
  io.write(string.format("XDS ok=%d failures=%d\\n", o, f))
end
"""


def run_wrk(url: str, lua: str, seconds: int, connections: int, threads: int = 2) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        started = time.perf_counter()
        proc = psutil.Popen(
            [
                "wrk",
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds}s",
                "--timeout",
                "30s",
                "-s",
                f.name,
                url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        cpu = 0.0
        while proc.poll() is None:
            with contextlib.suppress(psutil.Error):
                t = proc.cpu_times()
                cpu = t.user + t.system
            time.sleep(0.25)
        out, err = proc.communicate()
        wall = time.perf_counter() - started
    finally:
        os.unlink(f.name)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {err}")
    ok, failures = map(int, re.search(r"XDS ok=(\d+) failures=(\d+)", out).groups())  # type: ignore[union-attr]
    if failures:
        raise RuntimeError(f"{failures} ITI-42 requests failed:\n{err[:3000]}\n{out}")
    lat = re.search(r"Latency\s+([\d.]+)(\w+)", out)
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),  # type: ignore[union-attr]
        "ok": ok,
        "wrk_cpu": cpu / wall,
        "latency": f"{lat.group(1)} {lat.group(2)}" if lat else "",
    }


def iti42_bench(backend: str, seconds: int, connections: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as d, database(backend, Path(d)) as url:
        tmp = Path(d)
        data_dir = tmp / "data"
        reg = registry(url, data_dir)  # migrated; the identity feed's patients
        with reg.store.transaction() as tx:
            for i in range(1, ITI42_PATIENTS + 1):
                tx.record_patient(patient_id(i), {"family": f"P{i}"}, "BENCH^FEED", f"m{i}")
        reg.close()
        config, port = node_config(tmp, url)
        chunks, kinds = iti42_template()
        endpoint = f"http://127.0.0.1:{port}/xds/registry"
        with live_node(config, data_dir, port) as server:
            # warm-up: imports, connection pools, caches (each run its own nonce: ids stay unique)
            run_wrk(endpoint, iti42_lua(chunks, kinds, ITI42_PATIENTS), 3, connections)
            cpu0 = cpu_seconds(server)
            t0 = time.perf_counter()
            result = run_wrk(endpoint, iti42_lua(chunks, kinds, ITI42_PATIENTS), seconds, connections)
            server_cpu = cpu_used(cpu0, cpu_seconds(server)) / (time.perf_counter() - t0)
        reg = registry(url, data_dir)
        from xds.registry.store import DOCUMENT_ENTRY

        stored = reg.store.count(DOCUMENT_ENTRY)
        reg.close()
    return {**result, "server_cpu": server_cpu, "stored": stored}


# --- (b) FindDocuments latency ---------------------------------------------------------------------


def preload(reg, total: int, workers: int, seed: int) -> float:  # type: ignore[no-untyped-def]
    """Bulk-load DocumentEntries until the registry holds ``total``: the focus patient's 100
    studies (200 entries) spread through the first load, the rest random patients (10 entries
    per patient on average). A registry holding some already gets what it lacks."""
    from sqlalchemy import func, select

    from xds.registry import schema as s
    from xds.registry.bulk_load import BulkLoader

    de = s.document_entry
    with reg.engine.connect() as conn:
        already = conn.scalar(select(func.count()).select_from(de))
        focus_have = conn.scalar(select(func.count()).where(de.c.patient_id == FOCUS_PATIENT))
    patients = max(1, total // 10)
    background = RegistryData(patients, seed=seed)
    focus = RegistryData(1, seed=seed + 1)
    new = total - already
    focus_studies = (200 - focus_have) // 2
    every = max(1, (new // 2) // (focus_studies + 1)) if focus_studies else 0

    def stream():  # type: ignore[no-untyped-def]
        f = 0
        for n, item in enumerate(background.recipes(new - 2 * focus_studies, first=already)):
            if focus_studies and n % every == every - 1 and f < focus_studies:
                yield f"focus-{f}", _focus_recipe(focus, f)
                f += 1
            yield item
        while f < focus_studies:
            yield f"focus-{f}", _focus_recipe(focus, f)
            f += 1

    started = time.perf_counter()
    last = [started]

    def progress(report) -> None:  # type: ignore[no-untyped-def]
        now = time.perf_counter()
        if now - last[0] > 30:
            last[0] = now
            rate = report.document_entries / (now - started)
            print(f"    {already + report.document_entries:,} entries ({rate:,.0f}/s)", flush=True)

    report = BulkLoader(reg, patients="register", workers=workers, progress=progress).load(stream())
    if report.rejected:
        raise RuntimeError(f"{len(report.rejected)} rejected: {report.rejected[:3]}")
    assert report.document_entries == new, (report.document_entries, new)
    return report.seconds


def _focus_recipe(focus: RegistryData, i: int):  # type: ignore[no-untyped-def]
    import functools

    return functools.partial(focus.study_at, i, FOCUS_PATIENT)


def find_documents_request() -> bytes:
    pid = FOCUS_PATIENT.replace("&", "&amp;")
    return (
        f'<env:Envelope xmlns:env="{SOAP12}" xmlns:wsa="{WSA}"><env:Header>'
        f'<wsa:Action env:mustUnderstand="true">{ITI18_ACTION}</wsa:Action>'
        f"<wsa:MessageID>urn:uuid:{uuid.uuid4()}</wsa:MessageID></env:Header><env:Body>"
        f'<query:AdhocQueryRequest xmlns:query="urn:oasis:names:tc:ebxml-regrep:xsd:query:3.0" xmlns:rim="{RIM}">'
        f'<query:ResponseOption returnType="LeafClass" returnComposedObjects="true"/>'
        f'<rim:AdhocQuery id="{FIND_DOCUMENTS}">'
        f"<rim:Slot name=\"$XDSDocumentEntryPatientId\"><rim:ValueList><rim:Value>'{pid}'</rim:Value></rim:ValueList></rim:Slot>"
        f"<rim:Slot name=\"$XDSDocumentEntryStatus\"><rim:ValueList><rim:Value>('{m.STATUS_APPROVED}')</rim:Value></rim:ValueList></rim:Slot>"
        f"</rim:AdhocQuery></query:AdhocQueryRequest></env:Body></env:Envelope>"
    ).encode()


def find_latency(port: int, requests: int) -> dict[str, float]:
    """Sequential FindDocuments over one keep-alive connection. The client is the standard
    library's http.client: httpx (h11) was measured to spend ~10 ms (p50; p99 ~60 ms) receiving a
    1.5 MB answer that http.client reads in 0.5 ms, which would have measured the client."""
    import http.client

    body = find_documents_request()
    headers = {"Content-Type": f'application/soap+xml; charset=UTF-8; action="{ITI18_ACTION}"'}
    times = []
    size = 0
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        for i in range(requests + 50):
            t0 = time.perf_counter()
            conn.request("POST", "/xds/registry", body=body, headers=headers)
            response = conn.getresponse()
            content = response.read()
            elapsed = time.perf_counter() - t0
            if response.status != 200 or b"ResponseStatusType:Success" not in content:
                raise RuntimeError(f"FindDocuments failed: {response.status} {content[:2000]!r}")
            found = content.count(b"<rim:ExtrinsicObject")
            if found != 200:
                raise RuntimeError(f"FindDocuments found {found} entries, not 200")
            size = len(content)
            if i >= 50:  # after warm-up
                times.append(elapsed)
    finally:
        conn.close()
    q = statistics.quantiles(times, n=100, method="inclusive")
    return {"p50": q[49] * 1000, "p99": q[98] * 1000, "mean": statistics.mean(times) * 1000, "bytes": size}


def find_bench(
    backend: str, sizes: list[int], requests: int, workers: int, repeats: int, keep: str | None = None
) -> list[dict]:
    from xds.registry.store import DOCUMENT_ENTRY

    rows = []
    seed = random.randrange(1, 10**6)
    with tempfile.TemporaryDirectory(prefix="bench-registry-") as d, database(backend, Path(d), keep) as url:
        tmp = Path(d)
        data_dir = tmp / "data"
        reg = registry(url, data_dir)
        loaded = reg.store.count(DOCUMENT_ENTRY)  # a kept database may hold some already
        reg.close()
        for size in sizes:
            if loaded > size:
                raise SystemExit(f"the database holds {loaded:,} entries, more than {size:,}")
            seconds, load_rate = 0.0, 0.0
            if loaded < size:
                reg = registry(url, data_dir)
                print(f"  {backend}: bulk-loading {size - loaded:,} entries ...", flush=True)
                seconds = preload(reg, size, workers, seed)
                reg.close()
                load_rate = (size - loaded) / seconds
                loaded = size
            config, port = node_config(tmp, url)
            best: dict[str, float] | None = None
            with live_node(config, data_dir, port):
                for _ in range(repeats):
                    r = find_latency(port, requests)
                    print(
                        f"    {size:,}: p50 {r['p50']:.1f} ms, p99 {r['p99']:.1f} ms (load {os.getloadavg()[0]:.1f})"
                    )
                    if best is None or r["p99"] < best["p99"]:
                        best = r
            assert best is not None
            rows.append({"size": size, **best, "load_seconds": seconds, "load_rate": load_rate})
    return rows


# --- report ----------------------------------------------------------------------------------------


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = psutil.virtual_memory().total / 2**30
    pg = subprocess.run(
        ["psql", "-h", "127.0.0.1", "-U", "postgres", "-Atc", "show server_version"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return (
        f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, PostgreSQL {pg or '?'} "
        f"(stock settings), wrk {_wrk_version()}"
    )


def _wrk_version() -> str:
    if not shutil.which("wrk"):
        return "not installed"
    return subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.split()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", choices=("iti42", "find"))
    ap.add_argument("--backends", default="sqlite,postgresql")
    ap.add_argument("--seconds", type=int, default=20, help="ITI-42 run length")
    ap.add_argument("--connections", type=int, default=32, help="ITI-42 concurrent connections")
    ap.add_argument("--sizes", default="100000,1000000", help="registry sizes for FindDocuments")
    ap.add_argument("--requests", type=int, default=1000, help="FindDocuments requests per size")
    ap.add_argument("--repeats", type=int, default=3, help="FindDocuments runs per size (best p99 kept)")
    ap.add_argument(
        "--load-workers", type=int, default=os.cpu_count() or 1, help="bulk loader worker processes"
    )
    ap.add_argument(
        "--keep-database",
        metavar="NAME",
        help="FindDocuments: load into this database (PostgreSQL "
        "name or SQLite file, one backend), keep it, and reuse or resume what it holds",
    )
    args = ap.parse_args()
    if args.only != "find" and not shutil.which("wrk"):
        sys.exit("wrk is not installed (apt-get install wrk)")
    backends = args.backends.split(",")
    print(f"machine: {machine()}\nload average at start: {os.getloadavg()[0]:.1f}\n", flush=True)
    if args.only in (None, "iti42"):
        print(f"ITI-42, uvicorn 2 workers, wrk -t2 -c{args.connections} -d{args.seconds}s\n")
        print(
            "| backend | submissions/s | mean latency | wrk CPU (cores) | node CPU (cores) | node CPU ms/submission | stored |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|", flush=True)
        for backend in backends:
            r = iti42_bench(backend, args.seconds, args.connections)
            per = 1000 * r["server_cpu"] / r["rps"]  # type: ignore[operator]
            print(
                f"| {backend} | {r['rps']:,.0f} | {r['latency']} | {r['wrk_cpu']:.2f} | {r['server_cpu']:.2f} "
                f"| {per:.1f} | {r['stored']:,} |",
                flush=True,
            )
        print()
    if args.only in (None, "find"):
        sizes = [int(s) for s in args.sizes.split(",")]
        for backend in backends:
            rows = find_bench(
                backend, sizes, args.requests, args.load_workers, args.repeats, args.keep_database
            )
            print(
                f"\nFindDocuments, {backend}: one patient with 200 entries, LeafClass, {args.requests} "
                f"sequential requests, best of {args.repeats}\n"
            )
            print("| registry size | p50 ms | p99 ms | response | bulk load |")
            print("|---:|---:|---:|---:|---:|")
            for r in rows:
                load = (
                    f"{r['load_seconds']:,.0f} s ({r['load_rate']:,.0f} entries/s)"
                    if r["load_seconds"]
                    else "kept"
                )
                print(
                    f"| {r['size']:,} | {r['p50']:.1f} | {r['p99']:.1f} | {r['bytes'] / 1024:,.0f} KiB | {load} |"
                )
            if len(rows) > 1:
                print(
                    f"\np99 ratio {rows[-1]['size']:,} / {rows[0]['size']:,}: {rows[-1]['p99'] / rows[0]['p99']:.2f}"
                )
    print(f"\nload average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
