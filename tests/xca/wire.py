"""XCA wire messages built by hand, and their answers read with the standard library's MIME parser
(independent of our MTOM codec and of the gateway's client)."""

from __future__ import annotations

import email
import email.policy
import uuid
from dataclasses import dataclass, field
from urllib.parse import unquote

import httpx
from lxml import etree

from xds.namespaces import QUERY, RIM, RS, SOAP12, WSA, XDSB, XDSI, XOP

ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI38 = "urn:ihe:iti:2007:CrossGatewayQuery"
ITI39 = "urn:ihe:iti:2007:CrossGatewayRetrieve"
ITI43 = "urn:ihe:iti:2007:RetrieveDocumentSet"
RAD69 = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
RAD75 = "urn:ihe:rad:2011:CrossGatewayRetrieveImagingDocumentSet"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
EXPLICIT_VR_LE = "1.2.840.10008.1.2.1"
NS = {"env": SOAP12, "wsa": WSA, "rs": RS, "rim": RIM, "query": QUERY, "xdsb": XDSB, "xop": XOP}


def soap(body: etree._Element, action: str) -> bytes:
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"env": SOAP12, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP12}}}Header")
    etree.SubElement(header, f"{{{WSA}}}Action", {f"{{{SOAP12}}}mustUnderstand": "1"}).text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(env, f"{{{SOAP12}}}Body").append(body)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def post(url: str, payload: bytes, timeout: float = 30) -> httpx.Response:
    return httpx.post(url, content=payload, headers={"content-type": "application/soap+xml; charset=UTF-8"},
                      timeout=timeout)


# --- queries ---


def stored_query(query_id: str, action: str, home: str | None = None, return_type: str = "LeafClass",
                 **slots: str) -> bytes:
    req = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(req, f"{{{QUERY}}}ResponseOption", returnComposedObjects="true", returnType=return_type)
    q = etree.SubElement(req, f"{{{RIM}}}AdhocQuery", id=query_id)
    if home:
        q.set("home", home)
    for name, value in slots.items():
        slot = etree.SubElement(q, f"{{{RIM}}}Slot", name=name)
        etree.SubElement(etree.SubElement(slot, f"{{{RIM}}}ValueList"), f"{{{RIM}}}Value").text = value
    return soap(req, action)


def find_documents(patient_id: str, action: str = ITI18, **kw: str) -> bytes:
    return stored_query(FIND_DOCUMENTS, action, **kw, **{
        "$XDSDocumentEntryPatientId": f"'{patient_id}'", "$XDSDocumentEntryStatus": f"('{APPROVED}')"})


def get_documents(unique_ids: list[str], action: str = ITI18, home: str | None = None) -> bytes:
    values = ", ".join(f"'{u}'" for u in unique_ids)
    return stored_query(GET_DOCUMENTS, action, home=home, **{"$XDSDocumentEntryUniqueId": f"({values})"})


@dataclass
class Entry:
    entry_uuid: str
    unique_id: str
    home: str | None
    mime_type: str
    repository_unique_id: str
    reference_ids: list[str]

    @property
    def study_uid(self) -> str | None:
        for r in self.reference_ids:
            if r.endswith("urn:ihe:iti:xds:2016:studyInstanceUID"):
                return r.split("^", 1)[0]
        return None


@dataclass
class QueryAnswer:
    action: str
    status: str
    errors: list[tuple[str, str, str]]  # (code, location, context)
    entries: list[Entry]
    objects: list[etree._Element]

    def codes(self) -> list[str]:
        return [e[0] for e in self.errors]


def read_query(response: httpx.Response) -> QueryAnswer:
    root = envelope_of(response.headers.get("content-type", ""), response.content)
    resp = root.find(".//query:AdhocQueryResponse", NS)
    assert resp is not None, response.content[:2000]
    entries = []
    for eo in resp.iterfind(".//rim:ExtrinsicObject", NS):
        uid = next((e.get("value") for e in eo.iterfind("rim:ExternalIdentifier", NS)
                    if e.get("identificationScheme") == DE_UNIQUE_ID), "")
        slots = {s.get("name"): [v.text for v in s.iterfind(".//rim:Value", NS)] for s in eo.iterfind("rim:Slot", NS)}
        entries.append(Entry(eo.get("id"), uid, eo.get("home"), eo.get("mimeType"),
                             (slots.get("repositoryUniqueId") or [""])[0],
                             slots.get("urn:ihe:iti:xds:2013:referenceIdList") or []))
    return QueryAnswer(
        action=root.findtext("env:Header/wsa:Action", namespaces=NS),
        status=resp.get("status").rsplit(":", 1)[-1],
        errors=[(e.get("errorCode"), e.get("location"), e.get("codeContext")) for e in resp.iterfind(".//rs:RegistryError", NS)],
        entries=entries,
        objects=list(resp.find("rim:RegistryObjectList", NS)),
    )


