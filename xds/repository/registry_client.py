"""How the Document Repository talks to its Document Registry: in process, or ITI-42 / ITI-18 over
SOAP when ``repository.registry_url`` names another node.

Two questions only: *register this submission* (ITI-42, ITI TF-2b 3.42) and, for start-up
reconciliation, *which of these document uniqueIds do you hold* (ITI-18 GetDocuments,
ITI TF-2a 3.18.4.1.2.3.7.5).
"""

from __future__ import annotations

import logging
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from lxml import etree

from xds.metadata import ebrim
from xds.metadata.errors import RegistryError
from xds.metadata.model import DocumentEntry, Submission
from xds.metadata.response import SUCCESS
from xds.namespaces import QUERY, RIM, RS, SOAP12, WSA

log = logging.getLogger("xds.repository")

ITI42_ACTION = "urn:ihe:iti:2007:RegisterDocumentSet-b"
ITI18_ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
GET_DOCUMENTS = "urn:uuid:5c4f972b-d56b-40ac-a5fc-c8ca9b40b9d4"


@dataclass(frozen=True)
class RegisteredEntry:
    """A DocumentEntry the registry holds, as far as reconciliation cares."""

    unique_id: str
    repository_unique_id: str | None
    hash: str | None


class RegistryUnavailable(Exception):
    """The registry could not be asked. ``maybe_received``: the request may have reached it (a
    timeout after sending), so a registration may have happened after all."""

    def __init__(self, reason: str, maybe_received: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_received = maybe_received


class RegistryClient(ABC):
    @abstractmethod
    def register(self, submission: Submission) -> list[RegistryError]:
        """ITI-42. Returns the registry's errors and warnings (empty on plain Success)."""

    @abstractmethod
    def lookup(self, unique_ids: Iterable[str]) -> dict[str, list[RegisteredEntry]]:
        """The registry's DocumentEntries for these uniqueIds (any status)."""

    def close(self) -> None:  # noqa: B027 - optional hook
        pass


class LocalRegistry(RegistryClient):
    """The Document Registry of this node (:class:`xds.registry.Registry`), called directly."""

    def __init__(self, registry: Any) -> None:
        self.registry = registry

    def register(self, submission: Submission, *, after_write: Any = None) -> list[RegistryError]:
        """``after_write(tx, submission)`` runs in the registration's database transaction
        (:meth:`xds.registry.Registry.register`)."""
        return list(self.registry.register(submission, after_write=after_write))

    @property
    def engine(self) -> Any:
        return self.registry.engine

    def lookup(self, unique_ids: Iterable[str]) -> dict[str, list[RegisteredEntry]]:
        wanted = list(unique_ids)
        with self.registry.store.reading() as tx:
            rows = tx.document_entries_by_unique_id(wanted)
        found = {
            uid: [RegisteredEntry(r.unique_id, r.repository_unique_id, r.hash) for r in entries]
            for uid, entries in rows.items()
        }
        # A submission held for its patient's ADT (xds.identity) is registered later: its
        # documents are not orphans.
        identity = getattr(self.registry, "identity", None)
        if identity is not None:
            asked = set(wanted)
            for de in identity.mapping.held_document_entries():
                if de.unique_id in asked:
                    found.setdefault(de.unique_id, []).append(
                        RegisteredEntry(de.unique_id, de.repository_unique_id, de.hash)
                    )
        return found


class RemoteRegistry(RegistryClient):
    """A Document Registry at ``url``, over SOAP 1.2 with httpx (ITI TF-2x V.3)."""

    def __init__(self, url: str, timeout: float = 60.0, client: Any = None) -> None:
        import httpx

        self.url = url
        self._httpx = httpx
        self.client = client or httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0))

    def _call(self, action: str, body: etree._Element) -> etree._Element:
        from xds.soap import envelope as env
        from xds.soap.xmlparse import parse_xml

        message = env.build_envelope(body, action=action, relates_to=None, message_id=f"urn:uuid:{uuid.uuid4()}")
        header = message.find(f"{{{SOAP12}}}Header")
        assert header is not None
        to = etree.SubElement(header, f"{{{WSA}}}To")
        to.text = self.url
        reply = etree.SubElement(header, f"{{{WSA}}}ReplyTo")
        etree.SubElement(reply, f"{{{WSA}}}Address").text = "http://www.w3.org/2005/08/addressing/anonymous"
        data = env.serialize(message)
        ct = f'application/soap+xml; charset=UTF-8; action="{action}"'
        try:
            r = self.client.post(self.url, content=data, headers={"content-type": ct})
        except self._httpx.ConnectError as e:
            raise RegistryUnavailable(f"cannot connect to {self.url}: {e}") from None
        except self._httpx.HTTPError as e:
            raise RegistryUnavailable(f"{self.url}: {type(e).__name__}", maybe_received=True) from None
        body_bytes = r.content
        if "multipart/related" in r.headers.get("content-type", ""):
            body_bytes = _root_part(body_bytes, r.headers["content-type"])
        try:
            root = parse_xml(body_bytes, what="registry response")
            _, payload = env.split_envelope(root)
        except Exception:
            raise RegistryUnavailable(f"{self.url} answered HTTP {r.status_code} without a SOAP envelope",
                                      maybe_received=True) from None
        if payload.tag == f"{{{SOAP12}}}Fault":
            reason = payload.findtext(f"{{{SOAP12}}}Reason/{{{SOAP12}}}Text") or "SOAP fault"
            raise RegistryUnavailable(f"{self.url} answered with a SOAP fault: {reason}")
        return payload

    def register(self, submission: Submission) -> list[RegistryError]:
        request = ebrim.serialize_submit_objects_request(submission)
        response = self._call(ITI42_ACTION, request)
        return registry_errors(response)

    def lookup(self, unique_ids: Iterable[str]) -> dict[str, list[RegisteredEntry]]:
        ids = list(dict.fromkeys(unique_ids))
        out: dict[str, list[RegisteredEntry]] = {}
        for i in range(0, len(ids), 100):
            response = self._call(ITI18_ACTION, get_documents_query(ids[i : i + 100]))
            status = response.get("status", "")
            if not status.endswith(":Success") and not status.endswith(":PartialSuccess"):
                errors = registry_errors(response)
                raise RegistryUnavailable("GetDocuments failed: " + "; ".join(f"{e.code} {e.context}" for e in errors))
            for entry in _entries(response):
                out.setdefault(entry.unique_id, []).append(entry)
        return out

    def close(self) -> None:
        self.client.close()


