"""conf/dics.toml and the DI Common Service's configuration checks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.live import ROOT
from xca import config
from xds import config as node_config


def test_dics_toml_names_each_dir_by_its_own_home_community_id_and_port():
    dics = config.load(ROOT / "conf/dics.toml")
    assert dics.http.port == 8180
    for community in dics.communities:
        node = node_config.load(ROOT / f"conf/{community.name.lower()}.toml")
        assert community.home_community_id == node.home_community_id
        assert community.url == f"{node.base_url}/xca/respond"
    assert [c.name for c in dics.communities] == ["HDIRS", "SWODIN", "NEODIN"]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dics.toml"
    path.write_text(text)
    return path


COMMUNITY = '[[community]]\nname = "A"\nhome_community_id = "urn:oid:1.2.3"\nurl = "http://127.0.0.1:1/xca/respond"\n'

HTTPS = COMMUNITY.replace("http://", "https://")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("colour = 1\n" + COMMUNITY, "unknown configuration key 'colour'"),
        ("[gateway]\ntimeout_seconds = 'soon'\n" + COMMUNITY, "'gateway.timeout_seconds' must be a number"),
        ("[gateway]\ntimeout_seconds = 0\n" + COMMUNITY, "'gateway.timeout_seconds' must be positive"),
        ("", "at least one [[community]]"),
        (COMMUNITY + COMMUNITY.replace('"A"', '"B"'), "'community[1].home_community_id' is given to two"),
        (COMMUNITY.replace("urn:oid:1.2.3", "1.2.3"), "'community[0].home_community_id' must be urn:oid:"),
        (COMMUNITY.replace("http://", "ftp://"), "'community[0].url' must be an http(s) URL"),
        (COMMUNITY + "colour = 'red'\n", "unknown configuration key 'community[0].colour'"),
        (COMMUNITY + f"ca = '{ROOT / 'conf/dics.toml'}'\n", "'community[0].ca' needs an https url"),
        (HTTPS + "cert = '/nonexistent/dics.crt'\n", "'community[0].cert': no such file"),
        (HTTPS + f"key = '{ROOT / 'conf/dics.toml'}'\n", "'community[0].key' needs 'community[0].cert'"),
    ],
)
def test_a_wrong_key_stops_the_service_naming_it(tmp_path: Path, text: str, message: str):
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.load(write(tmp_path, text))


def test_a_community_timeout_overrides_the_gateways(tmp_path: Path):
    cfg = config.load(write(tmp_path, "[gateway]\ntimeout_seconds = 4\n" + COMMUNITY + "timeout_seconds = 1.5\n"))
    assert cfg.gateway.timeout_seconds == 4.0
    assert cfg.timeout_of(cfg.communities[0]) == 1.5
