"""The [imaging] keys the Imaging Document Source publishes with: each reaches the RAD-68 metadata,
and each bad value stops the node with a message naming the key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from xds import config
from xds.config import ConfigError
from xds.imaging.publish import PublishSettings
from xds.metadata import model as m

BASE = """
[registry]
patient_assigning_authority = "2.16.840.1.113883.4.59"
[repository]
repository_unique_id = "1.3.6.1.4.1.21367.13.40.216"
[imaging]
repository_unique_id = "1.3.6.1.4.1.21367.13.71.101"
"""


def load(tmp_path: Path, imaging: str = "", extra: str = "") -> config.NodeConfig:
    path = tmp_path / "node.toml"
    path.write_text(BASE + imaging + "\n" + extra)
    return config.load(path)


def test_configured_codes_issuers_and_destination_reach_the_publisher(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
publish_url = "https://repository.example.on.ca/xds/repository"
retrieve_ae_title = "HDIRS_QR"
issuer_oids = { OHIP = "2.16.840.1.113883.4.59", TGH = "1.3.6.1.4.1.21367.1800.13.20.1000" }
class_code = { code = "DI", scheme = "2.16.840.1.113883.3.239.18.1", display_name = "Diagnostic Imaging" }
[imaging.practice_setting_code]
code = "394914008"
scheme = "2.16.840.1.113883.6.96"
display_name = "Radiology"
""", extra="""
[[identity.feeds]]
sending_facility = "UHN"
issuer = "UHN"
issuer_oid = "1.3.6.1.4.1.21367.1800.13.20.2000"
""")
    s = PublishSettings.from_config(cfg)
    assert s.repository_url == "https://repository.example.on.ca/xds/repository"
    assert s.retrieve_ae_title == "HDIRS_QR"
    assert s.issuer_oids == {
        "UHN": "1.3.6.1.4.1.21367.1800.13.20.2000",
        "OHIP": "2.16.840.1.113883.4.59",
        "TGH": "1.3.6.1.4.1.21367.1800.13.20.1000",
    }
    assert s.class_code == m.Code("DI", "2.16.840.1.113883.3.239.18.1", "Diagnostic Imaging")
    assert s.practice_setting_code == m.Code("394914008", "2.16.840.1.113883.6.96", "Radiology")
    assert s.type_code == PublishSettings().type_code  # unconfigured: the defaults


def test_defaults_publish_to_this_node_without_a_retrieve_ae_title(tmp_path: Path) -> None:
    s = PublishSettings.from_config(load(tmp_path))
    assert s.repository_url == "" and s.retrieve_ae_title == ""
    assert (s.class_code.code, s.type_code.code, s.confidentiality_code.code) == ("IMAGES", "18748-4", "N")
    assert s.healthcare_facility_type_code.scheme == s.practice_setting_code.scheme == "2.16.840.1.113883.6.96"


@pytest.mark.parametrize(
    ("imaging", "key"),
    [
        ('publish_url = "ftp://repository/xds"', "imaging.publish_url"),
        ("publish_url = 7", "imaging.publish_url"),
        ('retrieve_ae_title = "A_TITLE_LONGER_THAN_16"', "imaging.retrieve_ae_title"),
        ('retrieve_ae_title = "BACK\\\\SLASH"', "imaging.retrieve_ae_title"),
        ('ae_title = ""', "imaging.ae_title"),
        ('issuer_oids = { OHIP = "Ontario" }', "imaging.issuer_oids.OHIP"),
        ("issuer_oids = { OHIP = 1 }", "imaging.issuer_oids"),
        ('issuer_oids = ["OHIP"]', "imaging.issuer_oids"),
        ('class_code = { code = "IMAGES", scheme = "1.3.6.1.4.1.19376.1.2.6.1" }', "imaging.class_code.display_name"),
        ('type_code = { code = "", scheme = "2.16.840.1.113883.6.1", display_name = "x" }', "imaging.type_code.code"),
        ('confidentiality_code = { code = "N", display_name = "Normal" }', "imaging.confidentiality_code.scheme"),
        ('healthcare_facility_type_code = { code = "H", colour = "x" }', "imaging.healthcare_facility_type_code.colour"),
        ('practice_setting_code = "309964003"', "imaging.practice_setting_code"),
        ("study_quiet_seconds = -1", "imaging.study_quiet_seconds"),
    ],
)
def test_a_bad_imaging_key_is_refused_with_a_message_naming_it(tmp_path: Path, imaging: str, key: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(key)):
        load(tmp_path, imaging)


def test_without_a_repository_in_the_node_publish_url_is_required(tmp_path: Path) -> None:
    path = tmp_path / "node.toml"
    path.write_text(BASE.replace('repository_unique_id = "1.3.6.1.4.1.21367.13.40.216"', "enabled = false"))
    with pytest.raises(ConfigError, match="'imaging.publish_url' is required"):
        config.load(path)
