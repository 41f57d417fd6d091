"""Servers for third-party clients to call: a bare ASGI app (uvicorn in a thread, on a free local
port), and a real node process (`xds serve`, tests/live.py) fed with patients over ITI-8."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import uvicorn
from starlette.types import ASGIApp

from tests.live import LiveNode, live_node
from xds.hl7.mllp import frame


@contextmanager
def serving(app: ASGIApp) -> Iterator[str]:
    """Serve ``app`` on 127.0.0.1 while the block runs; yield its base URL (``http://127.0.0.1:port``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


# --- a real node process (tests/live.py) and its ITI-8 patient identity feed ------------------------

AUTHORITY = "2.16.840.1.113883.4.59"  # the affinity domain of conf/hdirs.toml (Ontario health number)
REPOSITORY_ID = "2.25.194578161177471140042198828596590154623"  # conf/hdirs.toml [repository]


def adt_a01(number: str, control_id: str) -> bytes:
    """An ITI-8 Patient Identity Feed ADT^A01 (HL7 v2.5) admitting ``number`` of the affinity domain."""
    return (
        f"MSH|^~\\&|RIS|HOSP|XDSREG|HDIRS|20240101120000||ADT^A01^ADT_A01|{control_id}|P|2.5\r"
        "EVN|A01|20240101120000\r"
        f"PID|1||{number}^^^&{AUTHORITY}&ISO||INTEROP^TEST||19700101|F\r"
        "PV1|1|O\r"
    ).encode()


def feed_patient(mllp_port: int, number: str) -> str:
    """Send an ADT^A01 over MLLP (HL7 v2.5 Appendix C.4) and return the patient id as XDS writes it
    (CX ``number^^^&authority&ISO``); the ACK must be AA."""
    control_id = uuid.uuid4().hex[:20]
    with socket.create_connection(("127.0.0.1", mllp_port), timeout=10) as sock:
        sock.sendall(frame(adt_a01(number, control_id)))
        reply = b""
        while not reply.endswith(b"\x1c\r"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            reply += chunk
    msa = next((s for s in reply.strip(b"\x0b\x1c\r").split(b"\r") if s.startswith(b"MSA|")), b"")
    assert msa.split(b"|")[1:3] == [b"AA", control_id.encode()], reply
    return f"{number}^^^&{AUTHORITY}&ISO"


@pytest.fixture(scope="session")
def node(tmp_path_factory) -> Iterator[LiveNode]:
    """One `xds serve` process (conf/hdirs.toml, registry + repository + MLLP) for the session."""
    with live_node(
        tmp_path_factory.mktemp("interop-node"), overrides={"imaging": {"enabled": False}}
    ) as live:
        yield live


@pytest.fixture
def patient(node: LiveNode) -> str:
    """A new patient, fed to the node over ITI-8 (the registry accepts only known patients)."""
    return feed_patient(node.mllp_port, str(uuid.uuid4().int % 10**10).zfill(10))
