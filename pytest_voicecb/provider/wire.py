"""The HTTP seam: plain request/response values for the APIs, and the one class that serves them.

``ApiRequest`` and ``ApiResponse`` carry no framework type, so the API modules (``v3``, ``legacy``,
``control``) never see an HTTP server. ``ApiServer`` is the only place that does: it runs the project's
keep-alive HTTP/1.1 layer (``server._http11``, what ``CallbackServer`` runs on) on loopback, so an SDK's
connection pool reuses one connection for every send. That layer reads each body exactly
(``Content-Length`` or chunked, at most ``max_body_size`` bytes once decoded), bounds idle and slow
connections, and hands each request here as an ``Incoming``; ``ApiServer`` turns it into an
``ApiRequest`` and the handler's ``ApiResponse`` into the bytes sent back.
"""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pytest_voicecb import _arguments
from pytest_voicecb.contract import JSON_CONTENT_TYPE
from pytest_voicecb.provider import proxy

if TYPE_CHECKING:
    from werkzeug.wrappers import Response

    from pytest_voicecb.server._http11 import Answer, HTTP11Server, Incoming

__all__ = ["DEFAULT_MAX_BODY_SIZE", "ApiRequest", "ApiResponse", "ApiServer", "json_response"]

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
"""Send-API request bodies are read up to 1 MiB; larger ones get the API's size error."""

DEFAULT_MAX_CONNECTIONS = 256
"""Open connections served at once (each busy one holds a worker thread); one more gets a 503."""


@dataclass(frozen=True)
class ApiRequest:
    """One request as the APIs see it. ``headers`` keys are lower-case; ``too_large`` means the body was cut."""

    method: str
    path: str
    query: str
    headers: Mapping[str, str]
    body: bytes
    too_large: bool = False

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class ApiResponse:
    """What to answer: ``status``, ``headers``, ``body``; ``delay`` real seconds first; ``drop`` closes the socket;
    ``reason`` replaces the status line's usual phrase (what a client shows when it reads no body)."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    drop: bool = False
    reason: str = ""


def json_response(data: Any, status: int = 200) -> ApiResponse:
    """``data`` as JSON with the exact ``application/json`` type (the official SDK accepts no parameters on it)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return ApiResponse(status, body, [("Content-Type", JSON_CONTENT_TYPE)])


Handler = Callable[[ApiRequest], ApiResponse]


