"""Document Repository benchmark (issue 4).

* ITI-43 Retrieve Document Set: MB/s of 10 MB documents streamed out of the filesystem store
  (MTOM response) vs. nginx serving the same files as static files (the ceiling on this machine).
  Load from wrk (installed with apt if missing), same threads and connections for both.
* ITI-41 Provide and Register: documents/s of 100 KB MTOM submissions, each registered in the
  node's registry (SQLite), from Python client threads (every request needs fresh uniqueIds).

The node is a real `xds serve` process (conf/hdirs.toml with a temporary data directory).
Usage:  .venv/bin/python bench/bench_repository.py [--seconds 10] [--workers 1] [--connections 8]
(prints the load average at the start and the end: the machine is shared)
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tests.live import free_port, wait_http, write_config  # noqa: E402
from tests.repository.messages import (  # noqa: E402
    AUTHORITY,
    PATIENT,
    REPOSITORY_ID,
    document_entry,
    provide_and_register,
    read_response,
    retrieve_document_set,
    submission,
)

MB = 1_000_000


def ensure(binary: str, package: str) -> str:
    path = shutil.which(binary) or (f"/usr/sbin/{binary}" if Path(f"/usr/sbin/{binary}").exists() else None)
    if path is None:
        subprocess.run(["apt-get", "install", "-y", "-qq", package], check=True,
                       env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
        path = shutil.which(binary) or f"/usr/sbin/{binary}"
    return path


def start_node(data_dir: Path, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    cfg = write_config("conf/hdirs.toml", data_dir / "node.toml", {
        "log_level": "WARNING",
        "http": {"port": port, "workers": workers},
        "registry": {"patient_assigning_authority": AUTHORITY},
        "repository": {"repository_unique_id": REPOSITORY_ID},
        "mllp": {"enabled": False},
        "imaging": {"enabled": False},
    })
    proc = subprocess.Popen([sys.executable, "-m", "xds.cli", "serve", "--config", str(cfg), "--data-dir",
                             str(data_dir / "data")], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/health", proc, timeout=60)
    from xds.config import NodeConfig
    from xds.registry import Registry

    c = NodeConfig(data_dir=str(data_dir / "data"))
    c.registry.patient_assigning_authority = AUTHORITY
    registry = Registry.from_config(c, run_migrations=False)
    registry.store.record_patient(PATIENT, {}, "BENCH^FEED", "1")
    registry.close()
    return proc, base


def provide(client: httpx.Client, url: str, content: bytes) -> str:
    de = document_entry(mime_type="application/octet-stream")
    req = provide_and_register(submission(de), {"Document01": content})
    r = client.post(url, content=req.body, headers={"content-type": req.content_type}, timeout=120)
    out = read_response(r.headers["content-type"], r.content)
    if out.short_status != "Success":
        raise RuntimeError(f"ITI-41 failed: {out.errors}")
    return de.unique_id


def bench_provide(url: str, seconds: int, threads: int, size: int) -> float:
    content = os.urandom(size)
    stop = time.monotonic() + seconds
    counts = [0] * threads

    def worker(i: int) -> None:
        with httpx.Client() as client:
            while time.monotonic() < stop:
                provide(client, url, content)
                counts[i] += 1

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(worker, range(threads)))
    return sum(counts) / (time.monotonic() - started)


ITI41_LUA = """
local counter = 0
local threads = {}
function setup(thread)
  counter = counter + 1
  thread:set("tid", counter)
end
local f = io.open("%(body)s", "rb"); local template = f:read("*all"); f:close()
local n = 0
local headers = { ["Content-Type"] = [[%(ct)s]] }
function request()
  n = n + 1
  local id = tid .. "." .. n
  local body = template:gsub("4242424242%%.1", id .. ".1", 1):gsub("4242424242%%.2", id .. ".2", 1)
  return wrk.format("POST", nil, headers, body)
end
function response(status, hdrs, body)
  if not body:find("ResponseStatusType:Success", 1, true) then
    io.stderr:write("ITI-41 not Success; ")
  end
end
"""


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (the uvicorn workers, the listeners process)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            children.setdefault(int(stat.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of ``pids`` so far (Linux /proc)."""
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def bench_provide_wrk(url: str, seconds: int, connections: int, size: int, tmp: Path) -> float:
    """ITI-41 docs/s with wrk as the client: every request gets fresh uniqueIds (Lua)."""
    de = document_entry(mime_type="application/octet-stream")
    de.unique_id = "1.3.6.1.4.1.21367.2005.3.99.4242424242.1"
    sub = submission(de)
    sub.submission_set.unique_id = "1.3.6.1.4.1.21367.2005.3.99.4242424242.2"
    req = provide_and_register(sub, {"Document01": os.urandom(size)})
    body = tmp / "iti41.mime"
    body.write_bytes(req.body if isinstance(req.body, bytes) else b"".join(req.body))
    lua = ITI41_LUA % {"body": body, "ct": req.content_type}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        r = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", f.name, url],
                           capture_output=True, text=True, check=True)
    finally:
        os.unlink(f.name)
    if "not Success" in r.stderr or re.search(r"Non-2xx or 3xx responses: (\d+)", r.stdout):
        raise RuntimeError(f"ITI-41 errors under load:\n{r.stdout}\n{r.stderr[:2000]}")
    return float(re.search(r"Requests/sec:\s+([\d.]+)", r.stdout).group(1))


