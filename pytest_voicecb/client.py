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
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol

from werkzeug.datastructures import Headers

from pytest_voicecb._text import safe
from pytest_voicecb.asgi import AsgiBridge, is_asgi
from pytest_voicecb.contract import KINDS, encode, kind_named
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
    up to ``max_reply_size`` bytes. ``paths`` maps callback kinds (``prompt`` or
    ``voiceprompt_callback``) to their own paths, for handlers with one URL per kind. ``remote_addr`` is
    the client address an in-process app sees. ``redact`` (default) hides credentials (Authorization,
    Cookie, Proxy-Authorization, ``user:pass@``) in messages and reproducers. Use as a context manager,
    or call ``close()``.
    """

    def __init__(
        self,
        target: object,
        *,
        path: str | None = None,
        timeout: float | None = 5.0,
        max_reply_size: int = MAX_REPLY_SIZE,
        base_url: str = IN_PROCESS_BASE_URL,
        paths: Mapping[str, str] | None = None,
        remote_addr: str = "127.0.0.1",
        redact: bool = True,
    ) -> None:
        _check_timeout(timeout)
        self.paths = _check_paths(paths)
        if not isinstance(remote_addr, str) or not remote_addr:
            raise ValueError(f"remote_addr must be an IP address such as '127.0.0.1', got {remote_addr!r}")
        self.remote_addr = remote_addr
        self.redact = bool(redact)
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
        __tracebackhide__ = True
        request, target_path = self._request(data, path, headers, content_type)
        limit = self.timeout if timeout is None else _check_timeout(timeout)
        return self._transport.deliver(request, target_path, limit, self.max_reply_size)

    def post_concurrently(
        self,
        items: Sequence[object],
        *,
        path: str | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> list[Reply | DeliveryError]:
        """Deliver every item at the same moment and return, in order, each one's ``Reply`` or ``DeliveryError``.

        For races a handler must survive: a duplicate delivered twice at once, a call's status and
        failure callbacks arriving together. All deliveries wait at a barrier and are then sent at once,
        over HTTP each on its own connection (opened before the barrier), in-process each in its own
        thread calling the app, as a threaded server would. ``timeout`` bounds the whole batch.
        """
        __tracebackhide__ = True
        if isinstance(items, (str, bytes, bytearray, Mapping)) or not isinstance(items, Sequence):
            raise TypeError(
                "post_concurrently() takes a sequence of items to post (payloads, Cases, bytes), "
                f"got {type(items).__name__}"
            )
        requests = [self._request(item, path, headers, None) for item in items]
        limit = self.timeout if timeout is None else _check_timeout(timeout)
        if not requests:
            return []
        return self._transport.deliver_concurrently(requests, limit, self.max_reply_size)

    def _request(
        self, data: object, path: str | None, headers: Mapping[str, str] | None, content_type: str | None
    ) -> tuple[SentRequest, str]:
        """The request ``post()`` sends for ``data``, and the path it goes to."""
        if self.closed:
            raise RuntimeError(f"{self!r} is closed")
        body, default_type = _body_of(data)
        send_headers = Headers()
        content_type = content_type if content_type is not None else default_type
        if content_type:
            send_headers["Content-Type"] = content_type
        if headers is not None:
            if not isinstance(headers, Mapping):
                raise TypeError(f"headers must be a mapping of names to values, got {type(headers).__name__}")
            for name, value in headers.items():
                send_headers[str(name)] = str(value)
        if path is not None:
            target_path = _check_path(path)
        else:
            kind = _kind_of(data)
            target_path = self.paths.get(kind, self.path) if kind is not None else self.path
        request = SentRequest(
            "POST",
            self.base_url + target_path,
            send_headers,
            body,
            in_process=not isinstance(self.target, str),
        )
        return request, target_path


def _check_timeout(timeout: float | None) -> float | None:
    if timeout is not None and (not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or not timeout > 0):
        raise ValueError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
    return timeout


def _check_paths(paths: Mapping[str, str] | None) -> dict[str, str]:
    """``paths`` keyed by full kind names; ``ValueError`` naming the kinds for anything unknown."""
    if paths is None:
        return {}
    if not isinstance(paths, Mapping):
        raise TypeError(f"paths must map callback kinds to paths, got {type(paths).__name__}")
    checked: dict[str, str] = {}
    for name, kind_path in paths.items():
        try:
            kind = kind_named(name) if isinstance(name, str) else kind_named(repr(name))
        except ValueError as exc:
            raise ValueError(f"paths: {exc}") from None
        checked[kind] = _check_path(kind_path)
    return checked


def _kind_of(data: object) -> str | None:
    """The callback kind ``data`` holds (a payload, Variant or Case), or None when it says none."""
    if isinstance(data, Case):
        return data.kind
    if isinstance(data, Variant):
        data = data.payload
    if isinstance(data, Mapping):
        kinds = [kind for kind in KINDS if kind in data]
        if len(kinds) == 1:
            return kinds[0]
    return None


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

    def deliver_concurrently(
        self, requests: Sequence[tuple[SentRequest, str]], timeout: float | None, max_size: int
    ) -> list[Reply | DeliveryError]: ...

    def close(self) -> None: ...


def _all_at_once(
    requests: Sequence[tuple[SentRequest, str]],
    prepare: Callable[[SentRequest, str], Callable[[], Reply]],
    timeout: float | None,
    what: str,
) -> list[Reply | DeliveryError]:
    """Run one delivery per request, each in its own thread, released together by a barrier.

    ``prepare`` does what may happen before the start (open a connection) and returns the delivery
    itself. A delivery still running when ``timeout`` ends becomes a ``DeliveryError`` (its thread is
    left to finish, as a hung app is). Anything other than a ``DeliveryError`` is raised here.
    """
    count = len(requests)
    barrier = threading.Barrier(count)
    outcomes: list[Reply | BaseException | None] = [None] * count
    done = [threading.Event() for _ in range(count)]

    def run(index: int) -> None:
        request, path = requests[index]
        try:
            try:
                deliver = prepare(request, path)
            finally:
                barrier.wait()
            outcomes[index] = deliver()
        except BaseException as exc:  # handed to the caller, never raised in this thread
            outcomes[index] = exc
        finally:
            done[index].set()

    deadline = None if timeout is None else time.monotonic() + timeout
    for index in range(count):
        threading.Thread(target=run, args=(index,), name=f"voicecb-concurrent-{index}", daemon=True).start()
    results: list[Reply | DeliveryError] = []
    for index, event in enumerate(done):
        left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
        finished = event.wait(left)
        outcome = outcomes[index] if finished else None
        if outcome is None:
            assert timeout is not None
            request = requests[index][0]
            results.append(
                DeliveryError(
                    request, f"{what} did not answer within {timeout:g} s (one of {count} at once)", timed_out=True
                )
            )
        elif isinstance(outcome, (Reply, DeliveryError)):
            results.append(outcome)
        else:
            raise outcome
    return results


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

    def deliver_concurrently(
        self, requests: Sequence[tuple[SentRequest, str]], timeout: float | None, max_size: int
    ) -> list[Reply | DeliveryError]:
        """Each request in its own thread calling the app, as a threaded WSGI server would."""

        def prepare(request: SentRequest, path: str) -> Callable[[], Reply]:
            return lambda: self._call(request, path, max_size)

        return _all_at_once(requests, prepare, timeout, "the app")

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
        """The open connection (True: reused) or a new, not yet connected one."""
        if self._conn is not None and self._conn.sock is not None:
            return self._conn, True
        self._drop()
        self._conn = _new_connection(self.scheme, self.host, self.port, timeout)
        return self._conn, False

    def deliver(self, request: SentRequest, path: str, timeout: float | None, max_size: int) -> Reply:
        __tracebackhide__ = True
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            for attempt in (1, 2):
                conn, reused = self._connection(timeout)
                try:
                    reply, will_close = _exchange(conn, request, path, deadline, max_size)
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError) as exc:
                    self._drop()
                    if reused and attempt == 1:
                        continue  # the server closed an idle keep-alive connection: retry once on a new one
                    raise DeliveryError(
                        request, f"the server closed the connection without replying ({safe(str(exc))})"
                    ) from None
                except BaseException as exc:
                    self._drop()
                    raise _delivery_error(request, exc, timeout) from None
                if will_close:
                    self._drop()
                return reply
        raise AssertionError("unreachable")  # pragma: no cover

    def deliver_concurrently(
        self, requests: Sequence[tuple[SentRequest, str]], timeout: float | None, max_size: int
    ) -> list[Reply | DeliveryError]:
        """Each request on its own new connection, all opened first and then sent at once."""
        deadline = None if timeout is None else time.monotonic() + timeout

        def prepare(request: SentRequest, path: str) -> Callable[[], Reply]:
            conn = _new_connection(self.scheme, self.host, self.port, timeout)
            try:
                conn.connect()
            except BaseException as exc:
                conn.close()
                raise _delivery_error(request, exc, timeout) from None

            def deliver() -> Reply:
                try:
                    return _exchange(conn, request, path, deadline, max_size)[0]
                except (DeliveryError, KeyboardInterrupt):
                    raise
                except BaseException as exc:
                    raise _delivery_error(request, exc, timeout) from None
                finally:
                    conn.close()

            return deliver

        return _all_at_once(requests, prepare, timeout, "the server")


def _new_connection(scheme: str, host: str, port: int, timeout: float | None) -> http.client.HTTPConnection:
    kind = http.client.HTTPSConnection if scheme == "https" else http.client.HTTPConnection
    return kind(host, port, timeout=timeout)


def _time_left(deadline: float) -> float:
    """Seconds until ``deadline`` (a ``time.monotonic()`` value); ``TimeoutError`` once it has passed."""
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the delivery's deadline passed")
    return left


def _exchange(
    conn: http.client.HTTPConnection, request: SentRequest, path: str, deadline: float | None, max_size: int
) -> tuple[Reply, bool]:
    """Send ``request`` on ``conn`` and read the whole reply before ``deadline``; True: close the connection.

    Network exceptions come out raw, for the caller to translate (and to retry a stale keep-alive).
    """
    begin = time.perf_counter()
    if conn.sock is None:
        if deadline is not None:
            conn.timeout = _time_left(deadline)
        conn.connect()
    sock = conn.sock
    if not isinstance(sock, _DeadlineSocket):
        sock = conn.sock = _DeadlineSocket(sock)
    sock.deadline = deadline
    conn.request(request.method, path, body=request.body, headers=dict(request.headers))
    response = conn.getresponse()
    try:
        body = response.read(max_size + 1)
    except BaseException:
        response.close()
        raise
    elapsed = time.perf_counter() - begin
    if deadline is not None:
        _time_left(deadline)  # a reply completed after the deadline is still too late
    truncated = len(body) > max_size
    reply = Reply(
        status=response.status,
        headers=Headers(response.getheaders()),
        body=body[:max_size],
        elapsed=elapsed,
        request=request,
        truncated=truncated,
    )
    return reply, truncated or response.will_close


class _DeadlineSocket:
    """A connected socket whose every send and receive gets only the time left until one deadline.

    ``http.client`` bounds each socket operation separately, so a handler trickling its reply a byte a
    second never timed out: a 2 s timeout waited 26 s. Wrapped, the timeout bounds the whole exchange.
    """

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.deadline: float | None = None
        self._readers = 0
        self._closing = False

    def _arm(self) -> None:
        if self.deadline is not None:
            self.sock.settimeout(_time_left(self.deadline))

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._arm()
        self.sock.sendall(data, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        received: int = self.sock.recv_into(buffer, nbytes, flags)
        return received

    def makefile(self, mode: str = "rb", *args: object, **kwargs: object) -> io.BufferedReader:
        self._readers += 1
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        """Close the socket once no reader is open (as ``socket.close`` waits for its ``makefile`` files:
        http.client closes the connection before a ``Connection: close`` reply's body is read)."""
        self._closing = True
        if self._readers == 0:
            self.sock.close()

    def reader_closed(self) -> None:
        self._readers -= 1
        if self._closing and self._readers == 0:
            self.sock.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.sock, name)


class _DeadlineReader(io.RawIOBase):
    """The reading side of a ``_DeadlineSocket``, for ``http.client``'s buffered reads."""

    def __init__(self, sock: _DeadlineSocket) -> None:
        super().__init__()
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._sock.recv_into(buffer)

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._sock.reader_closed()


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