def _root_part(body: bytes, content_type: str) -> bytes:
    """The root part of a multipart/related response, for registries that always answer MTOM."""
    import email
    import email.policy

    msg = email.message_from_bytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + body,
                                   policy=email.policy.HTTP)
    parts = list(msg.iter_parts()) if msg.is_multipart() else []
    if not parts:
        return body
    start = (msg.get_param("start") or "").strip("<>")
    root = next((p for p in parts if (p.get("Content-ID") or "").strip("<>") == start), parts[0]) if start else parts[0]
    return root.get_payload(decode=True) or b""


def registry_errors(response: etree._Element) -> list[RegistryError]:
    """The rs:RegistryError entries of a RegistryResponse or AdhocQueryResponse."""
    out = []
    for e in response.iter(f"{{{RS}}}RegistryError"):
        out.append(
            RegistryError(
                code=e.get("errorCode", ""),
                context=e.get("codeContext", "") or (e.text or "").strip(),
                severity=e.get("severity", "urn:oasis:names:tc:ebxml-regrep:ErrorSeverityType:Error"),
                location=e.get("location", ""),
            )
        )
    if not out and response.get("status", "") not in (SUCCESS, ""):
        out.append(RegistryError("XDSRegistryError", f"the registry answered {response.get('status')} without errors"))
    return out


def get_documents_query(unique_ids: list[str]) -> etree._Element:
    """AdhocQueryRequest GetDocuments by $XDSDocumentEntryUniqueId, ObjectRef... as LeafClass."""
    req = etree.Element(f"{{{QUERY}}}AdhocQueryRequest", nsmap={"query": QUERY, "rim": RIM})
    etree.SubElement(req, f"{{{QUERY}}}ResponseOption", returnType="LeafClass", returnComposedObjects="true")
    q = etree.SubElement(req, f"{{{RIM}}}AdhocQuery", id=GET_DOCUMENTS)
    slot = etree.SubElement(q, f"{{{RIM}}}Slot", name="$XDSDocumentEntryUniqueId")
    values = etree.SubElement(slot, f"{{{RIM}}}ValueList")
    etree.SubElement(values, f"{{{RIM}}}Value").text = "(" + ",".join("'" + u.replace("'", "''") + "'" for u in unique_ids) + ")"
    return req


def _entries(response: etree._Element) -> list[RegisteredEntry]:
    parsed = ebrim.parse_registry_object_list(response)
    return [
        RegisteredEntry(o.unique_id, o.repository_unique_id, (o.hash or "").lower() or None)
        for o in parsed.objects
        if isinstance(o, DocumentEntry) and o.unique_id
    ]
