"""WSDL and XSD published on GET by every endpoint (WSDL 1.1 2.1.1, XML Schema Part 1 4.2.2-4.2.3).

A WSDL client given only ``<endpoint>?wsdl`` must find the endpoint's address and every schema
through that URL; nothing outside the endpoint's own schema set is ever served.
"""

from __future__ import annotations

import pytest
import zeep
from lxml import etree
from starlette.applications import Starlette
from starlette.routing import Route
from starlette.testclient import TestClient

from xds.soap import wsdl
from xds.soap.dispatch import Endpoint

XS = "{http://www.w3.org/2001/XMLSchema}"
NS = {
    "wsdl": "http://schemas.xmlsoap.org/wsdl/",
    "soap12": "http://schemas.xmlsoap.org/wsdl/soap12/",
    "xs": "http://www.w3.org/2001/XMLSchema",
}

ENDPOINTS = {
    "/xds/registry": "XDS.b_DocumentRegistry.wsdl",
    "/xds/repository": "XDS.b_DocumentRepository.wsdl",
    "/xds/imaging": "XDS-I.b_ImagingDocumentSource.wsdl",
    "/xca/respond": "XCARespondingGateway.wsdl",
    "/xca/initiate": "XCAInitiatingGateway.wsdl",
}


def make_app() -> Starlette:
    routes = [
        Route(path, Endpoint(path.rsplit("/", 1)[1], path, name), methods=["GET", "POST"])
        for path, name in ENDPOINTS.items()
    ]
    routes.append(Route("/bare", Endpoint("bare", "/bare", None), methods=["GET", "POST"]))
    return Starlette(routes=routes)


@pytest.fixture(scope="module")
def client() -> TestClient:
    return TestClient(make_app())


def references(root: etree._Element) -> list[str]:
    found = [
        e.get("schemaLocation") for tag in ("import", "include", "redefine") for e in root.iter(XS + tag)
    ]
    found += [e.get("location") for e in root.iter("{http://schemas.xmlsoap.org/wsdl/}import")]
    return [f for f in found if f]


class InProcessTransport(zeep.Transport):
    """A zeep transport that fetches documents through the Starlette TestClient (no network)."""

    def __init__(self, http: TestClient) -> None:
        super().__init__()
        self.http = http

    def _load_remote_data(self, url: str) -> bytes:
        response = self.http.get(url)
        response.raise_for_status()
        return response.content


def test_wsdl_address_is_the_url_the_client_used(client):
    r = client.get("/xds/registry?wsdl")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/xml")
    root = etree.fromstring(r.content)
    assert root.tag == "{http://schemas.xmlsoap.org/wsdl/}definitions"
    assert root.xpath("//soap12:address/@location", namespaces=NS) == ["http://testserver/xds/registry"]


def test_wsdl_address_follows_scheme_host_and_port():
    with TestClient(make_app(), base_url="https://dir-east.example.org:8443") as tls_client:
        root = etree.fromstring(tls_client.get("/xca/respond?wsdl").content)
    assert root.xpath("//soap12:address/@location", namespaces=NS) == [
        "https://dir-east.example.org:8443/xca/respond"
    ]
    assert all(
        loc.startswith("https://dir-east.example.org:8443/xca/respond?xsd=") for loc in references(root)
    )


def test_uppercase_wsdl_query_is_accepted(client):
    assert client.get("/xds/repository?WSDL").status_code == 200


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_every_schema_reachable_from_the_wsdl_is_served_with_absolute_imports(client, path):
    pending = [f"http://testserver{path}?wsdl"]
    seen: set[str] = set()
    while pending:
        url = pending.pop()
        if url in seen:
            continue
        seen.add(url)
        r = client.get(url)
        assert r.status_code == 200, url
        for location in references(etree.fromstring(r.content)):
            assert location.startswith(f"http://testserver{path}?xsd=xsd/"), location
            pending.append(location)
    served = {u.split("?xsd=")[1] for u in seen if "?xsd=" in u}
    assert {"xsd/ebRS/rim.xsd", "xsd/ebRS/rs.xsd", "xsd/w3c/xml.xsd"} <= served


