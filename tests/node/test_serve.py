"""`xds serve`: a real node process on loopback, its configuration checks and its endpoints."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from lxml import etree

from tests.live import ROOT, live_node, write_config
from tests.soap.conftest import NS, SOAP_CT, envelope, fault_of
from tests.soap.test_hostile_input import BILLION_LAUGHS, XXE, deep


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    with live_node(tmp_path_factory.mktemp("node"), overrides={"limits": {"max_request_bytes": 5_000_000}}) as n:
        yield n


def test_health_lists_endpoints(node):
    h = httpx.get(node.url("/health")).json()
    assert set(h["endpoints"]) == {"/xds/registry", "/xds/repository", "/xds/imaging", "/xca/respond"}
    assert h["homeCommunityId"].startswith("urn:oid:")


@pytest.mark.parametrize("path", ["/xds/registry", "/xds/repository", "/xds/imaging", "/xca/respond"])
def test_unserved_action_answers_action_not_supported(node, path):
    r = httpx.post(node.url(path), content=envelope(action="urn:example:NotAnIheAction"), headers={"content-type": SOAP_CT})
    assert fault_of(r.content)[:2] == ("env:Sender", "wsa:ActionNotSupported")


@pytest.mark.parametrize("body", [BILLION_LAUGHS, XXE, deep(10_000), b"--x\r\nbroken"])
def test_hostile_input_to_a_live_node_gets_a_fault_and_it_keeps_serving(node, body):
    r = httpx.post(node.url("/xds/registry"), content=body, headers={"content-type": SOAP_CT})
    assert r.status_code == 400 and fault_of(r.content)[0] == "env:Sender"
    assert b"Traceback" not in r.content
    assert httpx.get(node.url("/health")).status_code == 200


def test_oversized_request_to_a_live_node_is_refused(node):
    def chunks():
        for _ in range(100):
            yield b"x" * 100_000

    r = httpx.post(node.url("/xds/registry"), content=chunks(),
                   headers={"content-type": 'multipart/related; boundary=x; type="application/xop+xml"'})
    assert r.status_code == 400 and fault_of(r.content)[0] == "env:Sender"
    assert httpx.get(node.url("/health")).status_code == 200


def test_truncated_multipart_to_a_live_node(node):
    body = b'--b1\r\nContent-Type: application/xop+xml; type="application/soap+xml"\r\nContent-ID: <r>\r\n\r\n' + envelope()
    r = httpx.post(node.url("/xds/repository"), content=body,
                   headers={"content-type": 'multipart/related; boundary=b1; type="application/xop+xml"; start="<r>"'})
    assert r.status_code == 400 and fault_of(r.content)[0] == "env:Sender"


def test_wsdl_is_served_with_the_live_address(node):
    r = httpx.get(node.url("/xds/registry?wsdl"))
    assert r.status_code == 200
    wsdl = etree.fromstring(r.content)
    locations = [a.get("location") for a in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}address")]
    assert locations and all(loc == node.url("/xds/registry") for loc in locations)


def test_response_relates_to_request_message_id(node):
    r = httpx.post(node.url("/xds/imaging"), content=envelope(action="urn:x", message_id="urn:uuid:1234"),
                   headers={"content-type": SOAP_CT})
    assert etree.fromstring(r.content).findtext("env:Header/wsa:RelatesTo", namespaces=NS) == "urn:uuid:1234"


def _check(path):
    return subprocess.run([sys.executable, "-m", "xds.cli", "check-config", str(path)],
                          cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("name", ["hdirs", "swodin", "neodin"])
def test_shipped_configs_are_valid(name):
    r = _check(ROOT / "conf" / f"{name}.toml")
    assert r.returncode == 0, r.stderr


def test_unknown_config_key_is_named(tmp_path):
    cfg = write_config("conf/hdirs.toml", tmp_path / "bad.toml", {"registry": {"max_resluts": 10}})
    r = _check(cfg)
    assert r.returncode == 2 and "registry.max_resluts" in r.stderr


def test_wrong_type_config_key_is_named(tmp_path):
    cfg = write_config("conf/hdirs.toml", tmp_path / "bad.toml", {"http": {"port": "eighty"}})
    r = _check(cfg)
    assert r.returncode == 2 and "http.port" in r.stderr


def test_serve_refuses_bad_config_with_exit_2(tmp_path):
    cfg = write_config("conf/hdirs.toml", tmp_path / "bad.toml", {"home_community_id": "1.2.3"})
    r = subprocess.run([sys.executable, "-m", "xds.cli", "serve", "--config", str(cfg)],
                       cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert r.returncode == 2 and "home_community_id" in r.stderr


def test_two_http_workers_share_one_mllp_listener(tmp_path):
    import socket
    import time

    from tests.interop.conftest import feed_patient

    with live_node(tmp_path, overrides={"http": {"workers": 2}}) as n:
        deadline = time.monotonic() + 30
        while True:  # the listener process starts beside the HTTP workers
            try:
                socket.create_connection(("127.0.0.1", n.mllp_port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the MLLP listener did not start"
                time.sleep(0.2)
        patient = feed_patient(n.mllp_port, "9876501234")
        assert patient.startswith("9876501234^^^&")
        for _ in range(6):  # answered by either worker
            assert httpx.get(n.url("/health")).status_code == 200
        log = (tmp_path / "node.log").read_text()
        assert "address already in use" not in log.lower()
