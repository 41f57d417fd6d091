"""Configuration of the DI Common Service (``conf/dics.toml``): the communities it federates.

Checked like a DIR node's configuration (:mod:`xds.config`): an unknown key, a wrong type or an
inconsistent community list stops the service with a message naming the key (``ConfigError``).

Tables: top level (``name``, ``log_level``, ``data_dir``), ``[http]``, ``[limits]`` and ``[audit]``
as for a node (the audit trail in ``<data_dir>/audit.sqlite`` unless ``audit.database_url``),
``[gateway]`` (timeouts, connection pool, de-duplication) and one ``[[community]]`` per Responding
Gateway (``name``, ``home_community_id``, ``url``, optional ``timeout_seconds``; for an https ``url``
optionally ``ca``, ``cert`` and ``key``: mutual TLS with that community).
"""

from __future__ import annotations

import os
import ssl
import tomllib
from dataclasses import dataclass, field, fields
from typing import Any
from urllib.parse import urlsplit

import certifi

from xds.config import AuditConfig, ConfigError, HttpConfig, LimitsConfig, NodeConfig, TlsConfig
from xds import config as node_config_mod
from xds.metadata.datatypes import is_oid
from xds.security import tls

__all__ = ["CommunityConfig", "ConfigError", "DicsConfig", "GatewaySettings", "client_ssl_context", "load"]


@dataclass
class GatewaySettings:
    # a community that has not answered a query (or sent a retrieve's envelope) by then is
    # reported as XDSUnavailableCommunity
    timeout_seconds: float = 10.0
    # a retrieve whose upstream stops sending for this long is aborted mid-stream
    read_timeout_seconds: float = 60.0
    connect_timeout_seconds: float = 5.0
    max_connections: int = 200  # to all communities together
    # one entry for the same document (uniqueId) or study (Study Instance UID of a KOS manifest)
    deduplicate: bool = True


@dataclass(frozen=True)
class CommunityConfig:
    name: str = ""
    home_community_id: str = ""  # urn:oid:...
    url: str = ""  # its Responding Gateway (ITI-38, ITI-39, RAD-75)
    timeout_seconds: float = 0.0  # 0: gateway.timeout_seconds
    # https only: trust anchors for its server certificate (PEM; "" = certifi's public CAs), and the
    # client certificate (PEM, leaf first) and key the gateway presents to it ("" = none)
    ca: str = ""
    cert: str = ""
    key: str = ""


@dataclass
class DicsConfig:
    name: str = "DICS"
    log_level: str = "INFO"
    data_dir: str = "var/dics"  # the audit store (audit.sqlite), unless audit.database_url names another
    http: HttpConfig = field(default_factory=lambda: HttpConfig(port=8180))
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    audit: AuditConfig = field(default_factory=AuditConfig)
    gateway: GatewaySettings = field(default_factory=GatewaySettings)
    community: list[CommunityConfig] = field(default_factory=list)

    @property
    def communities(self) -> list[CommunityConfig]:
        return self.community

    @property
    def base_url(self) -> str:
        return self.http.base_url or f"http://{self.http.host}:{self.http.port}"

    def timeout_of(self, community: CommunityConfig) -> float:
        return community.timeout_seconds or self.gateway.timeout_seconds

    def node_config(self) -> NodeConfig:
        """The service as the node-level machinery it shares with a DIR sees it (the audit trail:
        :meth:`xds.audit.trail.AuditTrail.from_config`): its name, data directory, HTTP listener
        and ``[audit]`` table; no registry, repository or imaging of its own."""
        node = NodeConfig(name=self.name, data_dir=self.data_dir, log_level=self.log_level, http=self.http,
                          limits=self.limits, audit=self.audit)
        node.registry.enabled = node.repository.enabled = node.imaging.enabled = node.mllp.enabled = False
        node.gateway.enabled = False
        return node


_TABLES = {"http": HttpConfig, "limits": LimitsConfig, "gateway": GatewaySettings, "audit": AuditConfig}
_ARRAYS = {"community": CommunityConfig}


