"""TLS on every listener, with client-certificate (node) authentication: IHE ATNA Authenticate Node
(ITI TF-2a 3.19.6: TLS, mutual authentication, X.509 certificates; BCP 195 / RFC 7525 suites).

One :class:`ssl.SSLContext` per listener kind, from the ``[tls]`` table (:func:`server_ssl_context`):
TLS 1.2 or newer, the node's certificate, and the configured CA bundle as the only trust anchor for
client certificates. Per listener the client certificate is ``required`` (a handshake without a
trusted, unexpired one fails) or ``optional`` (one that is presented must still be trusted).

A failed handshake is refused *and reported* (``on_refused``, the node's ATNA Security Alert):

- HTTP: asyncio, uvloop and uvicorn drop failed handshakes silently (asyncio logs them only in
  debug mode), so the node terminates TLS itself: :class:`TlsHttpProtocol` is uvicorn's ``http``
  protocol class; it accepts plain TCP, puts the event loop's own TLS protocol (uvloop's on the
  uvloop loop) in front of itself with a handshake waiter of its own, and only then hands the
  connection to uvicorn's HTTP protocol. The context is the one uvicorn's own ``ssl_cert_reqs`` /
  ``ssl_ca_certs`` options would build. The SOAP endpoints share one port, so when only some of them
  require a certificate the handshake asks for one (optional) and the endpoint's guard refuses
  requests that came without (:meth:`HttpTls.peer`).
- MLLP: :func:`start_tls_stream_server`, ``asyncio.start_server`` with the same handshake.
- DICOM: pynetdicom wraps each accepted socket with ``ssl_context.wrap_socket``; the context
  returned for ``"dicom"`` reports a failed handshake there before re-raising.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from xds.config import NodeConfig, TlsConfig

log = logging.getLogger("xds.security.tls")

HTTP_ENDPOINTS = ("registry", "repository", "imaging", "respond")
LISTENERS = (*HTTP_ENDPOINTS, "http", "mllp", "dicom")
REQUIRED = "required"
OPTIONAL = "optional"


@dataclass(frozen=True)
class PeerCertificate:
    """The verified client certificate of a connection."""

    subject: str  # RFC 4514-ish, e.g. "CN=pacs,O=...,C=CA"
    issuer: str
    serial: str
    common_name: str

    @classmethod
    def from_ssl_object(cls, obj: ssl.SSLObject | ssl.SSLSocket | None) -> PeerCertificate | None:
        cert = obj.getpeercert() if obj is not None else None
        if not cert:
            return None

        def name(rdns: Any) -> tuple[str, str]:
            parts = [(k, v) for rdn in rdns for (k, v) in rdn]
            short = {"commonName": "CN", "organizationName": "O", "organizationalUnitName": "OU",
                     "countryName": "C", "stateOrProvinceName": "ST", "localityName": "L"}
            text = ",".join(f"{short.get(k, k)}={v}" for k, v in reversed(parts))
            cn = next((v for k, v in parts if k == "commonName"), "")
            return text, cn

        subject, cn = name(cert.get("subject", ()))
        issuer, _ = name(cert.get("issuer", ()))
        return cls(subject, issuer, str(cert.get("serialNumber", "")), cn)


@dataclass(frozen=True)
class TlsRefusal:
    """A connection refused during or right after the TLS handshake (reported as a Security Alert)."""

    listener: str
    host: str
    port: int
    reason: str
    subject: str = ""  # the client certificate's, when one was verified but is not enough


RefusalHook = Callable[[TlsRefusal], None]


def client_cert_policy(tls: TlsConfig, listener: str) -> str:
    """``required`` or ``optional`` for ``listener`` (an HTTP endpoint name, mllp or dicom)."""
    override = getattr(tls.endpoints, listener, "") if listener in LISTENERS else ""
    if override:
        return override
    return REQUIRED if tls.require_client_cert else OPTIONAL


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        return f"client certificate rejected: {exc.verify_message}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake failed: {exc.reason or exc}"
    if isinstance(exc, TimeoutError):
        return "TLS handshake timed out"
    return f"TLS handshake failed: {type(exc).__name__}"


def is_reportable(exc: BaseException) -> bool:
    """Certificate and protocol failures are reported; a peer that closes or stalls before saying
    anything (port scans, load-balancer probes) is only logged."""
    if isinstance(exc, ssl.SSLEOFError | ssl.SSLZeroReturnError):
        return False
    return isinstance(exc, ssl.SSLError)


def _refuse(listener: str, peer: Any, exc: BaseException, on_refused: RefusalHook | None) -> None:
    host, port = (str(peer[0]), int(peer[1])) if isinstance(peer, tuple) and len(peer) >= 2 else ("", 0)
    refusal = TlsRefusal(listener, host, port, _reason(exc))
    if not is_reportable(exc):
        log.info("%s: TLS connection from %s:%s closed during the handshake (%s)", listener, host, port, refusal.reason)
        return
    log.warning("%s: TLS connection from %s:%s refused: %s", listener, host, port, refusal.reason)
    if on_refused is not None:
        try:
            on_refused(refusal)
        except Exception:
            log.exception("reporting a refused TLS connection failed")


class _ReportingContext(ssl.SSLContext):
    """For blocking servers (pynetdicom): a failed ``wrap_socket`` handshake is reported first."""

    listener: str = "dicom"
    on_refused: RefusalHook | None = None

    def wrap_socket(self, sock, *args, **kwargs):  # type: ignore[no-untyped-def,override]
        try:
            peer = sock.getpeername()
        except OSError:
            peer = None
        try:
            return super().wrap_socket(sock, *args, **kwargs)
        except (ssl.SSLError, OSError) as exc:
            _refuse(self.listener, peer, exc, self.on_refused)
            with contextlib.suppress(OSError):
                sock.close()
            raise


def _context(cls: type[ssl.SSLContext], tls: TlsConfig, verify: ssl.VerifyMode) -> ssl.SSLContext:
    ctx = cls(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls.cert, tls.key)
    ctx.load_verify_locations(cafile=tls.ca)
    ctx.verify_mode = verify
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_CIPHER_SERVER_PREFERENCE
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:!aNULL:!MD5:!DSS")  # RFC 7525 4.2
    return ctx


def server_ssl_context(
    cfg: NodeConfig, listener: str = "dicom", on_refused: RefusalHook | None = None
) -> ssl.SSLContext | None:
    """The server-side context for ``listener`` — ``"http"`` (all SOAP endpoints on the node's port),
    ``"mllp"`` or ``"dicom"`` — or None when ``tls.enabled`` is false.

    For ``"dicom"`` the context reports a handshake that fails inside ``wrap_socket`` to
    ``on_refused`` before the error propagates (pynetdicom's ``AE.start_server(...,
    ssl_context=...)`` calls it for each accepted socket)."""
    tls = cfg.tls
    if not tls.enabled:
        return None
    if listener == "http":
        policies = {client_cert_policy(tls, e) for e in HTTP_ENDPOINTS}
        required = policies == {REQUIRED}
    else:
        required = client_cert_policy(tls, listener) == REQUIRED
    verify = ssl.CERT_REQUIRED if required else ssl.CERT_OPTIONAL
    if listener == "dicom":
        ctx = _context(_ReportingContext, tls, verify)
        ctx.listener = listener  # type: ignore[attr-defined]
        ctx.on_refused = on_refused  # type: ignore[attr-defined]
        return ctx
    return _context(ssl.SSLContext, tls, verify)


def client_ssl_context(tls: TlsConfig, ca: str = "", cert: str = "", key: str = "") -> ssl.SSLContext:
    """A TLS client context presenting the node's certificate (audit repository, other nodes)."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca or tls.ca or None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    cert, key = cert or tls.cert, key or tls.key
    if cert:
        ctx.load_cert_chain(cert, key or None)
    return ctx


