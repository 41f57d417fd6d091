"""The identity store: couplets keyed by Patient ID + Issuer, their HN, retirement chains, HN
merges, and the configuration of feeds and issuers."""

from __future__ import annotations

import re

import pytest

from tests.identity.conftest import HN_OID, HOSPA_OID, HOSPB_OID, hn, identity_config
from xds.config import ConfigError, IdentityFeedConfig, NodeConfig, validate
from xds.identity.domain import Couplet, IdentityDomain
from xds.identity.schema import MERGED
from xds.identity.store import IdentityStore

DOMAIN = IdentityDomain.build(HN_OID, identity_config(hn_namespaces=["ON"]))


def couplet(pid: str, issuer: str = "HOSPA") -> Couplet:
    c = DOMAIN.couplet(pid, issuer)
    assert c is not None
    return c


def test_issuer_by_namespace_or_oid_is_one_issuer():
    assert couplet("123", "HOSPA").key == ("123", HOSPA_OID)
    assert couplet("123", HOSPA_OID).key == ("123", HOSPA_OID)
    assert DOMAIN.parse(f"123^^^&{HOSPA_OID}&ISO") == couplet("123")
    assert DOMAIN.parse("123^^^HOSPA") == couplet("123")
    assert couplet("123", "HOSPA").cx() == f"123^^^HOSPA&{HOSPA_OID}&ISO"
    assert couplet("123", "HOSPA").xds_cx() == f"123^^^&{HOSPA_OID}&ISO"


def test_an_unconfigured_issuer_is_named_as_sent():
    assert couplet("9", "CLINIC-X").key == ("9", "CLINIC-X")
    assert couplet("9", "CLINIC-X").xds_cx() is None


def test_the_hn_authority_by_oid_or_configured_namespace_parses_to_the_hn():
    assert DOMAIN.parse(f"5551234567^^^&{HN_OID}&ISO") == hn("5551234567")
    assert DOMAIN.parse("5551234567^^^ON^JHN") == hn("5551234567")
    assert DOMAIN.parse(("", "HOSPA")) is None


def test_the_same_patient_id_of_two_issuers_is_two_couplets(store):
    ids = IdentityStore(store.engine)
    with ids.transaction() as tx:
        a = tx.add_couplet(couplet("123", "HOSPA"), hn("1111111111"), {"name": "A"}, "hospa", "1")
        b = tx.add_couplet(couplet("123", "HOSPB"), hn("2222222222"), {"name": "B"}, "hospb", "1")
        tx.registry.record_patient(hn("1111111111"), {}, "hospa", "1")
        tx.registry.record_patient(hn("2222222222"), {}, "hospb", "1")
    assert a.id != b.id
    assert ids.resolve(("123", HOSPA_OID)) == hn("1111111111")
    assert ids.resolve(("123", HOSPB_OID)) == hn("2222222222")


def test_resolve_follows_successors_and_hn_merges(store):
    ids = IdentityStore(store.engine)
    with ids.transaction() as tx:
        for n in ("1111111111", "2222222222"):
            tx.registry.record_patient(hn(n), {}, "f", "1")
        old = tx.add_couplet(couplet("OLD"), hn("1111111111"), {}, "f", "1")
        new = tx.add_couplet(couplet("NEW"), hn("1111111111"), {}, "f", "1")
        tx.retire_couplet(old, MERGED, new, hn("1111111111"), "f", "2")
        tx.merge_hn(hn("1111111111"), hn("2222222222"), "3")
    assert ids.resolve(("OLD", HOSPA_OID)) == hn("2222222222")
    assert ids.resolve(("OLD", HOSPA_OID), follow_retired=False) is None
    assert ids.couplet(("NEW", HOSPA_OID)).hn == hn("2222222222")  # relinked by the HN merge


def test_merging_into_a_merged_away_hn_revives_it_and_chains_stay_one_hop(store):
    ids = IdentityStore(store.engine)
    a, b, c = hn("1000000001"), hn("1000000002"), hn("1000000003")
    with ids.transaction() as tx:
        for x in (a, b, c):
            tx.registry.record_patient(x, {}, "f", "1")
        tx.merge_hn(a, b, "1")
        tx.merge_hn(b, c, "2")  # a now points at c directly
        assert tx.registry.patient(a).merged_into == c
        tx.merge_hn(c, b, "3")  # b survives again: no loop
        assert tx.registry.patient(b).merged_into is None
        assert {tx.surviving_hn(x) for x in (a, b, c)} == {b}


def test_merging_an_hn_never_fed_records_it_as_merged(store):
    ids = IdentityStore(store.engine)
    with ids.transaction() as tx:
        tx.registry.record_patient(hn("1000000002"), {}, "f", "1")
        tx.merge_hn(hn("1000000009"), hn("1000000002"), "1")
        assert tx.registry.patient(hn("1000000009")).merged_into == hn("1000000002")


@pytest.mark.parametrize(
    "feed, message",
    [
        (IdentityFeedConfig(issuer="X", issuer_oid="1.2.3"), "sending_facility' is required"),
        (IdentityFeedConfig(sending_facility="F"), "issuer' or 'identity.feeds[0].issuer_oid' is required"),
        (IdentityFeedConfig(sending_facility="F", issuer="X", issuer_oid="not-an-oid"), "must be an OID"),
        (IdentityFeedConfig(sending_facility="F", issuer_oid=HN_OID), "the HN's assigning authority"),
    ],
)
def test_feed_configuration_is_checked_with_a_message_naming_the_key(feed, message):
    cfg = NodeConfig()
    cfg.registry.patient_assigning_authority = HN_OID
    cfg.repository.repository_unique_id = "1.2.3.4"
    cfg.identity.feeds = [feed]
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate(cfg)


def test_one_namespace_with_two_oids_is_refused():
    cfg = NodeConfig()
    cfg.registry.patient_assigning_authority = HN_OID
    cfg.repository.repository_unique_id = "1.2.3.4"
    cfg.identity = identity_config()
    cfg.identity.feeds.append(IdentityFeedConfig(sending_facility="HOSPA-RIS", issuer="HOSPA", issuer_oid=HOSPB_OID))
    with pytest.raises(ConfigError, match=r"identity.feeds\[2\].issuer_oid"):
        validate(cfg)


def test_feeds_load_from_toml_array_of_tables(tmp_path):
    from xds.config import load

    path = tmp_path / "node.toml"
    path.write_text(
        f'[registry]\npatient_assigning_authority = "{HN_OID}"\n'
        '[repository]\nrepository_unique_id = "1.2.3.4"\n'
        '[identity]\nunknown_local_id = "reject"\n'
        f'[[identity.feeds]]\nsending_facility = "HOSPA"\nissuer = "HOSPA"\nissuer_oid = "{HOSPA_OID}"\n'
    )
    cfg = load(path)
    assert cfg.identity.unknown_local_id == "reject"
    assert cfg.identity.feeds[0].issuer_oid == HOSPA_OID
    path.write_text(path.read_text() + 'bogus = 1\n')
    with pytest.raises(ConfigError, match=r"identity.feeds\[0\].bogus"):
        load(path)