class ApiServer:
    """The keep-alive HTTP/1.1 server on ``host``:``port`` answering every request with ``handler``.

    The handler never raises into the server: an exception becomes a 500 with the error shown, and the
    server keeps serving. ``stopping`` cuts short any scripted delay. A body over ``max_body_size``
    reaches the handler as ``too_large`` (so each API answers with its own size error); a request the
    HTTP layer cannot read (a body cut short, bad framing) is answered ``{"error": ...}`` with its status.
    ``tls=True`` serves HTTPS with a certificate from the test CA (``ca_path``, set at ``start()``), and
    plain HTTP on the same port to a client that speaks it (an SDK's proxy agent, before its ``CONNECT``).
    """

    def __init__(
        self,
        handler: Handler,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
        timeout: float = 30.0,
        max_connections: int = DEFAULT_MAX_CONNECTIONS,
        tls: bool | ssl.SSLContext = False,
    ) -> None:
        self.handler = handler
        self.tls = tls
        self.ca_path: str | None = None
        self.host = host
        self.port = _arguments.whole("port", port, maximum=65535)
        self.max_body_size = _arguments.whole("max_body_size", max_body_size, minimum=1)
        self.timeout = _arguments.seconds("timeout", timeout)
        self.max_connections = _arguments.whole("max_connections", max_connections, minimum=1)
        self.stopping = threading.Event()
        self._http: HTTP11Server | None = None
        self._own: set[str] = set()

    @property
    def running(self) -> bool:
        return self._http is not None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'http' if self.tls is False else 'https'}://{host}:{self.port}"

    def start(self) -> None:
        from pytest_voicecb import _tls
        from pytest_voicecb.server._http11 import HTTP11Server, listen

        context, self.ca_path = _tls.server_context(self.tls, self.host)
        self.stopping.clear()
        http = HTTP11Server(
            self,
            listen(self.host, self.port),
            name="provider simulator",
            error_reply=_error_reply,
            max_body_size=self.max_body_size,
            timeout=self.timeout,
            header_timeout=min(self.timeout, 10.0),
            max_connections=self.max_connections,
            tls=context,
            plain_too=True,  # the SDKs' proxy agents speak plain HTTP to the proxy, then TLS inside CONNECT
        )
        self.port = http.port
        self._own = {f"{name}:{self.port}" for name in (self.host, f"[{self.host}]", "127.0.0.1", "localhost")}
        self._http = http
        http.start()

    def stop(self) -> None:
        """Close the listener and every connection at once; a scripted delay in progress ends now."""
        http, self._http = self._http, None
        if http is None:
            return
        self.stopping.set()
        http.stop()

    def receive(self, incoming: Incoming) -> Answer:
        """The HTTP layer's one call per request (``server._http11.Receiver``); not for the APIs."""
        from pytest_voicecb.server._http11 import Answer

        refusal = incoming.refusal
        if not incoming.method or (refusal is not None and refusal.status != 413):
            status = None if refusal is None else refusal.status
            return Answer(reply=None if status is None else _error_reply(status, refusal.message if refusal else ""))
        refused = proxy.refusal(incoming.method, incoming.authority, self._own, tls_tunnels=self.tls is True)
        if refused is None and incoming.method == "CONNECT":
            return self._tunnel(incoming.authority)
        if refused is not None:
            response = json_response({"error": refused.message}, refused.status)
            response.reason = refused.reason
            if refused.close:
                response.headers.append(("Connection", "close"))
            return Answer(reply=_reply(response))
        response = self._respond(_api_request(incoming, too_large=refusal is not None))
        if response.drop:
            return Answer(reply=None, delay=response.delay, interrupt=self.stopping)
        return Answer(reply=_reply(response), delay=response.delay, interrupt=self.stopping)

    def _tunnel(self, authority: str) -> Answer:
        """A ``CONNECT`` to one of the provider's hosts: 200, then the connection is served as if it had
        come here directly (inside TLS for port 443, with a certificate for that host from the test CA)."""
        from pytest_voicecb import _tls
        from pytest_voicecb.server._http11 import Answer

        secure = _tls.host_context(proxy.tunnel_host(authority)) if proxy.tunnel_is_tls(authority) else None
        return Answer(reply=_reply(ApiResponse(200, reason="Connection established")), tunnel=True, secure=secure)

    def _respond(self, request: ApiRequest) -> ApiResponse:
        try:
            return self.handler(request)
        except Exception as exc:  # never a crash of the server: say what broke
            return json_response({"error": f"simulator bug: {type(exc).__name__}: {exc}"}, 500)


def _api_request(incoming: Incoming, *, too_large: bool) -> ApiRequest:
    """``incoming`` as the APIs see it: lower-case header names, repeated headers joined with commas (as a
    WSGI server joins them); a body over the limit is empty and ``too_large``."""
    headers: dict[str, str] = {}
    for name, value in incoming.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    body = b"" if too_large else incoming.body
    return ApiRequest(incoming.method, incoming.path or "/", incoming.query, headers, body, too_large)


def _reply(response: ApiResponse) -> Response:
    """The werkzeug ``Response`` the HTTP layer renders: exactly the API's headers, and its length."""
    from werkzeug.wrappers import Response

    status = f"{response.status} {response.reason}" if response.reason else response.status
    reply = Response(response.body, status, headers=response.headers)
    if not any(name.lower() == "content-type" for name, _ in response.headers):
        del reply.headers["Content-Type"]  # werkzeug's text/plain default is not what the API sent
    return reply


def _error_reply(status: int, message: str) -> Response:
    """What the HTTP layer answers itself (a 503 at the connection limit, a body cut short ...)."""
    return _reply(json_response({"error": message}, status))
