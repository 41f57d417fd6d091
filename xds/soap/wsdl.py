"""WSDL and XSD served from an endpoint's own URL (WSDL 1.1 section 2.1.1; XML Schema 1.0 Part 1, 4.2).

``GET <path>?wsdl`` returns the endpoint's WSDL from ``schemas/`` with

* every ``soap12:address/@location`` (and ``soap:address``) set to the URL the client used
  (``scheme://host[:port]`` of the request + the endpoint path), and
* every ``xs:import`` / ``xs:include`` / ``xs:redefine`` ``schemaLocation`` and ``wsdl:import``
  ``location`` that points into ``schemas/`` replaced by ``<path>?xsd=<name>``, ``name`` being the
  file's path relative to ``schemas/``,

so that a WSDL client (zeep, node-soap, wsimport, svcutil) builds itself from that one URL.
``GET <path>?xsd=<name>`` returns one of those schema documents, rewritten the same way. Only files
reachable from the endpoint's WSDL through its imports are served; anything else is a 404.
``GET <path>`` alone returns a short text page naming the endpoint and its WSDL URL.

The files are static, so each rewritten document is built once per (file, base URL) and kept in a
bounded cache: a client inventing Host headers cannot make the cache grow without limit.
"""

from __future__ import annotations

import functools
import posixpath
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, urlsplit

from lxml import etree
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

if TYPE_CHECKING:
    from xds.soap.dispatch import Endpoint

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"

XSD_NS = "http://www.w3.org/2001/XMLSchema"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
SOAP12_BINDING_NS = "http://schemas.xmlsoap.org/wsdl/soap12/"
SOAP11_BINDING_NS = "http://schemas.xmlsoap.org/wsdl/soap/"

# (element, attribute holding the location of another document)
_REFERENCES = (
    (f"{{{XSD_NS}}}import", "schemaLocation"),
    (f"{{{XSD_NS}}}include", "schemaLocation"),
    (f"{{{XSD_NS}}}redefine", "schemaLocation"),
    (f"{{{WSDL_NS}}}import", "location"),
)
_ADDRESSES = (f"{{{SOAP12_BINDING_NS}}}address", f"{{{SOAP11_BINDING_NS}}}address")
_SERVABLE_SUFFIXES = (".xsd", ".wsdl")

XML_MEDIA_TYPE = "text/xml; charset=utf-8"
CACHE_SIZE = 128

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_blank_text=False)


def respond(request: Request, endpoint: Endpoint) -> Response:
    """Answer a GET on ``endpoint``: its WSDL, one of its schemas, or a description page."""
    params = request.query_params
    base = f"{request.url.scheme}://{request.url.netloc}"
    wsdl_name = endpoint.wsdl
    if any(key.lower() == "wsdl" for key in params.keys()):
        if not wsdl_name or not _is_servable(wsdl_name):
            return _not_found("This endpoint publishes no WSDL")
        return Response(_rendered(wsdl_name, base, endpoint.path), media_type=XML_MEDIA_TYPE)
    if "xsd" in params:
        name = params["xsd"]
        if not wsdl_name or not _is_servable(wsdl_name) or name not in _documents_of(wsdl_name):
            return _not_found(f"No schema {name!r} at this endpoint")
        return Response(_rendered(name, base, endpoint.path), media_type=XML_MEDIA_TYPE)
    return PlainTextResponse(_description(endpoint, base))


def _description(endpoint: Endpoint, base: str) -> str:
    url = base + endpoint.path
    lines = [f"SOAP 1.2 endpoint {endpoint.name!r} at {url}"]
    if endpoint.wsdl:
        lines.append(f"WSDL: {url}?wsdl")
    else:
        lines.append("No WSDL is published for this endpoint.")
    actions = sorted(endpoint.operations)
    if actions:
        lines.append("Operations (wsa:Action):")
        lines.extend(f"  {action}" for action in actions)
    return "\n".join(lines) + "\n"


def _not_found(text: str) -> Response:
    return PlainTextResponse(text + "\n", status_code=404)


# --- files under schemas/ ---


def _is_servable(name: str) -> bool:
    """True when ``name`` is a normalised relative path to a .xsd/.wsdl file inside SCHEMAS_DIR."""
    if not name or "\\" in name or "\x00" in name or name.startswith("/") or ":" in name:
        return False
    if posixpath.normpath(name) != name or any(part in ("", ".", "..") for part in name.split("/")):
        return False
    if not name.endswith(_SERVABLE_SUFFIXES):
        return False
    root = SCHEMAS_DIR.resolve()
    path = (root / name).resolve()
    return path.is_relative_to(root) and path.is_file()


def _local_target(referrer: str, location: str) -> str | None:
    """The schemas/-relative name ``location`` (as written in ``referrer``) points to, if local."""
    if not location or urlsplit(location).scheme or location.startswith("/"):
        return None
    target = posixpath.normpath(posixpath.join(posixpath.dirname(referrer), location.split("#")[0]))
    return target if _is_servable(target) else None


def _parse(name: str) -> etree._ElementTree:
    return etree.parse(str(SCHEMAS_DIR / name), _PARSER)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _documents_of(wsdl_name: str) -> frozenset[str]:
    """Every document reachable from ``wsdl_name`` through imports and includes, itself included."""
    seen = {wsdl_name}
    pending = [wsdl_name]
    while pending:
        name = pending.pop()
        tree = _parse(name)
        for tag, attribute in _REFERENCES:
            for element in tree.iter(tag):
                target = _local_target(name, element.get(attribute, ""))
                if target and target not in seen:
                    seen.add(target)
                    pending.append(target)
    return frozenset(seen)


@functools.lru_cache(maxsize=CACHE_SIZE)
def _rendered(name: str, base: str, endpoint_path: str) -> bytes:
    """``name`` with its addresses and document references pointing at ``base + endpoint_path``."""
    tree = _parse(name)
    endpoint_url = base + endpoint_path
    for tag in _ADDRESSES:
        for element in tree.iter(tag):
            element.set("location", endpoint_url)
    for tag, attribute in _REFERENCES:
        for element in tree.iter(tag):
            target = _local_target(name, element.get(attribute, ""))
            if target:
                element.set(attribute, f"{endpoint_url}?xsd={quote(target, safe='/')}")
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")
