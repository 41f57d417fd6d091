"""What consumers send a DIR for imaging, built by hand: ITI-18 FindDocuments /
FindDocumentsByReferenceId and RAD-69 RetrieveImagingDocumentSet requests; their answers read with
the standard library's MIME parser (independent of our MTOM codec)."""

from __future__ import annotations

import email
import email.policy
import uuid
from dataclasses import dataclass, field

from lxml import etree

from xds.namespaces import QUERY, RIM, RS, SOAP12, WSA, XDSB, XDSI, XOP

ITI18 = "urn:ihe:iti:2007:RegistryStoredQuery"
RAD69 = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
FIND_DOCUMENTS = "urn:uuid:14d4debf-8f97-4251-9a74-a90016b0af0d"
FIND_DOCUMENTS_BY_REFERENCE_ID = "urn:uuid:12941a89-e02e-4be5-967c-ce4bfc8fe492"
APPROVED = "urn:oasis:names:tc:ebxml-regrep:StatusType:Approved"
SOAP_CT = "application/soap+xml; charset=UTF-8"
NS = {"env": SOAP12, "wsa": WSA, "rs": RS, "rim": RIM, "query": QUERY, "xdsb": XDSB, "xop": XOP}
DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"


def soap(body: etree._Element, action: str) -> bytes:
    env = etree.Element(f"{{{SOAP12}}}Envelope", nsmap={"env": SOAP12, "wsa": WSA})
    header = etree.SubElement(env, f"{{{SOAP12}}}Header")
    a = etree.SubElement(header, f"{{{WSA}}}Action", {f"{{{SOAP12}}}mustUnderstand": "1"})
    a.text = action
    etree.SubElement(header, f"{{{WSA}}}MessageID").text = f"urn:uuid:{uuid.uuid4()}"
    etree.SubElement(etree.SubElement(env, f"{{{SOAP12}}}Body"), body.tag).extend(list(body))
    env[1][0].attrib.update(body.attrib)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def stored_query(query_id: str, **slots: list[str]) -> bytes:
    req = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(req, f"{{{QUERY}}}ResponseOption", returnComposedObjects="true", returnType="LeafClass")
    q = etree.SubElement(req, f"{{{RIM}}}AdhocQuery", id=query_id)
    for name, values in slots.items():
        slot = etree.SubElement(q, f"{{{RIM}}}Slot", name=name)
        vl = etree.SubElement(slot, f"{{{RIM}}}ValueList")
        for v in values:
            etree.SubElement(vl, f"{{{RIM}}}Value").text = v
    return soap(req, ITI18)


def find_documents(patient_id: str) -> bytes:
    return stored_query(
        FIND_DOCUMENTS,
        **{"$XDSDocumentEntryPatientId": [f"'{patient_id}'"], "$XDSDocumentEntryStatus": [f"('{APPROVED}')"]},
    )


def find_documents_by_reference_id(patient_id: str, reference_id: str) -> bytes:
    return stored_query(
        FIND_DOCUMENTS_BY_REFERENCE_ID,
        **{
            "$XDSDocumentEntryPatientId": [f"'{patient_id}'"],
            "$XDSDocumentEntryStatus": [f"('{APPROVED}')"],
            "$XDSDocumentEntryReferenceIdList": [f"('{reference_id}')"],
        },
    )


def document_unique_ids(answer: bytes) -> list[str]:
    """DocumentEntry uniqueIds of an AdhocQueryResponse (LeafClass)."""
    root = etree.fromstring(answer)
    status = root.find(".//query:AdhocQueryResponse", NS).get("status")
    assert status.endswith(":Success"), answer[:3000]
    return [
        e.get("value")
        for e in root.iterfind(".//rim:ExtrinsicObject/rim:ExternalIdentifier", NS)
        if e.get("identificationScheme") == DE_UNIQUE_ID
    ]


@dataclass
class Series:
    uid: str
    instances: list[str]


