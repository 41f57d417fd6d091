"""Replay detection of XUA assertions (ITI-40; SAML 2.0 Core 1.3.4, 2.5.1.5): an assertion presented
again in another message within its validity is refused with wsse:InvalidSecurity and a Security
Alert; the memory expires with the assertions and is shared by every worker process of a node."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import time
import uuid

import pytest
from lxml import etree

from tests.security import flows, saml
from tests.security.test_xua import AUDIENCE, subcode
from tests.soap.conftest import fault_of
from xds.audit.message import validate
from xds.namespaces import WSSE
from xds.security.replay import ReplayCache, Sighting, message_fingerprint, xua_assertion
from xds.security.tls import PeerCertificate
from xds.security.xua import ONE_TIME_USE, AssertionReplayed, IdentityProvider, XuaVerifier
from xds.soap import envelope as soap_envelope
from xds.soap.fault import SoapFault
from xds.soap.message import Addressing, SoapRequest

CGQ = "urn:ihe:iti:2007:CrossGatewayQuery"


def request(assertion: etree._Element, message_id: str | None = None, body: str = "<x:Ping xmlns:x='urn:x'/>",
            certificate: str = "") -> SoapRequest:
    xml = (f'<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Header>'
           f'{saml.security_header(assertion)}</env:Header><env:Body>{body}</env:Body></env:Envelope>')
    root = etree.fromstring(xml.encode())
    header, body_element = soap_envelope.split_envelope(root)
    soap = SoapRequest(root, header, body_element,
                       Addressing(action="urn:x", message_id=message_id or f"urn:uuid:{uuid.uuid4()}"),
                       endpoint="/xds/registry")
    if certificate:
        soap.client_certificate = PeerCertificate(certificate, "CN=ca", "1", certificate)
    return soap


@pytest.fixture
def cache(tmp_path) -> ReplayCache:
    c = ReplayCache.open(f"sqlite:///{tmp_path / 'xua.sqlite'}")
    yield c
    c.close()


@pytest.fixture
def verifier(dev_pki, cache) -> XuaVerifier:
    idp = IdentityProvider(saml.IDP, dev_pki.load("idp").certificate)
    return XuaVerifier([idp], default="required", audiences={AUDIENCE}, clock_skew=60, replay=cache)


def signed(dev_pki, **kw) -> etree._Element:
    return saml.sign(saml.assertion(AUDIENCE, **kw), dev_pki.load("idp"))


# --- the verifier -----------------------------------------------------------------------------------


def test_the_same_assertion_in_a_second_message_is_refused_as_a_replay(verifier, dev_pki):
    a = signed(dev_pki)
    assert verifier.authenticate("registry", request(a)).user_id == "dr.smith@hospital.example.ca"
    with pytest.raises(AssertionReplayed) as e:
        verifier.authenticate("registry", request(a))
    assert e.value.code == "Sender" and e.value.subcode == (WSSE, "InvalidSecurity")
    assert (e.value.issuer, e.value.assertion_id) == (saml.IDP, a.get("ID"))
    assert e.value.person.user_id == "dr.smith@hospital.example.ca"


def test_two_different_assertions_are_both_served(verifier, dev_pki):
    assert verifier.authenticate("registry", request(signed(dev_pki))) is not None
    assert verifier.authenticate("registry", request(signed(dev_pki))) is not None


def test_the_same_message_retransmitted_is_served(verifier, dev_pki):
    a = signed(dev_pki)
    message_id = f"urn:uuid:{uuid.uuid4()}"
    assert verifier.authenticate("registry", request(a, message_id, certificate="CN=client")) is not None
    assert verifier.authenticate("registry", request(a, message_id, certificate="CN=client")) is not None
    # the same wsa:MessageID with another body, or from another client, is another message
    with pytest.raises(AssertionReplayed):
        verifier.authenticate("registry", request(a, message_id, body="<x:Other xmlns:x='urn:x'/>",
                                                  certificate="CN=client"))
    with pytest.raises(AssertionReplayed):
        verifier.authenticate("registry", request(a, message_id, certificate="CN=someone-else"))


def test_a_refused_assertion_is_not_remembered(verifier, dev_pki, cache):
    expired = signed(dev_pki, not_before=dt.datetime.now(dt.UTC) - dt.timedelta(hours=2),
                     not_on_or_after=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
    with pytest.raises(Exception, match="expired"):
        verifier.authenticate("registry", request(expired))
    assert len(cache) == 0


def test_the_memory_lasts_until_not_on_or_after_plus_the_clock_skew(verifier, dev_pki, cache):
    until = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(minutes=7)
    verifier.authenticate("registry", request(signed(dev_pki, not_on_or_after=until)))
    with cache.engine.connect() as conn:
        [expires] = conn.execute(xua_assertion.select().with_only_columns(xua_assertion.c.expires)).scalars()
    assert expires == (until + dt.timedelta(seconds=60)).timestamp()


def test_one_time_use_policy_lets_an_assertion_be_reused_unless_it_says_one_time_use(dev_pki, cache):
    idp = IdentityProvider(saml.IDP, dev_pki.load("idp").certificate)
    verifier = XuaVerifier([idp], default="required", audiences={AUDIENCE}, replay=cache, replay_policy=ONE_TIME_USE)
    session = signed(dev_pki)
    for _ in range(3):
        assert verifier.authenticate("registry", request(session)) is not None
    once = signed(dev_pki, one_time_use=True)
    assert verifier.authenticate("registry", request(once)) is not None
    with pytest.raises(AssertionReplayed):
        verifier.authenticate("registry", request(once))
    assert len(cache) == 1  # the reusable assertion was never written


def test_an_unavailable_memory_fails_closed_with_a_receiver_fault(verifier, dev_pki, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("disk I/O error")

    monkeypatch.setattr(verifier.replay, "present", broken)
    with pytest.raises(SoapFault) as e:
        verifier.authenticate("registry", request(signed(dev_pki)))
    assert e.value.code == "Receiver" and not isinstance(e.value, AssertionReplayed)


# --- the memory ---------------------------------------------------------------------------------------


def test_expired_assertions_are_purged(tmp_path):
    cache = ReplayCache.open(f"sqlite:///{tmp_path / 'xua.sqlite'}", purge_seconds=60)
    try:
        now = time.time()
        cache.present(saml.IDP, "_old", "m1", expires=now + 10, now=now)
        cache.present(saml.IDP, "_young", "m2", expires=now + 600, now=now)
        assert len(cache) == 2
        assert cache.purge(now + 11) == 1 and len(cache) == 1
        # and without being asked: the first presentation after purge_seconds purges
        cache.present(saml.IDP, "_later", "m3", expires=now + 1200, now=now + 601)
        assert len(cache) == 1
    finally:
        cache.close()


def test_an_expired_row_not_yet_purged_refuses_nothing(cache):
    now = time.time()
    cache.present(saml.IDP, "_a", "m1", expires=now + 10, now=now)
    assert cache.present(saml.IDP, "_a", "m2", expires=now + 100, now=now + 20) is None
    assert isinstance(cache.present(saml.IDP, "_a", "m3", expires=now + 100, now=now + 30), Sighting)


def test_an_unreadable_memory_is_set_aside_and_a_new_one_begun(tmp_path):
    """What an operating-system crash can leave of a file written without fsync."""
    path = tmp_path / "xua.sqlite"
    path.write_bytes(b"not a database " * 400)
    cache = ReplayCache.open(f"sqlite:///{path}")
    try:
        assert len(cache) == 0 and cache.present(saml.IDP, "_a", "m", expires=time.time() + 60) is None
        assert (tmp_path / "xua.sqlite.unreadable").read_bytes().startswith(b"not a database")
        with cache.engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 0  # OFF: a cache, no fsync
    finally:
        cache.close()


def test_assertion_ids_are_remembered_per_issuer(cache):
    now = time.time()
    assert cache.present("https://idp-a", "_1", "m1", expires=now + 60) is None
    assert cache.present("https://idp-b", "_1", "m2", expires=now + 60) is None


def _present_elsewhere(url: str, assertion_id: str, message: str, expires: float) -> float | None:
    cache = ReplayCache.open(url)
    try:
        earlier = cache.present(saml.IDP, assertion_id, message, expires)
        return None if earlier is None else earlier.first_seen
    finally:
        cache.close()


def test_two_worker_processes_share_the_memory(tmp_path):
    """What ``xds serve --workers 2`` does: two processes, each with its own engine on the file."""
    url = f"sqlite:///{tmp_path / 'xua.sqlite'}"
    here = ReplayCache.open(url)
    try:
        expires = time.time() + 300
        assert here.present(saml.IDP, "_shared", message_fingerprint("urn:uuid:1", b"<a/>"), expires) is None
        with multiprocessing.get_context("spawn").Pool(1) as worker:
            first_seen = worker.apply(_present_elsewhere, (url, "_shared", message_fingerprint("urn:uuid:2", b"<a/>"),
                                                           expires))
            assert first_seen is not None and abs(first_seen - time.time()) < 60
            assert worker.apply(_present_elsewhere, (url, "_theirs", "m", expires)) is None
        assert isinstance(here.present(saml.IDP, "_theirs", "another", expires), Sighting)
    finally:
        here.close()


def test_the_verifiers_of_two_workers_share_the_nodes_memory(tmp_path, dev_pki):
    """Each worker builds its verifier from the same configuration: the memory is
    <data_dir>/xua.sqlite for both."""
    from tests.live import write_config
    from xds import config

    cfg = config.load(write_config("conf/hdirs.toml", tmp_path / "node.toml", {
        "data_dir": str(tmp_path / "data"),
        "xua": {"identity_providers": [{"issuer": saml.IDP, "certificate": dev_pki.path("idp")}],
                "endpoints": {"registry": "required"}, "audiences": [AUDIENCE]}}))
    first, second = XuaVerifier.from_config(cfg), XuaVerifier.from_config(cfg)
    try:
        a = signed(dev_pki)
        assert first.authenticate("registry", request(a)) is not None
        with pytest.raises(AssertionReplayed):
            second.authenticate("registry", request(a))
        assert (tmp_path / "data" / "xua.sqlite").is_file()
    finally:
        first.close()
        second.close()


# --- on the live node: the responding gateway requires XUA ---------------------------------------


def cross_gateway_query(node, assertion: etree._Element, body: bytes | None = None):
    if body is None:
        body = flows.rm.envelope(CGQ, flows.find_documents_body("1^^^&1.2&ISO"))
        body = body.replace(b"</env:Header>", saml.security_header(assertion).encode() + b"</env:Header>")
    with node.client(timeout=30) as client:
        return client.post(node.url("/xca/respond"), content=body, headers={"content-type": "application/soap+xml"}), body


def test_live_replayed_assertion_is_refused_and_raises_a_security_alert(secure_node, dev_pki):
    node = secure_node
    subject = f"dr.{uuid.uuid4().hex[:8]}@hospital.example.ca"
    a = saml.sign(saml.assertion(node.base_url, subject=subject), dev_pki.load("idp"))
    first, sent = cross_gateway_query(node, a)
    assert first.status_code == 200 and subcode(first.content) is None, first.content[:1000]
    again, _ = cross_gateway_query(node, a, sent)  # a retransmission of the same message
    assert again.status_code == 200 and subcode(again.content) is None
    replayed, _ = cross_gateway_query(node, a)  # a new message (new wsa:MessageID)
    assert replayed.status_code == 400 and fault_of(replayed.content)[0] == "env:Sender"
    assert subcode(replayed.content) == (WSSE, "InvalidSecurity")
    assert a.get("ID") not in replayed.content.decode()

    def alerts() -> list[etree._Element]:
        return [m for m in flows.audit_messages(node.data_dir)
                if m.find("EventIdentification/EventID").get("csd-code") == "110113"
                and a.get("ID") in (m.findtext("EventIdentification/EventOutcomeDescription") or "")]

    assert flows.wait_until(lambda: bool(alerts()), timeout=10)
    [alert] = alerts()
    assert validate(alert) == []
    assert flows.event_codes(alert) == ("110113", "110132", "E", "4")
    users = {p.get("UserID"): p for p in alert.findall("ActiveParticipant")}
    assert users[subject].get("UserIsRequestor") == "true"
    assert flows.objects(alert)["12"] == [node.url("/xca/respond")]
    # the two served messages were audited as ITI-38, the replay as the alert only
    mine = [m for m in flows.audit_messages(node.data_dir)
            if any(p.get("UserID") == subject for p in m.findall("ActiveParticipant"))]
    assert sorted(flows.event_codes(m)[:2] for m in mine) == [("110112", "ITI-38")] * 2 + [("110113", "110132")]