def _check_value(name: str, value: Any, default: Any) -> Any:
    expected = type(default)
    if expected is bool and not isinstance(value, bool):
        raise ConfigError(f"configuration key '{name}' must be true or false, not {value!r}")
    if expected is int and (not isinstance(value, int) or isinstance(value, bool)):
        raise ConfigError(f"configuration key '{name}' must be an integer, not {value!r}")
    if expected is float:
        if not isinstance(value, int | float) or isinstance(value, bool):
            raise ConfigError(f"configuration key '{name}' must be a number, not {value!r}")
        return float(value)
    if expected is str and not isinstance(value, str):
        raise ConfigError(f"configuration key '{name}' must be a string, not {value!r}")
    return value


def _build(cls: type, data: Any, where: str) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"configuration key '{where}' must be a table")
    defaults = cls()
    known = {f.name for f in fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{where}.{key}" if where else key
        if key not in known:
            raise ConfigError(f"unknown configuration key '{name}'")
        if not where and key in _TABLES:
            kwargs[key] = _build(_TABLES[key], value, name)
        elif not where and key in _ARRAYS:
            if not isinstance(value, list):
                raise ConfigError(f"configuration key '{name}' must be an array of tables ([[{name}]])")
            kwargs[key] = [_build(_ARRAYS[key], v, f"{name}[{i}]") for i, v in enumerate(value)]
        else:
            kwargs[key] = _check_value(name, value, getattr(defaults, key))
    return cls(**kwargs)


def validate(cfg: DicsConfig) -> None:
    if cfg.log_level not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise ConfigError("configuration key 'log_level' must be one of DEBUG, INFO, WARNING, ERROR")
    if not 0 <= cfg.http.port <= 65535:
        raise ConfigError("configuration key 'http.port' must be a TCP port number")
    if cfg.audit.transport not in ("tls", "tcp"):
        raise ConfigError("configuration key 'audit.transport' must be one of tls, tcp")
    node_config_mod._validate_audit(cfg.node_config())  # the checks of a node's [audit] table
    g = cfg.gateway
    for key in ("timeout_seconds", "read_timeout_seconds", "connect_timeout_seconds"):
        if getattr(g, key) <= 0:
            raise ConfigError(f"configuration key 'gateway.{key}' must be positive")
    if g.max_connections < 1:
        raise ConfigError("configuration key 'gateway.max_connections' must be at least 1")
    if not cfg.community:
        raise ConfigError("at least one [[community]] is required")
    names: set[str] = set()
    homes: set[str] = set()
    for i, c in enumerate(cfg.community):
        where = f"community[{i}]"
        if not c.name:
            raise ConfigError(f"configuration key '{where}.name' is required")
        if c.name in names:
            raise ConfigError(f"configuration key '{where}.name': {c.name!r} is listed twice")
        names.add(c.name)
        if not c.home_community_id.startswith("urn:oid:") or not is_oid(c.home_community_id[8:]):
            raise ConfigError(f"configuration key '{where}.home_community_id' must be urn:oid:<OID>")
        if c.home_community_id in homes:
            raise ConfigError(f"configuration key '{where}.home_community_id' is given to two communities")
        homes.add(c.home_community_id)
        url = urlsplit(c.url)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ConfigError(f"configuration key '{where}.url' must be an http(s) URL")
        if c.timeout_seconds < 0:
            raise ConfigError(f"configuration key '{where}.timeout_seconds' must not be negative")
        for key in ("ca", "cert", "key"):
            value = getattr(c, key)
            if value and url.scheme != "https":
                raise ConfigError(f"configuration key '{where}.{key}' needs an https url")
            if value and not os.path.isfile(value):
                raise ConfigError(f"configuration key '{where}.{key}': no such file {value!r}")
        if c.key and not c.cert:
            raise ConfigError(f"configuration key '{where}.key' needs '{where}.cert'")


def client_ssl_context(community: CommunityConfig) -> ssl.SSLContext | None:
    """The TLS context of the gateway's connections to ``community`` (None for an http url)."""
    if urlsplit(community.url).scheme != "https":
        return None
    return tls.client_ssl_context(TlsConfig(), ca=community.ca or certifi.where(), cert=community.cert,
                                  key=community.key)


def load(path: str | os.PathLike[str], data_dir: str | None = None) -> DicsConfig:
    try:
        with open(path, "rb") as f:
            raw = tomllib.load(f)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    cfg: DicsConfig = _build(DicsConfig, raw, "")
    if data_dir:
        cfg.data_dir = data_dir
    validate(cfg)
    return cfg
