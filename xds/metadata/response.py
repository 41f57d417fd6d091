"""rs:RegistryResponse and query:AdhocQueryResponse (ITI TF-3 4.2.4; ebRS 3.0).

Status follows from the errors: Failure when any has Error severity, Success otherwise (warnings
allowed). PartialSuccess (ITI TF-3 4.2.4.2: some but not all of a request was done, e.g. an XCA
query where a community did not answer) only when the caller says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from lxml import etree

from xds.metadata.errors import ERROR, WARNING, RegistryError, has_errors
from xds.namespaces import QUERY, RIM, RS

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
FAILURE = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Failure"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"
STATUSES = (SUCCESS, FAILURE, PARTIAL_SUCCESS)

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=True)


def response_status(errors: Iterable[RegistryError]) -> str:
    return FAILURE if has_errors(errors) else SUCCESS


def registry_error_list(errors: Sequence[RegistryError]) -> etree._Element:
    """rs:RegistryErrorList with highestSeverity; one rs:RegistryError per entry."""
    el = etree.Element(f"{{{RS}}}RegistryErrorList", nsmap={"rs": RS})
    el.set("highestSeverity", ERROR if has_errors(errors) else WARNING)
    for e in errors:
        re_ = etree.SubElement(el, f"{{{RS}}}RegistryError")
        re_.set("codeContext", e.context)
        re_.set("errorCode", e.code)
        re_.set("severity", e.severity)
        if e.location:
            re_.set("location", e.location)
    return el


def _check_status(status: str | None, errors: Sequence[RegistryError]) -> str:
    if status is None:
        return response_status(errors)
    if status not in STATUSES:
        raise ValueError(f"not a RegistryResponse status: {status}")
    return status


def registry_response(
    errors: Iterable[RegistryError] = (), *, status: str | None = None, request_id: str | None = None
) -> etree._Element:
    """rs:RegistryResponse: the answer to ITI-41, ITI-42, ITI-62 ... (RegistryErrorList only when
    there is something to report)."""
    errs = list(errors)
    el = etree.Element(f"{{{RS}}}RegistryResponse", nsmap={"rs": RS})
    el.set("status", _check_status(status, errs))
    if request_id:
        el.set("requestId", request_id)
    if errs:
        el.append(registry_error_list(errs))
    return el


def adhoc_query_response(
    objects: Iterable[etree._Element | bytes] = (),
    errors: Iterable[RegistryError] = (),
    *,
    status: str | None = None,
    total_result_count: int | None = None,
) -> etree._Element:
    """query:AdhocQueryResponse (ITI-18, ITI-38) holding ``objects`` in its RegistryObjectList.

    ``objects`` are elements or pre-serialised fragments (the registry's stored canonical ebRIM,
    each a complete element with its own namespace declaration); consecutive fragments are parsed
    in one pass."""
    errs = list(errors)
    el = etree.Element(f"{{{QUERY}}}AdhocQueryResponse", nsmap={"query": QUERY, "rs": RS, "rim": RIM})
    el.set("status", _check_status(status, errs))
    if total_result_count is not None:
        el.set("totalResultCount", str(total_result_count))
    if errs:
        el.append(registry_error_list(errs))
    rol = etree.SubElement(el, f"{{{RIM}}}RegistryObjectList")
    pending: list[bytes] = []
    for obj in objects:
        if isinstance(obj, bytes | bytearray | memoryview):
            fragment = bytes(obj)
            if fragment.startswith(b"<?xml"):
                fragment = fragment[fragment.index(b"?>") + 2 :]
            pending.append(fragment)
            continue
        _flush(rol, pending)
        rol.append(obj)
    _flush(rol, pending)
    return el


def _flush(rol: etree._Element, fragments: list[bytes]) -> None:
    if not fragments:
        return
    wrapper = etree.fromstring(b"<w>" + b"".join(fragments) + b"</w>", _PARSER)
    rol.extend(list(wrapper))
    fragments.clear()
