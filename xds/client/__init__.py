"""A Python client for integrators of a DIR node (or any XDS.b Document Registry / Repository),
built on zeep and the node's WSDLs.

:class:`XdsClient` sends the four XDS.b transactions a Document Source or Consumer needs:

=====================  =====================================================  ======================
method                 transaction                                            endpoint
=====================  =====================================================  ======================
``register``           ITI-42 Register Document Set-b (ITI TF-2b 3.42)        registry
``provide_and_register``  ITI-41 Provide and Register Document Set-b (3.41)   repository (MTOM)
``retrieve``           ITI-43 Retrieve Document Set (ITI TF-2b 3.43)          repository (MTOM)
``stored_query``       ITI-18 Registry Stored Query (ITI TF-2a 3.18)          registry
=====================  =====================================================  ======================

Metadata goes in as :mod:`xds.metadata.model` objects (a :class:`~xds.metadata.model.Submission`)
or as an ``lcm:SubmitObjectsRequest`` element, and comes back from queries as model objects.
Documents go up as MTOM/XOP parts streamed from files or bytes (:mod:`xds.client.mtom`) and come
back as bytes. IHE errors are in the returned response (``status``, ``errors``); SOAP faults raise
``zeep.exceptions.Fault``; HTTP failures raise ``zeep.exceptions.TransportError`` or requests'
exceptions.

Example::

    from xds.client import XdsClient, FIND_DOCUMENTS, APPROVED

    client = XdsClient(registry_url="https://dir.example.org/xds/registry",
                       repository_url="https://dir.example.org/xds/repository")
    response = client.provide_and_register(submission, {"Document01": Path("report.pdf")})
    assert response.ok, response.errors
    found = client.stored_query(FIND_DOCUMENTS, {
        "$XDSDocumentEntryPatientId": "1234567890^^^&2.16.840.1.113883.4.59&ISO",
        "$XDSDocumentEntryStatus": [APPROVED],
    })
    entry = found.document_entries[0]
    [document] = client.retrieve([(entry.repository_unique_id, entry.unique_id)]).documents

The zeep clients are built from the WSDLs in the source tree's ``schemas/`` when they are there
(no network), else from ``<endpoint>?wsdl``; ``wsdl="endpoint"`` forces the latter. Mutual TLS
and other HTTP settings go through a ``requests.Session`` (``session.cert``, ``session.verify``).
:mod:`xds.client.plugins` holds what an integrator's own zeep client needs when it is built from
the official IHE WSDLs instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

import requests
import zeep
from lxml import etree
from zeep.plugins import Plugin
from zeep.transports import Transport

from xds.client.mtom import MtomTransport, XopPart
from xds.metadata import ebrim
from xds.metadata import model as m
from xds.metadata.errors import RegistryError
from xds.namespaces import LCM, RS, SOAP12

__all__ = [
    "APPROVED",
    "FIND_DOCUMENTS",
    "GET_DOCUMENTS",
    "DocumentRequest",
    "MtomTransport",
    "QueryResponse",
    "RegistryResponse",
    "RetrievedDocument",
    "RetrieveResponse",
    "XdsClient",
    "XopPart",
]

ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI41 = "urn:ihe:iti:2007:ProvideAndRegisterDocumentSet-b"
ITI42 = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"

# stored query ids (ITI TF-2a 3.18.4.1.2.3.7) most integrators start with
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
APPROVED = m.STATUS_APPROVED

SUCCESS = "urn:oasis:names:tc:ebxml-regrep:ResponseStatusType:Success"
PARTIAL_SUCCESS = "urn:ihe:iti:2007:ResponseStatusType:PartialSuccess"

SCHEMAS_DIR = Path(__file__).resolve().parents[2] / "schemas"
REGISTRY_WSDL = "XDS.b_DocumentRegistry.wsdl"
REPOSITORY_WSDL = "XDS.b_DocumentRepository.wsdl"

DocumentSource = bytes | str | os.PathLike[str] | BinaryIO


# --- answers ----------------------------------------------------------------------------------------


@dataclass
class RegistryResponse:
    """rs:RegistryResponse (and what the other answers share): status and RegistryErrorList."""

    status: str
    errors: list[RegistryError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Success (warnings allowed); PartialSuccess is not ok."""
        return self.status == SUCCESS


