"""XCA / XCA-I Responding Gateway of a DIR node on ``/xca/respond`` (ITI TF-1 18, RAD TF-1 29).

* ITI-38 Cross Gateway Query (ITI TF-2b 3.38): the stored query answered by this node's registry,
  every returned object carrying this community's homeCommunityId (3.38.4.1.3).
* ITI-39 Cross Gateway Retrieve (ITI TF-2b 3.39): the documents of this node's repository, streamed
  from its store as XOP parts.
* RAD-75 Cross Gateway Retrieve Imaging Document Set (RAD TF-3 4.75): the instances of this node's
  Imaging Document Source (registered when the node has one).

homeCommunityId checks (ITI TF-2b 3.38.4.1.2.1, 3.39.4.1.2): a query without a patient id (the Get
queries) must name this community in ``AdhocQuery/@home``, else XDSMissingHomeCommunityId; every
DocumentRequest of a retrieve must carry a HomeCommunityId, else XDSMissingHomeCommunityId for that
document. A homeCommunityId other than ours is XDSUnknownCommunity.
"""

from __future__ import annotations

import logging
from typing import Any

from xds.audit.context import AuditContext, DocumentRef
from xds.consent.requester import requester_of
from xds.metadata.errors import RegistryError, XdsError
from xds.metadata.rules import Rule
from xds.soap.dispatch import Endpoint
from xds.soap.message import SoapRequest, SoapResponse

log = logging.getLogger("xca.responding_gateway")

ITI38_ACTION = "urn:ihe:iti:2007:CrossGatewayQuery"
ITI38_RESPONSE_ACTION = "urn:ihe:iti:2007:CrossGatewayQueryResponse"
ITI39_ACTION = "urn:ihe:iti:2007:CrossGatewayRetrieve"
ITI39_RESPONSE_ACTION = "urn:ihe:iti:2007:CrossGatewayRetrieveResponse"
RAD75_ACTION = "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet"
RAD75_RESPONSE_ACTION = "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSetResponse"


def check_home(home: str | None, ours: str, what: str, location: str = "") -> RegistryError | None:
    """The error for a homeCommunityId that is missing or not ``ours``, else None."""
    if not home:
        return Rule.MISSING_HOME_COMMUNITY_ID.error(location=location, what=what)
    if home != ours:
        return Rule.UNKNOWN_COMMUNITY.error(location=location, value=home)
    return None


class RespondingGateway:
    """The three transactions over the node's own registry, repository and imaging source."""

    def __init__(self, home_community_id: str, registry: Any = None, repository: Any = None, imaging: Any = None) -> None:
        self.home_community_id = home_community_id
        self.registry = registry
        self.repository = repository
        self.imaging = imaging

    # --- ITI-38 ---

    def cross_gateway_query(self, request: SoapRequest) -> SoapResponse:
        from xds.registry import stored_query as sq

        body = request.body_element
        try:
            query = sq.read_request(body)
            definition = sq.CATALOGUE.get(query.query_id)
            if query.home and query.home != self.home_community_id:
                raise Rule.UNKNOWN_COMMUNITY.exception(value=query.home)
            if definition is not None and not definition.patient_scoped and not query.home:
                # ITI TF-2b 3.38.4.1.2.1: queries without a patient id name the community
                raise Rule.MISSING_HOME_COMMUNITY_ID.exception(what=f"Stored query {definition.name}")
        except XdsError as e:
            return SoapResponse(sq.adhoc_query_response([], e.errors), ITI38_RESPONSE_ACTION)
        answer = sq.stored_query(
            self.registry.engine,
            body,
            config=self.registry.settings,
            home_community_id=self.home_community_id,
            requester=requester_of(request),
        )
        return SoapResponse(answer, ITI38_RESPONSE_ACTION)

    # --- ITI-39 ---

    def cross_gateway_retrieve(self, request: SoapRequest) -> SoapResponse:
        from xds.repository import retrieve

        requests = retrieve.read_request(request.body_element)
        errors: list[RegistryError] = []
        wanted = []
        for r in requests:
            error = check_home(r.home_community_id, self.home_community_id, "DocumentRequest", r.document_unique_id)
            if error is None:
                wanted.append(r)
            else:
                errors.append(error)
        found, not_found = retrieve.retrieve(self.repository, wanted, requester_of(request)) if wanted else ([], [])
        errors += not_found
        log.info("ITI-39 from %s: %d document(s), %d error(s)", request.client_host or "-", len(found), len(errors))
        disclosed = [d.request for d in found] or requests  # ITI TF-2b 3.39.5.1.2, as ITI-43
        audit = AuditContext(documents=[DocumentRef(r.document_unique_id, r.repository_unique_id,
                                                    r.home_community_id or "") for r in disclosed])
        return SoapResponse(
            retrieve.build_response(found, errors),
            ITI39_RESPONSE_ACTION,
            attachments=[d.attachment for d in found],
            mtom=True,
            audit=audit,
        )

    # --- RAD-75 ---

    def cross_gateway_retrieve_imaging(self, request: SoapRequest) -> SoapResponse:
        from xds.imaging import retrieve

        requests, syntaxes = retrieve.read_request(request.body_element)
        errors: list[RegistryError] = []
        wanted = []
        for r in requests:
            error = check_home(r.home_community_id, self.home_community_id, "DocumentRequest", r.document_unique_id)
            if error is None:
                wanted.append(r)
            else:
                errors.append(error)
        who = requester_of(request)
        found, not_found = retrieve.retrieve(self.imaging, wanted, syntaxes, who) if wanted else ([], [])
        errors += not_found
        log.info("RAD-75 from %s: %d instance(s), %d error(s)", request.client_host or "-", len(found), len(errors))
        return SoapResponse(
            retrieve.build_response(found, errors),
            RAD75_RESPONSE_ACTION,
            attachments=[f.attachment for f in found],
            mtom=True,
            audit=retrieve.audit_context(self.imaging, requests, found),
        )


def register_operations(endpoint: Endpoint, gateway: RespondingGateway) -> None:
    """ITI-38 (with a registry), ITI-39 (with a repository), RAD-75 (with an imaging source)."""
    if gateway.registry is not None:
        endpoint.add_operation(ITI38_ACTION, ITI38_RESPONSE_ACTION, gateway.cross_gateway_query, "ITI-38")
    if gateway.repository is not None:
        endpoint.add_operation(ITI39_ACTION, ITI39_RESPONSE_ACTION, gateway.cross_gateway_retrieve, "ITI-39")
    if gateway.imaging is not None:
        endpoint.add_operation(
            RAD75_ACTION, RAD75_RESPONSE_ACTION, gateway.cross_gateway_retrieve_imaging, "RAD-75"
        )
