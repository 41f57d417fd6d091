"""Node configuration: one TOML file per deployment under ``conf/`` (a DIR, the DI Common Service).

Every key is checked at start-up; an unknown or ill-typed key stops the node with a message that
names it (``ConfigError``). Relative paths are resolved against ``data_dir``.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    pass


@dataclass
class HttpConfig:
    host: str = "127.0.0.1"
    port: int = 8181
    workers: int = 1
    # public base URL used in served WSDLs; default http://host:port
    base_url: str = ""


@dataclass
class LimitsConfig:
    max_request_bytes: int = 8 * 1024**3  # whole HTTP body, attachments included
    max_envelope_bytes: int = 64 * 1024**2  # the SOAP envelope (root part) alone
    max_xml_depth: int = 256
    spool_threshold_bytes: int = 1024**2  # MIME parts above this go to a temporary file


@dataclass
class DatabaseConfig:
    # SQLAlchemy URL. Default: SQLite (WAL) under data_dir. PostgreSQL: postgresql+psycopg://...
    url: str = ""
    echo: bool = False
    pool_size: int = 10


@dataclass
class RegistryConfig:
    enabled: bool = True
    patient_assigning_authority: str = ""  # OID of the affinity domain's patient id (the HN)
    codes_file: str = ""  # NIST codes.xml format; "" = no code checking
    check_codes: bool = False
    # a code absent from the list: "reject" (XDSRegistryMetadataError) or "warn" (the same code
    # as a Warning; the submission is registered)
    unknown_codes: str = "reject"
    accept_unknown_patients: bool = False  # development only: register without an ITI-8 feed
    extra_metadata: str = "store"  # "store" or "reject" (XDSExtraMetadataNotSaved warning)
    max_results: int = 5000  # XDSTooManyResults above this
    merged_patient_policy: str = "surviving"  # ITI-18 on a merged-away id: "surviving" | "unknown"


@dataclass
class RepositoryConfig:
    enabled: bool = True
    repository_unique_id: str = ""
    registry_url: str = ""  # "" = the registry in this node, else ITI-42 over SOAP
    store: str = "filesystem"  # "filesystem" | "s3"
    path: str = "documents"
    s3_endpoint: str = ""
    s3_bucket: str = ""
    s3_region: str = "us-east-1"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    orphan_policy: str = "remove"  # "remove" | "log"


@dataclass
class CodeConfig:
    """A coded metadata attribute (ITI TF-3 4.2.3.1.2): code, codingScheme, display name."""

    code: str = ""
    scheme: str = ""
    display_name: str = ""


def _code(code: str, scheme: str, display_name: str) -> Any:
    return field(default_factory=lambda: CodeConfig(code, scheme, display_name))


@dataclass
class ImagingConfig:
    enabled: bool = True
    repository_unique_id: str = ""
    ae_title: str = "HDIRS"
    port: int = 11181
    host: str = "127.0.0.1"
    study_quiet_seconds: int = 60
    reject_unknown_calling_ae: bool = False
    calling_ae_titles: list[str] = field(default_factory=list)
    # RAD-68 goes to this Document Repository's ITI-41 endpoint; "" = this node's repository
    publish_url: str = ""
    # Retrieve AE Title (0008,0054) in manifests; "" = none (this node retrieves by RAD-69 only)
    retrieve_ae_title: str = ""
    # Issuer of Patient ID (0010,0021) -> its OID, for sourcePatientId when a PACS sends a local
    # name; identity.feeds issuers are added to it
    issuer_oids: dict[str, str] = field(default_factory=dict)
    # The manifests' DocumentEntry / SubmissionSet codes (RAD TF-3 4.68.4.1.2.3): IHE classCode,
    # LOINC, HL7 v3 Confidentiality, SNOMED CT; replace with the affinity domain's code list.
    class_code: CodeConfig = _code("IMAGES", "1.3.6.1.4.1.19376.1.2.6.1", "Images")
    type_code: CodeConfig = _code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study")
    confidentiality_code: CodeConfig = _code("N", "2.16.840.1.113883.5.25", "Normal")
    healthcare_facility_type_code: CodeConfig = _code("22232009", "2.16.840.1.113883.6.96", "Hospital")
    practice_setting_code: CodeConfig = _code("309964003", "2.16.840.1.113883.6.96", "Radiology department")
    content_type_code: CodeConfig = _code("18748-4", "2.16.840.1.113883.6.1", "Diagnostic imaging study")


@dataclass
class MllpConfig:
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = 2581
    receiving_application: str = "XDSREG"
    receiving_facility: str = "DIR"


@dataclass
class IdentityFeedConfig:
    """One ADT feed (a sending system) and the issuer of the local patient ids it sends."""

    name: str = ""  # label in logs and identity history; default "MSH-3^MSH-4"
    sending_application: str = ""  # MSH-3 namespace id; "" = any application of the facility
    sending_facility: str = ""  # MSH-4 namespace id
    issuer: str = ""  # Issuer of Patient ID (DICOM 0010,0021; PID-3 CX-4.1 namespace id)
    issuer_oid: str = ""  # the issuer's universal id (CX-4.2, ISO): how XDS metadata names it


@dataclass
class IdentityConfig:
    """Local ``Patient ID + Issuer`` couplets mapped to the affinity domain's id (DESIGN.md 7)."""

    # an ITI-41/42 submission or DICOM study with a couplet that has no HN yet: "hold" until an ADT
    # links one (then register), or "reject" (XDSUnknownPatientId)
    unknown_local_id: str = "hold"
    # ADT from a sender not in ``feeds``: "accept" (issuers as PID-3 names them) or "reject" (AR)
    unlisted_feeds: str = "accept"
    # CX-4.1 namespace ids that also denote the HN's assigning authority (e.g. "ON")
    hn_namespaces: list[str] = field(default_factory=list)
    feeds: list[IdentityFeedConfig] = field(default_factory=list, metadata={"item": IdentityFeedConfig})


