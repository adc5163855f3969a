"""The HTTP seam: plain request/response values for the APIs, and the one class that serves them.

``ApiRequest`` and ``ApiResponse`` carry no framework type, so the API modules (``v3``, ``legacy``,
``control``) never see werkzeug. ``ApiServer`` is the only place that does: it runs werkzeug's threaded
``make_server`` on loopback, turns each WSGI request into an ``ApiRequest`` (reading at most
``max_body_size`` bytes), and writes the ``ApiResponse`` back. Moving the simulator onto the server's
``_http11`` layer means replacing ``ApiServer`` alone.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_voicecb import _checks
from pytest_voicecb.contract import JSON_CONTENT_TYPE

__all__ = ["DEFAULT_MAX_BODY_SIZE", "ApiRequest", "ApiResponse", "ApiServer", "json_response"]

DEFAULT_MAX_BODY_SIZE = 1024 * 1024
"""Send-API request bodies are read up to 1 MiB; larger ones get the API's size error."""


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
    """What to answer: ``status``, ``headers``, ``body``; ``delay`` real seconds first; ``drop`` closes the socket."""

    status: int = 200
    body: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    drop: bool = False


def json_response(data: Any, status: int = 200) -> ApiResponse:
    """``data`` as JSON with the exact ``application/json`` type (the official SDK accepts no parameters on it)."""
    body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    return ApiResponse(status, body, [("Content-Type", JSON_CONTENT_TYPE)])


Handler = Callable[[ApiRequest], ApiResponse]


class ApiServer:
    """A threaded werkzeug server on ``host``:``port`` answering every request with ``handler``.

    The handler never raises into the server: an exception becomes a 500 with the error shown, and the
    server keeps serving. ``stopping`` cuts short any scripted delay.
    """

    def __init__(
        self, handler: Handler, *, host: str = "127.0.0.1", port: int = 0, max_body_size: int = DEFAULT_MAX_BODY_SIZE
    ) -> None:
        self.handler = handler
        self.host = host
        self.port = _checks.whole("port", port, maximum=65535)
        self.max_body_size = _checks.whole("max_body_size", max_body_size, minimum=1)
        self.stopping = threading.Event()
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        from werkzeug.serving import WSGIRequestHandler, make_server

        class QuietHandler(WSGIRequestHandler):
            def log(self, *args: Any) -> None:  # the simulator reports sends itself
                pass

        self.stopping.clear()
        server = make_server(self.host, self.port, self._wsgi, threaded=True, request_handler=QuietHandler)
        server.daemon_threads = True  # type: ignore[attr-defined]
        self.port = server.server_port
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.name = f"voicecb-provider-{self.port}"
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def _wsgi(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = self._request(environ)
        try:
            response = self.handler(request)
        except Exception as exc:  # never a crash of the server: say what broke
            response = json_response({"error": f"simulator bug: {type(exc).__name__}: {exc}"}, 500)
        if response.delay and self.stopping.wait(response.delay):
            response = json_response({"error": "the simulator stopped"}, 503)
        if response.drop:
            sock = environ.get("werkzeug.socket")
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            # werkzeug cannot write to the closed socket; the client sees the connection dropped
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        reason = _REASONS.get(response.status, "Unknown")
        start_response(f"{response.status} {reason}", headers)
        return [response.body]

    def _request(self, environ: dict[str, Any]) -> ApiRequest:
        headers = {
            key[5:].replace("_", "-").lower(): value for key, value in environ.items() if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        stream = environ["wsgi.input"]
        too_large = length > self.max_body_size
        body = b"" if too_large else _read(stream, length)
        if too_large:
            _drain(stream, length)
        return ApiRequest(
            environ.get("REQUEST_METHOD", "GET"),
            environ.get("PATH_INFO", "/") or "/",
            environ.get("QUERY_STRING", ""),
            headers,
            body,
            too_large,
        )


def _read(stream: Any, length: int) -> bytes:
    chunks, left = [], length
    while left > 0:
        chunk = stream.read(min(left, 65536))
        if not chunk:
            break
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _drain(stream: Any, length: int, limit_seconds: float = 5.0) -> None:
    """Read and drop an oversized body (up to a bound) so the client sees our answer, not a reset."""
    end = time.monotonic() + limit_seconds
    left = min(length, 64 * 1024 * 1024)
    while left > 0 and time.monotonic() < end:
        chunk = stream.read(min(left, 65536))
        if not chunk:
            break
        left -= len(chunk)


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed", 500: "Internal Server Error"}
_REASONS[503] = "Service Unavailable"
_REASONS[413] = "Payload Too Large"
