"""Apps the SOAP benchmark serves (uvicorn factories): our SOAP layer, and a bare Starlette
endpoint returning a fixed byte string (the ceiling on this machine)."""

from __future__ import annotations

import hashlib
import os

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from xds.config import LimitsConfig
from xds.soap import mtom
from xds.soap.dispatch import Endpoint
from xds.soap.message import Attachment, SoapRequest, SoapResponse, xop_include

PAYLOAD = os.urandom(1 << 20)
FIXED = b"<ok/>"


async def echo(req: SoapRequest) -> SoapResponse:
    out = etree.Element("{urn:bench}EchoResponse")
    out.text = req.body_element.text
    return SoapResponse(out, "urn:bench:EchoResponse")


def upload(req: SoapRequest) -> SoapResponse:
    doc = req.body_element.find("{urn:bench}Document")
    h = hashlib.sha1()
    for chunk in req.binary(doc).iter_chunks():
        h.update(chunk)
    out = etree.Element("{urn:bench}UploadResponse")
    out.text = h.hexdigest()
    return SoapResponse(out, "urn:bench:UploadResponse")


def download(req: SoapRequest) -> SoapResponse:
    att = Attachment(data=PAYLOAD, content_type="application/octet-stream")
    mtom.assign_content_id(att)
    out = etree.Element("{urn:bench}DownloadResponse")
    xop_include(etree.SubElement(out, "{urn:bench}Document"), att)
    return SoapResponse(out, "urn:bench:DownloadResponse", attachments=[att], mtom=True)


def create() -> Starlette:
    ep = Endpoint("bench", "/soap", None, LimitsConfig())
    ep.add_operation("urn:bench:Echo", "urn:bench:EchoResponse", echo)
    ep.add_operation("urn:bench:Upload", "urn:bench:UploadResponse", upload)
    ep.add_operation("urn:bench:Download", "urn:bench:DownloadResponse", download)
    return Starlette(routes=[Route("/soap", ep, methods=["GET", "POST"])])


async def _bare(request: Request) -> Response:
    async for _ in request.stream():
        pass
    return Response(FIXED, media_type="application/soap+xml")


def create_bare() -> Starlette:
    return Starlette(routes=[Route("/bare", _bare, methods=["POST"])])
