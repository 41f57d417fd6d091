"""The province on one machine: HDIRS, SWODIN and NEODIN (``xds serve``) and the DI Common Service
(``xca serve``) as four supervised processes on loopback, loaded with a synthetic province.

Each DIR runs from a copy of its ``conf/<name>.toml`` written under the data directory, with the
same ports and identifiers, its state under ``<data-dir>/<name>`` and a short imaging quiet period
(so a demo study's manifest is published seconds after its images arrive). The demo data goes in
once, through the real transactions (:mod:`xca.loader`); a later start finds it in place.

Ctrl-C (or SIGTERM) stops the four processes cleanly: the DI Common Service first, then the DIRs,
each with SIGTERM and up to ``STOP_GRACE`` seconds before SIGKILL. If one of them exits on its own
the others are stopped too.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from xca import config as dics_config
from xca import demo, loader
from xds import config as node_config

ROOT = Path(__file__).resolve().parents[1]
COMMUNITIES = ("hdirs", "swodin", "neodin")
STOP_GRACE = 15.0
DEMO_QUIET_SECONDS = 2


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def dump_toml(data: dict[str, Any]) -> str:
    """Tables of scalars and arrays of tables: what a node configuration holds."""
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict | list) or
             (isinstance(v, list) and not any(isinstance(x, dict) for x in v))]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines += [f"{kk} = {_toml_value(vv)}" for kk, vv in v.items() if not isinstance(vv, list) or
                      not any(isinstance(x, dict) for x in vv)]
            for kk, vv in v.items():
                if isinstance(vv, list) and any(isinstance(x, dict) for x in vv):
                    for item in vv:
                        lines.append(f"\n[[{k}.{kk}]]")
                        lines += [f"{a} = {_toml_value(b)}" for a, b in item.items()]
        elif isinstance(v, list) and any(isinstance(x, dict) for x in v):
            for item in v:
                lines.append(f"\n[[{k}]]")
                lines += [f"{a} = {_toml_value(b)}" for a, b in item.items()]
    return "\n".join(lines) + "\n"


def node_config_for_demo(source: Path, target: Path, data_dir: Path) -> Path:
    with open(source, "rb") as f:
        data = tomllib.load(f)
    data["data_dir"] = str(data_dir)
    data.setdefault("imaging", {})["study_quiet_seconds"] = DEMO_QUIET_SECONDS
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(f"# Written by `xca province` from {source}; edit that file instead.\n" + dump_toml(data))
    return target


@dataclass
class Process:
    name: str
    argv: list[str]
    health_url: str
    proc: subprocess.Popen | None = None

    def start(self, log_dir: Path) -> None:
        self.proc = subprocess.Popen(
            self.argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        log = open(log_dir / f"{self.name.lower()}.log", "ab")
        threading.Thread(target=self._pump, args=(log,), daemon=True).start()

    def _pump(self, log: Any) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                text = line.decode("utf-8", "replace").rstrip()
                if " WARNING " in text or " ERROR " in text or "Traceback" in text:
                    print(f"[{self.name}] {text}", flush=True)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def _wait_healthy(processes: list[Process], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    pending = list(processes)
    while pending:
        for p in list(pending):
            assert p.proc is not None
            if p.proc.poll() is not None:
                raise RuntimeError(f"{p.name} exited with status {p.proc.returncode} while starting (see its log)")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(p.health_url, timeout=1).status_code == 200:
                    pending.remove(p)
        if pending and time.monotonic() > deadline:
            raise RuntimeError(f"{', '.join(p.name for p in pending)} did not start within {timeout:.0f} s")
        time.sleep(0.2)


def _banner(dics: dics_config.DicsConfig, nodes: list[node_config.NodeConfig], data: demo.Province | None,
            data_dir: Path) -> str:
    out = ["", "The province is up (Ctrl-C stops it).", "",
           f"  Point a consumer at the DI Common Service:  {dics.base_url}/xca/initiate",
           "     ITI-18 Registry Stored Query, ITI-43 Retrieve Document Set, RAD-69 Retrieve Imaging Document Set",
           f"     WSDL: {dics.base_url}/xca/initiate?wsdl", "",
           "  The regional DIRs (each: /xds/registry /xds/repository /xds/imaging /xca/respond, ?wsdl on each):"]
    for n in nodes:
        out.append(f"     {n.name:<7} {n.base_url}   MLLP {n.mllp.host}:{n.mllp.port}   "
                   f"DICOM {n.imaging.ae_title}@{n.imaging.host}:{n.imaging.port}   {n.home_community_id}")
    if data is not None:
        out += ["", f"  Demo patients (patient id: <HN>^^^&{demo.HN_AUTHORITY}&ISO):"]
        for p in sorted(data.patients, key=lambda p: -len(data.communities_of(p))):
            name = f"{p.family.upper()}, {p.given}"
            out.append(f"     {p.hn}  {name:<20} {p.sex} {p.birth_date}  {p.postal_code}  {p.city:<17} "
                       f"exams in {', '.join(data.communities_of(p))}")
        out += ["", "  Try (FindDocuments across the province for the first patient):",
                f"     curl -s -H 'content-type: application/soap+xml' --data-binary @{data_dir}/find-documents.xml "
                f"{dics.base_url}/xca/initiate"]
    out += ["", f"  Logs: {data_dir}/logs/", ""]
    return "\n".join(out)


def _write_sample_request(path: Path, patient: demo.Patient, url: str) -> None:
    from xca.soap_client import request_bytes

    path.write_bytes(request_bytes(loader.find_documents_request(patient.patient_id), loader.ITI18_ACTION, url))


def run(data_dir: Path, *, patients: int = 12, seed: int = 2011, load_demo: bool = True, fresh: bool = False,
        conf_dir: Path = ROOT / "conf") -> int:
    """Run the province until Ctrl-C; ``conf_dir`` holds hdirs.toml, swodin.toml, neodin.toml and
    dics.toml. Returns the exit status."""
    try:
        return _run(data_dir, patients=patients, seed=seed, load_demo=load_demo, fresh=fresh, conf_dir=conf_dir)
    except (node_config.ConfigError, dics_config.ConfigError) as e:
        print(f"xca province: {e}", file=sys.stderr)
        return 2


def _run(data_dir: Path, *, patients: int, seed: int, load_demo: bool, fresh: bool, conf_dir: Path) -> int:
    dics_path = conf_dir / "dics.toml"
    data_dir = data_dir.resolve()
    if fresh and data_dir.exists():
        shutil.rmtree(data_dir)
    (data_dir / "logs").mkdir(parents=True, exist_ok=True)
    dics = dics_config.load(dics_path)
    nodes: list[node_config.NodeConfig] = []
    processes: list[Process] = []
    for name in COMMUNITIES:
        path = node_config_for_demo(conf_dir / f"{name}.toml", data_dir / "conf" / f"{name}.toml", data_dir / name)
        cfg = node_config.load(path)
        nodes.append(cfg)
        processes.append(Process(cfg.name, [sys.executable, "-m", "xds.cli", "serve", "--config", str(path)],
                                 cfg.base_url + "/health"))
    processes.append(Process(dics.name, [sys.executable, "-m", "xca.cli", "serve", "--config", str(dics_path),
                                         "--data-dir", str(data_dir / "dics")], dics.base_url + "/health"))
    busy = [f"{host}:{port}" for cfg in nodes for host, port in
            ((cfg.http.host, cfg.http.port), (cfg.mllp.host, cfg.mllp.port), (cfg.imaging.host, cfg.imaging.port))
            if not _port_free(host, port)]
    if not _port_free(dics.http.host, dics.http.port):
        busy.append(f"{dics.http.host}:{dics.http.port}")
    if busy:
        print(f"xca province: port(s) already in use: {', '.join(busy)} (is the province already running?)",
              file=sys.stderr)
        return 2

    stop = threading.Event()
    supervising = False

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()
        if not supervising:
            raise KeyboardInterrupt  # still starting or loading: give up on that

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in processes:
            p.start(data_dir / "logs")
        print("Starting " + ", ".join(p.name for p in processes) + " ...", flush=True)
        _wait_healthy(processes)
        data = None
        if load_demo:
            data = demo.province(patients=patients, seed=seed)
            marker = data_dir / "demo-loaded"
            if marker.exists():
                print(f"Demo data already loaded ({marker.read_text().strip()}).", flush=True)
            else:
                print("Loading the demo province through ITI-8, C-STORE (RAD-68) and ITI-41 ...", flush=True)
                targets = {cfg.name: loader.Target.from_config(cfg) for cfg in nodes}
                asyncio.run(loader.load(targets, data, say=lambda s: print("  " + s, flush=True)))
                marker.write_text(f"seed {seed}, {patients} patients\n")
            _write_sample_request(data_dir / "find-documents.xml", data.patients[0], dics.base_url + "/xca/initiate")
        print(_banner(dics, nodes, data, data_dir), flush=True)
        supervising = True
        while not stop.is_set():
            for p in processes:
                assert p.proc is not None
                if p.proc.poll() is not None:
                    print(f"xca province: {p.name} exited with status {p.proc.returncode}; stopping the others",
                          file=sys.stderr, flush=True)
                    return 1
            stop.wait(0.5)
        print("Stopping the province ...", flush=True)
        return 0
    except (RuntimeError, loader.LoadError) as e:
        print(f"xca province: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("Interrupted; stopping the province ...", flush=True)
        return 130
    finally:
        for p in reversed(processes):
            p.stop()
        for s, handler in previous.items():
            signal.signal(s, handler)
        print("Stopped.", flush=True)
