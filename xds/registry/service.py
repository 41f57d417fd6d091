"""The Document Registry's SOAP operations: ITI-42 Register Document Set-b (ITI TF-2b 3.42) and
ITI-18 Registry Stored Query (ITI TF-2a 3.18, :mod:`xds.registry.stored_query`).

ITI-42's body is an ``lcm:SubmitObjectsRequest``; the answer an ``rs:RegistryResponse``, Success or
Failure with its RegistryErrorList (ITI TF-2b 3.42.4.2). IHE errors travel in the response, never
as SOAP faults.
"""

from __future__ import annotations

import logging
import time

from lxml import etree

from xds.metadata.errors import has_errors
from xds.metadata.response import registry_response
from xds.metadata.rules import Rule
from xds.namespaces import LCM
from xds.soap.dispatch import Endpoint
from xds.soap.message import SoapRequest, SoapResponse

log = logging.getLogger("xds.registry")

ITI42_ACTION = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ITI42_RESPONSE_ACTION = "urn:ihe:iti:2007:RegisterDocumentSet-bResponse"
_SUBMIT_OBJECTS_REQUEST = f"{{{LCM}}}SubmitObjectsRequest"


def register_operations(endpoint: Endpoint, registry) -> None:  # type: ignore[no-untyped-def]
    """Add the registry's transactions to ``endpoint``: ITI-42 and ITI-18."""
    from xds.registry import stored_query

    def register_document_set_b(request: SoapRequest) -> SoapResponse:
        started = time.monotonic()
        body = request.body_element
        audit = None
        if body.tag != _SUBMIT_OBJECTS_REQUEST:
            errors = [Rule.NOT_A_SUBMISSION.error(element=etree.QName(body).localname)]
        else:
            from xds.audit.context import submission_context
            from xds.metadata import ebrim

            submission = ebrim.parse_submit_objects_request(body)
            # the audit context as the request has it (registration changes ids): parsed once,
            # not again by the endpoint guard
            audit = submission_context(submission)
            errors = registry.register(submission)
        log.info(
            "ITI-42 from %s: %s%s in %.0f ms",
            request.client_host or "-",
            "Failure" if has_errors(errors) else "Success",
            f" ({', '.join(sorted({e.code for e in errors}))})" if errors else "",
            (time.monotonic() - started) * 1000,
        )
        return SoapResponse(registry_response(errors), ITI42_RESPONSE_ACTION, audit=audit)

    def registry_stored_query(request: SoapRequest) -> SoapResponse:
        return stored_query.answer(registry, request)

    endpoint.add_operation(ITI42_ACTION, ITI42_RESPONSE_ACTION, register_document_set_b, "RegisterDocumentSet-b")
    endpoint.add_operation(stored_query.ACTION, stored_query.RESPONSE_ACTION, registry_stored_query, "RegistryStoredQuery")