@dataclass
class QueryResponse(RegistryResponse):
    """query:AdhocQueryResponse: the XDS objects (LeafClass) or their ids (ObjectRef)."""

    objects: list[m.RegistryObject] = field(default_factory=list)
    object_refs: list[str] = field(default_factory=list)
    element: etree._Element | None = None  # the response element, for anything else

    @property
    def document_entries(self) -> list[m.DocumentEntry]:
        return [o for o in self.objects if isinstance(o, m.DocumentEntry)]

    @property
    def submission_sets(self) -> list[m.SubmissionSet]:
        return [o for o in self.objects if isinstance(o, m.SubmissionSet)]

    @property
    def folders(self) -> list[m.Folder]:
        return [o for o in self.objects if isinstance(o, m.Folder)]

    @property
    def associations(self) -> list[m.Association]:
        return [o for o in self.objects if isinstance(o, m.Association)]


@dataclass(frozen=True)
class DocumentRequest:
    """One xdsb:DocumentRequest of ITI-43 (``home_community_id`` for a document found over XCA)."""

    repository_unique_id: str
    document_unique_id: str
    home_community_id: str | None = None


@dataclass
class RetrievedDocument:
    repository_unique_id: str
    document_unique_id: str
    mime_type: str
    content: bytes
    home_community_id: str | None = None


@dataclass
class RetrieveResponse(RegistryResponse):
    documents: list[RetrievedDocument] = field(default_factory=list)


# --- the client -------------------------------------------------------------------------------------