@dataclass
class GatewayConfig:
    enabled: bool = True


@dataclass
class TlsEndpointsConfig:
    """Client-certificate policy per listener: "required", "optional", or "" (tls.require_client_cert)."""

    registry: str = ""
    repository: str = ""
    imaging: str = ""
    respond: str = ""
    mllp: str = ""
    dicom: str = ""


@dataclass
class TlsConfig:
    """TLS on the HTTP, MLLP and DICOM listeners with client-certificate authentication (ATNA)."""

    enabled: bool = False
    cert: str = ""  # the node's certificate (PEM, leaf first, then intermediates)
    key: str = ""  # its private key (PEM, unencrypted, mode 0600)
    ca: str = ""  # CA bundle (PEM): the only issuers whose client certificates are accepted
    require_client_cert: bool = True  # default for every listener
    handshake_timeout_seconds: int = 10
    endpoints: TlsEndpointsConfig = field(default_factory=TlsEndpointsConfig)


@dataclass
class AuditConfig:
    """ATNA audit trail (ITI-20): a local append-only store, and syslog delivery to a repository."""

    enabled: bool = True
    database_url: str = ""  # "" = SQLite <data_dir>/audit.sqlite; its own database, never the registry's
    repository: str = ""  # host:port of the Audit Record Repository; "" = local store only
    transport: str = "tls"  # "tls" (RFC 5425) or "tcp" (plain, development only)
    ca: str = ""  # trust anchor for the repository's certificate; "" = tls.ca
    cert: str = ""  # client certificate presented to it; "" = tls.cert
    key: str = ""  # its key; "" = tls.key
    source_id: str = ""  # AuditSourceID; "" = the node's name
    enterprise_site_id: str = ""  # AuditEnterpriseSiteID; "" = home_community_id
    batch_size: int = 100
    retry_min_seconds: int = 1  # first delay after a failed delivery, doubled up to retry_max_seconds
    retry_max_seconds: int = 300
    poll_seconds: int = 5  # how often the outbox is read when nothing new was recorded here


@dataclass
class XuaIdentityProviderConfig:
    """A trusted SAML identity provider: the Issuer of its assertions and its signing certificate."""

    issuer: str = ""
    certificate: str = ""  # PEM


@dataclass
class XuaEndpointsConfig:
    """XUA policy per SOAP endpoint: "required", "optional", "off", or "" (xua.policy)."""

    registry: str = ""
    repository: str = ""
    imaging: str = ""
    respond: str = ""