# --- retrieves ---


def retrieve_documents(requests: list[tuple[str | None, str, str]], action: str = ITI43) -> bytes:
    """ITI-43 / ITI-39 for (homeCommunityId, repositoryUniqueId, documentUniqueId) triples."""
    req = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": XDSB})
    for home, repository, document in requests:
        dr = etree.SubElement(req, f"{{{XDSB}}}DocumentRequest")
        if home:
            etree.SubElement(dr, f"{{{XDSB}}}HomeCommunityId").text = home
        etree.SubElement(dr, f"{{{XDSB}}}RepositoryUniqueId").text = repository
        etree.SubElement(dr, f"{{{XDSB}}}DocumentUniqueId").text = document
    return soap(req, action)


@dataclass
class InstanceRequest:
    home: str | None
    repository: str
    study: str
    series: str
    instance: str


def retrieve_imaging(requests: list[InstanceRequest], action: str = RAD69,
                     transfer_syntaxes: tuple[str, ...] = (EXPLICIT_VR_LE,)) -> bytes:
    req = etree.Element(f"{{{XDSI}}}RetrieveImagingDocumentSetRequest", nsmap={"iherad": XDSI, "xdsb": XDSB})
    studies: dict[str, dict[str, list[InstanceRequest]]] = {}
    for r in requests:
        studies.setdefault(r.study, {}).setdefault(r.series, []).append(r)
    for study, series in studies.items():
        st = etree.SubElement(req, f"{{{XDSI}}}StudyRequest", studyInstanceUID=study)
        for series_uid, items in series.items():
            se = etree.SubElement(st, f"{{{XDSI}}}SeriesRequest", seriesInstanceUID=series_uid)
            for r in items:
                dr = etree.SubElement(se, f"{{{XDSB}}}DocumentRequest")
                if r.home:
                    etree.SubElement(dr, f"{{{XDSB}}}HomeCommunityId").text = r.home
                etree.SubElement(dr, f"{{{XDSB}}}RepositoryUniqueId").text = r.repository
                etree.SubElement(dr, f"{{{XDSB}}}DocumentUniqueId").text = r.instance
    tsl = etree.SubElement(req, f"{{{XDSI}}}TransferSyntaxUIDList")
    for ts in transfer_syntaxes:
        etree.SubElement(tsl, f"{{{XDSI}}}TransferSyntaxUID").text = ts
    return soap(req, action)


@dataclass
class RetrieveAnswer:
    action: str
    status: str
    errors: list[tuple[str, str, str]] = field(default_factory=list)
    documents: dict[str, bytes] = field(default_factory=dict)  # DocumentUniqueId -> content
    homes: dict[str, str] = field(default_factory=dict)
    mime_types: dict[str, str] = field(default_factory=dict)

    def codes(self) -> list[str]:
        return [e[0] for e in self.errors]


def _parts(content_type: str, body: bytes) -> list:
    msg = email.message_from_bytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body, policy=email.policy.HTTP
    )
    return list(msg.iter_parts())


def read_retrieve(response: httpx.Response) -> RetrieveAnswer:
    content_type = response.headers.get("content-type", "")
    assert content_type.lower().startswith("multipart/related"), (content_type, response.content[:2000])
    parts = _parts(content_type, response.content)
    root = etree.fromstring(parts[0].get_payload(decode=True))
    by_cid = {p["Content-ID"].strip().strip("<>"): p.get_payload(decode=True) for p in parts[1:]}
    rr = root.find(".//rs:RegistryResponse", NS)
    answer = RetrieveAnswer(
        action=root.findtext("env:Header/wsa:Action", namespaces=NS),
        status=rr.get("status").rsplit(":", 1)[-1],
        errors=[(e.get("errorCode"), e.get("location"), e.get("codeContext")) for e in rr.iterfind(".//rs:RegistryError", NS)],
    )
    for dr in root.iterfind(".//xdsb:DocumentResponse", NS):
        uid = dr.findtext("xdsb:DocumentUniqueId", namespaces=NS)
        href = dr.find("xdsb:Document/xop:Include", NS).get("href")
        answer.documents[uid] = by_cid[unquote(href[4:])]
        answer.homes[uid] = dr.findtext("xdsb:HomeCommunityId", namespaces=NS)
        answer.mime_types[uid] = dr.findtext("xdsb:mimeType", namespaces=NS)
    return answer


def envelope_of(content_type: str, body: bytes) -> etree._Element:
    if content_type.lower().startswith("multipart/"):
        body = _parts(content_type, body)[0].get_payload(decode=True)
    return etree.fromstring(body)
