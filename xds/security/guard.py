"""What every SOAP endpoint of a node asks before and after a transaction, and the node's security
wiring (:class:`NodeSecurity`, built by :func:`xds.node.build_node`).

:class:`EndpointGuard`, installed as ``Endpoint.guard``:

1. ``admit``: on HTTPS, an endpoint that requires a client certificate refuses a request whose
   connection did not present one (403, connection closed), with a Security Alert;
2. ``authenticate``: the XUA policy of the endpoint (:mod:`xds.security.xua`) — a SOAP fault
   (wsse:InvalidSecurity, wsse:FailedAuthentication) when an assertion is required and missing or
   invalid, recorded as a failed User Authentication; a replayed assertion (wsse:InvalidSecurity)
   is recorded as a Security Alert;
3. ``record``: one audit message per transaction answered, with the outcome taken from the
   response's status (or the fault) and the details the handler put in ``SoapResponse.audit``.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from xds.audit import codes, events
from xds.audit.context import AuditContext
from xds.audit.trail import AuditTrail
from xds.config import NodeConfig
from xds.namespaces import LCM, RS
from xds.security import tls as tls_mod
from xds.soap.fault import SoapFault
from xds.soap.message import SoapRequest, SoapResponse

if TYPE_CHECKING:
    from xds.security.xua import XuaVerifier
    from xds.soap.dispatch import Endpoint

log = logging.getLogger("xds.security")

ANONYMOUS = "http://www.w3.org/2005/08/addressing/anonymous"
_STATUS_OUTCOME = {"Success": codes.SUCCESS, "PartialSuccess": codes.MINOR_FAILURE, "Failure": codes.SERIOUS_FAILURE}


_ERRORS = f"{{{RS}}}RegistryErrorList/{{{RS}}}RegistryError"
_NESTED_ERRORS = f"{{{RS}}}RegistryResponse/{_ERRORS}"


def response_outcome(response: SoapResponse) -> tuple[int, str]:
    """EventOutcomeIndicator from the response's RegistryResponse status, and the error codes:
    Success 0, PartialSuccess 4 (minor failure), Failure 8 (serious failure: the request was
    refused) or 12 (major failure) when every error says the service itself was unavailable
    (busy, out of resources, a registry or community not reachable: ``rules.UNAVAILABLE``)."""
    from xds.metadata.rules import UNAVAILABLE

    body = response.body_element
    status = body.get("status")
    if status is None:
        rr = body.find(f"{{{RS}}}RegistryResponse")
        status = rr.get("status") if rr is not None else None
    # RegistryErrorList is a child of the RegistryResponse (ebRS 3.0 rs.xsd): no need to walk the
    # whole answer, which for a query is every object returned
    listed = (*body.iterfind(_ERRORS), *body.iterfind(_NESTED_ERRORS))
    errors = sorted({e.get("errorCode", "") for e in listed if e.get("severity", "").endswith("Error")} - {""})
    outcome = _STATUS_OUTCOME.get((status or "Success").rsplit(":", 1)[-1], codes.SUCCESS)
    if outcome == codes.SERIOUS_FAILURE and errors and all(e in UNAVAILABLE for e in errors):
        outcome = codes.MAJOR_FAILURE
    return outcome, ", ".join(errors)


class NodeSecurity:
    """The node's TLS listener state, audit trail and XUA verifier, and one guard per endpoint."""

    def __init__(self, cfg: NodeConfig, audit: AuditTrail | None, http_tls: tls_mod.HttpTls | None,
                 xua: XuaVerifier | None = None) -> None:
        self.cfg = cfg
        self.audit = audit
        self.http_tls = http_tls
        self.xua = xua

    @classmethod
    def build(cls, cfg: NodeConfig, endpoints: dict[str, Endpoint]) -> NodeSecurity:
        audit = AuditTrail.from_config(cfg) if cfg.audit.enabled else None
        security = cls(cfg, audit, None)
        context = tls_mod.server_ssl_context(cfg, "http")
        if context is not None:
            security.http_tls = tls_mod.HttpTls(context, cfg.tls.handshake_timeout_seconds,
                                                security.refusal_hook("http"))
        security.xua = _xua_verifier(cfg)
        for name, endpoint in endpoints.items():
            endpoint.guard = EndpointGuard(security, name, endpoint.path)
            if security.xua is not None and security.xua.policy(name) != "off":
                from xds.namespaces import WSSE

                endpoint.understood_headers.add(f"{{{WSSE}}}Security")
        return security

    def listener_uri(self, listener: str) -> str:
        cfg = self.cfg
        if listener == "mllp":
            return f"mllp://{cfg.mllp.host}:{cfg.mllp.port}"
        if listener == "dicom":
            return f"dicom://{cfg.imaging.ae_title}@{cfg.imaging.host}:{cfg.imaging.port}"
        return cfg.base_url

    def ssl_context(self, listener: str) -> Any:
        """Server context for ``mllp`` or ``dicom`` (None without TLS), reporting refusals."""
        return tls_mod.server_ssl_context(self.cfg, listener, self.refusal_hook(listener))

    def refusal_hook(self, listener: str) -> tls_mod.RefusalHook:
        def refused(refusal: tls_mod.TlsRefusal) -> None:
            if self.audit is None:
                return
            uri = refusal.listener if "://" in refusal.listener else self.listener_uri(listener)
            self.audit.submit(events.security_alert(
                outcome=codes.MINOR_FAILURE, alert=codes.NODE_AUTHENTICATION,
                reporter=events.Party(uri), performer=events.Party("", refusal.host, refusal.subject),
                subject=uri, source=self.audit.source, description=refusal.reason,
            ))

        return refused

    async def start(self) -> None:
        if self.audit is not None:
            await self.audit.start()

    async def stop(self) -> None:
        if self.audit is not None:
            await self.audit.stop()
        if self.xua is not None:
            self.xua.close()  # the replay memory's database connections

    def close(self) -> None:
        if self.audit is not None:
            self.audit.close()


