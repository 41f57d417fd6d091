"""XCA Initiating Gateway and XCA-I Initiating Imaging Gateway of the DI Common Service
(ITI TF-1 18.2.3, RAD TF-1 29): consumers send it the XDS transactions, it asks the communities.

* ITI-18 in: a Find query (one with a patient id) goes as ITI-38 to every community at once, each
  within its timeout; the answers are merged into one AdhocQueryResponse. A Get query goes to the
  community named by ``AdhocQuery/@home`` (ITI TF-2a 3.18.4.1.2.3.8); without one,
  XDSMissingHomeCommunityId, with one not configured, XDSUnknownCommunity.
* ITI-43 in: the DocumentRequests are grouped by HomeCommunityId and sent as ITI-39, one request per
  community, concurrently (ITI TF-2b 3.43.4.1.3).
* RAD-69 in: likewise as RAD-75 (RAD TF-3 4.69.4.1.3.1, 4.75).

A community that fails (connection refused, timeout, SOAP fault, not a SOAP answer) becomes an
XDSUnavailableCommunity error naming it (location: its homeCommunityId for a query, the document
for a retrieve) and the answer is PartialSuccess when another community answered (ITI TF-2b
3.38.4.1.3, 3.39.4.1.3); only when nobody answered is it Failure. Errors a community reports are
passed on. Every object returned carries its community's homeCommunityId.

Merged query results are de-duplicated (``gateway.deduplicate``): a DocumentEntry whose uniqueId was
already returned by another community, and a KOS manifest (mimeType application/dicom) of a study
whose Study Instance UID another manifest already stands for, are dropped with the Associations
that only they anchored.

Retrieved documents are never held: each community's MTOM answer is read up to its envelope, the
merged envelope is sent, then every part is relayed from the community's connection as it arrives
(:mod:`xca.soap_client`), in the order the envelope references them.
"""

from __future__ import annotations

import asyncio
import io
import logging
import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import anyio.from_thread
from lxml import etree

from xca import http_client
from xca.audit import GatewayAudit, GatewayContext
from xca.config import CommunityConfig, DicsConfig, client_ssl_context
from xca.responding_gateway import (
    ITI38_ACTION,
    ITI39_ACTION,
    RAD75_ACTION,
)
from xca.soap_client import Answer, PartReader, UpstreamError, call, request_bytes
from xds.audit.context import DocumentRef, StudyRef, query_context
from xds.imaging import retrieve as imaging_retrieve
from xds.metadata import response
from xds.metadata.errors import ERROR, RegistryError, XdsError, has_errors
from xds.metadata.rules import Rule
from xds.namespaces import RIM, RS, XDSB, XDSI, XOP
from xds.registry import stored_query as sq
from xds.repository import retrieve
from xds.soap import mtom
from xds.soap.dispatch import Endpoint
from xds.soap.message import Attachment, SoapRequest, SoapResponse, xop_include

log = logging.getLogger("xca.initiating_gateway")

ITI18_ACTION = "urn:ihe:iti:2007:RegistryStoredQuery"
ITI18_RESPONSE_ACTION = "urn:ihe:iti:2007:RegistryStoredQueryResponse"
ITI43_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSet"
ITI43_RESPONSE_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"
RAD69_ACTION = "urn:ihe:rad:2009:RetrieveImagingDocumentSet"
RAD69_RESPONSE_ACTION = "urn:ihe:iti:2007:RetrieveDocumentSetResponse"  # XDS-I.b WSDL

DE_UNIQUE_ID = "urn:uuid:2e82c1f6-a085-4c72-9da3-8640a32e42ab"
DE_PATIENT_ID = "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427"
REFERENCE_ID_LIST = "urn:ihe:iti:xds:2013:referenceIdList"
STUDY_INSTANCE_UID = "urn:ihe:iti:xds:2016:studyInstanceUID"
DICOM_MIME_TYPE = "application/dicom"
_STUDY_SUFFIX = "^" + STUDY_INSTANCE_UID

_EXTRINSIC_OBJECT = f"{{{RIM}}}ExtrinsicObject"
_ASSOCIATION = f"{{{RIM}}}Association"
_RESPONSE_TAG = f"{{{XDSB}}}RetrieveDocumentSetResponse"