# --- terminating TLS on an accepted connection ------------------------------------------------


def _ssl_protocol_class(loop: asyncio.AbstractEventLoop) -> type:
    """The loop's own TLS protocol over a memory BIO: uvloop's (Cython) on a uvloop loop, else
    asyncio's. Both are what ``loop.create_server(ssl=...)`` and ``loop.start_tls`` put between a
    socket transport and the application protocol, with the same constructor."""
    try:
        import uvloop
        from uvloop.loop import SSLProtocol as UvloopSSLProtocol
    except ImportError:  # pragma: no cover - uvloop is a dependency
        uvloop = None  # type: ignore[assignment]
    if uvloop is not None and isinstance(loop, uvloop.Loop):
        return UvloopSSLProtocol
    from asyncio.sslproto import SSLProtocol

    return SSLProtocol


def install_tls(transport: asyncio.BaseTransport, app_protocol: asyncio.BaseProtocol, ctx: ssl.SSLContext,
                listener: str, on_refused: RefusalHook | None, timeout: float) -> None:
    """Terminate TLS on an accepted socket: call from the socket protocol's ``connection_made``.

    It does what ``loop.create_server(ssl=...)`` does for each connection — the loop's TLS protocol
    becomes the socket's protocol, ``app_protocol`` the one above it, whose ``connection_made``
    receives the TLS transport once the handshake has succeeded — but with a handshake waiter of
    its own, so that a failure is reported (:func:`_refuse`) instead of dropped. Installed inside
    ``connection_made``, before the loop starts reading (uvloop starts reading right after
    ``connection_made`` returns, whatever the protocol paused: a ``loop.start_tls`` from a task
    would come after the ClientHello had been handed to the plain protocol)."""
    loop = asyncio.get_running_loop()
    peer = transport.get_extra_info("peername")
    waiter = loop.create_future()

    def done(fut: asyncio.Future) -> None:
        exc = None if fut.cancelled() else fut.exception()
        if exc is not None:  # the TLS protocol has closed the socket already
            _refuse(listener, peer, exc, on_refused)

    waiter.add_done_callback(done)
    tls_protocol = _ssl_protocol_class(loop)(loop, app_protocol, ctx, waiter, server_side=True,
                                             ssl_handshake_timeout=timeout)
    transport.set_protocol(tls_protocol)  # type: ignore[attr-defined]
    tls_protocol.connection_made(transport)