def _xua_verifier(cfg: NodeConfig) -> XuaVerifier | None:
    xua_cfg = getattr(cfg, "xua", None)
    if xua_cfg is None:
        return None
    from xds.security.xua import XuaVerifier

    return XuaVerifier.from_config(cfg)


class EndpointGuard:
    def __init__(self, security: NodeSecurity, name: str, path: str) -> None:
        self.security = security
        self.name = name
        self.path = path
        tls = security.cfg.tls
        self.require_client_cert = tls.enabled and tls_mod.client_cert_policy(tls, name) == tls_mod.REQUIRED

    @property
    def uri(self) -> str:
        return self.security.cfg.base_url + self.path

    # 1. client certificate ---------------------------------------------------------------------

    async def admit(self, request: Request) -> Response | None:
        http_tls = self.security.http_tls
        if not self.require_client_cert or http_tls is None:
            return None
        client = request.scope.get("client")
        if http_tls.peer(client) is not None:
            return None
        host, port = (client[0], int(client[1])) if client else ("", 0)
        refusal = tls_mod.TlsRefusal(self.uri, host, port, f"no client certificate for {self.path}, which requires one")
        http_tls.refused(refusal)
        return PlainTextResponse("A client certificate is required for this endpoint.\n", status_code=403,
                                 headers={"Connection": "close"})

    # 2. XUA --------------------------------------------------------------------------------------

    async def authenticate(self, request: Request, soap: SoapRequest) -> events.Person | None:
        """The verified identities of the request, set on ``soap`` for the handlers (consent):
        the TLS client certificate, and the XUA person (or a SOAP fault per the endpoint's policy).
        The assertion is verified off the event loop (a signature check, and the replay memory's
        database)."""
        http_tls = self.security.http_tls
        if http_tls is not None:
            soap.client_certificate = http_tls.peer(request.scope.get("client"))
        xua = self.security.xua
        if xua is None or xua.policy(self.name) == "off":
            return None
        soap.xua = await run_in_threadpool(xua.authenticate, self.name, soap)
        return soap.xua

    # 3. audit ------------------------------------------------------------------------------------

    def _parties(self, request: Request, soap: SoapRequest | None) -> tuple[events.Party, events.Party]:
        client = request.scope.get("client")
        http_tls = self.security.http_tls
        peer_cert = http_tls.peer(client) if http_tls is not None else None
        reply_to = soap.addressing.reply_to if soap is not None and soap.addressing.reply_to else ANONYMOUS
        node = events.Party(self.uri)
        peer = events.Party(reply_to, client[0] if client else "", peer_cert.subject if peer_cert else "")
        return node, peer

    async def record(self, request: Request, soap: SoapRequest | None, action: str,
                     result: SoapResponse | SoapFault | None, person: events.Person | None) -> None:
        audit = self.security.audit
        if audit is None or result is None:
            return
        try:
            message, links = self._message(request, soap, action, result, person)
        except Exception:
            log.exception("audit message for %s on %s could not be built", action, self.path)
            return
        if message is not None:
            await audit.record_async(message, links)

    def _message(self, request: Request, soap: SoapRequest | None, action: str,
                 result: SoapResponse | SoapFault, person: events.Person | None) -> tuple[Any, list]:
        from xds.security.xua import AssertionReplayed, XuaFault

        audit = self.security.audit
        assert audit is not None
        node, peer = self._parties(request, soap)
        if isinstance(result, AssertionReplayed):
            first = dt.datetime.fromtimestamp(result.first_seen, dt.UTC).isoformat(timespec="seconds")
            return events.security_alert(
                outcome=codes.MINOR_FAILURE, alert=codes.USE_OF_RESTRICTED_FUNCTION, reporter=node, performer=peer,
                subject=self.uri, source=audit.source, person=result.person,
                description=f"SAML assertion {result.assertion_id} of {result.issuer}, first presented at {first}, "
                            f"presented again in another message (replay); request refused",
            ), []
        if isinstance(result, XuaFault):
            return events.user_authentication(outcome=codes.MINOR_FAILURE, person=None, node=node, peer=peer,
                                              source=audit.source, description=result.reason), []
        context: AuditContext | None = result.audit if isinstance(result, SoapResponse) else None
        if context is None and soap is not None:
            context = _request_context(events.ACTIONS.get(action, ""), soap)
            if context is not None and context.query is not None and isinstance(result, SoapResponse):
                # a Get* query names no patient: the ones whose objects it disclosed
                disclosed = _disclosed_patients(result.body_element)
                context.patient_ids += [p for p in disclosed if p not in context.patient_ids]
        name = (context.transaction if context and context.transaction else "") or events.ACTIONS.get(action, "")
        tx = events.TRANSACTIONS.get(name)
        if tx is None:
            log.debug("no audit message defined for action %s", action)
            return None, []
        if isinstance(result, SoapFault):
            outcome = codes.MAJOR_FAILURE if result.code == "Receiver" else codes.SERIOUS_FAILURE
            description = f"SOAP fault {result.code}: {result.reason}"
        else:
            outcome, description = response_outcome(result)
        message = events.transaction_message(tx, outcome=outcome, node=node, peer=peer, source=audit.source,
                                             context=context, person=person, description=description)
        links: list[tuple[str, str, str]] = []
        # an import that failed brought nothing: its ids must not be tied to the patient
        if context is not None and tx.pattern == events.IMPORT and outcome in (codes.SUCCESS, codes.MINOR_FAILURE):
            for patient in context.patient_ids:
                links += [("document", d.unique_id, patient) for d in context.documents]
                links += [("study", s.study_instance_uid, patient) for s in context.studies]
        return message, links


