"""The DI Common Service as an ASGI application (DESIGN.md section 6).

Endpoints:
  /xca/initiate   ITI-18, ITI-43, RAD-69 (SOAP 1.2), answered by asking the configured communities
                  (:mod:`xca.initiating_gateway`); WSDL at ``/xca/initiate?wsdl``
  /health         JSON: the service, its communities and the actions it serves
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from xca import config as config_mod
from xca.audit import GatewayAudit
from xca.config import DicsConfig
from xca.initiating_gateway import InitiatingGateway, register_operations
from xds.soap.dispatch import Endpoint

log = logging.getLogger("xca.app")

PATH = "/xca/initiate"


def build_app(cfg: DicsConfig) -> Starlette:
    endpoint = Endpoint("initiate", PATH, "XCAInitiatingGateway.wsdl", cfg.limits)
    audit = GatewayAudit.from_config(cfg)  # the service's own ATNA audit trail (xca.audit)
    if audit is not None:
        audit.guard(endpoint)
    gateway = InitiatingGateway(cfg, audit)
    register_operations(endpoint, gateway)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.open()
        if audit is not None:
            await audit.start()
        log.info("DI Common Service %s on %s over %s", cfg.name, cfg.base_url,
                 ", ".join(c.name for c in cfg.communities))
        try:
            yield
        finally:
            await gateway.close()
            if audit is not None:
                await audit.stop()

    async def health(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "service": cfg.name,
                "communities": [
                    {"name": c.name, "homeCommunityId": c.home_community_id, "url": c.url,
                     "timeout_seconds": cfg.timeout_of(c)}
                    for c in cfg.communities
                ],
                "endpoints": {PATH: sorted(endpoint.operations)},
            }
        )

    app = Starlette(
        routes=[Route(PATH, endpoint, methods=["GET", "POST"]), Route("/health", health, methods=["GET"])],
        lifespan=lifespan,
    )
    app.state.gateway = gateway
    return app


def app_from_env() -> Starlette:
    """uvicorn factory for multi-worker serving: the config path comes from XCA_CONFIG (and
    XCA_DATA_DIR, ``xca serve --data-dir``)."""
    return build_app(config_mod.load(os.environ["XCA_CONFIG"], os.environ.get("XCA_DATA_DIR") or None))