def wrk_mb_per_s(url: str, lua: str, seconds: int, connections: int) -> float:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    try:
        out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s", "-s", f.name, url],
                             capture_output=True, text=True, check=True).stdout
    finally:
        os.unlink(f.name)
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        raise RuntimeError(f"{url}: {m.group(1)} error responses\n{out}")
    value, unit = re.search(r"Transfer/sec:\s+([\d.]+)(\w+)", out).groups()
    scale = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3}[unit]
    return float(value) * scale / MB


def nginx(root: Path, conf_dir: Path, workers: int) -> tuple[subprocess.Popen, int]:
    binary = ensure("nginx", "nginx")
    port = free_port()
    conf = conf_dir / "nginx.conf"
    conf.write_text(f"""
worker_processes {workers};
error_log {conf_dir}/error.log warn;
pid {conf_dir}/nginx.pid;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile off;  # the repository streams through user space too; sendfile would flatter nginx
    client_body_temp_path {conf_dir}/body;
    proxy_temp_path {conf_dir}/proxy;
    fastcgi_temp_path {conf_dir}/fastcgi;
    uwsgi_temp_path {conf_dir}/uwsgi;
    scgi_temp_path {conf_dir}/scgi;
    server {{ listen 127.0.0.1:{port}; root {root}; }}
}}
""")
    proc = subprocess.Popen([binary, "-c", str(conf), "-p", str(conf_dir)], stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=0.5)
            return proc, port
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nginx did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--connections", type=int, default=8)
    args = ap.parse_args()
    ensure("wrk", "wrk")
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="bench-repo-") as d:
        tmp = Path(d)
        proc, base = start_node(tmp, args.workers)
        url = base + "/xds/repository"
        try:
            docs_per_s = bench_provide(url, args.seconds, args.connections, 100 * 1000)
            # the node's CPU per document: on a shared machine the rate depends on the share of the
            # cores the node got; CPU per document does much less
            pids = process_tree(proc.pid)
            cpu_before, started = cpu_seconds(pids), time.monotonic()
            docs_per_s_wrk = bench_provide_wrk(url, args.seconds, args.connections, 100 * 1000, tmp)
            node_cpu = cpu_seconds(pids) - cpu_before
            node_cores = node_cpu / (time.monotonic() - started)
            cpu_per_doc_ms = 1000 * node_cores / docs_per_s_wrk

            ten_mb = os.urandom(10 * MB)
            with httpx.Client() as client:
                uid = provide(client, url, ten_mb)
            req = retrieve_document_set((REPOSITORY_ID, uid))
            body_file = tmp / "iti43.xml"
            body_file.write_bytes(req.body)
            lua = (f'local f = io.open("{body_file}", "rb"); wrk.body = f:read("*all"); f:close()\n'
                   f'wrk.method = "POST"\nwrk.headers["Content-Type"] = [[{req.content_type}]]\n')
            cpu_before, started = cpu_seconds(pids), time.monotonic()
            ours = wrk_mb_per_s(url, lua, args.seconds, args.connections)
            ours_cpu_per_mb = 1000 * (cpu_seconds(pids) - cpu_before) / (ours * (time.monotonic() - started))
        finally:
            proc.terminate()
            proc.wait()

        static = tmp / "static"
        static.mkdir()
        (static / "doc.bin").write_bytes(ten_mb)
        for p in (tmp, static, static / "doc.bin"):  # readable by nginx's unprivileged workers
            p.chmod(0o755)
        conf_dir = tmp / "nginx"
        conf_dir.mkdir()
        ngx, port = nginx(static, conf_dir, args.workers)
        try:
            ngx_pids = process_tree(ngx.pid)
            cpu_before, started = cpu_seconds(ngx_pids), time.monotonic()
            ceiling = wrk_mb_per_s(f"http://127.0.0.1:{port}/doc.bin", "", args.seconds, args.connections)
            ngx_cpu_per_mb = 1000 * (cpu_seconds(ngx_pids) - cpu_before) / (ceiling * (time.monotonic() - started))
        finally:
            ngx.terminate()
            ngx.wait()

    print(f"\nDocument Repository, filesystem store, {args.workers} worker(s), {os.cpu_count()} cores, "
          f"{args.connections} connections, {args.seconds} s per case, load average {load_start:.1f} "
          f"at the start, {os.getloadavg()[0]:.1f} at the end\n")
    print("| case | result |\n|---|---:|")
    print(f"| ITI-41 Provide and Register, 100 KB documents, Python client threads | {docs_per_s:,.0f} docs/s |")
    print(f"| ITI-41 Provide and Register, 100 KB documents, wrk (Lua: fresh uniqueIds) | {docs_per_s_wrk:,.0f} docs/s |")
    print(f"| node CPU per ITI-41 document (wrk case; cores the node used) | {cpu_per_doc_ms:.1f} ms ({node_cores:.2f}) |")
    print(f"| ITI-43 Retrieve, 10 MB document, MTOM streamed from the store | {ours:,.0f} MB/s |")
    print(f"| nginx, the same 10 MB file as a static file (ceiling) | {ceiling:,.0f} MB/s |")
    print(f"| ITI-43 share of the nginx ceiling | {ours / ceiling:.0%} |")
    print(f"| CPU per MB served: node / nginx | {ours_cpu_per_mb:.2f} ms / {ngx_cpu_per_mb:.2f} ms |")


if __name__ == "__main__":
    threading.excepthook = lambda a: print(a.exc_value, file=sys.stderr)
    main()