@dataclass
class Outcome:
    """One community's part of a fan-out: its answer, or why there is none."""

    community: CommunityConfig
    answer: Answer | None = None
    failure: str = ""
    elapsed: float = 0.0

    @property
    def body(self) -> etree._Element | None:
        """The answer's body, None when there is none or it was found unusable."""
        return self.answer.body if self.answer is not None and not self.failure else None


# --- de-duplication -------------------------------------------------------------------------------


_EXTERNAL_IDENTIFIER = f"{{{RIM}}}ExternalIdentifier"
_SLOT = f"{{{RIM}}}Slot"
_VALUE = f"{{{RIM}}}Value"


class Entry(NamedTuple):
    """What merging and auditing ask of a DocumentEntry, read in one pass over its children."""

    unique_id: str | None
    patient_id: str | None
    study: str | None  # the Study Instance UID a KOS manifest stands for (its referenceIdList)


def entry_of(eo: etree._Element) -> Entry:
    unique_id = patient_id = study = None
    for ei in eo.iterchildren(_EXTERNAL_IDENTIFIER):
        scheme = ei.get("identificationScheme")
        if scheme == DE_UNIQUE_ID:
            unique_id = ei.get("value")
        elif scheme == DE_PATIENT_ID:
            patient_id = ei.get("value")
    if eo.get("mimeType") == DICOM_MIME_TYPE:
        study = _manifest_study(eo)
    return Entry(unique_id, patient_id, study)


def _manifest_study(eo: etree._Element) -> str | None:
    for slot in eo.iterchildren(_SLOT):
        if slot.get("name") == REFERENCE_ID_LIST:
            for value in slot.iter(_VALUE):
                text = (value.text or "").strip()
                if text.endswith(_STUDY_SUFFIX):
                    return text.split("^", 1)[0]
    return None


def deduplicate(objects: list[etree._Element], entries: list[Entry | None] | None = None) -> list[etree._Element]:
    """``objects`` without a second DocumentEntry of a uniqueId, a second manifest of a study or a
    second copy of an object id; Associations left pointing at a dropped object go too.
    ``entries``: :func:`entry_of` each object (None for other than ExtrinsicObjects), when known;
    it is cut to the objects kept."""
    if entries is None:
        entries = [entry_of(o) if o.tag == _EXTRINSIC_OBJECT else None for o in objects]
    seen_ids: set[tuple[str, str]] = set()
    unique_ids: set[str] = set()
    studies: set[str] = set()
    dropped: set[str] = set()
    kept: list[etree._Element] = []
    kept_entries: list[Entry | None] = []
    for obj, entry in zip(objects, entries, strict=True):
        oid = obj.get("id") or ""
        key = (obj.tag, oid)
        if oid and key in seen_ids:
            continue
        if entry is not None:
            uid, study = entry.unique_id, entry.study
            if (uid and uid in unique_ids) or (study and study in studies):
                dropped.add(oid)
                continue
            if uid:
                unique_ids.add(uid)
            if study:
                studies.add(study)
        seen_ids.add(key)
        kept.append(obj)
        kept_entries.append(entry)
    if dropped:
        kept_ids = {oid for _, oid in seen_ids}
        gone = dropped - kept_ids
        keep = [o.tag != _ASSOCIATION or not ({o.get("sourceObject"), o.get("targetObject")} & gone) for o in kept]
        kept = [o for o, k in zip(kept, keep, strict=True) if k]
        kept_entries = [e for e, k in zip(kept_entries, keep, strict=True) if k]
    entries[:] = kept_entries
    return kept


# --- relaying retrieved parts ---------------------------------------------------------------------


class RelayedPart(io.RawIOBase):
    """A part of a community's MTOM answer as a file, read from a thread-pool thread (where the
    response stream is consumed) by calling back into the event loop that owns the connection."""

    def __init__(self, parts: PartReader, content_id: str) -> None:
        self._parts = parts
        self._cid = content_id

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            return b"".join(iter(lambda: self.read(1 << 20), b""))
        return anyio.from_thread.run(self._parts.read_part, self._cid, size)

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


# --- the gateway ----------------------------------------------------------------------------------


