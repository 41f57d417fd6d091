"""A 1 GiB document through a real node process: ITI-41 up, ITI-43 down, streamed end to end.
The node's resident memory may not grow by more than 150 MiB over its idle size."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from tests.live import live_node
from tests.repository.messages import (
    AUTHORITY,
    PATIENT,
    REPOSITORY_ID,
    document_entry,
    provide_and_register,
    read_response,
    retrieve_document_set,
    submission,
)
from xds.config import NodeConfig
from xds.registry import Registry

pytestmark = pytest.mark.slow

GIB = 1024**3
MIB = 1024**2


class PeakRss:
    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def test_one_gib_document_up_and_down_in_bounded_memory(tmp_path: Path) -> None:
    block = hashlib.sha256(b"seed").digest() * (MIB // 32)
    expected = hashlib.sha1()
    for _ in range(GIB // MIB):
        expected.update(block)

    def chunks() -> Iterator[bytes]:
        for _ in range(GIB // MIB):
            yield block

    overrides = {
        "registry": {"patient_assigning_authority": AUTHORITY},
        "repository": {"repository_unique_id": REPOSITORY_ID},
        "mllp": {"enabled": False},
        "imaging": {"enabled": False},
    }
    with live_node(tmp_path, overrides=overrides) as node:
        cfg = NodeConfig(data_dir=str(node.data_dir))
        cfg.registry.patient_assigning_authority = AUTHORITY
        registry = Registry.from_config(cfg, run_migrations=False)
        registry.store.record_patient(PATIENT, {}, "TEST^FEED", "1")
        registry.close()
        url = node.url("/xds/repository")

        def provide(doc: bytes | Iterator[bytes]) -> tuple[str, str]:
            de = document_entry()
            req = provide_and_register(submission(de), {"Document01": doc})
            r = httpx.post(url, content=req.body, headers={"content-type": req.content_type}, timeout=300)
            out = read_response(r.headers["content-type"], r.content)
            return out.short_status, de.unique_id

        # warm up every code path once, then take the idle size
        status, small = provide(b"warm-up")
        assert status == "Success"
        req = retrieve_document_set((REPOSITORY_ID, small))
        assert httpx.post(url, content=req.body, headers={"content-type": req.content_type}).status_code == 200
        time.sleep(0.5)
        idle = psutil.Process(node.proc.pid).memory_info().rss

        with PeakRss(node.proc.pid) as rss:
            started = time.monotonic()
            status, uid = provide(chunks())
            uploaded = time.monotonic() - started
            assert status == "Success"

            req = retrieve_document_set((REPOSITORY_ID, uid))
            got = hashlib.sha1()
            size = 0
            started = time.monotonic()
            with httpx.stream("POST", url, content=req.body, headers={"content-type": req.content_type},
                              timeout=300) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("multipart/related")
                boundary = r.headers["content-type"].split('boundary="', 1)[1].split('"', 1)[0].encode()
                carry = b""
                in_document = False
                for chunk in r.iter_bytes(MIB):
                    # the document is the second part: skip the root part's headers and envelope
                    data = carry + chunk
                    if not in_document:
                        marker = data.find(b"\r\n--" + boundary + b"\r\n")
                        if marker < 0:
                            carry = data[-200:]
                            continue
                        head_end = data.find(b"\r\n\r\n", marker + 4)
                        data = data[head_end + 4 :]
                        in_document = True
                        carry = b""
                    keep = len(boundary) + 8  # never hash what may be the closing delimiter
                    got.update(data[:-keep])
                    size += len(data) - keep
                    carry = data[-keep:]
                tail = b"\r\n--" + boundary + b"--\r\n"
                assert carry.endswith(tail)
                got.update(carry[: -len(tail)])
                size += len(carry) - len(tail)
            downloaded = time.monotonic() - started

        assert size == GIB
        assert got.hexdigest() == expected.hexdigest()
        grown = (rss.peak - idle) / MIB
        print(f"\n1 GiB: ITI-41 {uploaded:.1f} s, ITI-43 {downloaded:.1f} s, "
              f"idle RSS {idle / MIB:.0f} MiB, peak {rss.peak / MIB:.0f} MiB (+{grown:.0f} MiB)")
        assert grown < 150, f"the node grew by {grown:.0f} MiB"
