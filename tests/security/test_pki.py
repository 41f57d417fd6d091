"""`xds certs init`: a development CA and the certificates it signs."""

from __future__ import annotations

import ssl
import subprocess
import sys

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from tests.live import ROOT
from xds.security import pki


def test_certs_init_writes_ca_node_client_and_idp_with_private_keys_0600(tmp_path):
    r = subprocess.run([sys.executable, "-m", "xds.cli", "certs", "init", "--dir", str(tmp_path / "c"),
                        "--host", "dir1.example.ca", "--client", "pacs"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    names = {p.name for p in (tmp_path / "c").iterdir()}
    assert names == {f"{n}.{e}" for n in ("ca", "node", "pacs", "idp") for e in ("crt", "key")}
    for key in (tmp_path / "c").glob("*.key"):
        assert key.stat().st_mode & 0o777 == 0o600
    node = x509.load_pem_x509_certificate((tmp_path / "c/node.crt").read_bytes())
    san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["dir1.example.ca"]
    eku = node.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert set(eku) == {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH}


def test_certs_init_reuses_the_ca_and_adds_missing_clients(tmp_path):
    first = pki.init_dev_pki(tmp_path)
    ca = (tmp_path / "ca.crt").read_bytes()
    second = pki.init_dev_pki(tmp_path, clients=("client", "viewer"))
    assert [p.name for p in second] == ["viewer.crt", "viewer.key"] and len(first) == 8
    assert (tmp_path / "ca.crt").read_bytes() == ca


def test_default_sans_cover_loopback_and_chain_verifies_in_python_ssl(dev_pki):
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(*dev_pki.pair("node"))
    node = dev_pki.load("node").certificate
    san = node.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert [str(a) for a in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    store = x509.verification.Store([dev_pki.load("ca").certificate])
    x509.verification.PolicyBuilder().store(store).build_server_verifier(
        x509.DNSName("localhost")).verify(node, [])
