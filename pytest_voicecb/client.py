"""Deliver callbacks to a handler and capture its reply: in-process (WSGI or ASGI) or over HTTP.

``CallbackClient(target)`` takes what the integrator has: a WSGI app (Flask, Django's
``get_wsgi_application()``), an ASGI app (FastAPI, Starlette, a plain ``async def app(scope, receive,
send)``), an ``http(s)://`` URL, or a ``"module:attribute"`` string naming one of those. In-process apps
are called directly, without sockets; ASGI apps go through a2wsgi (with the lifespan startup and
shutdown a server would run) so both in-process paths share one code path. Every delivery returns a
``Reply``, whatever the handler does: an app that raises gives a 500 reply (as a server would answer),
and only a delivery that gets no reply at all (connection refused, timeout, a hung app) raises
``DeliveryError``.
"""

from __future__ import annotations

import http.client
import importlib
import inspect
import io
import json
import queue
import shlex
import socket
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from werkzeug.datastructures import Headers

from pytest_voicecb.asgi import AsgiBridge, is_asgi
from pytest_voicecb.contract import encode
from pytest_voicecb.values import Case, Variant

__all__ = [
    "DEFAULT_PATH",
    "IN_PROCESS_BASE_URL",
    "MAX_REPLY_SIZE",
    "CallbackClient",
    "DeliveryError",
    "Reply",
    "SentRequest",
    "TargetError",
    "describe_target",
    "resolve_target",
]

DEFAULT_PATH = "/voice/callback"
"""Where callbacks are delivered unless a path (or a URL with a path) says otherwise."""

IN_PROCESS_BASE_URL = "http://localhost:8000"
"""The host an in-process app is told it runs on, and the placeholder in its curl reproducers."""

MAX_REPLY_SIZE = 1024 * 1024
"""Replies are read up to this many bytes (1 MiB) and marked ``truncated`` beyond it."""

JSON = "application/json"


class TargetError(ValueError):
    """A target that cannot be used: an unimportable ``module:attribute``, a bad URL, a failed ASGI startup."""


class DeliveryError(AssertionError):
    """A callback got no reply at all: connection refused, unknown host, timeout, or an app that hung.

    An ``AssertionError`` (not a ``ConnectionError``) because in a test it is a verdict on the handler,
    "it did not answer", and because user code that retries on ``OSError`` must not swallow it.
    ``unreachable`` is true when nothing could be connected to (refused, unknown host), ``timed_out``
    when the handler did not answer in time, so callers can tell "no handler there" from a slow one.
    """

    def __init__(
        self, request: SentRequest, reason: str, *, unreachable: bool = False, timed_out: bool = False
    ) -> None:
        self.request = request
        self.reason = reason
        self.unreachable = unreachable
        self.timed_out = timed_out
        where = request.url
        if request.in_process:
            where = f"the in-process app at {urllib.parse.urlsplit(request.url).path}"
        super().__init__(
            f"no reply from {where}: {reason}\nsent: {request.summary()}\nreproduce:\n{_indent(request.curl())}"
        )

    @property
    def url(self) -> str:
        return self.request.url


@dataclass(frozen=True)
class SentRequest:
    """What was delivered: ``method``, full ``url``, ``headers``, ``body``; ``in_process`` when no socket was used."""

    method: str
    url: str
    headers: Headers
    body: bytes
    in_process: bool = False

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    def summary(self) -> str:
        """One line: method, URL, content type and size."""
        return f"{self.method} {self.url} ({self.content_type or 'no content type'}, {len(self.body):,} bytes)"

    def curl(self) -> str:
        """A shell command that sends the same bytes with the same headers (see ``Reply.curl``)."""
        return _curl(self)


@dataclass(frozen=True)
class Reply:
    """A handler's answer to one delivery.

    ``status`` (int), ``headers`` (werkzeug ``Headers``, case-insensitive), ``body`` (bytes, at most
    ``max_reply_size``; ``truncated`` says the handler sent more), ``elapsed`` (seconds from sending to
    the last byte read), ``request`` (what was sent), and for in-process targets ``errors``: what the app
    wrote to ``wsgi.errors`` (Flask logs its 500 tracebacks there) plus the traceback of an exception
    that escaped it.
    """

    status: int
    headers: Headers
    body: bytes
    elapsed: float
    request: SentRequest
    truncated: bool = False
    errors: str = ""

    @property
    def json(self) -> Any:
        """The body decoded as JSON, or None when it is not JSON (or was truncated)."""
        if self.truncated or not self.body:
            return None
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    @property
    def content_type(self) -> str | None:
        return self.headers.get("Content-Type")

    @property
    def text(self) -> str:
        """The body as text (UTF-8, undecodable bytes replaced)."""
        return self.body.decode("utf-8", "replace")

    def curl(self) -> str:
        """A shell command reproducing this delivery against a live URL.

        For an in-process target the URL starts with ``http://localhost:8000`` (``IN_PROCESS_BASE_URL``)
        and the command says so in a comment: point it at wherever the handler is served.
        """
        return self.request.curl()


