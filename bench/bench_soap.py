"""SOAP layer benchmark (issue: Foundation).

Requests/s of a trivial echo and of a 1 MiB MTOM upload and download through our SOAP layer, vs. a
bare Starlette endpoint returning a fixed byte string (the ceiling on this machine), in one run;
then peak RSS of a server process receiving a 1 GiB MTOM upload.

Load comes from wrk (Debian package `wrk`, installed here if missing) on loopback. Servers run
under uvicorn with 2 workers. Usage:  .venv/bin/python bench/bench_soap.py [--seconds 10]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable

ECHO = (
    '<?xml version="1.0" encoding="UTF-8"?><env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope" '
    'xmlns:wsa="http://www.w3.org/2005/08/addressing"><env:Header>'
    '<wsa:Action env:mustUnderstand="true">urn:bench:{op}</wsa:Action>'
    "<wsa:MessageID>urn:uuid:{mid}</wsa:MessageID><wsa:To>http://127.0.0.1/soap</wsa:To></env:Header>"
    "<env:Body>{body}</env:Body></env:Envelope>"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def mtom_body(size: int, path: Path) -> str:
    boundary = "MIMEBoundary_bench"
    env = ECHO.format(
        op="Upload", mid=uuid.uuid4(),
        body='<b:Upload xmlns:b="urn:bench"><b:Document><xop:Include xmlns:xop="http://www.w3.org/2004/08/xop/include" '
        'href="cid:doc1@bench"/></b:Document></b:Upload>',
    )
    with open(path, "wb") as f:
        f.write(f"--{boundary}\r\nContent-Type: application/xop+xml; charset=UTF-8; type=\"application/soap+xml\"\r\n"
                f"Content-Transfer-Encoding: binary\r\nContent-ID: <root@bench>\r\n\r\n{env}\r\n".encode())
        f.write(f"--{boundary}\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n"
                f"Content-ID: <doc1@bench>\r\n\r\n".encode())
        left = size
        block = os.urandom(1 << 20)
        while left > 0:
            f.write(block[: min(left, len(block))])
            left -= len(block)
        f.write(f"\r\n--{boundary}--\r\n".encode())
    return (f'multipart/related; boundary={boundary}; type="application/xop+xml"; start="<root@bench>"; '
            f'start-info="application/soap+xml"')


def start_server(factory: str, port: int, workers: int) -> subprocess.Popen:
    proc = subprocess.Popen(
        [PY, "-m", "uvicorn", factory, "--factory", "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers), "--log-level", "warning", "--no-access-log"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{factory} did not start")


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid`` and its children (uvicorn workers)."""
    import psutil

    total = 0.0
    root = psutil.Process(pid)
    for p in [root, *root.children(recursive=True)]:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def wrk(url: str, lua: str, seconds: int, connections: int = 16, server: int | None = None) -> tuple[float, float]:
    """(requests/s, CPU ms per request of server and client together). The CPU figure does not
    depend on what else runs on the machine: on an otherwise idle 2-core machine, where both are
    CPU-bound, throughput is inversely proportional to it."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(lua)
    server_before = tree_cpu(server) if server else 0.0
    client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "-s", f.name, url],
                         capture_output=True, text=True, check=True).stdout
    client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    server_cpu = (tree_cpu(server) - server_before) if server else 0.0
    os.unlink(f.name)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if non2xx:
        raise RuntimeError(f"{url}: {non2xx.group(1)} error responses\n{out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    client_cpu = (client_after.ru_utime - client_before.ru_utime) + (client_after.ru_stime - client_before.ru_stime)
    return rps, (server_cpu + client_cpu) / max(requests, 1) * 1000


def lua_post(content_type: str, body_file: Path | None = None, body: str | None = None) -> str:
    if body_file is not None:
        load = f'local f = io.open("{body_file}", "rb"); wrk.body = f:read("*all"); f:close()\n'
    else:
        load = "wrk.body = [==[" + (body or "") + "]==]\n"
    return load + f'wrk.method = "POST"\nwrk.headers["Content-Type"] = [[{content_type}]]\n'


def rss_kib(pid: int) -> int:
    total = 0
    try:
        kids = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except FileNotFoundError:
        kids = []
    for p in [pid, *map(int, kids)]:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def big_upload_rss(size: int) -> tuple[int, int]:
    """(idle RSS, peak RSS) in KiB of a 1-worker server receiving one ``size``-byte MTOM upload."""
    import threading

    import httpx

    port = free_port()
    proc = start_server("bench.soap_app:create", port, 1)
    try:
        with tempfile.TemporaryDirectory() as d:
            body = Path(d) / "big.mime"
            ct = mtom_body(size, body)
            time.sleep(0.5)
            idle = rss_kib(proc.pid)
            peak = idle
            done = threading.Event()

            def sample() -> None:
                nonlocal peak
                while not done.is_set():
                    peak = max(peak, rss_kib(proc.pid))
                    time.sleep(0.05)

            t = threading.Thread(target=sample)
            t.start()

            def stream():
                with open(body, "rb") as f:
                    while block := f.read(1 << 20):
                        yield block

            r = httpx.post(f"http://127.0.0.1:{port}/soap", content=stream(), headers={"content-type": ct}, timeout=600)
            done.set()
            t.join()
            assert r.status_code == 200, r.text[:500]
            return idle, peak
    finally:
        proc.terminate()
        proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--big-mib", type=int, default=1024)
    ap.add_argument("--rounds", type=int, default=3, help="ceiling/ours pairs per case; the median is kept")
    ap.add_argument("--only", choices=("echo", "mtom"), help="only the echo cases (or only the MTOM ones); "
                    "with --big-mib 0 no memory run")
    args = ap.parse_args()
    if not shutil.which("wrk"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)
    ours, bare = free_port(), free_port()
    p1 = start_server("bench.soap_app:create", ours, 2)
    p2 = start_server("bench.soap_app:create_bare", bare, 2)
    rounds: dict[str, list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as d:
            echo = ECHO.format(op="Echo", mid=uuid.uuid4(), body='<b:Echo xmlns:b="urn:bench">hi</b:Echo>')
            soap_ct = "application/soap+xml; charset=UTF-8"
            up = Path(d) / "up.mime"
            up_ct = mtom_body(1 << 20, up)
            down = ECHO.format(op="Download", mid=uuid.uuid4(), body='<b:Download xmlns:b="urn:bench"/>')
            cases = [
                ("bare Starlette, fixed bytes (ceiling)", bare, "/bare", lua_post(soap_ct, body=echo)),
                ("SOAP echo", ours, "/soap", lua_post(soap_ct, body=echo)),
                ("bare Starlette, 1 MiB upload drained (ceiling)", bare, "/bare", lua_post(up_ct, body_file=up)),
                ("MTOM upload 1 MiB (SHA-1 of the part)", ours, "/soap", lua_post(up_ct, body_file=up)),
                ("MTOM download 1 MiB", ours, "/soap", lua_post(soap_ct, body=down)),
            ]
            if args.only:
                cases = cases[:2] if args.only == "echo" else cases[2:]
            servers = {ours: p1.pid, bare: p2.pid}
            # each round measures every case once, a ceiling right before the case it bounds
            for _ in range(args.rounds):
                for name, port, path, lua in cases:
                    rounds.setdefault(name, []).append(
                        wrk(f"http://127.0.0.1:{port}{path}", lua, args.seconds, server=servers[port])
                    )
    finally:
        for p in (p1, p2):
            p.terminate()
            p.wait()
    names = list(rounds)
    ceilings = {n: c for c, n in zip(names, names[1:]) if "ceiling" in c and "ceiling" not in n}
    print(f"\nSOAP layer, uvicorn 2 workers, wrk -t2 -c16 -d{args.seconds}s, {os.cpu_count()} cores, "
          f"{args.rounds} rounds, load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| case | req/s per round | median req/s | share of ceiling per round | median share "
          "| CPU ms/request (server + wrk), median | CPU-bound share |\n|---|---|---:|---|---:|---:|---:|")
    for name, values in rounds.items():
        rps = [v for v, _ in values]
        cpu = statistics.median(c for _, c in values)
        shares, cpu_share = [], ""
        if name in ceilings:
            ceiling = rounds[ceilings[name]]
            shares = [v / c for v, c in zip(rps, (c for c, _ in ceiling), strict=True)]
            cpu_share = f"{statistics.median(c for _, c in ceiling) / cpu:.0%}"
        share_cells = (", ".join(f"{x:.0%}" for x in shares), f"{statistics.median(shares):.0%}") if shares else ("", "")
        print(f"| {name} | {', '.join(f'{v:,.0f}' for v in rps)} | {statistics.median(rps):,.0f} | "
              f"{share_cells[0]} | {share_cells[1]} | {cpu:.3f} | {cpu_share} |")
    if not args.big_mib:
        return
    idle, peak = big_upload_rss(args.big_mib << 20)
    print(f"\n{args.big_mib} MiB MTOM upload, 1 worker: idle RSS {idle / 1024:.0f} MiB, peak {peak / 1024:.0f} MiB, "
          f"growth {(peak - idle) / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
