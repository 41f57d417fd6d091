"""ITI-43 Retrieve Document Set: the Document Repository's side (ITI TF-2b 3.43.4).

Each xdsb:DocumentRequest names a repositoryUniqueId and a document uniqueId (and may carry a
homeCommunityId, echoed back). Documents come from the repository's own index and store, never
from the registry; they go out as XOP parts streamed from the store (the response is always MTOM,
ITI TF-2b 3.43.5.1). A request for another repository is XDSUnknownRepositoryId, for a document
this repository does not hold XDSDocumentUniqueIdError; with some documents returned the status
is PartialSuccess, with none Failure (ITI TF-2b 3.43.4.2.3).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from lxml import etree

from xds.audit.context import AuditContext, DocumentRef
from xds.consent.requester import Requester, requester_of
from xds.consent.retrieval import withheld_by_repository
from xds.metadata import response
from xds.metadata.errors import RegistryError, has_errors
from xds.metadata.rules import Rule
from xds.namespaces import XDSB
from xds.repository.store import DocumentNotFound, StoreError
from xds.soap import mtom
from xds.soap.fault import SoapFault
from xds.soap.message import Attachment, SoapRequest, SoapResponse, xop_include

if TYPE_CHECKING:
    from xds.repository import Repository

log = logging.getLogger("xds.repository")

ACTION = "urn:ihe:iti:2007:RetrieveDocumentSet"
RESPONSE_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"


@dataclass(frozen=True)
class DocumentRequest:
    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass
class RetrievedDocument:
    request: DocumentRequest
    mime_type: str
    attachment: Attachment


def read_request(body: etree._Element) -> list[DocumentRequest]:
    if body.tag != f"{{{XDSB}}}RetrieveDocumentSetRequest":
        raise SoapFault("Sender", "Expected xdsb:RetrieveDocumentSetRequest in the SOAP Body")
    out = []
    for dr in body.findall(f"{{{XDSB}}}DocumentRequest"):
        out.append(
            DocumentRequest(
                repository_unique_id=(dr.findtext(f"{{{XDSB}}}RepositoryUniqueId") or "").strip(),
                document_unique_id=(dr.findtext(f"{{{XDSB}}}DocumentUniqueId") or "").strip(),
                home_community_id=(dr.findtext(f"{{{XDSB}}}HomeCommunityId") or "").strip() or None,
            )
        )
    if not out:
        raise SoapFault("Sender", "The RetrieveDocumentSetRequest has no DocumentRequest")
    return out


def retrieve(
    repository: Repository, requests: list[DocumentRequest], requester: Requester | None = None
) -> tuple[list[RetrievedDocument], list[RegistryError]]:
    """The documents found (in request order) and an error for each one not returned. A document
    consent directives withhold from ``requester`` (None: an external requester) is answered as
    one this repository does not hold, XDSDocumentUniqueIdError (:mod:`xds.consent.retrieval`)."""
    ours = repository.repository_unique_id
    wanted = [r.document_unique_id for r in requests if r.repository_unique_id == ours]
    indexed = repository.index.get_many(wanted) if wanted else {}
    withheld = withheld_by_repository(repository, [u for u, d in indexed.items() if d.registered], requester)
    found: list[RetrievedDocument] = []
    errors: list[RegistryError] = []
    for r in requests:
        uid = r.document_unique_id
        if r.repository_unique_id != ours:
            errors.append(Rule.UNKNOWN_REPOSITORY_ID.error(location=uid, value=r.repository_unique_id))
            continue
        doc = indexed.get(uid)
        if doc is None or not doc.registered or uid in withheld:
            errors.append(Rule.DOCUMENT_NOT_AVAILABLE.error(location=uid, value=uid))
            continue
        try:
            opener = repository.store.opener(doc.storage_key)
        except (DocumentNotFound, StoreError) as e:
            log.error("ITI-43: document %s is indexed but its object %s is unreadable: %r", uid, doc.storage_key, e)
            errors.append(Rule.DOCUMENT_NOT_AVAILABLE.error(location=uid, value=uid))
            continue
        attachment = Attachment(content_type=doc.mime_type or "application/octet-stream", opener=opener, size=doc.size)
        found.append(RetrievedDocument(r, doc.mime_type, attachment))
    return found, errors


def status_of(found: list[RetrievedDocument], errors: list[RegistryError]) -> str:
    if not has_errors(errors):
        return response.SUCCESS
    return response.PARTIAL_SUCCESS if found else response.FAILURE


def build_response(found: list[RetrievedDocument], errors: list[RegistryError]) -> etree._Element:
    out = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetResponse", nsmap={"xdsb": XDSB})
    out.append(response.registry_response(errors, status=status_of(found, errors)))
    for doc in found:
        dr = etree.SubElement(out, f"{{{XDSB}}}DocumentResponse")
        if doc.request.home_community_id:
            etree.SubElement(dr, f"{{{XDSB}}}HomeCommunityId").text = doc.request.home_community_id
        etree.SubElement(dr, f"{{{XDSB}}}RepositoryUniqueId").text = doc.request.repository_unique_id
        etree.SubElement(dr, f"{{{XDSB}}}DocumentUniqueId").text = doc.request.document_unique_id
        etree.SubElement(dr, f"{{{XDSB}}}mimeType").text = doc.mime_type
        mtom.assign_content_id(doc.attachment)
        xop_include(etree.SubElement(dr, f"{{{XDSB}}}Document"), doc.attachment)
    return out


def handle(repository: Repository, request: SoapRequest) -> SoapResponse:
    requests = read_request(request.body_element)
    found, errors = retrieve(repository, requests, requester_of(request))
    disclosed = [d.request for d in found] or requests  # ITI TF-2b 3.43.5.1.2: the documents
    audit = AuditContext(documents=[DocumentRef(r.document_unique_id, r.repository_unique_id,
                                                r.home_community_id or "") for r in disclosed])
    return SoapResponse(
        build_response(found, errors),
        RESPONSE_ACTION,
        attachments=[d.attachment for d in found],
        mtom=True,
        audit=audit,
    )
