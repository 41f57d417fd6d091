"""A DIR node: one regional Diagnostic Imaging Repository in one process (DESIGN.md section 6).

Endpoints (SOAP 1.2):
  /xds/registry    ITI-42 Register Document Set-b, ITI-18 Registry Stored Query
  /xds/repository  ITI-41 Provide and Register Document Set-b (incl. RAD-68), ITI-43 Retrieve
  /xds/imaging     RAD-69 Retrieve Imaging Document Set
  /xca/respond     ITI-38 Cross Gateway Query, ITI-39 Cross Gateway Retrieve, RAD-75
and the ITI-8 patient identity feed over MLLP. An endpoint whose transactions are not available
answers every action with wsa:ActionNotSupported.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from xds import config as config_mod
from xds.config import NodeConfig
from xds.soap.dispatch import Endpoint

log = logging.getLogger("xds.node")

ENDPOINTS = (
    ("registry", "/xds/registry", "XDS.b_DocumentRegistry.wsdl"),
    ("repository", "/xds/repository", "XDS.b_DocumentRepository.wsdl"),
    ("imaging", "/xds/imaging", "XDS-I.b_ImagingDocumentSource.wsdl"),
    ("respond", "/xca/respond", "XCARespondingGateway.wsdl"),
)


@dataclass
class Node:
    config: NodeConfig
    endpoints: dict[str, Endpoint] = field(default_factory=dict)
    components: dict[str, Any] = field(default_factory=dict)
    app: Starlette | None = None
    security: Any = None  # xds.security.guard.NodeSecurity: TLS contexts, XUA, the audit trail
    _background: list[Any] = field(default_factory=list)

    async def start_listeners(self) -> None:
        cfg = self.config
        registry = self.components.get("registry")
        identity = getattr(registry, "identity", None)
        if identity is not None:
            # held submissions whose ADT came while the node was down (or crashed mid-release)
            await asyncio.to_thread(identity.mapping.release)
        if cfg.mllp.enabled and identity is not None:
            from xds.hl7.patient_feed import start_patient_feed

            security = self.security
            server = await start_patient_feed(
                cfg.mllp, identity.domain, identity.feed, pix=identity.pix,
                ssl_context=security.ssl_context("mllp") if security else None,
                on_tls_refused=security.refusal_hook("mllp") if security else None,
                audit=security.audit if security else None,
            )
            self._background.append(server)
            log.info("ITI-8 patient identity feed and ITI-9 PIX query (MLLP) on %s:%s", cfg.mllp.host, server.port)
        imaging = self.components.get("imaging")
        if imaging is not None:
            self._background.extend(await imaging.start(self.security))

    async def stop_listeners(self) -> None:
        for server in reversed(self._background):
            with contextlib.suppress(Exception):
                await server.close()
        self._background.clear()
        for component in self.components.values():
            close = getattr(component, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()


def build_node(cfg: NodeConfig) -> Node:
    os.makedirs(cfg.data_dir, exist_ok=True)
    node = Node(cfg)
    for name, path, wsdl in ENDPOINTS:
        node.endpoints[name] = Endpoint(name, path, wsdl, cfg.limits)

    if cfg.registry.enabled:
        from xds.registry import Registry
        from xds.registry.service import register_operations

        registry = Registry.from_config(cfg)
        node.components["registry"] = registry
        register_operations(node.endpoints["registry"], registry)

    if cfg.repository.enabled:
        from xds.repository import Repository
        from xds.repository.service import register_operations as register_repository

        repository = Repository.open(cfg, node.components.get("registry"))
        node.components["repository"] = repository
        register_repository(node.endpoints["repository"], repository)

    if cfg.imaging.enabled:
        from xds.imaging import ImagingSource
        from xds.imaging.retrieve import register_operations as register_imaging

        imaging = ImagingSource.from_config(cfg, node.components.get("repository"),
                                            getattr(node.components.get("registry"), "identity", None))
        node.components["imaging"] = imaging
        register_imaging(node.endpoints["imaging"], imaging)

    if cfg.gateway.enabled and cfg.home_community_id:
        from xca.responding_gateway import RespondingGateway
        from xca.responding_gateway import register_operations as register_gateway

        components = node.components
        register_gateway(
            node.endpoints["respond"],
            RespondingGateway(
                cfg.home_community_id, components.get("registry"), components.get("repository"), components.get("imaging")
            ),
        )

    # TLS client certificates, XUA and the ATNA audit trail of every endpoint (xds.security.guard)
    from xds.security.guard import NodeSecurity

    security = node.security = NodeSecurity.build(cfg, node.endpoints)
    if security.audit is not None:
        node.components["audit"] = security.audit

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await security.start()
        # With several HTTP workers the MLLP and DICOM listeners run once, in their own process
        # (xds.cli), not in every worker.
        if os.environ.get("XDS_LISTENERS", "1") != "0":
            await node.start_listeners()
        log.info("DIR node %s serving on %s", cfg.name, cfg.base_url)
        try:
            yield
        finally:
            await security.stop()
            await node.stop_listeners()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "node": cfg.name,
                "homeCommunityId": cfg.home_community_id,
                "endpoints": {e.path: sorted(e.operations) for e in node.endpoints.values()},
            }
        )

    routes = [Route(e.path, e, methods=["GET", "POST"]) for e in node.endpoints.values()]
    routes.append(Route("/health", health, methods=["GET"]))
    node.app = Starlette(routes=routes, lifespan=lifespan)
    node.app.state.http_tls = security.http_tls  # found there by xds.security.tls.TlsHttpProtocol
    node.app.state.security = security
    return node


def app_from_env() -> Starlette:
    """uvicorn factory for multi-worker serving: the config path comes from XDS_CONFIG."""
    cfg = config_mod.load(os.environ["XDS_CONFIG"], os.environ.get("XDS_DATA_DIR") or None)
    node = build_node(cfg)
    assert node.app is not None
    return node.app