# ---- targets --------------------------------------------------------------------------------------


def resolve_target(target: object) -> object:
    """A target as given, with ``"module:attribute"`` strings imported; URLs are returned unchanged.

    Raises ``TargetError`` (or ``TypeError`` for something that is not a target at all).
    """
    if isinstance(target, str):
        spec = target.strip()
        if _is_url(spec):
            _split_url(spec)  # validates
            return spec
        module_name, sep, attribute = spec.partition(":")
        if attribute.startswith("//"):
            raise TargetError(f"target {target!r}: only http:// and https:// URLs can be delivered to")
        if not sep or not module_name or not attribute:
            raise TargetError(
                f"target {target!r} is neither a URL (http://host:port/path) nor a 'module:attribute' "
                "naming a WSGI or ASGI app (e.g. 'myproject.wsgi:application')"
            )
        try:
            obj: object = importlib.import_module(module_name)
        except ImportError as exc:
            raise TargetError(f"target {target!r}: cannot import module {module_name!r}: {exc}") from exc
        for part in attribute.split("."):
            try:
                obj = getattr(obj, part)
            except AttributeError:
                raise TargetError(f"target {target!r}: module {module_name!r} has no attribute {attribute!r}") from None
        target = obj
    if isinstance(target, (bytes, bytearray)) or not callable(target):
        raise TypeError(
            "a target is a WSGI app, an ASGI app, an http(s):// URL or a 'module:attribute' string; "
            f"got {type(target).__name__} {_short_repr(target)}"
        )
    return target


def describe_target(target: object) -> str:
    """A short description for reports: the URL, or the app and how it is driven."""
    if isinstance(target, str):
        return target
    return f"{_name_of(target)} (in-process {'ASGI' if is_asgi(target) else 'WSGI'})"


def _is_url(text: str) -> bool:
    return text.lower().startswith(("http://", "https://"))


def _name_of(obj: object) -> str:
    if inspect.isfunction(obj) or inspect.ismethod(obj):
        return f"{obj.__module__}.{obj.__qualname__}"
    text = repr(obj)
    if len(text) <= 80 and " object at 0x" not in text:
        return text
    return f"{type(obj).__module__}.{type(obj).__qualname__}"


def _split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-and-query) of an http(s) URL; ``TargetError`` for a malformed one."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise TargetError(f"bad target URL {url!r}: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise TargetError(f"bad target URL {url!r}: expected http://host[:port][/path]")
    path = parts.path or ""
    if parts.query:
        path += "?" + parts.query
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), path


# ---- the client -----------------------------------------------------------------------------------