class XdsClient:
    """ITI-42, ITI-41, ITI-43 and ITI-18 against a Document Registry and a Document Repository.

    ``registry_url`` / ``repository_url``: the SOAP endpoints (for a DIR node
    ``http(s)://host:port/xds/registry`` and ``.../xds/repository``); either may be left out when
    its transactions are not used. ``timeout``: seconds for connecting and for each call.
    ``session``: a ``requests.Session`` carrying TLS client certificates, proxies, auth headers.
    ``wsdl``: ``"bundled"`` (the files in ``schemas/`` when present, else the endpoint's) or
    ``"endpoint"`` (always ``<endpoint>?wsdl``).
    """

    def __init__(
        self,
        registry_url: str | None = None,
        repository_url: str | None = None,
        *,
        timeout: float = 60.0,
        session: requests.Session | None = None,
        wsdl: Literal["bundled", "endpoint"] = "bundled",
    ) -> None:
        self.registry_url = registry_url
        self.repository_url = repository_url
        self.timeout = timeout
        self.session = session or requests.Session()
        self._owns_session = session is None
        self.wsdl = wsdl
        self._replies = _LastReply()
        self._zeep: dict[str, zeep.Client] = {}
        self._lock = threading.Lock()

    # ITI-42
    def register(self, submission: m.Submission | etree._Element) -> RegistryResponse:
        """Register the metadata of documents already in a repository (ITI-42).

        Every DocumentEntry must carry hash, size and repositoryUniqueId (ITI TF-3 Table 4.3.1-3).
        """
        client = self._client("registry")
        request = self._submit_objects_request(client, submission)
        body = self._call("registry", ITI42, {k: request[k] for k in request})
        return RegistryResponse(*_status_and_errors(body))

    # ITI-41
    def provide_and_register(
        self,
        submission: m.Submission | etree._Element,
        documents: Mapping[str, DocumentSource],
        *,
        mime_types: Mapping[str, str] | None = None,
    ) -> RegistryResponse:
        """Store documents and register their metadata (ITI-41), documents as MTOM/XOP parts.

        ``documents`` maps a DocumentEntry's id (``entry_uuid``, symbolic or ``urn:uuid:``) to its
        content: ``bytes``, a path (streamed from the file) or a binary file object (read from its
        current position). A part's Content-Type is the entry's mimeType unless ``mime_types``
        says otherwise. The repository computes hash and size (ITI TF-2b 3.41.4.1.3).
        """
        client = self._client("repository")
        transport = client.transport
        assert isinstance(transport, MtomTransport)
        types = {de.entry_uuid: de.mime_type for de in _entries_of(submission)}
        types.update(mime_types or {})
        metadata = self._submit_objects_request(client, submission)
        parts = {
            doc_id: transport.part(source, types.get(doc_id) or "application/octet-stream")
            for doc_id, source in documents.items()
        }
        request = {
            "SubmitObjectsRequest": metadata,
            "Document": [{"id": doc_id, "_value_1": part} for doc_id, part in parts.items()],
        }
        try:
            body = self._call("repository", ITI41, request)
        finally:
            transport.discard(*parts.values())
        return RegistryResponse(*_status_and_errors(body))

    # ITI-43
    def retrieve(
        self, requests_: Iterable[DocumentRequest | tuple[str, str] | tuple[str, str, str]]
    ) -> RetrieveResponse:
        """Retrieve documents (ITI-43) by (repositoryUniqueId, documentUniqueId[, homeCommunityId]).

        The answer's documents are in memory (zeep reads the whole MTOM answer).
        """
        wanted = [r if isinstance(r, DocumentRequest) else DocumentRequest(*r) for r in requests_]
        request = {
            "DocumentRequest": [
                {
                    "HomeCommunityId": r.home_community_id,
                    "RepositoryUniqueId": r.repository_unique_id,
                    "DocumentUniqueId": r.document_unique_id,
                }
                for r in wanted
            ]
        }
        result, body = self._call("repository", ITI43, request, result=True)
        status, errors = _status_and_errors(body.find(f"{{{RS}}}RegistryResponse"))
        documents = [
            RetrievedDocument(
                d.RepositoryUniqueId, d.DocumentUniqueId, d.mimeType, d.Document, d.HomeCommunityId
            )
            for d in result.DocumentResponse or []
        ]
        return RetrieveResponse(status, errors, documents)

    # ITI-18
    def stored_query(
        self,
        query_id: str,
        parameters: Mapping[str, str | int | Sequence[str] | Sequence[Sequence[str]]],
        *,
        return_type: Literal["LeafClass", "ObjectRef"] = "LeafClass",
        home_community_id: str | None = None,
    ) -> QueryResponse:
        """Run a stored query (ITI-18), e.g. :data:`FIND_DOCUMENTS`.

        Parameter values are written in the query syntax of ITI TF-2a 3.18.4.1.2.3.5 for you: a
        ``str`` becomes a quoted string, an ``int`` a number, a list of strings a parenthesised
        list (OR), a list of such lists several values (AND, for the code parameters).
        """
        slots = [
            {"name": name, "ValueList": {"Value": _query_values(value)}} for name, value in parameters.items()
        ]
        adhoc_query: dict[str, Any] = {"id": query_id, "Slot": slots}
        if home_community_id:
            adhoc_query["home"] = home_community_id
        request = {
            "ResponseOption": {"returnType": return_type, "returnComposedObjects": True},
            "AdhocQuery": adhoc_query,
        }
        body = self._call("registry", ITI18, request)
        status, errors = _status_and_errors(body)
        parsed = ebrim.parse_registry_object_list(body)
        return QueryResponse(status, errors, parsed.objects, parsed.object_refs, body)

    def close(self) -> None:
        """Close the HTTP session, unless it was given to the client."""
        if self._owns_session:
            self.session.close()

    def __enter__(self) -> XdsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- zeep ---

    def _client(self, endpoint: Literal["registry", "repository"]) -> zeep.Client:
        with self._lock:
            client = self._zeep.get(endpoint)
            if client is None:
                client = self._zeep[endpoint] = self._build(endpoint)
            return client

    def _build(self, endpoint: Literal["registry", "repository"]) -> zeep.Client:
        url = self.registry_url if endpoint == "registry" else self.repository_url
        if not url:
            raise ValueError(f"this XdsClient has no {endpoint}_url")
        bundled = SCHEMAS_DIR / (REGISTRY_WSDL if endpoint == "registry" else REPOSITORY_WSDL)
        wsdl = str(bundled) if self.wsdl == "bundled" and bundled.is_file() else f"{url}?wsdl"
        options = {"session": self.session, "timeout": self.timeout, "operation_timeout": self.timeout}
        transport = MtomTransport(**options) if endpoint == "repository" else Transport(**options)
        return zeep.Client(wsdl, transport=transport, plugins=[self._replies])

    def _call(
        self,
        endpoint: Literal["registry", "repository"],
        action: str,
        request: Mapping[str, Any],
        *,
        result=False,
    ):
        """Call the operation whose wsa:Action is ``action``; return the response body element
        (and zeep's deserialised result when ``result``)."""
        client = self._client(endpoint)
        url = self.registry_url if endpoint == "registry" else self.repository_url
        binding, name = _operation(client, action)
        service = client.create_service(binding, url)
        answer = service[name](**request)
        body = self._replies.body()
        return (answer, body) if result else body

    def _submit_objects_request(self, client: zeep.Client, submission: m.Submission | etree._Element):
        """The SubmitObjectsRequest as zeep's value (parsed from its XML with the client's schema)."""
        element = (
            ebrim.serialize_submit_objects_request(submission)
            if isinstance(submission, m.Submission)
            else submission
        )
        if element.tag != f"{{{LCM}}}SubmitObjectsRequest":
            raise ValueError(f"expected lcm:SubmitObjectsRequest, got {element.tag}")
        return client.get_element(element.tag).parse(element, client.wsdl.types)