# --- MLLP (asyncio streams) ----------------------------------------------------------------------


class _StreamTlsAcceptor(asyncio.Protocol):
    """The socket protocol of a TLS stream server: hands the socket to TLS, with the stream's
    protocol above it."""

    def __init__(self, app: asyncio.BaseProtocol, ctx: ssl.SSLContext, listener: str,
                 on_refused: RefusalHook | None, timeout: float) -> None:
        self.app, self.ctx, self.listener, self.on_refused, self.timeout = app, ctx, listener, on_refused, timeout

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        install_tls(transport, self.app, self.ctx, self.listener, self.on_refused, self.timeout)


async def start_tls_stream_server(
    client_connected: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Any],
    host: str | None,
    port: int,
    ctx: ssl.SSLContext,
    listener: str,
    on_refused: RefusalHook | None = None,
    timeout: float = 10.0,
    limit: int = 2**16,
) -> asyncio.Server:
    """``asyncio.start_server`` over TLS, with refused handshakes reported: ``client_connected``
    gets the streams of connections whose handshake succeeded (their certificate:
    :func:`stream_peer_certificate`)."""
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.Protocol:
        reader = asyncio.StreamReader(limit=limit, loop=loop)
        app = asyncio.StreamReaderProtocol(reader, client_connected, loop=loop)
        return _StreamTlsAcceptor(app, ctx, listener, on_refused, timeout)

    return await loop.create_server(factory, host, port)


def stream_peer_certificate(writer: asyncio.StreamWriter) -> PeerCertificate | None:
    """The client's verified certificate on a stream of :func:`start_tls_stream_server` (None: it sent none)."""
    return PeerCertificate.from_ssl_object(writer.get_extra_info("ssl_object"))