@pytest.mark.parametrize("path", sorted(ENDPOINTS))
def test_zeep_builds_the_client_from_the_wsdl_url_alone(client, path):
    zc = zeep.Client(f"http://testserver{path}?wsdl", transport=InProcessTransport(client))
    ports = [port for service in zc.wsdl.services.values() for port in service.ports.values()]
    assert len(ports) == 1
    assert ports[0].binding_options["address"] == f"http://testserver{path}"
    operations = ports[0].binding._operations
    assert operations
    assert all(op.abstract.wsa_action for op in operations.values())


def test_xsd_imports_inside_a_served_schema_are_rewritten(client):
    root = etree.fromstring(client.get("/xds/imaging?xsd=xsd/IHE/XDSI.b_ImagingDocumentSource.xsd").content)
    assert root.get("targetNamespace") == "urn:ihe:rad:xdsi-b:2009"
    assert sorted(references(root)) == [
        "http://testserver/xds/imaging?xsd=xsd/IHE/XDS.b_DocumentRepository.xsd",
        "http://testserver/xds/imaging?xsd=xsd/ebRS/rim.xsd",
    ]


@pytest.mark.parametrize(
    "name",
    [
        "../pyproject.toml",
        "xsd/../../pyproject.toml",
        "xsd/ebRS/../../../xds/soap/wsdl.py",
        "/etc/passwd",
        "xsd//ebRS/rim.xsd",
        "./xsd/ebRS/rim.xsd",
        "xsd/ebRS/../ebRS/rim.xsd",
        "xsd\\ebRS\\rim.xsd",
        "file:///etc/passwd",
        "xsd/ebRS/nope.xsd",
        "xsd/ebRS",
        "",
        # a real schema file, but not one this endpoint's WSDL uses
        "xsd/IHE/XDSI.b_ImagingDocumentSource.xsd",
        "XDS.b_DocumentRepository.wsdl",
    ],
)
def test_unknown_or_escaping_schema_names_are_not_found(client, name):
    r = client.get("/xds/registry", params={"xsd": name})
    assert r.status_code == 404
    assert b"<" not in r.content


def test_percent_encoded_traversal_is_not_found(client):
    assert client.get("/xds/registry?xsd=%2e%2e%2fpyproject.toml").status_code == 404
    assert client.get("/xds/registry?xsd=xsd%2f..%2f..%2fpyproject.toml").status_code == 404


def test_plain_get_names_the_endpoint_and_its_wsdl(client):
    r = client.get("/xds/registry")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "http://testserver/xds/registry?wsdl" in r.text


def test_endpoint_without_wsdl_publishes_none(client):
    assert client.get("/bare?wsdl").status_code == 404
    assert client.get("/bare?xsd=xsd/ebRS/rim.xsd").status_code == 404
    r = client.get("/bare")
    assert r.status_code == 200
    assert "?wsdl" not in r.text


def test_endpoint_with_missing_wsdl_file_is_not_found():
    app = Starlette(routes=[Route("/x", Endpoint("x", "/x", "Nope.wsdl"), methods=["GET"])])
    assert TestClient(app).get("/x?wsdl").status_code == 404


def test_rewritten_documents_are_cached_per_file_and_base_url(client):
    wsdl._rendered.cache_clear()
    first = client.get("/xds/repository?wsdl").content
    second = client.get("/xds/repository?wsdl").content
    assert first == second
    info = wsdl._rendered.cache_info()
    assert (info.hits, info.misses) == (1, 1)
    other = client.get("/xds/repository?wsdl", headers={"host": "dir-west.example.org:8080"}).content
    assert b"http://dir-west.example.org:8080/xds/repository" in other
    assert b"testserver" not in other
    assert wsdl._rendered.cache_info().misses == 2
