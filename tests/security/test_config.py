"""[tls], [audit] and [xua]: every key checked, the message names it."""

from __future__ import annotations

import pytest

from tests.live import write_config
from xds import config


def load(tmp_path, overrides: dict) -> config.NodeConfig:
    return config.load(write_config("conf/hdirs.toml", tmp_path / "node.toml", overrides))


@pytest.mark.parametrize("overrides, key", [
    ({"tls": {"enabled": True}}, "tls.cert"),
    ({"tls": {"enabled": True, "cert": "/nonexistent.crt", "key": "k", "ca": "c"}}, "tls.cert"),
    ({"tls": {"endpoints": {"registry": "sometimes"}}}, "tls.endpoints.registry"),
    ({"tls": {"endpoints": {"regsitry": "required"}}}, "tls.endpoints.regsitry"),
    ({"audit": {"repository": "syslog.example.ca"}}, "audit.repository"),
    ({"audit": {"repository": "127.0.0.1:6514"}}, "audit.ca"),
    ({"audit": {"transport": "udp"}}, "audit.transport"),
    ({"audit": {"retry_max_seconds": 0}}, "audit.retry_max_seconds"),
    ({"xua": {"policy": "always"}}, "xua.policy"),
    ({"xua": {"replay": "allow"}}, "xua.replay"),
    ({"xua": {"replay_purge_seconds": 0}}, "xua.replay_purge_seconds"),
    ({"xua": {"endpoints": {"registry": "required"}}}, "xua.identity_providers"),
    ({"xua": {"identity_providers": [{"issuer": "https://idp", "certificate": "/nonexistent.pem"}]}},
     "xua.identity_providers[0].certificate"),
])
def test_bad_security_settings_are_named(tmp_path, overrides, key):
    with pytest.raises(config.ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        load(tmp_path, overrides)


def test_a_complete_tls_audit_and_xua_configuration_loads(tmp_path, dev_pki):
    cfg = load(tmp_path, {
        "tls": {"enabled": True, "cert": dev_pki.path("node"), "key": dev_pki.path("node", "key"),
                "ca": dev_pki.path("ca"), "endpoints": {"imaging": "optional"}},
        "audit": {"repository": "audit.example.ca:6514"},
        "xua": {"policy": "optional", "identity_providers": [{"issuer": "https://idp", "certificate": dev_pki.path("idp")}],
                "endpoints": {"respond": "required"}, "replay": "one-time-use"},
    })
    assert cfg.base_url.startswith("https://") and cfg.xua.endpoints.respond == "required"
    assert (cfg.xua.replay, cfg.xua.replay_database_url) == ("one-time-use", "")