# --- HTTP (uvicorn) ------------------------------------------------------------------------------


class HttpTls:
    """The node's HTTPS listener state: its context, the verified certificate of each open
    connection (by client address), and where refusals are reported."""

    def __init__(self, context: ssl.SSLContext, handshake_timeout: float = 10.0,
                 on_refused: RefusalHook | None = None) -> None:
        self.context = context
        self.handshake_timeout = handshake_timeout
        self.on_refused = on_refused
        self._peers: dict[tuple[str, int], PeerCertificate | None] = {}

    def peer(self, client: tuple[str, int] | list | None) -> PeerCertificate | None:
        """The certificate of the connection ASGI ``scope["client"]`` came from (None: none sent)."""
        if not client:
            return None
        return self._peers.get((str(client[0]), int(client[1])))

    def refused(self, refusal: TlsRefusal) -> None:
        log.warning("%s: request from %s:%s refused: %s", refusal.listener, refusal.host, refusal.port, refusal.reason)
        if self.on_refused is not None:
            try:
                self.on_refused(refusal)
            except Exception:
                log.exception("reporting a refused TLS connection failed")


def _find_http_tls(app: Any) -> HttpTls:
    """The node's :class:`HttpTls`: ``app.state.http_tls`` of the Starlette app, under whatever
    middleware uvicorn wrapped around it (works in every worker process)."""
    for _ in range(16):
        state = getattr(app, "state", None)
        found = getattr(state, "http_tls", None) if state is not None else None
        if isinstance(found, HttpTls):
            return found
        app = getattr(app, "app", None)
        if app is None:
            break
    raise RuntimeError("TlsHttpProtocol needs the node's app (app.state.http_tls); see xds.node.build_node")


class TlsHttpProtocol(asyncio.Protocol):
    """uvicorn ``http=`` protocol class: TLS handshake first (reported when it fails), then
    uvicorn's own HTTP/1.1 protocol over the TLS transport.

    It is the socket's protocol and, through :func:`install_tls`, the application protocol above
    the loop's TLS protocol: ``connection_made`` is called twice, with the socket (TLS starts), then,
    once the handshake has succeeded, with the TLS transport (the certificate is noted for the
    endpoints' guards, and uvicorn's protocol takes the connection)."""

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any],
                 _loop: asyncio.AbstractEventLoop | None = None) -> None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        if not config.loaded:
            config.load()
        self.loop = _loop or asyncio.get_event_loop()
        self.tls = _find_http_tls(config.loaded_app)
        self.inner: asyncio.Protocol = AutoHTTPProtocol(  # type: ignore[call-arg]
            config=config, server_state=server_state, app_state=app_state, _loop=_loop
        )
        self._peer: Any = None
        self._key: tuple[str, int] | None = None
        self._tls_started = False
        self._connected = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._tls_started:
            self._start_tls(transport)
            return
        # the handshake succeeded: ``transport`` is the TLS transport; the client's first bytes
        # reach the HTTP protocol only after this (the TLS protocol schedules its first read)
        if isinstance(self._peer, tuple) and len(self._peer) >= 2:
            self._key = (str(self._peer[0]), int(self._peer[1]))
            self.tls._peers[self._key] = PeerCertificate.from_ssl_object(transport.get_extra_info("ssl_object"))
        self._connected = True
        self.inner.connection_made(transport)

    def _start_tls(self, transport: asyncio.BaseTransport) -> None:
        self._tls_started = True
        self._peer = transport.get_extra_info("peername")
        install_tls(transport, self, self.tls.context, "http", self.tls.on_refused, self.tls.handshake_timeout)

    def data_received(self, data: bytes) -> None:
        self.inner.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()  # type: ignore[attr-defined]

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._key is not None:
            self.tls._peers.pop(self._key, None)
        if self._connected:
            self.inner.connection_lost(exc)
