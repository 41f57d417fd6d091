"""A development PKI per test session (``xds certs init`` into a temporary directory), plus a
certificate from another CA and an expired one."""

from __future__ import annotations

import datetime as dt
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live import live_node
from xds.security import pki


@dataclass
class DevPki:
    dir: Path

    def path(self, name: str, ext: str = "crt") -> str:
        return str(self.dir / f"{name}.{ext}")

    def pair(self, name: str) -> tuple[str, str]:
        return self.path(name), self.path(name, "key")

    def load(self, name: str) -> pki.Issued:
        return pki.load(self.dir, name)

    def client_context(self, cert: str | None = "client") -> ssl.SSLContext:
        """A TLS client trusting the development CA, presenting ``cert`` (None: no certificate)."""
        ctx = ssl.create_default_context(cafile=self.path("ca"))
        if cert:
            ctx.load_cert_chain(*self.pair(cert))
        return ctx


@pytest.fixture(scope="session")
def dev_pki(tmp_path_factory) -> DevPki:
    d = tmp_path_factory.mktemp("certs")
    pki.init_dev_pki(d, clients=("client", "pacs"))
    ca = pki.load(d, "ca")
    now = dt.datetime.now(dt.UTC)
    expired = pki.issue(ca, "expired-client", usage="client",
                        not_before=now - dt.timedelta(days=30), not_after=now - dt.timedelta(days=1))
    pki.write(expired, d, "expired")
    other_ca = pki.create_ca("some other CA")
    pki.write(other_ca, d, "other-ca")
    pki.write(pki.issue(other_ca, "stranger", usage="client"), d, "stranger")
    pki.write(pki.issue(other_ca, "rogue-idp", usage="signing"), d, "rogue-idp")
    return DevPki(d)


def tls_overrides(dev_pki: DevPki, **tls) -> dict:
    return {"tls": {"enabled": True, "cert": dev_pki.path("node"), "key": dev_pki.path("node", "key"),
                    "ca": dev_pki.path("ca"), **tls}}


def audit_overrides(dev_pki: DevPki, repository_port: int) -> dict:
    return {"audit": {"repository": f"127.0.0.1:{repository_port}", "ca": dev_pki.path("ca"),
                      "cert": dev_pki.path("node"), "key": dev_pki.path("node", "key"),
                      "retry_min_seconds": 1, "retry_max_seconds": 1, "poll_seconds": 1}}


@pytest.fixture(scope="session")
def audit_repository(dev_pki):
    """An Audit Record Repository: syslog over TLS (RFC 5425), client certificate required."""
    from tests.security import flows

    repo = flows.SyslogRepository(flows.syslog_server_context(dev_pki))
    yield repo
    repo.close()


@pytest.fixture(scope="session")
def secure_node(tmp_path_factory, dev_pki, audit_repository):
    """One node for the session: mutual TLS on every listener (HTTPS, MLLP), audited to
    ``audit_repository``, XUA optional on the registry and required on the responding gateway; the
    harness connects with the "client" certificate."""
    from tests.security import saml

    overrides = {**tls_overrides(dev_pki), **audit_overrides(dev_pki, audit_repository.port),
                 "xua": {"identity_providers": [{"issuer": saml.IDP, "certificate": dev_pki.path("idp")}],
                         "endpoints": {"registry": "optional", "respond": "required"}}}
    with live_node(tmp_path_factory.mktemp("secure"), overrides=overrides, client_cert=dev_pki.pair("client")) as node:
        yield node