def _request_context(transaction: str, soap: SoapRequest) -> AuditContext | None:
    """What the request itself says, for a handler that reported nothing (ITI-38 queries, and
    faults): the stored query and its patient; a Register's submission."""
    from xds.audit.context import query_context, submission_context

    body = soap.body_element
    if transaction in ("ITI-18", "ITI-38"):
        return query_context(body)
    if transaction == "ITI-42" and body.tag == f"{{{LCM}}}SubmitObjectsRequest":
        from xds.metadata import ebrim

        return submission_context(ebrim.parse_submit_objects_request(body))
    return None


# XDSDocumentEntry.patientId, XDSSubmissionSet.patientId, XDSFolder.patientId (ITI TF-3 4.2.3)
_PATIENT_ID_SCHEMES = frozenset({
    "urn:uuid:58a6f841-87b3-4a3e-92fd-a8ffeff98427",
    "urn:uuid:6b5aea1a-874d-4603-a4bc-96a0a7b38446",
    "urn:uuid:f64ffdf0-4b97-4e06-b79f-a52b38ec2f8a",
})


def _disclosed_patients(answer: Any) -> list[str]:
    """The patient ids of the objects a LeafClass AdhocQueryResponse returns (none for ObjectRef)."""
    from xds.namespaces import RIM

    found: dict[str, None] = {}
    for ei in answer.iter(f"{{{RIM}}}ExternalIdentifier"):
        if ei.get("identificationScheme") in _PATIENT_ID_SCHEMES and ei.get("value"):
            found[ei.get("value")] = None
    return list(found)
