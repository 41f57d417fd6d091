"""Mutual TLS on a live node (ATNA Authenticate Node): HTTPS with client certificates, refusals
audited as Security Alerts (Node Authentication)."""

from __future__ import annotations

import ssl
import time

import httpx
import pytest
from lxml import etree

from tests.live import live_node
from tests.security.conftest import tls_overrides
from tests.soap.conftest import SOAP_CT, envelope, fault_of
from xds.audit.store import AuditStore


def context(dev_pki, cert: str | None) -> ssl.SSLContext:
    return dev_pki.client_context(cert)


def security_alerts(node, count: int, timeout: float = 5.0) -> list[etree._Element]:
    """The node's Security Alert audit messages, waiting for ``count`` of them (recorded off the loop)."""
    store = AuditStore.open(f"sqlite:///{node.data_dir / 'audit.sqlite'}")
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = [etree.fromstring(m.encode()) for m in store.messages()]
            alerts = [m for m in found if m.find("EventIdentification/EventID").get("csd-code") == "110113"]
            if len(alerts) >= count or time.monotonic() > deadline:
                return alerts
            time.sleep(0.05)
    finally:
        store.close()


@pytest.fixture(scope="module")
def mtls_node(secure_node):
    return secure_node


@pytest.mark.parametrize("cert", [None, "stranger", "expired"], ids=["no-certificate", "other-ca", "expired"])
def test_client_without_a_trusted_certificate_is_refused_at_the_handshake(mtls_node, dev_pki, cert):
    with pytest.raises(httpx.TransportError):
        httpx.get(mtls_node.url("/health"), verify=context(dev_pki, cert), timeout=5)


def test_client_with_a_valid_certificate_is_served(mtls_node, dev_pki):
    with httpx.Client(verify=context(dev_pki, "pacs"), timeout=5) as client:
        assert client.get(mtls_node.url("/health")).status_code == 200
        r = client.post(mtls_node.url("/xds/registry"), content=envelope(action="urn:example:Nope"),
                        headers={"content-type": SOAP_CT})
        assert fault_of(r.content)[1] == "wsa:ActionNotSupported"


def test_wsdl_advertises_the_https_address(mtls_node):
    with mtls_node.client() as client:
        wsdl = etree.fromstring(client.get(mtls_node.url("/xds/registry?wsdl")).content)
    locations = {a.get("location") for a in wsdl.iter("{http://schemas.xmlsoap.org/wsdl/soap12/}address")}
    assert locations == {mtls_node.url("/xds/registry")}


def test_plain_http_to_the_tls_port_is_refused(mtls_node):
    with pytest.raises(httpx.TransportError):
        httpx.get(mtls_node.url("/health").replace("https:", "http:"), timeout=5)


def test_refused_handshakes_are_audited_as_node_authentication_failures(mtls_node, dev_pki):
    for cert in (None, "stranger", "expired"):
        with pytest.raises(httpx.TransportError):
            httpx.get(mtls_node.url("/health"), verify=context(dev_pki, cert), timeout=5)
    alerts = security_alerts(mtls_node, 3)
    assert len(alerts) >= 3
    reasons = " | ".join(a.findtext("EventIdentification/EventOutcomeDescription") for a in alerts)
    assert "certificate has expired" in reasons
    assert "unable to get local issuer certificate" in reasons or "unknown ca" in reasons.lower()
    assert "PEER_DID_NOT_RETURN_A_CERTIFICATE" in reasons or "did not return a certificate" in reasons.lower()
    for alert in alerts:
        ev = alert.find("EventIdentification")
        assert ev.get("EventOutcomeIndicator") == "4" and ev.get("EventActionCode") == "E"
        assert ev.find("EventTypeCode").attrib == {"csd-code": "110126", "codeSystemName": "DCM",
                                                   "originalText": "Node Authentication"}
        performer = [p for p in alert.findall("ActiveParticipant") if p.get("UserIsRequestor") == "true"]
        assert performer[0].get("NetworkAccessPointID") == "127.0.0.1"


@pytest.fixture(scope="module")
def mixed_node(tmp_path_factory, dev_pki):
    """Client certificates required everywhere but on the imaging endpoint."""
    overrides = tls_overrides(dev_pki, endpoints={"imaging": "optional"})
    with live_node(tmp_path_factory.mktemp("mixed"), overrides=overrides) as node:
        yield node