class CallbackClient:
    """Delivers callbacks to one target and returns each ``Reply``.

    ``path`` is where callbacks go (default: the URL's own path, else ``/voice/callback``); ``timeout``
    bounds each delivery (None: no bound, and in-process apps then run in the calling thread, which
    matters when a handler must share thread-local state such as pytest-django's test database;
    otherwise they run in a worker thread so a hung app becomes a ``DeliveryError``); replies are read
    up to ``max_reply_size`` bytes. Use as a context manager, or call ``close()``.
    """

    def __init__(
        self,
        target: object,
        *,
        path: str | None = None,
        timeout: float | None = 5.0,
        max_reply_size: int = MAX_REPLY_SIZE,
        base_url: str = IN_PROCESS_BASE_URL,
    ) -> None:
        _check_timeout(timeout)
        if not isinstance(max_reply_size, int) or isinstance(max_reply_size, bool) or max_reply_size < 1:
            raise ValueError(f"max_reply_size must be a positive number of bytes, got {max_reply_size!r}")
        self.target = resolve_target(target)
        self.timeout = timeout
        self.max_reply_size = max_reply_size
        self.description = describe_target(self.target)
        self.closed = False
        self._transport: _Transport
        if isinstance(self.target, str):
            scheme, host, port, url_path = _split_url(self.target)
            default_port = (scheme, port) in (("http", 80), ("https", 443))
            self.base_url = f"{scheme}://{host}" + ("" if default_port else f":{port}")
            self.path = _check_path(path if path is not None else (url_path or DEFAULT_PATH))
            self._transport = _HttpTransport(scheme, host, port)
        else:
            self.base_url = base_url.rstrip("/")
            _split_url(self.base_url)
            self.path = _check_path(path if path is not None else DEFAULT_PATH)
            if is_asgi(self.target):
                self._transport = _WsgiTransport(AsgiBridge(self.target), self.base_url)
            else:
                self._transport = _WsgiTransport(self.target, self.base_url)

    @property
    def url(self) -> str:
        """The URL callbacks are delivered to (for in-process targets, with the placeholder host)."""
        return self.base_url + self.path

    def __repr__(self) -> str:
        return f"CallbackClient({self.description}, path={self.path!r})"

    def __enter__(self) -> CallbackClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the keep-alive connection, or run an ASGI app's lifespan shutdown; ``post()`` then refuses."""
        self.closed = True
        self._transport.close()

    def post(
        self,
        data: object,
        *,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        content_type: str | None = None,
        timeout: float | None = None,
    ) -> Reply:
        """Deliver ``data`` and return the reply.

        ``data`` is a payload (a dict, encoded as the provider does), a ``Case`` from the malformed corpus
        (sent with its own body and content type), a ``Variant``, or raw ``bytes`` / ``str``. Raises
        ``DeliveryError`` when no reply comes back.
        """
        if self.closed:
            raise RuntimeError(f"{self!r} is closed")
        body, default_type = _body_of(data)
        send_headers = Headers()
        kind = content_type if content_type is not None else default_type
        if kind:
            send_headers["Content-Type"] = kind
        if headers is not None:
            if not isinstance(headers, Mapping):
                raise TypeError(f"headers must be a mapping of names to values, got {type(headers).__name__}")
            for name, value in headers.items():
                send_headers[str(name)] = str(value)
        target_path = self.path if path is None else _check_path(path)
        request = SentRequest(
            "POST",
            self.base_url + target_path,
            send_headers,
            body,
            in_process=not isinstance(self.target, str),
        )
        limit = self.timeout if timeout is None else _check_timeout(timeout)
        return self._transport.deliver(request, target_path, limit, self.max_reply_size)


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return timeout


def _check_path(path: object) -> str:
    if not isinstance(path, str) or not path.startswith("/") or any(c in path for c in " \r\n"):
        raise ValueError(f"path must start with '/' and hold no spaces or line breaks, got {path!r}")
    return path


def _body_of(data: object) -> tuple[bytes, str | None]:
    """The bytes to send for ``data`` and the content type that goes with them."""
    if isinstance(data, Case):
        return data.body, data.content_type or None
    if isinstance(data, Variant):
        return encode(data.payload), JSON
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data), JSON
    if isinstance(data, str):
        return data.encode("utf-8", "surrogatepass"), JSON
    try:
        return encode(data), JSON
    except (TypeError, ValueError) as exc:
        raise TypeError(
            "post() takes a payload (a JSON-serializable dict), a Case, a Variant, bytes or str; "
            f"got {type(data).__name__} {_short_repr(data)}: {exc}"
        ) from None


# ---- transports -----------------------------------------------------------------------------------


class _Transport(Protocol):
    def deliver(self, request: SentRequest, path: str, timeout: float | None, max_size: int) -> Reply: ...

    def close(self) -> None: ...


class _Worker:
    """A daemon thread running deliveries one at a time, so a hung app can be given up on.

    One long-lived thread (not one per delivery): the caller sleeps on an event while the app runs,
    so the two never compete for the GIL. A worker stuck in a hung app is abandoned; it exits if the
    app ever returns.
    """

    def __init__(self) -> None:
        self.jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="voicecb-delivery", daemon=True).start()

    def _serve(self) -> None:
        while (job := self.jobs.get()) is not None:
            job()

    def stop(self) -> None:
        self.jobs.put(None)