def retrieve_imaging(
    repository_unique_id: str,
    studies: dict[str, list[Series]],
    transfer_syntaxes: list[str],
    home_community_id: str | None = None,
) -> bytes:
    req = etree.Element(f"{{{XDSI}}}RetrieveImagingDocumentSetRequest", nsmap={"iherad": XDSI, "xdsb": XDSB})
    for study_uid, series in studies.items():
        st = etree.SubElement(req, f"{{{XDSI}}}StudyRequest", studyInstanceUID=study_uid)
        for s in series:
            se = etree.SubElement(st, f"{{{XDSI}}}SeriesRequest", seriesInstanceUID=s.uid)
            for uid in s.instances:
                dr = etree.SubElement(se, f"{{{XDSB}}}DocumentRequest")
                if home_community_id:
                    etree.SubElement(dr, f"{{{XDSB}}}HomeCommunityId").text = home_community_id
                etree.SubElement(dr, f"{{{XDSB}}}RepositoryUniqueId").text = repository_unique_id
                etree.SubElement(dr, f"{{{XDSB}}}DocumentUniqueId").text = uid
    tsl = etree.SubElement(req, f"{{{XDSI}}}TransferSyntaxUIDList")
    for ts in transfer_syntaxes:
        etree.SubElement(tsl, f"{{{XDSI}}}TransferSyntaxUID").text = ts
    return soap(req, RAD69)


@dataclass
class RetrieveAnswer:
    action: str
    status: str
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (code, location, context)
    documents: dict[str, bytes] = field(default_factory=dict)  # DocumentUniqueId -> content
    mime_types: dict[str, str] = field(default_factory=dict)


def read_retrieve(content_type: str, body: bytes) -> RetrieveAnswer:
    assert content_type.lower().startswith("multipart/related"), content_type
    msg = email.message_from_bytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body, policy=email.policy.HTTP
    )
    parts = list(msg.iter_parts())
    root = etree.fromstring(parts[0].get_payload(decode=True))
    by_cid = {p["Content-ID"].strip("<>"): p.get_payload(decode=True) for p in parts[1:]}
    rr = root.find(".//rs:RegistryResponse", NS)
    answer = RetrieveAnswer(
        action=root.findtext("env:Header/wsa:Action", namespaces=NS),
        status=rr.get("status").rsplit(":", 1)[-1],
        errors=[(e.get("errorCode"), e.get("location"), e.get("codeContext")) for e in rr.iterfind(".//rs:RegistryError", NS)],
    )
    for dr in root.iterfind(".//xdsb:DocumentResponse", NS):
        uid = dr.findtext("xdsb:DocumentUniqueId", namespaces=NS)
        href = dr.find("xdsb:Document/xop:Include", NS).get("href")
        from urllib.parse import unquote

        answer.documents[uid] = by_cid[unquote(href[4:])]
        answer.mime_types[uid] = dr.findtext("xdsb:mimeType", namespaces=NS)
    return answer


def envelope_of(content_type: str, body: bytes) -> etree._Element:
    """The SOAP envelope of an answer, plain or the root part of an MTOM package."""
    if content_type.lower().startswith("multipart/"):
        msg = email.message_from_bytes(
            b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body, policy=email.policy.HTTP
        )
        body = next(msg.iter_parts()).get_payload(decode=True)
    return etree.fromstring(body)


def retrieve_document_set(repository_unique_id: str, document_unique_id: str) -> bytes:
    """ITI-43 for one document (how a consumer reads a manifest)."""
    req = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": XDSB})
    dr = etree.SubElement(req, f"{{{XDSB}}}DocumentRequest")
    etree.SubElement(dr, f"{{{XDSB}}}RepositoryUniqueId").text = repository_unique_id
    etree.SubElement(dr, f"{{{XDSB}}}DocumentUniqueId").text = document_unique_id
    return soap(req, "urn:ihe:iti:2007:RetrieveDocumentSet")