class _LastReply(Plugin):
    """Keeps the SOAP Body's first child of the last answer, per thread (zeep's own result is
    kept too, but the model objects are read from the XML)."""

    def __init__(self) -> None:
        self._local = threading.local()

    def ingress(self, envelope, http_headers, operation):
        body = envelope.find(f"{{{SOAP12}}}Body")
        self._local.body = body[0] if body is not None and len(body) else None
        return envelope, http_headers

    def body(self) -> etree._Element:
        body = getattr(self._local, "body", None)
        if body is None:
            raise RuntimeError("no SOAP answer body was received")
        self._local.body = None
        return body


def _operation(client: zeep.Client, action: str) -> tuple[str, str]:
    for binding_name, binding in client.wsdl.bindings.items():
        for name, operation in binding._operations.items():
            if operation.abstract.wsa_action == action:
                return binding_name, name
    raise LookupError(f"the WSDL has no operation for {action}")


def _status_and_errors(element: etree._Element | None) -> tuple[str, list[RegistryError]]:
    if element is None:
        raise ValueError("the answer has no RegistryResponse")
    errors = [
        RegistryError(
            e.get("errorCode", ""), e.get("codeContext", ""), e.get("severity", ""), e.get("location", "")
        )
        for e in element.iterfind(f"{{{RS}}}RegistryErrorList/{{{RS}}}RegistryError")
    ]
    return element.get("status", ""), errors


def _entries_of(submission: m.Submission | etree._Element) -> list[m.DocumentEntry]:
    if isinstance(submission, m.Submission):
        return submission.document_entries
    return ebrim.parse_submit_objects_request(submission).document_entries


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _query_values(value: str | int | Sequence[str] | Sequence[Sequence[str]]) -> list[str]:
    """Slot values of one stored-query parameter (ITI TF-2a 3.18.4.1.2.3.5)."""
    if isinstance(value, int):
        return [str(value)]
    if isinstance(value, str):
        return [_quoted(value)]
    items = list(value)
    if items and all(not isinstance(i, str) for i in items):
        return ["(" + ",".join(_quoted(v) for v in group) + ")" for group in items]  # type: ignore[union-attr]
    return ["(" + ",".join(_quoted(v) for v in items) + ")"]  # type: ignore[arg-type]