def test_per_endpoint_policy_refuses_a_request_without_certificate_where_required(mixed_node, dev_pki):
    anonymous = context(dev_pki, None)
    r = httpx.post(mixed_node.url("/xds/registry"), content=envelope(action="urn:x"),
                   headers={"content-type": SOAP_CT}, verify=anonymous, timeout=5)
    assert r.status_code == 403
    r = httpx.post(mixed_node.url("/xds/imaging"), content=envelope(action="urn:x"),
                   headers={"content-type": SOAP_CT}, verify=anonymous, timeout=5)
    assert fault_of(r.content)[1] == "wsa:ActionNotSupported"
    r = httpx.post(mixed_node.url("/xds/registry"), content=envelope(action="urn:x"),
                   headers={"content-type": SOAP_CT}, verify=context(dev_pki, "client"), timeout=5)
    assert fault_of(r.content)[1] == "wsa:ActionNotSupported"
    alerts = security_alerts(mixed_node, 1)
    assert [a.find("ParticipantObjectIdentification").get("ParticipantObjectID") for a in alerts] == [
        mixed_node.url("/xds/registry")]


def test_optional_endpoint_still_refuses_an_untrusted_certificate(mixed_node, dev_pki):
    with pytest.raises(httpx.TransportError):
        httpx.get(mixed_node.url("/health"), verify=context(dev_pki, "stranger"), timeout=5)


# --- MLLP over TLS (ITI-8) ---------------------------------------------------------------------------


def test_mllp_over_tls_with_a_client_certificate_is_acknowledged(mtls_node, dev_pki):
    from tests.security import flows

    flows.feed_patient(mtls_node.mllp_port, flows.new_hn(), dev_pki.client_context("pacs"))


@pytest.mark.parametrize("cert", [None, "stranger"], ids=["no-certificate", "other-ca"])
def test_mllp_without_a_trusted_certificate_is_refused_and_audited(mtls_node, dev_pki, cert):
    from tests.security import flows

    with pytest.raises((ssl.SSLError, OSError)):
        reply = flows.mllp_exchange(mtls_node.mllp_port, flows.adt_a01(flows.new_hn(), "X1"), dev_pki.client_context(cert))
        assert not reply  # TLS 1.3: the refusal may come as an empty read after the handshake
        raise ConnectionError("refused")
    uri = f"mllp://127.0.0.1:{mtls_node.mllp_port}"

    def refused() -> list:
        return [a for a in security_alerts(mtls_node, 1, timeout=0.1)
                if a.find("ParticipantObjectIdentification").get("ParticipantObjectID") == uri]

    assert flows.wait_until(lambda: len(refused()) >= 1, timeout=5)


def test_plain_mllp_to_the_tls_port_gets_no_acknowledgement(mtls_node):
    from tests.security import flows

    try:
        reply = flows.mllp_exchange(mtls_node.mllp_port, flows.adt_a01(flows.new_hn(), "X2"))
    except OSError:
        reply = b""
    assert b"MSA|" not in reply


# --- DICOM TLS: the context the imaging SCP passes to pynetdicom ---------------------------------------


def test_dicom_tls_context_serves_a_trusted_client_and_reports_a_refused_one(dev_pki):
    from pynetdicom import AE
    from pynetdicom.sop_class import Verification  # type: ignore[attr-defined]

    from xds.config import NodeConfig, TlsConfig
    from xds.security.tls import server_ssl_context

    cfg = NodeConfig(tls=TlsConfig(enabled=True, cert=dev_pki.path("node"), key=dev_pki.path("node", "key"),
                                   ca=dev_pki.path("ca")))
    refusals: list = []
    scp = AE(ae_title="HDIRS")
    scp.add_supported_context(Verification)
    server = scp.start_server(("127.0.0.1", 0), block=False, ssl_context=server_ssl_context(cfg, "dicom", refusals.append))
    try:
        port = server.server_address[1]
        scu = AE(ae_title="PACS")
        scu.add_requested_context(Verification)
        scu.acse_timeout = scu.network_timeout = 5
        assoc = scu.associate("127.0.0.1", port, ae_title="HDIRS", tls_args=(dev_pki.client_context("pacs"), "localhost"))
        assert assoc.is_established
        assert assoc.send_c_echo().Status == 0x0000
        assoc.release()
        refused = scu.associate("127.0.0.1", port, ae_title="HDIRS", tls_args=(dev_pki.client_context(None), "localhost"))
        assert not refused.is_established
        from tests.security import flows

        assert flows.wait_until(lambda: len(refusals) == 1, timeout=5)
        assert refusals[0].listener == "dicom" and refusals[0].host == "127.0.0.1"
    finally:
        server.shutdown()
