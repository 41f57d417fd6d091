"""Run a real DI Common Service process (`xca serve`) for end-to-end tests, on a free port."""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.live import ROOT, _toml_value, free_port, wait_http


@dataclass
class LiveDics:
    base_url: str
    proc: subprocess.Popen
    config_path: Path
    data_dir: Path  # its audit store: data_dir/audit.sqlite

    @property
    def url(self) -> str:
        return self.base_url + "/xca/initiate"


def _value(v: object) -> str:
    return repr(v) if isinstance(v, float) else _toml_value(v)


def dics_toml(port: int, communities: list[dict], gateway: dict | None = None, data_dir: Path | None = None,
              audit: dict | None = None) -> str:
    lines = ['name = "DICS-TEST"', 'log_level = "INFO"']
    if data_dir is not None:
        lines.append(f"data_dir = {_toml_value(str(data_dir))}")
    lines += ["", "[http]", 'host = "127.0.0.1"', f"port = {port}"]
    if audit:
        lines += ["", "[audit]", *(f"{k} = {_value(v)}" for k, v in audit.items())]
    if gateway:
        lines += ["", "[gateway]", *(f"{k} = {_value(v)}" for k, v in gateway.items())]
    for c in communities:
        lines += ["", "[[community]]", *(f"{k} = {_value(v)}" for k, v in c.items())]
    return "\n".join(lines) + "\n"


@contextlib.contextmanager
def live_dics(tmp_path: Path, communities: list[dict], gateway: dict | None = None) -> Iterator[LiveDics]:
    """Start ``xca serve`` over ``communities`` (dicts of [[community]] keys)."""
    port = free_port()
    cfg_path = tmp_path / "dics.toml"
    cfg_path.write_text(dics_toml(port, communities, gateway, data_dir=tmp_path / "dics"))
    log = open(tmp_path / "dics.log", "ab")
    proc = subprocess.Popen([sys.executable, "-m", "xca.cli", "serve", "--config", str(cfg_path)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_http(base_url + "/health", proc, 60)
        yield LiveDics(base_url, proc, cfg_path, tmp_path / "dics")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
