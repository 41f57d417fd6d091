"""A development public key infrastructure: one CA, node, client and identity-provider certificates.

``xds certs init`` writes, under ``certs/`` by default:

- ``ca.crt`` / ``ca.key``: the development certificate authority (the trust anchor of every
  listener's client-certificate check and of the audit repository connection);
- ``node.crt`` / ``node.key``: the node's certificate, for serving (HTTPS, MLLP and DICOM over TLS)
  and as a TLS client (audit repository, other nodes): extended key usage serverAuth and clientAuth,
  subjectAltName for every ``--host`` (default ``localhost`` and ``127.0.0.1``);
- ``<client>.crt`` / ``<client>.key``: client certificates (clientAuth) for document sources,
  consumers and PACS;
- ``idp.crt`` / ``idp.key``: a SAML identity provider's signing certificate for XUA (ITI-40) tests.

Keys are ECDSA P-256 by default (``rsa``: RSA 2048), written with mode 0600. A production DIR uses
certificates from the province's CA instead: see ``certs/README.md``. Nothing here is fit for
patient data.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

DEFAULT_HOSTS = ("localhost", "127.0.0.1")
DEFAULT_DAYS = 825  # the longest validity browsers and most TLS stacks still accept for a leaf
ORGANIZATION = "dir-xds development PKI"

USAGES = ("server", "client", "node", "signing")


@dataclass
class Issued:
    certificate: x509.Certificate
    key: PrivateKey

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def certificate_pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def key_pem(self) -> bytes:
        return self.key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )


def generate_key(kind: str = "ec") -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if kind == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown key type {kind!r}: ec or rsa")


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "CA"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "Ontario"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, ORGANIZATION),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def create_ca(common_name: str = "dir-xds development CA", *, days: int = 3650, key_kind: str = "ec") -> Issued:
    key = generate_key(key_kind)
    name = _name(common_name)
    now = _now()
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _san(hosts: Iterable[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def issue(
    ca: Issued,
    common_name: str,
    *,
    usage: str = "node",
    hosts: Sequence[str] = (),
    days: int = DEFAULT_DAYS,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    key_kind: str = "ec",
) -> Issued:
    """A certificate signed by ``ca``. ``usage``: server, client, node (both) or signing (SAML).
    ``not_before``/``not_after`` override the validity (tests make expired certificates)."""
    if usage not in USAGES:
        raise ValueError(f"unknown usage {usage!r}: one of {', '.join(USAGES)}")
    key = generate_key(key_kind)
    now = _now()
    start = not_before or now - dt.timedelta(minutes=5)
    end = not_after or now + dt.timedelta(days=days)
    public = key.public_key()
    ski = ca.certificate.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(ca.certificate.subject)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    builder = builder.add_extension(
        x509.KeyUsage(
            digital_signature=True, content_commitment=usage == "signing",
            key_encipherment=is_rsa and usage != "signing", data_encipherment=False,
            key_agreement=not is_rsa and usage != "signing", key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False,
        ),
        critical=True,
    )
    purposes = {
        "server": [ExtendedKeyUsageOID.SERVER_AUTH],
        "client": [ExtendedKeyUsageOID.CLIENT_AUTH],
        "node": [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
    }.get(usage)
    if purposes:
        builder = builder.add_extension(x509.ExtendedKeyUsage(purposes), critical=False)
    if hosts:
        builder = builder.add_extension(x509.SubjectAlternativeName(_san(hosts)), critical=False)
    return Issued(builder.sign(ca.key, hashes.SHA256()), key)


def write(issued: Issued, directory: str | os.PathLike[str], name: str) -> tuple[Path, Path]:
    """``<name>.crt`` and ``<name>.key`` (mode 0600) in ``directory``."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = d / f"{name}.crt", d / f"{name}.key"
    cert_path.write_bytes(issued.certificate_pem())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(issued.key_pem())
    os.chmod(key_path, 0o600)
    return cert_path, key_path


def load(directory: str | os.PathLike[str], name: str) -> Issued:
    d = Path(directory)
    cert = x509.load_pem_x509_certificate((d / f"{name}.crt").read_bytes())
    key = serialization.load_pem_private_key((d / f"{name}.key").read_bytes(), password=None)
    if not isinstance(key, (ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey)):
        raise ValueError(f"{name}.key: unsupported key type")
    return Issued(cert, key)


def init_dev_pki(
    directory: str | os.PathLike[str] = "certs",
    *,
    hosts: Sequence[str] = DEFAULT_HOSTS,
    node: str = "node",
    clients: Sequence[str] = ("client",),
    idp: str = "idp",
    days: int = DEFAULT_DAYS,
    key_kind: str = "ec",
    force: bool = False,
) -> list[Path]:
    """Create the development CA (or reuse the one in ``directory``) and issue the node, client and
    identity-provider certificates that do not exist yet (all of them with ``force``).
    Returns the files written."""
    d = Path(directory)
    written: list[Path] = []
    if not force and (d / "ca.crt").exists() and (d / "ca.key").exists():
        ca = load(d, "ca")
    else:
        ca = create_ca(key_kind=key_kind)
        written += write(ca, d, "ca")
        force = True  # a new CA: everything it signed before is void
    wanted: list[tuple[str, str, Sequence[str]]] = [(node, "node", hosts)]
    wanted += [(c, "client", ()) for c in clients]
    if idp:
        wanted.append((idp, "signing", ()))
    for name, usage, names in wanted:
        if not force and (d / f"{name}.crt").exists() and (d / f"{name}.key").exists():
            continue
        written += write(issue(ca, name, usage=usage, hosts=names, days=days, key_kind=key_kind), d, name)
    return written