@dataclass
class XuaConfig:
    """XUA X-Service Provider (ITI-40): SAML 2.0 assertions in the WS-Security header."""

    policy: str = "off"  # default for every endpoint: "required" | "optional" | "off"
    # accepted AudienceRestriction values; [] = the node's base URL, the endpoint's URL, home_community_id
    audiences: list[str] = field(default_factory=list)
    clock_skew_seconds: int = 60
    # an assertion presented again in another message within its validity (xds.security.replay):
    # "refuse" every such reuse, or "one-time-use": only of assertions with a OneTimeUse condition
    replay: str = "refuse"
    replay_database_url: str = ""  # "" = SQLite <data_dir>/xua.sqlite; PostgreSQL for nodes on several hosts
    replay_purge_seconds: int = 60  # how often a process deletes the expired assertions
    identity_providers: list[XuaIdentityProviderConfig] = field(
        default_factory=list, metadata={"item": XuaIdentityProviderConfig})
    endpoints: XuaEndpointsConfig = field(default_factory=XuaEndpointsConfig)


@dataclass
class NodeConfig:
    name: str = "dir"
    home_community_id: str = ""
    data_dir: str = "var"
    log_level: str = "INFO"
    http: HttpConfig = field(default_factory=HttpConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    registry: RegistryConfig = field(default_factory=RegistryConfig)
    repository: RepositoryConfig = field(default_factory=RepositoryConfig)
    imaging: ImagingConfig = field(default_factory=ImagingConfig)
    mllp: MllpConfig = field(default_factory=MllpConfig)
    identity: IdentityConfig = field(default_factory=IdentityConfig)
    gateway: GatewayConfig = field(default_factory=GatewayConfig)
    tls: TlsConfig = field(default_factory=TlsConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    xua: XuaConfig = field(default_factory=XuaConfig)

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls.enabled else "http"
        return self.http.base_url or f"{scheme}://{self.http.host}:{self.http.port}"

    def data_path(self, *parts: str) -> Path:
        p = Path(self.data_dir)
        for part in parts:
            p = p / part
        return p

    @property
    def database_url(self) -> str:
        if self.database.url:
            return self.database.url
        return f"sqlite:///{self.data_path('registry.sqlite').resolve()}"


def _build(cls: type, data: dict[str, Any], where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a table")
    known = {f.name: f for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else key
        if key not in known:
            raise ConfigError(f"unknown configuration key '{name}'")
        default = known[key].default_factory() if callable(known[key].default_factory) else known[key].default  # type: ignore[misc]
        if hasattr(default, "__dataclass_fields__"):
            kwargs[key] = _build(type(default), value, name)
            continue
        item = known[key].metadata.get("item")
        if item is not None:
            if not (isinstance(value, list) and all(isinstance(v, dict) for v in value)):
                raise ConfigError(f"configuration key '{name}' must be an array of tables ([[{name}]])")
            kwargs[key] = [_build(item, v, f"{name}[{i}]") for i, v in enumerate(value)]
            continue
        expected = type(default)
        if expected is bool and not isinstance(value, bool):
            raise ConfigError(f"configuration key '{name}' must be true or false, not {value!r}")
        if expected is int and (not isinstance(value, int) or isinstance(value, bool)):
            raise ConfigError(f"configuration key '{name}' must be an integer, not {value!r}")
        if expected is str and not isinstance(value, str):
            raise ConfigError(f"configuration key '{name}' must be a string, not {value!r}")
        if expected is list and not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            raise ConfigError(f"configuration key '{name}' must be a list of strings")
        if expected is dict and not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
            raise ConfigError(f"configuration key '{name}' must be a table of strings")
        kwargs[key] = value
    return cls(**kwargs)


_CHOICES = {
    "registry.extra_metadata": ("store", "reject"),
    "registry.unknown_codes": ("reject", "warn"),
    "registry.merged_patient_policy": ("surviving", "unknown"),
    "repository.store": ("filesystem", "s3"),
    "repository.orphan_policy": ("remove", "log"),
    "identity.unknown_local_id": ("hold", "reject"),
    "identity.unlisted_feeds": ("accept", "reject"),
    "log_level": ("DEBUG", "INFO", "WARNING", "ERROR"),
    "audit.transport": ("tls", "tcp"),
    "xua.policy": ("required", "optional", "off"),
    "xua.replay": ("refuse", "one-time-use"),
}


def _expand(value: str) -> str:
    return os.path.expandvars(value) if "$" in value else value


def load(path: str | os.PathLike[str], data_dir: str | None = None) -> NodeConfig:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    cfg: NodeConfig = _build(NodeConfig, raw, "")
    if data_dir:
        cfg.data_dir = data_dir
    validate(cfg)
    return cfg


def validate(cfg: NodeConfig) -> None:
    for key, allowed in _CHOICES.items():
        obj: Any = cfg
        *head, last = key.split(".")
        for part in head:
            obj = getattr(obj, part)
        if getattr(obj, last) not in allowed:
            raise ConfigError(f"configuration key '{key}' must be one of {', '.join(allowed)}")
    # ${VAR} in file paths (conf/nist.toml reads the code list from XDS_CODES_FILE)
    cfg.registry.codes_file = _expand(cfg.registry.codes_file)
    if cfg.registry.check_codes and not cfg.registry.codes_file:
        raise ConfigError("configuration key 'registry.codes_file' is required when registry.check_codes is true")
    if cfg.registry.codes_file and not os.path.isfile(cfg.registry.codes_file):
        raise ConfigError(f"configuration key 'registry.codes_file': no such file {cfg.registry.codes_file!r}")
    if cfg.home_community_id and not cfg.home_community_id.startswith("urn:oid:"):
        raise ConfigError("configuration key 'home_community_id' must be a urn:oid: URN")
    if cfg.registry.enabled and not cfg.registry.patient_assigning_authority:
        raise ConfigError("configuration key 'registry.patient_assigning_authority' is required")
    if cfg.repository.enabled and not cfg.repository.repository_unique_id:
        raise ConfigError("configuration key 'repository.repository_unique_id' is required")
    _validate_identity(cfg)
    _validate_imaging(cfg)
    _validate_tls(cfg)
    _validate_audit(cfg)
    _validate_xua(cfg)
    for port_key, port in (("http.port", cfg.http.port), ("mllp.port", cfg.mllp.port), ("imaging.port", cfg.imaging.port)):
        if not 0 <= port <= 65535:
            raise ConfigError(f"configuration key '{port_key}' must be a TCP port number")


def _validate_ae_title(key: str, value: str) -> None:
    # AE VR (PS3.5 6.2): up to 16 characters, no backslash or control characters, not all spaces
    if len(value) > 16 or "\\" in value or any(ord(c) < 32 for c in value) or (value and not value.strip()):
        raise ConfigError(f"configuration key '{key}' must be a DICOM AE title (1-16 characters, no backslash)")


def _validate_imaging(cfg: NodeConfig) -> None:
    from xds.metadata.datatypes import is_oid

    im = cfg.imaging
    if not im.enabled:
        return
    if not im.ae_title:
        raise ConfigError("configuration key 'imaging.ae_title' is required")
    _validate_ae_title("imaging.ae_title", im.ae_title)
    _validate_ae_title("imaging.retrieve_ae_title", im.retrieve_ae_title)
    if im.study_quiet_seconds < 0:
        raise ConfigError("configuration key 'imaging.study_quiet_seconds' must not be negative")
    if im.publish_url and not im.publish_url.startswith(("http://", "https://")):
        raise ConfigError(f"configuration key 'imaging.publish_url' must be an http:// or https:// URL, not {im.publish_url!r}")
    if not im.publish_url and not cfg.repository.enabled:
        raise ConfigError("configuration key 'imaging.publish_url' is required when repository.enabled is false")
    for issuer, oid in im.issuer_oids.items():
        if not is_oid(oid):
            raise ConfigError(f"configuration key 'imaging.issuer_oids.{issuer}' must be an OID, not {oid!r}")
    for f in fields(ImagingConfig):
        code = getattr(im, f.name)
        if isinstance(code, CodeConfig):
            for part in ("code", "scheme", "display_name"):
                if not getattr(code, part).strip():
                    raise ConfigError(f"configuration key 'imaging.{f.name}.{part}' is required")


def _validate_identity(cfg: NodeConfig) -> None:
    from xds.metadata.datatypes import is_oid

    hn = cfg.registry.patient_assigning_authority
    issuers: dict[str, str] = {}
    senders: set[tuple[str, str]] = set()
    for i, feed in enumerate(cfg.identity.feeds):
        where = f"identity.feeds[{i}]"
        if not feed.sending_facility:
            raise ConfigError(f"configuration key '{where}.sending_facility' is required (MSH-4 of the feed)")
        if not (feed.issuer or feed.issuer_oid):
            raise ConfigError(f"configuration key '{where}.issuer' or '{where}.issuer_oid' is required")
        if feed.issuer_oid and not is_oid(feed.issuer_oid):
            raise ConfigError(f"configuration key '{where}.issuer_oid' must be an OID, not {feed.issuer_oid!r}")
        if hn and feed.issuer_oid == hn:
            raise ConfigError(f"configuration key '{where}.issuer_oid' is the HN's assigning authority; "
                              "a feed's issuer names its local ids")
        if feed.issuer and feed.issuer in cfg.identity.hn_namespaces:
            raise ConfigError(f"configuration key '{where}.issuer' is listed in identity.hn_namespaces")
        sender = (feed.sending_application, feed.sending_facility)
        if sender in senders:
            raise ConfigError(f"configuration key '{where}': another feed has the same sending application "
                              "and facility")
        senders.add(sender)
        if feed.issuer and feed.issuer_oid:
            if issuers.setdefault(feed.issuer, feed.issuer_oid) != feed.issuer_oid:
                raise ConfigError(f"configuration key '{where}.issuer_oid': issuer {feed.issuer!r} is given "
                                  f"another OID ({issuers[feed.issuer]}) by an earlier feed")


def _validate_tls(cfg: NodeConfig) -> None:
    tls = cfg.tls
    for f in fields(TlsEndpointsConfig):
        value = getattr(tls.endpoints, f.name)
        if value not in ("", "required", "optional"):
            raise ConfigError(f"configuration key 'tls.endpoints.{f.name}' must be required or optional, not {value!r}")
    if tls.handshake_timeout_seconds <= 0:
        raise ConfigError("configuration key 'tls.handshake_timeout_seconds' must be positive")
    if not tls.enabled:
        return
    for key in ("cert", "key", "ca"):
        value = getattr(tls, key)
        if not value:
            raise ConfigError(f"configuration key 'tls.{key}' is required when tls.enabled is true")
        if not os.path.isfile(value):
            raise ConfigError(f"configuration key 'tls.{key}': no such file {value!r} (xds certs init makes a development set)")


def _validate_audit(cfg: NodeConfig) -> None:
    a = cfg.audit
    for key in ("batch_size", "retry_min_seconds", "retry_max_seconds", "poll_seconds"):
        if getattr(a, key) <= 0:
            raise ConfigError(f"configuration key 'audit.{key}' must be positive")
    if a.retry_max_seconds < a.retry_min_seconds:
        raise ConfigError("configuration key 'audit.retry_max_seconds' must not be less than audit.retry_min_seconds")
    if not a.repository:
        return
    host, _, port = a.repository.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) <= 65535:
        raise ConfigError(f"configuration key 'audit.repository' must be host:port, not {a.repository!r}")
    if a.transport == "tls":
        for key in ("ca", "cert", "key"):
            value = getattr(a, key) or getattr(cfg.tls, key)
            if not value:
                raise ConfigError(f"configuration key 'audit.{key}' (or tls.{key}) is required for syslog over TLS")
            if not os.path.isfile(value):
                raise ConfigError(f"configuration key 'audit.{key}': no such file {value!r}")


def _validate_xua(cfg: NodeConfig) -> None:
    xua = cfg.xua
    for f in fields(XuaEndpointsConfig):
        value = getattr(xua.endpoints, f.name)
        if value not in ("", "required", "optional", "off"):
            raise ConfigError(f"configuration key 'xua.endpoints.{f.name}' must be required, optional or off, not {value!r}")
    if xua.clock_skew_seconds < 0:
        raise ConfigError("configuration key 'xua.clock_skew_seconds' must not be negative")
    if xua.replay_purge_seconds <= 0:
        raise ConfigError("configuration key 'xua.replay_purge_seconds' must be positive")
    issuers: set[str] = set()
    for i, idp in enumerate(xua.identity_providers):
        where = f"xua.identity_providers[{i}]"
        if not idp.issuer:
            raise ConfigError(f"configuration key '{where}.issuer' is required")
        if idp.issuer in issuers:
            raise ConfigError(f"configuration key '{where}.issuer': {idp.issuer!r} is listed twice")
        issuers.add(idp.issuer)
        if not idp.certificate or not os.path.isfile(idp.certificate):
            raise ConfigError(f"configuration key '{where}.certificate': no such file {idp.certificate!r}")
    in_use = {getattr(xua.endpoints, f.name) or xua.policy for f in fields(XuaEndpointsConfig)}
    if in_use - {"off"} and not xua.identity_providers:
        raise ConfigError("configuration key 'xua.identity_providers' needs at least one trusted identity provider "
                          "when an endpoint's XUA policy is required or optional")