class InitiatingGateway:
    def __init__(self, config: DicsConfig, audit: GatewayAudit | None = None) -> None:
        self.config = config
        self.audit = audit  # the service's own audit trail (xca.audit), None when audit.enabled is false
        self.by_home = {c.home_community_id: c for c in config.communities}
        self.client: http_client.Client | None = None
        # built once: loading trust anchors and a client certificate costs milliseconds
        self.tls = {c.name: client_ssl_context(c) for c in config.communities}

    async def open(self) -> None:
        g = self.config.gateway
        self.client = http_client.Client(
            connect=g.connect_timeout_seconds, read=g.read_timeout_seconds, write=g.read_timeout_seconds,
            pool=g.timeout_seconds, max_connections=g.max_connections,
        )

    async def close(self) -> None:
        if self.client is not None:
            await self.client.aclose()
            self.client = None

    async def _ask(self, community: CommunityConfig, body: etree._Element, action: str) -> Outcome:
        assert self.client is not None, "InitiatingGateway.open() was not awaited"
        started = time.monotonic()
        limits = self.config.limits
        try:
            async with asyncio.timeout(self.config.timeout_of(community)):
                answer = await call(
                    self.client,
                    community.url,
                    request_bytes(body, action, community.url),
                    action,
                    max_envelope=limits.max_envelope_bytes,
                    spool_threshold=limits.spool_threshold_bytes,
                    tls=self.tls[community.name],
                )
        except TimeoutError:
            reason = f"no answer within {self.config.timeout_of(community):g} s"
        except UpstreamError as e:
            reason = str(e)
        except http_client.HTTPError as e:
            reason = f"{type(e).__name__}: {e}" if str(e) else type(e).__name__
        else:
            return Outcome(community, answer, elapsed=time.monotonic() - started)
        log.warning("community %s unavailable for %s: %s", community.name, action.rsplit(":", 1)[-1], reason)
        return Outcome(community, failure=reason[:300], elapsed=time.monotonic() - started)

    async def _fan_out(self, requests: list[tuple[CommunityConfig, etree._Element]], action: str) -> list[Outcome]:
        return list(await asyncio.gather(*(self._ask(c, body, action) for c, body in requests)))

    # --- ITI-18 -> ITI-38 ---

    async def registry_stored_query(self, request: SoapRequest) -> SoapResponse:
        body = request.body_element
        try:
            query = sq.read_request(body)
            definition = sq.CATALOGUE.get(query.query_id)
            if definition is None:
                raise Rule.UNKNOWN_STORED_QUERY.exception(value=query.query_id)
            if query.home:
                community = self.by_home.get(query.home)
                if community is None:
                    raise Rule.UNKNOWN_COMMUNITY.exception(value=query.home)
                targets = [community]
            elif definition.patient_scoped:
                targets = list(self.config.communities)
            else:
                raise Rule.MISSING_HOME_COMMUNITY_ID.exception(what=f"Stored query {definition.name}")
        except XdsError as e:
            return SoapResponse(response.adhoc_query_response([], e.errors), ITI18_RESPONSE_ACTION)
        outcomes = await self._fan_out([(c, body) for c in targets], ITI38_ACTION)
        audit = self._audit_fan_out(body, outcomes)
        entries: list[Entry | None] = []
        answer = self.merge_queries(outcomes, entries)
        log.info(
            "ITI-18 from %s to %d communities: %s, %d objects (%s)",
            request.client_host or "-", len(outcomes), answer.get("status", "").rsplit(":", 1)[-1],
            len(answer[-1]), ", ".join(f"{o.community.name} {o.elapsed * 1000:.0f} ms" for o in outcomes),
        )
        if audit is not None and self.audit is not None:
            # the ITI-18 names its patient, and those of the entries it disclosed
            patients, audit.links = self.audit.disclosed(e for e in entries if e is not None)
            audit.patient_ids = list(dict.fromkeys(audit.patient_ids + patients))
        return SoapResponse(answer, ITI18_RESPONSE_ACTION, audit=audit)

    def _audit_fan_out(self, body: etree._Element, outcomes: list[Outcome]) -> GatewayContext | None:
        """The ITI-18's audit context, with the records of the ITI-38 sent to each community
        already on their way to the store (written while the answers are merged)."""
        if self.audit is None:
            return None
        asked = query_context(body)
        initiated = [self.audit.initiated("ITI-38", o.community, _query_answer(o), o.failure, asked) for o in outcomes]
        return GatewayContext(patient_ids=asked.patient_ids, query=asked.query, written=self.audit.write(initiated))

    def merge_queries(self, outcomes: list[Outcome], entries: list[Entry | None] | None = None) -> etree._Element:
        """The communities' answers as one AdhocQueryResponse; ``entries`` (when given, or when
        de-duplicating) gets :func:`entry_of` each object returned (None for other than
        ExtrinsicObjects)."""
        objects: list[etree._Element] = []
        facts: list[Entry | None] = [] if entries is None else entries
        errors: list[RegistryError] = []
        answered = failed = 0
        partial = False
        for o in outcomes:
            home = o.community.home_community_id
            resp = _query_answer(o)
            if resp is None:
                errors.append(Rule.UNAVAILABLE_COMMUNITY.error(location=home, value=o.community.name, reason=o.failure))
                failed += 1
                continue
            status = resp.get("status", "")
            errors += _registry_errors(resp, home)
            if status == response.FAILURE:
                failed += 1
                continue
            answered += 1
            partial = partial or status == response.PARTIAL_SUCCESS
            rol = resp.find(f"{{{RIM}}}RegistryObjectList")
            for obj in rol if rol is not None else ():
                if isinstance(obj.tag, str):
                    if not obj.get("home"):
                        obj.set("home", home)
                    objects.append(obj)
        dedup = self.config.gateway.deduplicate and answered > 1
        if entries is not None or dedup:
            facts[:] = [entry_of(o) if o.tag == _EXTRINSIC_OBJECT else None for o in objects]
        if dedup:
            objects = deduplicate(objects, facts)
        if not failed and not partial:
            status = response.FAILURE if has_errors(errors) else response.SUCCESS
        else:
            status = response.PARTIAL_SUCCESS if answered else response.FAILURE
        return response.adhoc_query_response(objects, _distinct(errors), status=status)

    # --- ITI-43 -> ITI-39, RAD-69 -> RAD-75 ---

    async def retrieve_document_set(self, request: SoapRequest) -> SoapResponse:
        requests = retrieve.read_request(request.body_element)
        groups, errors = self._route([(r.home_community_id, r.document_unique_id, r) for r in requests])
        bodies = []
        for community, items in groups.items():
            body = etree.Element(f"{{{XDSB}}}RetrieveDocumentSetRequest", nsmap={"xdsb": XDSB})
            for r in items:
                _document_request(body, r.home_community_id, r.repository_unique_id, r.document_unique_id)
            bodies.append((community, body))
        outcomes = await self._fan_out(bodies, ITI39_ACTION)
        return await self._merged(outcomes, groups, errors, ITI43_RESPONSE_ACTION, request, "ITI-39")

    async def retrieve_imaging_document_set(self, request: SoapRequest) -> SoapResponse:
        requests, syntaxes = imaging_retrieve.read_request(request.body_element)
        groups, errors = self._route([(r.home_community_id, r.document_unique_id, r) for r in requests])
        bodies = []
        for community, items in groups.items():
            body = etree.Element(f"{{{XDSI}}}RetrieveImagingDocumentSetRequest", nsmap={"iherad": XDSI, "xdsb": XDSB})
            studies: dict[str, dict[str, list[Any]]] = {}
            for r in items:
                studies.setdefault(r.study_instance_uid, {}).setdefault(r.series_instance_uid, []).append(r)
            for study_uid, series in studies.items():
                st = etree.SubElement(body, f"{{{XDSI}}}StudyRequest", studyInstanceUID=study_uid)
                for series_uid, instances in series.items():
                    se = etree.SubElement(st, f"{{{XDSI}}}SeriesRequest", seriesInstanceUID=series_uid)
                    for r in instances:
                        _document_request(se, r.home_community_id, r.repository_unique_id, r.document_unique_id)
            tsl = etree.SubElement(body, f"{{{XDSI}}}TransferSyntaxUIDList")
            for ts in syntaxes:
                etree.SubElement(tsl, f"{{{XDSI}}}TransferSyntaxUID").text = ts
            bodies.append((community, body))
        outcomes = await self._fan_out(bodies, RAD75_ACTION)
        return await self._merged(outcomes, groups, errors, RAD69_RESPONSE_ACTION, request, "RAD-75")

    async def _merged(self, outcomes: list[Outcome], groups: dict[CommunityConfig, list[Any]],
                      errors: list[RegistryError], action: str, request: SoapRequest, initiated: str) -> SoapResponse:
        try:
            answer = self.merge_retrieves(outcomes, groups, errors, action, request)
            answer.audit = self._retrieve_audit(outcomes, groups, answer, initiated)
            return answer
        except BaseException:
            for o in outcomes:
                if o.answer is not None:
                    await o.answer.aclose()
            raise

    def _retrieve_audit(self, outcomes: list[Outcome], groups: dict[CommunityConfig, list[Any]],
                        answer: SoapResponse, transaction: str) -> GatewayContext | None:
        """ITI-43 / RAD-69 as answered (the documents returned, else those asked for; their
        studies) and the ITI-39 / RAD-75 sent to each community (the documents it returned, else
        those asked of it)."""
        if self.audit is None:
            return None
        returned: dict[str, list[DocumentRef]] = {}
        for dr in answer.body_element.iterfind(f"{{{XDSB}}}DocumentResponse"):
            home = dr.findtext(f"{{{XDSB}}}HomeCommunityId") or ""
            returned.setdefault(home, []).append(DocumentRef(
                dr.findtext(f"{{{XDSB}}}DocumentUniqueId") or "", dr.findtext(f"{{{XDSB}}}RepositoryUniqueId") or "", home))
        study_of = {r.document_unique_id: getattr(r, "study_instance_uid", "") for items in groups.values() for r in items}

        def context(refs: list[DocumentRef]) -> GatewayContext:
            studies = dict.fromkeys(study_of.get(d.unique_id) for d in refs)
            return GatewayContext(documents=refs, studies=[StudyRef(s) for s in studies if s])

        def asked(community: CommunityConfig) -> list[DocumentRef]:
            return [DocumentRef(r.document_unique_id, r.repository_unique_id, r.home_community_id or "")
                    for r in groups[community]]

        initiated = [
            self.audit.initiated(transaction, o.community, o.body, o.failure,
                                 context(returned.get(o.community.home_community_id) or asked(o.community)))
            for o in outcomes
        ]
        everything = [d for refs in returned.values() for d in refs] or [d for c in groups for d in asked(c)]
        ctx = context(everything)
        ctx.initiated = initiated
        return ctx

    def _route(self, items: list[tuple[str | None, str, Any]]) -> tuple[dict[CommunityConfig, list[Any]], list[RegistryError]]:
        """DocumentRequests grouped by their community (ITI TF-2b 3.43.4.1.3), and the errors of
        those without a known homeCommunityId."""
        groups: dict[str, list[Any]] = {}
        errors: list[RegistryError] = []
        for home, uid, item in items:
            if not home:
                errors.append(Rule.MISSING_HOME_COMMUNITY_ID.error(location=uid, what="DocumentRequest"))
            elif home not in self.by_home:
                errors.append(Rule.UNKNOWN_COMMUNITY.error(location=uid, value=home))
            else:
                groups.setdefault(home, []).append(item)
        return {self.by_home[h]: v for h, v in groups.items()}, errors

    def merge_retrieves(
        self,
        outcomes: list[Outcome],
        groups: dict[CommunityConfig, list[Any]],
        errors: list[RegistryError],
        action: str,
        request: SoapRequest,
    ) -> SoapResponse:
        out = etree.Element(_RESPONSE_TAG, nsmap={"xdsb": XDSB})
        attachments: list[Attachment] = []
        used_cids: set[str] = set()
        returned = 0
        errors = list(errors)
        for index, o in enumerate(outcomes):
            home = o.community.home_community_id
            resp = o.answer.body if o.answer is not None else None
            if resp is not None and resp.tag != _RESPONSE_TAG:
                o.failure, resp = f"answered {etree.QName(resp).localname}, not RetrieveDocumentSetResponse", None
            if resp is None:
                for r in groups[o.community]:
                    errors.append(Rule.UNAVAILABLE_COMMUNITY.error(
                        location=r.document_unique_id, value=o.community.name, reason=o.failure))
                continue
            rr = resp.find(f"{{{RS}}}RegistryResponse")
            if rr is not None:
                errors += _registry_errors(rr, "")
            for dr in resp.iterfind(f"{{{XDSB}}}DocumentResponse"):
                if dr.find(f"{{{XDSB}}}HomeCommunityId") is None:
                    etree.SubElement(dr, f"{{{XDSB}}}HomeCommunityId").text = home
                    dr.insert(0, dr[-1])
                document = dr.find(f"{{{XDSB}}}Document")
                include = document.find(f"{{{XOP}}}Include") if document is not None else None
                if include is not None:
                    if o.answer is None or o.answer.parts is None:  # an xop:Include without MIME parts
                        errors.append(Rule.UNAVAILABLE_COMMUNITY.error(
                            location=dr.findtext(f"{{{XDSB}}}DocumentUniqueId") or "", value=o.community.name,
                            reason="its answer references a MIME part but is not multipart"))
                        continue
                    cid = mtom.normalize_content_id(include.get("href", ""))
                    new_cid = cid if cid not in used_cids else f"c{index}.{cid}"
                    used_cids.add(new_cid)
                    attachment = Attachment(
                        content_id=new_cid,
                        content_type=dr.findtext(f"{{{XDSB}}}mimeType") or "application/octet-stream",
                        opener=_opener(o.answer.parts, cid),
                    )
                    document.remove(include)
                    xop_include(document, attachment)
                    attachments.append(attachment)
                out.append(dr)
                returned += 1
        if not has_errors(errors):
            status = response.SUCCESS
        else:
            status = response.PARTIAL_SUCCESS if returned else response.FAILURE
        out.insert(0, response.registry_response(_distinct(errors), status=status))
        answers = [o.answer for o in outcomes if o.answer is not None]

        async def close() -> None:
            for a in answers:
                await a.aclose()

        log.info(
            "%s from %s via %d communities: %s, %d documents",
            action.rsplit(":", 1)[-1], request.client_host or "-", len(outcomes), status.rsplit(":", 1)[-1], returned,
        )
        return SoapResponse(out, action, attachments=attachments, mtom=True, close=close)


