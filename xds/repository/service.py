"""The Document Repository's SOAP operations on its endpoint (``/xds/repository``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from xds.repository import provide, retrieve
from xds.soap.message import SoapRequest, SoapResponse

if TYPE_CHECKING:
    from xds.repository import Repository
    from xds.soap.dispatch import Endpoint


def register_operations(endpoint: Endpoint, repository: Repository) -> None:
    """ITI-41 (and RAD-68, same action) and ITI-43 on ``endpoint``."""

    def provide_and_register(request: SoapRequest) -> SoapResponse:
        return provide.handle(repository, request)

    def retrieve_document_set(request: SoapRequest) -> SoapResponse:
        return retrieve.handle(repository, request)

    endpoint.add_operation(provide.ACTION, provide.RESPONSE_ACTION, provide_and_register, "ITI-41")
    endpoint.add_operation(retrieve.ACTION, retrieve.RESPONSE_ACTION, retrieve_document_set, "ITI-43")
