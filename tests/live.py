"""Run a real node process (`xds serve`) for end-to-end tests: real HTTP, real MLLP."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CODES_FILE = SHARED / "corpus/nist-testkit/_toolkit-resources/xdstools2/src/main/webapp/toolkitx/environment/default/codes.xml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _toml_value(v: object) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):  # inline table: [tls.endpoints], [[xua.identity_providers]] entries
        return "{" + ", ".join(f"{k} = {_toml_value(x)}" for k, x in v.items()) + "}"
    s = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{s}"'


def dump_toml(data: dict) -> str:
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items() if not isinstance(v, dict)]
    for k, v in data.items():
        if isinstance(v, dict):
            lines.append(f"\n[{k}]")
            lines.extend(f"{kk} = {_toml_value(vv)}" for kk, vv in v.items())
    return "\n".join(lines) + "\n"


def write_config(base: str | Path, path: Path, overrides: dict | None = None) -> Path:
    with open(ROOT / base, "rb") as f:
        data = tomllib.load(f)
    for key, value in (overrides or {}).items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    path.write_text(dump_toml(data))
    return path


@dataclass
class LiveNode:
    base_url: str
    mllp_port: int
    proc: subprocess.Popen
    data_dir: Path
    verify: ssl.SSLContext | bool = True  # HTTPS: trusts the node's CA, presents the harness's certificate

    def url(self, path: str) -> str:
        return self.base_url + path

    def client(self, **kwargs) -> httpx.Client:
        """An httpx client for this node (HTTPS: its CA, the harness's client certificate)."""
        kwargs.setdefault("verify", self.verify)
        return httpx.Client(**kwargs)


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30, **httpx_options) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"node exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1, **httpx_options).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"node did not answer {url} within {timeout}s")


@contextlib.contextmanager
def live_node(
    tmp_path: Path,
    base: str = "conf/hdirs.toml",
    overrides: dict | None = None,
    env: dict | None = None,
    fixed_ports: bool = False,
    data_dir: Path | None = None,
    client_cert: tuple[str, str] | None = None,
    start_timeout: float = 90,  # a loaded 2-core machine has needed more than 30 s (spawned workers)
) -> Iterator[LiveNode]:
    """Start ``xds serve`` on a copy of ``base`` (free ports unless ``fixed_ports``). With
    ``tls.enabled`` in the overrides the node is reached over HTTPS, trusting ``tls.ca`` and
    presenting ``client_cert`` (certificate, key)."""
    overrides = dict(overrides or {})
    if not fixed_ports:
        overrides.setdefault("http", {})["port"] = free_port()
        overrides.setdefault("mllp", {})["port"] = free_port()
        overrides.setdefault("imaging", {})["port"] = free_port()
    cfg_path = write_config(base, tmp_path / "node.toml", overrides)
    with open(cfg_path, "rb") as f:
        cfg = tomllib.load(f)
    data_dir = data_dir or tmp_path / "data"
    full_env = {**os.environ, "XDS_CODES_FILE": str(CODES_FILE), **(env or {})}
    log = open(tmp_path / "node.log", "ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "xds.cli", "serve", "--config", str(cfg_path), "--data-dir", str(data_dir)],
        cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT,
    )
    tls = cfg.get("tls", {})
    scheme = "https" if tls.get("enabled") else "http"
    verify: ssl.SSLContext | bool = True
    if scheme == "https":
        verify = ssl.create_default_context(cafile=tls.get("ca"))
        if client_cert:
            verify.load_cert_chain(*client_cert)
    base_url = f"{scheme}://127.0.0.1:{cfg['http']['port']}"
    try:
        wait_http(base_url + "/health", proc, start_timeout, verify=verify)
        yield LiveNode(base_url, cfg["mllp"]["port"], proc, data_dir, verify)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
