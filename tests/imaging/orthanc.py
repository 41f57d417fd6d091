"""Orthanc (Debian package orthanc) as a source PACS on loopback, with its own configuration and
storage under a temporary directory, driven through its REST API."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.live import free_port


@dataclass
class Orthanc:
    url: str
    dicom_port: int
    aet: str
    proc: subprocess.Popen

    def upload(self, data: bytes) -> str:
        """POST /instances: store a PS3.10 file; returns Orthanc's instance id."""
        r = httpx.post(f"{self.url}/instances", content=data, timeout=30)
        r.raise_for_status()
        return r.json()["ID"]

    def instance_file(self, instance_id: str) -> bytes:
        r = httpx.get(f"{self.url}/instances/{instance_id}/file", timeout=30)
        r.raise_for_status()
        return r.content

    def tags(self, instance_id: str) -> dict:
        r = httpx.get(f"{self.url}/instances/{instance_id}/simplified-tags", timeout=30)
        r.raise_for_status()
        return r.json()

    def store(self, modality: str, resource_id: str) -> dict:
        """C-STORE a patient, study, series or instance to a configured modality (REST /store)."""
        r = httpx.post(f"{self.url}/modalities/{modality}/store",
                       json={"Resources": [resource_id], "Synchronous": True}, timeout=120)
        r.raise_for_status()
        return r.json()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_orthanc(directory: Path, modalities: dict[str, tuple[str, str, int]]) -> Orthanc:
    """Start Orthanc with ``modalities`` (name -> (AE title, host, port)) as C-STORE destinations."""
    http_port, dicom_port = free_port(), free_port()
    config = {
        "Name": "source-pacs",
        "StorageDirectory": str(directory / "storage"),
        "IndexDirectory": str(directory / "index"),
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": "ORTHANC",
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpServerEnabled": True,
        "DicomServerEnabled": True,
        "DicomModalities": {name: list(v) for name, v in modalities.items()},
        "Plugins": [],
        "StorageCompression": False,
        "OverwriteInstances": True,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "orthanc.json"
    path.write_text(json.dumps(config))
    log = open(directory / "orthanc.log", "ab")
    proc = subprocess.Popen(["Orthanc", str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=directory)
    url = f"http://127.0.0.1:{http_port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"Orthanc exited with {proc.returncode}; see {directory / 'orthanc.log'}")
        try:
            if httpx.get(f"{url}/system", timeout=1).status_code == 200:
                return Orthanc(url, dicom_port, "ORTHANC", proc)
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("Orthanc did not start within 30 s")