class _WsgiTransport:
    """Calls a WSGI app with a werkzeug environ, as a server would, and never lets its exceptions out."""

    def __init__(self, app: Any, base_url: str) -> None:
        self.app = app
        self.base_url = base_url
        self._worker: _Worker | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            if self._worker is not None:
                self._worker.stop()
                self._worker = None
        if isinstance(self.app, AsgiBridge):
            self.app.close()

    def deliver(self, request: SentRequest, path: str, timeout: float | None, max_size: int) -> Reply:
        if timeout is None:
            return self._call(request, path, max_size)
        outcome: list[Reply | BaseException] = []
        done = threading.Event()

        def job() -> None:
            try:
                outcome.append(self._call(request, path, max_size))
            except BaseException as exc:  # handed to the caller, never raised here
                outcome.append(exc)
            finally:
                done.set()

        with self._lock:
            if self._worker is None:
                self._worker = _Worker()
            worker = self._worker
            worker.jobs.put(job)
            if not done.wait(timeout):
                worker.stop()  # it leaves once the hung app returns, if ever
                self._worker = None
                raise DeliveryError(
                    request,
                    f"the app did not answer within {timeout:g} s (it is left running in a background thread)",
                    timed_out=True,
                )
        result = outcome[0]
        if isinstance(result, BaseException):
            raise result
        return result

    def _call(self, request: SentRequest, path: str, max_size: int) -> Reply:
        from werkzeug.test import EnvironBuilder

        errors = io.StringIO()
        builder = EnvironBuilder(
            path=path,
            base_url=self.base_url,
            method=request.method,
            data=request.body,
            headers=request.headers,
            errors_stream=errors,
        )
        try:
            environ = builder.get_environ()
        finally:
            builder.close()
        started: list[tuple[str, list[tuple[str, str]]]] = []
        chunks: list[bytes] = []
        escaped: list[str] = []

        def start_response(
            status: str,
            headers: list[tuple[str, str]],
            exc_info: tuple[type[BaseException], BaseException, TracebackType | None] | None = None,
        ) -> Callable[[bytes], object]:
            if exc_info is not None and exc_info[1] is not None:
                escaped.append("".join(traceback.format_exception(exc_info[1])))
            started[:] = [(status, list(headers))]
            return chunks.append

        size = 0
        truncated = False
        begin = time.perf_counter()
        try:
            app_iter: Iterable[bytes] = self.app(environ, start_response)
            try:
                for chunk in app_iter:
                    if not chunk:
                        continue
                    chunks.append(bytes(chunk))
                    size += len(chunk)
                    if size > max_size:
                        truncated = True
                        break
            finally:
                close = getattr(app_iter, "close", None)
                if close is not None:
                    close()
        except Exception as exc:  # a real server answers 500; so do we
            escaped.append("".join(traceback.format_exception(exc)))
            if not started:
                started[:] = [("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain; charset=utf-8")])]
                chunks[:] = [b"Internal Server Error"]
                size = len(chunks[0])
        elapsed = time.perf_counter() - begin
        if not started:
            started[:] = [("500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain; charset=utf-8")])]
            escaped.append("the app returned without calling start_response()\n")
        status_line, reply_headers = started[0]
        body = b"".join(chunks)
        return Reply(
            status=_status_code(status_line),
            headers=Headers(reply_headers),
            body=body[:max_size],
            elapsed=elapsed,
            request=request,
            truncated=truncated or len(body) > max_size,
            errors=errors.getvalue() + "".join(escaped),
        )


def _status_code(status_line: str) -> int:
    try:
        return int(status_line.split(None, 1)[0])
    except (ValueError, IndexError):
        return 500


class _HttpTransport:
    """Real HTTP over one keep-alive connection (stdlib ``http.client``), reopened when it breaks."""

    def __init__(self, scheme: str, host: str, port: int) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._drop()

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self, timeout: float | None) -> tuple[http.client.HTTPConnection, bool]:
        """The open connection (True: reused) or a new one."""
        if self._conn is not None and self._conn.sock is not None:
            self._conn.sock.settimeout(timeout)
            self._conn.timeout = timeout
            return self._conn, True
        self._drop()
        kind = http.client.HTTPSConnection if self.scheme == "https" else http.client.HTTPConnection
        self._conn = kind(self.host, self.port, timeout=timeout)
        return self._conn, False

    def deliver(self, request: SentRequest, path: str, timeout: float | None, max_size: int) -> Reply:
        with self._lock:
            for attempt in (1, 2):
                conn, reused = self._connection(timeout)
                begin = time.perf_counter()
                try:
                    conn.request(request.method, path, body=request.body, headers=dict(request.headers))
                    response = conn.getresponse()
                    body = response.read(max_size + 1)
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                    self._drop()
                    if reused and attempt == 1:
                        continue  # the server closed an idle keep-alive connection: retry once on a new one
                    raise DeliveryError(request, f"the server closed the connection without replying ({exc})") from None
                except BaseException as exc:
                    self._drop()
                    raise _delivery_error(request, exc, timeout) from None
                elapsed = time.perf_counter() - begin
                truncated = len(body) > max_size
                if truncated or response.will_close:
                    self._drop()
                return Reply(
                    status=response.status,
                    headers=Headers(response.getheaders()),
                    body=body[:max_size],
                    elapsed=elapsed,
                    request=request,
                    truncated=truncated,
                )
        raise AssertionError("unreachable")  # pragma: no cover