def _query_answer(o: Outcome) -> etree._Element | None:
    """A community's AdhocQueryResponse; an answer of another kind makes it a failure."""
    resp = o.body
    if resp is not None and etree.QName(resp).localname != "AdhocQueryResponse":
        o.failure, resp = f"answered {etree.QName(resp).localname}, not AdhocQueryResponse", None
    return resp


def _opener(parts: PartReader, content_id: str) -> Any:
    return lambda: RelayedPart(parts, content_id)


def _document_request(parent: etree._Element, home: str | None, repository: str, document: str) -> None:
    dr = etree.SubElement(parent, f"{{{XDSB}}}DocumentRequest")
    if home:
        etree.SubElement(dr, f"{{{XDSB}}}HomeCommunityId").text = home
    etree.SubElement(dr, f"{{{XDSB}}}RepositoryUniqueId").text = repository
    etree.SubElement(dr, f"{{{XDSB}}}DocumentUniqueId").text = document


def _registry_errors(parent: etree._Element, location: str) -> list[RegistryError]:
    """The rs:RegistryErrors a community reported (its location, or ``location`` when it gave none)."""
    return [
        RegistryError(
            e.get("errorCode", ""), e.get("codeContext", ""), e.get("severity", ERROR), e.get("location") or location
        )
        for e in parent.iterfind(f"{{{RS}}}RegistryErrorList/{{{RS}}}RegistryError")
    ]


def _distinct(errors: list[RegistryError]) -> list[RegistryError]:
    return list(dict.fromkeys(errors))


def register_operations(endpoint: Endpoint, gateway: InitiatingGateway) -> None:
    """ITI-18, ITI-43 and RAD-69 on the DI Common Service's ``/xca/initiate``."""
    endpoint.add_operation(ITI18_ACTION, ITI18_RESPONSE_ACTION, gateway.registry_stored_query, "ITI-18")
    endpoint.add_operation(ITI43_ACTION, ITI43_RESPONSE_ACTION, gateway.retrieve_document_set, "ITI-43")
    endpoint.add_operation(RAD69_ACTION, RAD69_RESPONSE_ACTION, gateway.retrieve_imaging_document_set, "RAD-69")
