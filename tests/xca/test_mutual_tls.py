"""Mutual TLS between the DI Common Service and a community (``[[community]] ca / cert / key``): a
DIR whose HTTPS listener requires a client certificate answers the gateway that presents one, and
refuses the handshake of one that does not, which the gateway reports as XDSUnavailableCommunity."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from tests.live import live_node
from tests.security.conftest import DevPki, dev_pki, tls_overrides  # noqa: F401 - fixture
from tests.xca import wire
from tests.xca.live import live_dics

ANONYMOUS_HOME = "urn:oid:1.2.3.999.7"


def test_a_community_that_requires_a_client_certificate_answers_the_gateway_presenting_one(
    tmp_path_factory: pytest.TempPathFactory, dev_pki: DevPki  # noqa: F811
) -> None:
    tmp = tmp_path_factory.mktemp("mtls")
    (tmp / "dir").mkdir()
    with live_node(tmp / "dir", overrides=tls_overrides(dev_pki), client_cert=dev_pki.pair("client")) as node:
        home = tomllib.loads(Path(tmp / "dir" / "node.toml").read_text())["home_community_id"]
        url = node.url("/xca/respond")
        assert url.startswith("https://")
        communities = [
            {"name": "MUTUAL", "home_community_id": home, "url": url, "ca": dev_pki.path("ca"),
             "cert": dev_pki.path("client"), "key": dev_pki.path("client", "key")},
            # the same DIR under another id, without a client certificate
            {"name": "ANONYMOUS", "home_community_id": ANONYMOUS_HOME, "url": url, "ca": dev_pki.path("ca")},
        ]
        with live_dics(tmp, communities, {"timeout_seconds": 5.0}) as dics:
            answer = wire.read_query(wire.post(dics.url, wire.find_documents("9876543210^^^&2.16.840.1.113883.4.59&ISO")))
    assert answer.status == "PartialSuccess"
    assert [(code, location) for code, location, _ in answer.errors] == [("XDSUnavailableCommunity", ANONYMOUS_HOME)]