def _delivery_error(request: SentRequest, exc: BaseException, timeout: float | None) -> BaseException:
    """Our ``DeliveryError`` for a network failure; anything that is not one is passed on unchanged."""
    host = urllib.parse.urlsplit(request.url).netloc
    if isinstance(exc, ConnectionRefusedError):
        return DeliveryError(request, f"connection refused (nothing is listening on {host})", unreachable=True)
    if isinstance(exc, socket.gaierror):
        return DeliveryError(request, f"cannot resolve the host of {host} ({exc.strerror or exc})", unreachable=True)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        return DeliveryError(request, f"no reply within {timeout:g} s" if timeout else "timed out", timed_out=True)
    if isinstance(exc, http.client.HTTPException):
        return DeliveryError(request, f"the reply is not HTTP ({type(exc).__name__}: {exc})")
    if isinstance(exc, OSError):
        unreachable = isinstance(exc, (ConnectionError,)) or exc.errno in (101, 113)  # network/host unreachable
        return DeliveryError(request, f"{exc.strerror or exc}", unreachable=unreachable)
    return exc


# ---- curl -----------------------------------------------------------------------------------------

_SKIPPED_HEADERS = {"host", "content-length", "accept-encoding"}
_INLINE_LIMIT = 8 * 1024


def _curl(request: SentRequest) -> str:
    parts = ["curl", "-sS", "-i", "-X", request.method, shlex.quote(request.url)]
    for name, value in request.headers.items():
        if name.lower() not in _SKIPPED_HEADERS:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    if "Content-Type" not in request.headers:
        parts += ["-H", shlex.quote("Content-Type:")]  # curl would add a form content type otherwise
    lines = []
    if request.in_process:
        lines.append(f"# in-process target: replace {IN_PROCESS_BASE_URL} with where the handler is served")
    body = request.body
    text = _printable(body)
    if text is not None and len(body) <= _INLINE_LIMIT:
        lines.append(" ".join([*parts, "--data-binary", shlex.quote(text)]))
    elif len(body) <= _INLINE_LIMIT:
        lines.append(f"printf {shlex.quote(_printf_format(body))} | " + " ".join([*parts, "--data-binary", "@-"]))
    else:
        expression = _bytes_expression(body)
        if len(expression) > 4 * _INLINE_LIMIT:
            lines.append(f"# the {len(body):,}-byte body is too large to inline: write Reply.request.body to body.bin")
            lines.append(" ".join([*parts, "--data-binary", "@body.bin"]))
        else:
            script = f"import sys; sys.stdout.buffer.write({expression})"
            lines.append(f"python3 -c {shlex.quote(script)} | " + " ".join([*parts, "--data-binary", "@-"]))
    return "\n".join(lines)


def _printable(body: bytes) -> str | None:
    """The body as text when a shell argument carries it faithfully (UTF-8, no control bytes but newline/tab)."""
    if not body:
        return ""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith("@") or any((ord(c) < 32 and c not in "\n\t") or 0xD800 <= ord(c) < 0xE000 for c in text):
        return None
    return text


def _printf_format(body: bytes) -> str:
    """A POSIX ``printf`` format that writes exactly ``body``: printable ASCII as is, other bytes in octal."""
    out = []
    for byte in body:
        char = chr(byte)
        if char == "%":
            out.append("%%")
        elif char == "\\":
            out.append("\\\\")
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def _bytes_expression(body: bytes, run: int = 64) -> str:
    """A Python expression for ``body`` with long runs of one byte written as ``b'x' * n``."""
    pieces: list[str] = []
    literal = bytearray()
    i = 0
    while i < len(body):
        j = i
        while j < len(body) and body[j] == body[i]:
            j += 1
        if j - i >= run:
            if literal:
                pieces.append(repr(bytes(literal)))
                literal.clear()
            pieces.append(f"{bytes([body[i]])!r} * {j - i}")
        else:
            literal += body[i:j]
        i = j
    if literal or not pieces:
        pieces.append(repr(bytes(literal)))
    return " + ".join(pieces)


# ---- small helpers --------------------------------------------------------------------------------


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _indent(text: str, prefix: str = "  ") -> str:
    return "\n".join(prefix + line for line in text.splitlines())
