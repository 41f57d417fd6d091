"""`xca province`: the three DIRs and the DI Common Service as one supervised command, loaded with
the demo province, answering a province-wide query, and stopped cleanly by Ctrl-C."""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil

from tests.live import ROOT, free_port, write_config
from tests.xca import wire
from tests.xca.live import dics_toml
from xca import demo


def test_xca_province_starts_loads_answers_and_stops_on_ctrl_c(tmp_path: Path):
    conf = tmp_path / "conf"
    conf.mkdir()
    communities = []
    for name in ("hdirs", "swodin", "neodin"):
        port = free_port()
        write_config(f"conf/{name}.toml", conf / f"{name}.toml",
                     {"http": {"port": port}, "mllp": {"port": free_port()}, "imaging": {"port": free_port()}})
        text = (ROOT / "conf" / f"{name}.toml").read_text()
        home = next(line.split('"')[1] for line in text.splitlines() if line.startswith("home_community_id"))
        communities.append({"name": name.upper(), "home_community_id": home,
                            "url": f"http://127.0.0.1:{port}/xca/respond"})
    dics_port = free_port()
    (conf / "dics.toml").write_text(dics_toml(dics_port, communities))

    proc = subprocess.Popen(
        [sys.executable, "-m", "xca.cli", "province", "--conf", str(conf), "--data-dir", str(tmp_path / "data"),
         "--patients", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    output: list[str] = []
    services: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts four services slowly
        while not any("Logs:" in line for line in output):  # the last line of the banner
            assert proc.poll() is None, "".join(output)
            assert time.monotonic() < deadline, "".join(output)
            try:
                output.append(lines.get(timeout=1))
            except queue.Empty:
                pass
        services = psutil.Process(proc.pid).children()
        assert len(services) == 4

        patient = demo.province(patients=2).patients[0]
        assert f"{patient.hn}  " in "".join(output)
        answer = wire.read_query(wire.post(f"http://127.0.0.1:{dics_port}/xca/initiate",
                                           wire.find_documents(patient.patient_id)))
        assert answer.status == "Success", answer.errors
        assert {e.home for e in answer.entries} == {c["home_community_id"] for c in communities}

        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=45) == 0
        gone, alive = psutil.wait_procs(services, timeout=5)
        assert alive == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for service in services:
            if service.is_running():
                service.kill()
