"""A recording callback server: a real HTTP/1.1 server on loopback that keeps every request it gets.

For code that *sends* callbacks (a relay, a gateway fanning the provider's callbacks out to customers,
a simulator): point it at ``server.url``, then assert on ``server.callbacks`` or ``server.wait_for(...)``.
Every request is recorded, valid or not, as a :class:`RecordedCallback`; validity is decided by
``contract.parse_callback`` alone. Answers follow the contract unless a test scripts them
(``reply_with``, ``reply_sequence``, ``reply_raw``, ``drop_connection``), so a sender's retry and
timeout logic can meet every way a receiver fails.

The server is werkzeug's threaded server (``ThreadedWSGIServer``) with its own request handler. werkzeug
3's WSGI path closes every connection after one response, because it cannot tell where a request body
ends; this handler reads each body exactly (``Content-Length`` or chunked, within a size limit) and so
keeps connections alive, as senders with connection pools expect. werkzeug's own ``Headers`` and
``Response`` types are what a test sees.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json as _json
import logging
import queue
import re
import selectors
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cached_property
from http import HTTPStatus
from types import TracebackType
from typing import Any, Final
from urllib.parse import unquote

from werkzeug.datastructures import Headers
from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wrappers import Response

from pytest_voicecb import contract
from pytest_voicecb.contract import Callback, CallbackError, Problem

__all__ = ["CallbackServer", "RecordedCallback"]

_log = logging.getLogger("pytest_voicecb.server")

DEFAULT_PATH: Final = "/voice/callback"
JSON_TYPE: Final = "application/json"
_OK_BODY: Final = contract.encode(contract.ok_reply())
_ABSENT: Final = object()
_RECORD_KEYS: Final = frozenset({"kind", "valid", "method", "path", "query"})
_HEX: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
_DRAIN_BYTES: Final = 64 * 1024 * 1024  # after a 413, read and discard at most this much ...
_DRAIN_SECONDS: Final = 2.0  # ... for at most this long, so the sender can read the 413 before the close
_DRAIN_IDLE: Final = 0.2
_PREVIEW: Final = 200
_WORKER_IDLE: Final = 30.0  # an idle worker thread waits this long for another connection


@dataclasses.dataclass(frozen=True, eq=False)
class RecordedCallback:
    """One request the server received, valid or not, and what it answered.

    ``callback`` is the validated model (None when invalid); ``error`` is the ``CallbackError`` saying why
    the request is not a valid callback (None when valid), for a body that broke the contract as well as
    for one the server could not read (over the size limit, truncated, malformed chunks). ``reply`` is
    the werkzeug ``Response`` that was sent, or None when the connection was dropped without one.
    ``server_error`` is set when the server failed to take the callback (the ``on_callback`` hook raised);
    the reply is then a 500.
    """

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    callback: Callback | None
    error: CallbackError | None
    reply: Response | None
    received_at: float
    """Wall-clock time (``time.time()``) when the request's headers had arrived."""
    server_error: str | None = None

    @property
    def valid(self) -> bool:
        return self.callback is not None

    @property
    def kind(self) -> str | None:
        """The callback kind (``voiceprompt_callback`` ...), also for an invalid one whose kind is known."""
        if self.callback is not None:
            return self.callback.kind
        return self.error.kind if self.error is not None else None

    @cached_property
    def json(self) -> Any:
        """The body decoded as JSON, or None when it is not JSON."""
        try:
            return _json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    @property
    def fields(self) -> dict[str, Any]:
        """The callback's fields (the object under its kind key) as sent; empty when unreadable."""
        kind = self.kind
        data = self.json
        inner = data.get(kind) if kind is not None and isinstance(data, dict) else None
        return inner if isinstance(inner, dict) else {}

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every contract problem found (empty for a valid callback)."""
        return self.error.problems if self.error is not None else ()

    def summary(self) -> str:
        """One line: request, kind and ids, verdict and answer."""
        target = self.path + (f"?{self.query}" if self.query else "")
        fields = self.fields
        ids = " ".join(f"{key}={fields[key]}" for key in ("callid", "mobile") if isinstance(fields.get(key), str))
        what = " ".join(part for part in (self.kind or "", ids) if part) or f"{len(self.body)} bytes"
        verdict = "valid" if self.valid else f"INVALID ({self.problems[0] if self.problems else 'unreadable'})"
        return f"{self.method} {target} {what} {verdict} -> {_describe_reply(self.reply)}"

    def describe(self) -> str:
        """Several lines for a failure report: request, body preview, every problem, the answer."""
        content_type = self.headers.get("Content-Type", "none")
        lines = [
            f"{self.method} {self.path}{'?' + self.query if self.query else ''} "
            f"({len(self.body):,} bytes, Content-Type: {content_type})",
            f"  body: {_preview(self.body)}",
        ]
        if self.error is not None:
            lines += ["  " + line for line in str(self.error).splitlines()]
        if self.server_error is not None:
            lines.append(f"  server error: {self.server_error}")
        lines.append(f"  answered: {_describe_reply(self.reply)}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"<RecordedCallback {self.summary()}>"


def _preview(body: bytes) -> str:
    text = body[:_PREVIEW].decode("utf-8", "backslashreplace")
    return (repr(text) if text else "(empty)") + (f" ... ({len(body):,} bytes)" if len(body) > _PREVIEW else "")


def _describe_reply(reply: Response | None) -> str:
    if reply is None:
        return "connection dropped, no reply"
    return f"{reply.status_code} {reply.get_data()[:_PREVIEW].decode('utf-8', 'backslashreplace')}"


@dataclasses.dataclass(frozen=True)
class _Plan:
    """A scripted answer: a response to build for each request, or a dropped connection."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    drop: bool = False

    def response(self) -> Response:
        """A fresh werkzeug Response for one request (a test may keep and inspect it)."""
        response = Response(self.body, self.status, headers=self.headers or None)
        given = {key.lower(): value for key, value in self.headers}
        if "content-type" not in given:
            del response.headers["Content-Type"]  # werkzeug's text/plain default is not what was scripted
        if "content-length" in given:  # a scripted (possibly lying) length is sent as given
            response.headers["Content-Length"] = given["content-length"]
        elif self.status < 200 or self.status in (204, 304):
            del response.headers["Content-Length"]  # these statuses carry no body and no length
        return response


class _Entry:
    """A one-shot plan in the queue, used ``remaining`` more times."""

    __slots__ = ("plan", "remaining")

    def __init__(self, plan: _Plan, remaining: int) -> None:
        self.plan = plan
        self.remaining = remaining


class CallbackServer:
    """A recording HTTP/1.1 callback server on loopback; start it, point a sender at ``url``, assert.

    ``path`` is the path ``url`` names (any path is accepted and recorded). ``max_body_size`` bodies
    are refused with 413. ``timeout`` is how long a connection may sit idle or stall mid-request before
    the server closes it, so a slow sender never pins a thread forever. ``on_callback`` is called in the
    request's thread with each ``RecordedCallback`` before it is added to ``callbacks`` and before the
    reply is written; if it raises, the sender gets a 500 (so it knows the callback was not taken) and
    the record carries ``server_error``.

    Use it as a context manager (``with CallbackServer() as server: ...``) or with ``start()``/``stop()``.
    Records survive ``stop()``.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str | None = None,
        max_body_size: int = contract.MAX_BODY_SIZE,
        timeout: float = 30.0,
        on_callback: Callable[[RecordedCallback], object] | None = None,
    ) -> None:
        path = DEFAULT_PATH if path is None else path
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path must be a string starting with '/', got {path!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
            raise ValueError(f"port must be an integer from 0 (any free port) to 65535, got {port!r}")
        if isinstance(max_body_size, bool) or not isinstance(max_body_size, int) or max_body_size < 0:
            raise ValueError(f"max_body_size must be a non-negative integer, got {max_body_size!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
        if on_callback is not None and not callable(on_callback):
            raise TypeError(f"on_callback must be callable, got {on_callback!r}")
        self.host = host
        self.path = path
        self.max_body_size = max_body_size
        self.timeout = float(timeout)
        self.on_callback = on_callback
        self._port = port
        self._bound_port: int | None = None
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._wake: tuple[socket.socket, socket.socket] | None = None
        self._connections: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._records: list[RecordedCallback] = []
        self._epoch = 0  # bumped by clear(): wait_for restarts its scan
        self._generation = 0  # bumped by reset(): requests begun before it are not recorded
        self._interrupt = threading.Event()  # set (and replaced) by reset()/stop() to cut scripted delays
        self._queue: deque[_Entry] = deque()
        self._persistent: _Plan | None = None
        self._invalid_expected = False

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the last one, after ``stop()``)."""
        if self._bound_port is None:
            raise RuntimeError("the CallbackServer has not been started: call start() or use it in a with block")
        return self._bound_port

    @property
    def url(self) -> str:
        """The callback URL, ``http://127.0.0.1:PORT/voice/callback`` unless another path was given."""
        return self.url_for(self.path)

    def url_for(self, path: str) -> str:
        """The URL of any path on this server (every path is accepted and recorded)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}{path if path.startswith('/') else '/' + path}"

    @property
    def running(self) -> bool:
        return self._httpd is not None

    def start(self) -> CallbackServer:
        """Bind and listen (a free port when ``port=0``) and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError(f"the CallbackServer is already running at {self.url}")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        try:
            listener = socket.create_server((self.host, self._port), family=family, backlog=128)
        except OSError as exc:
            raise OSError(exc.errno, f"cannot listen on {self.host}:{self._port}: {exc.strerror}") from None
        try:
            httpd = _HTTPServer(self, listener)
        finally:
            listener.close()  # the server holds its own duplicate
        self._bound_port = httpd.server_address[1]
        self._wake = socket.socketpair()
        self._httpd = httpd
        self._thread = threading.Thread(
            target=self._serve, args=(httpd, self._wake[0]), name=f"voicecb-server:{self._bound_port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop at once: close the listener and every open connection; never waits for a handler."""
        httpd, thread, wake = self._httpd, self._thread, self._wake
        if httpd is None or thread is None or wake is None:
            return
        self._httpd = self._thread = self._wake = None
        self._cut_delays()
        with contextlib.suppress(OSError):
            wake[1].send(b"x")
        thread.join(timeout=5.0)
        httpd.server_close()
        httpd.release_workers()
        for sock in wake:
            sock.close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def __enter__(self) -> CallbackServer:
        if self._httpd is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._bound_port is not None else f"{self.host}:{self._port}"
        state = "running" if self.running else "stopped"
        return f"<CallbackServer {where} {state}, {len(self._records)} recorded>"

    def _serve(self, httpd: _HTTPServer, wake: socket.socket) -> None:
        """Accept connections until ``stop()`` writes to the wake socket (no shutdown polling)."""
        with selectors.DefaultSelector() as selector:
            selector.register(httpd.socket, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while True:
                for key, _ in selector.select():
                    if key.fileobj is wake:
                        return
                    try:
                        request, address = httpd.get_request()
                    except OSError:  # the client gave up before accept(), or the listener closed
                        continue
                    try:
                        httpd.process_request(request, address)
                    except Exception:
                        httpd.handle_error(request, address)
                        httpd.shutdown_request(request)

    # ---- records ------------------------------------------------------------------------------

    @property
    def callbacks(self) -> list[RecordedCallback]:
        """A snapshot of every request recorded since the last ``clear()``/``reset()``, oldest first."""
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        """Forget the recorded requests (scripts and expectations stay)."""
        with self._lock:
            self._records.clear()
            self._epoch += 1
            self._changed.notify_all()

    def reset(self) -> None:
        """Back to a fresh server between tests: no records, no scripts, strict again.

        A request still sleeping in a scripted delay is woken and answered at once, and a request that
        began before the reset is not recorded: nothing leaks into the next test. Never blocks.
        """
        with self._lock:
            self._records.clear()
            self._epoch += 1
            self._generation += 1
            self._queue.clear()
            self._persistent = None
            self._invalid_expected = False
            self._changed.notify_all()
        self._cut_delays()

    def _cut_delays(self) -> None:
        with self._lock:
            interrupt, self._interrupt = self._interrupt, threading.Event()
        interrupt.set()

    def wait_for(
        self,
        count: int = 1,
        timeout: float = 5.0,
        *,
        where: Callable[[RecordedCallback], bool] | None = None,
        **match: Any,
    ) -> list[RecordedCallback]:
        """Block until ``count`` matching requests have been recorded; return all that match.

        ``match`` keys: ``kind`` (short or full name), ``valid``, ``method``, ``path``, ``query``; any
        other key is a callback field (``callid=``, ``mobile=``, ``result="1"``, ``failure_code=5``),
        looked up in what was sent, so invalid callbacks match on their fields too. A value may be a
        callable taking the value; ``where`` is a callable taking the whole ``RecordedCallback``.
        On timeout raises ``AssertionError`` listing what did arrive.
        """
        __tracebackhide__ = True  # pytest shows the caller's line, not this loop
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise ValueError(f"count must be a non-negative integer, got {count!r}")
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0:
            raise ValueError(f"timeout must be a non-negative number of seconds, got {timeout!r}")
        if where is not None and not callable(where):
            raise TypeError(f"where must be a callable taking a RecordedCallback, got {where!r}")
        matches = _matcher(where, match)
        deadline = time.monotonic() + timeout
        found: list[RecordedCallback] = []
        seen, epoch = 0, -1
        while True:
            with self._changed:
                if epoch != self._epoch:
                    epoch, seen, found = self._epoch, 0, []
                fresh = self._records[seen:]
                seen += len(fresh)
                if not fresh and len(found) < count:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._changed.wait(remaining)
                    continue
            found.extend(record for record in fresh if matches(record))
            if len(found) >= count:
                return found
        raise AssertionError(self._timeout_message(count, timeout, where, match, len(found)))

    def _timeout_message(
        self, count: int, timeout: float, where: object, match: Mapping[str, Any], matched: int
    ) -> str:
        wanted = ", ".join([f"{key}={value!r}" for key, value in match.items()] + (["where=..."] if where else []))
        records = self.callbacks
        lines = [
            f"waited {timeout:g} s for {count} callback{'s' if count != 1 else ''}"
            f"{' matching ' + wanted if wanted else ''} at {self._where()}; {matched} matched."
        ]
        if not records:
            lines.append(
                "Nothing arrived: no request reached this server since it started or was last cleared "
                "(voicecb_server is reset before each test)."
            )
        else:
            lines.append(f"{len(records)} request{'s' if len(records) != 1 else ''} arrived:")
            lines += [f"  #{i} {record.summary()}" for i, record in enumerate(records[:20], 1)]
            if len(records) > 20:
                lines.append(f"  ... and {len(records) - 20} more")
        return "\n".join(lines)

    def _where(self) -> str:
        if self._bound_port is None:
            return "a CallbackServer that was never started"
        return self.url_for("/") + ("" if self.running else " (stopped)")

    # ---- strictness ---------------------------------------------------------------------------

    def expect_invalid(self) -> None:
        """Declare that invalid callbacks are expected until the next ``reset()`` (``check()`` passes)."""
        self._invalid_expected = True

    def unexpected_invalid(self) -> list[RecordedCallback]:
        """The invalid requests recorded, unless ``expect_invalid()`` was called."""
        if self._invalid_expected:
            return []
        return [record for record in self.callbacks if not record.valid]

    def check(self) -> None:
        """Raise ``AssertionError`` showing each invalid request received without ``expect_invalid()``."""
        __tracebackhide__ = True
        unexpected = self.unexpected_invalid()
        if not unexpected:
            return
        n = len(unexpected)
        lines = [f"the callback server at {self._where()} received {n} invalid request{'s' if n != 1 else ''}:"]
        for i, record in enumerate(unexpected[:10], 1):
            lines.append(f"#{i} " + record.describe())
        if n > 10:
            lines.append(f"... and {n - 10} more")
        lines.append("If the test sends invalid callbacks on purpose, call expect_invalid() on the server.")
        raise AssertionError("\n".join(lines))

    # ---- reply scripting ----------------------------------------------------------------------

    def reply_with(
        self,
        result: int | None = None,
        errmsg: str | None = None,
        *,
        status: int = 200,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Answer ``{"result": result, "errmsg": errmsg}`` with HTTP ``status``, after ``delay`` seconds.

        ``result`` defaults to 0 (1 for an error status >= 400); ``errmsg`` to ``"OK"`` for result 0 and
        a short description otherwise. ``times=n`` queues this answer for the next n requests; with
        ``times=None`` it answers every request once the queue is spent, until scripted otherwise.
        """
        self._script(_contract_plan(result, errmsg, status, delay), times)

    def reply_raw(
        self,
        status: int,
        body: bytes | str | Mapping[str, Any] | list[Any] = b"",
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        *,
        delay: float = 0.0,
        times: int | None = None,
    ) -> None:
        """Answer exactly this: any status, any body (a dict or list is sent as JSON), any headers.

        Headers are sent as given, even a ``Content-Length`` that does not match the body (the
        connection is then closed), to test how a sender copes with a receiver that breaks HTTP or
        the contract. ``times`` as in ``reply_with``.
        """
        self._script(_raw_plan(status, body, headers, delay), times)

    def drop_connection(self, times: int | None = 1, *, delay: float = 0.0) -> None:
        """Close the connection without any reply (after ``delay``), for the next ``times`` requests."""
        self._script(_Plan(drop=True, delay=_check_delay(delay)), times)

    def reply_sequence(self, replies: Iterable[Mapping[str, Any] | Response]) -> None:
        """Queue one answer per item, used in order by the next requests, then back to the default.

        An item is a werkzeug ``Response``, or a dict: ``{"drop": True}`` (optionally with ``delay``)
        drops the connection; a dict with ``body`` is ``reply_raw(status, body, headers, delay=)``;
        any other dict is ``reply_with(result=, errmsg=, status=, delay=)``.
        """
        if isinstance(replies, (Mapping, Response, str, bytes)):
            raise TypeError("reply_sequence takes a list of replies; for one reply use reply_with or reply_raw")
        plans = []
        for i, item in enumerate(replies):
            try:
                plans.append(_plan_from_item(item))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"reply_sequence item {i} ({item!r}): {exc}") from None
        with self._lock:
            self._queue.extend(_Entry(plan, 1) for plan in plans)

    def _script(self, plan: _Plan, times: int | None) -> None:
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 1):
            raise ValueError(f"times must be a positive integer, or None for every request; got {times!r}")
        with self._lock:
            if times is None:
                self._persistent = plan
            else:
                self._queue.append(_Entry(plan, times))

    # ---- the request path (called from handler threads) -----------------------------------------

    def _take(self, generation: int) -> tuple[_Plan | None, threading.Event]:
        """The next scripted plan (None: the contract default), consumed under the lock."""
        with self._lock:
            if generation != self._generation:
                return None, self._interrupt
            if self._queue:
                entry = self._queue[0]
                entry.remaining -= 1
                if entry.remaining <= 0:
                    self._queue.popleft()
                return entry.plan, self._interrupt
            return self._persistent, self._interrupt

    def _record(self, record: RecordedCallback, generation: int) -> RecordedCallback:
        hook = self.on_callback
        if hook is not None:
            try:
                hook(record)
            except Exception as exc:
                _log.exception("on_callback failed for %s", record.summary())
                message = f"on_callback raised {type(exc).__name__}: {exc}"
                reply = _error_response(500, f"the callback was not taken: {message}")
                record = dataclasses.replace(record, reply=reply, server_error=message)
        with self._changed:
            if generation == self._generation:
                self._records.append(record)
                self._changed.notify_all()
        return record


def _matcher(where: Callable[[RecordedCallback], bool] | None, match: Mapping[str, Any]) -> Callable[..., bool]:
    tests: list[tuple[str, bool, Any]] = []
    for key, expected in match.items():
        if key == "kind" and not callable(expected):
            expected = contract.kind_named(expected)
        tests.append((key, key in _RECORD_KEYS, expected))

    def matches(record: RecordedCallback) -> bool:
        fields = None
        for key, on_record, expected in tests:
            if on_record:
                value = getattr(record, key)
            else:
                fields = record.fields if fields is None else fields
                value = fields.get(key, _ABSENT)
                if value is _ABSENT:
                    return False
            if not (expected(value) if callable(expected) else value == expected):
                return False
        return where is None or bool(where(record))

    return matches


def _contract_plan(result: int | None, errmsg: str | None, status: int, delay: float) -> _Plan:
    _check_status(status)
    if result is None:
        result = 0 if status < 400 else 1
    if isinstance(result, bool) or not isinstance(result, int):
        raise TypeError(f"result must be an integer (the contract's JSON number), got {result!r}")
    if errmsg is None:
        errmsg = "OK" if result == 0 else f"scripted failure (result {result}, HTTP {status})"
    if not isinstance(errmsg, str):
        raise TypeError(f"errmsg must be a string, got {errmsg!r}")
    body = contract.encode(contract.error_reply(errmsg, result))
    return _Plan(status, body, (("Content-Type", JSON_TYPE),), _check_delay(delay))


def _raw_plan(
    status: int,
    body: bytes | str | Mapping[str, Any] | list[Any],
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    delay: float,
) -> _Plan:
    _check_status(status)
    header_list = _header_list(headers)
    if isinstance(body, (Mapping, list)):
        data = contract.encode(body)
        if not any(key.lower() == "content-type" for key, _ in header_list):
            header_list.append(("Content-Type", JSON_TYPE))
    elif isinstance(body, str):
        data = body.encode("utf-8")
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    else:
        raise TypeError(f"body must be bytes, str, a dict or a list, got {type(body).__name__}")
    return _Plan(status, data, tuple(header_list), _check_delay(delay))


def _plan_from_item(item: object) -> _Plan:
    """One ``reply_sequence`` item as a plan."""
    if isinstance(item, Response):
        return _raw_plan(item.status_code, item.get_data(), item.headers.to_wsgi_list(), 0.0)
    if not isinstance(item, Mapping):
        raise TypeError("each reply must be a dict or a werkzeug Response")
    options = dict(item)
    if options.pop("drop", False):
        _check_keys(options, {"delay"}, "a drop")
        return _Plan(drop=True, delay=_check_delay(options.get("delay", 0.0)))
    if "body" in options:
        _check_keys(options, {"status", "body", "headers", "delay"}, "a raw reply")
        return _raw_plan(options.get("status", 200), options["body"], options.get("headers"), options.get("delay", 0.0))
    _check_keys(options, {"result", "errmsg", "status", "delay"}, "a contract reply")
    return _contract_plan(
        options.get("result"), options.get("errmsg"), options.get("status", 200), options.get("delay", 0.0)
    )


def _check_status(status: object) -> None:
    if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 999:
        raise ValueError(f"status must be an HTTP status code (100-999), got {status!r}")


def _check_delay(delay: object) -> float:
    if isinstance(delay, bool) or not isinstance(delay, (int, float)) or not delay >= 0:
        raise ValueError(f"delay must be a non-negative number of seconds, got {delay!r}")
    return float(delay)


def _check_keys(options: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(
            f"unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} for {what}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _header_list(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = list(headers.items() if isinstance(headers, (Mapping, Headers)) else headers)
    result = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(part, str) for part in item)):
            raise TypeError(f"headers must be a mapping or (name, value) string pairs, got {item!r}")
        name, value = item
        if not re.fullmatch(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+", name) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"not a valid HTTP header: {name!r}: {value!r}")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header {name!r} has characters HTTP/1.1 cannot carry: {value!r}") from None
        result.append((name, value))
    return result


def _error_response(status: int, message: str) -> Response:
    return Response(contract.encode(contract.error_reply(message)), status, content_type=JSON_TYPE)


class _Refused(Exception):
    """A request the server could not read as a whole body; answered with ``status`` and recorded."""

    def __init__(self, status: int, message: str, body: bytes = b"", drain: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body
        self.drain = drain  # bytes still to be discarded so the sender can read the answer


class _HTTPServer(ThreadedWSGIServer):
    """werkzeug's threaded server on an already bound socket, tracking open connections for ``stop()``.

    A connection is served by an idle worker thread when there is one, by a new thread otherwise:
    starting a thread costs more than answering a callback, and senders that open a connection per
    callback (urllib, most webhook relays) would pay it every time.
    """

    def __init__(self, owner: CallbackServer, listener: socket.socket) -> None:
        self.owner = owner
        self._jobs: queue.SimpleQueue[tuple[Any, Any] | None] = queue.SimpleQueue()
        self._idle = 0  # workers waiting for a connection, guarded by owner._lock
        host, port = listener.getsockname()[:2]
        super().__init__(host, port, _no_wsgi_app, _Handler, fd=listener.fileno())
        self.socket.setblocking(False)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.owner._lock:
            self.owner._connections.add(request)
            if self._idle:
                self._idle -= 1
                self._jobs.put((request, client_address))
                return
        worker = threading.Thread(
            target=self._work,
            args=(request, client_address),
            daemon=True,
            name=f"voicecb-worker:{self.server_address[1]}",
        )
        worker.start()

    def _work(self, request: Any, client_address: Any) -> None:
        job: tuple[Any, Any] | None = (request, client_address)
        while job is not None:
            self.process_request_thread(*job)
            with self.owner._lock:
                self._idle += 1
            try:
                job = self._jobs.get(timeout=_WORKER_IDLE)
            except queue.Empty:
                with self.owner._lock:  # jobs are queued under this lock: none can slip in unseen
                    try:
                        job = self._jobs.get_nowait()
                    except queue.Empty:
                        self._idle -= 1
                        return

    def release_workers(self) -> None:
        """Let every idle worker end (``stop()``); busy ones end with their connection."""
        with self.owner._lock:
            idle, self._idle = self._idle, 0
        for _ in range(idle):
            self._jobs.put(None)

    def shutdown_request(self, request: Any) -> None:
        with self.owner._lock:
            self.owner._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log.debug("error while handling a connection from %s", client_address, exc_info=True)


def _no_wsgi_app(environ: Any, start_response: Any) -> Iterator[bytes]:  # pragma: no cover - never called
    """Requests never reach WSGI: ``_Handler`` reads, records and answers them itself."""
    raise RuntimeError("CallbackServer answers requests in its handler, not through WSGI")


class _Handler(WSGIRequestHandler):
    """Reads one request at a time off a keep-alive connection, records it and answers it."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.owner.timeout)

    def handle_expect_100(self) -> bool:
        return True  # answered in run_wsgi, only once the body is known to be within the limit

    def run_wsgi(self) -> None:
        """Every HTTP method lands here (werkzeug maps ``do_*`` to it)."""
        try:
            self._answer()
        except (ConnectionError, TimeoutError):
            raise  # the sender went away: werkzeug's handle() closes quietly
        except Exception as exc:  # a bug here must cost one 500, never the server
            _log.exception("the callback server failed on %s %s", self.command, self.path)
            self.close_connection = True
            self._send(_error_response(500, f"the callback server failed: {type(exc).__name__}: {exc}"))

    def _answer(self) -> None:
        owner = self.server.owner
        generation = owner._generation
        received_at = time.time()
        method, (path, query) = self.command, _split_target(self.path)
        headers = Headers(self.headers.items())
        try:
            body = self._read_body(owner.max_body_size)
        except _Refused as refused:
            self.close_connection = True
            refusal = _error_response(refused.status, refused.message)
            problem = CallbackError([Problem("$", refused.message)])
            owner._record(
                RecordedCallback(method, path, query, headers, refused.body, None, problem, refusal, received_at),
                generation,
            )
            self._send(refusal)
            if refused.drain:
                self._discard(refused.drain)
            return
        callback: Callback | None = None
        error: CallbackError | None = None
        try:
            callback = contract.parse_callback(body, max_size=owner.max_body_size)
        except CallbackError as exc:
            error = exc.with_traceback(None)
        plan, interrupt = owner._take(generation)
        if plan is None:
            body_out = _OK_BODY if error is None else contract.encode(contract.error_reply(str(error.problems[0])))
            reply: Response | None = Response(body_out, 200, content_type=JSON_TYPE)
        else:
            reply = None if plan.drop else plan.response()
        record = RecordedCallback(method, path, query, headers, body, callback, error, reply, received_at)
        record = owner._record(record, generation)
        if plan is not None and plan.delay and record.server_error is None:
            interrupt.wait(plan.delay)
        if record.reply is None:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._send(record.reply)

    def _read_body(self, limit: int) -> bytes:
        """The request body, read exactly (so the connection can carry the next request).

        The whole body must arrive within the server's ``timeout``, however slowly it trickles.
        """
        self._deadline = time.monotonic() + self.server.owner.timeout
        self._paced = False
        try:
            return self._read_framed(limit)
        finally:
            if self._paced:
                with contextlib.suppress(OSError):
                    self.connection.settimeout(self.server.owner.timeout)

    def _read_framed(self, limit: int) -> bytes:
        expect_continue = (
            self.request_version >= "HTTP/1.1" and self.headers.get("Expect", "").lower() == "100-continue"
        )
        encoding = self.headers.get("Transfer-Encoding")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise _Refused(501, f"Transfer-Encoding {encoding!r} is not supported; send chunked or Content-Length")
            if self.headers.get("Content-Length") is not None:
                self.close_connection = True  # both framings: trust chunked, then close (RFC 9112 6.3)
            if expect_continue:
                self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            return self._read_chunked(limit)
        lengths = {value.strip() for value in self.headers.get_all("Content-Length") or ()}
        if not lengths:
            return b""
        size = _content_length(lengths)
        if size > limit:
            raise _Refused(413, f"body is {size:,} bytes (Content-Length), over the {limit:,}-byte limit", drain=size)
        if expect_continue and size:
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return self._read_exact(size, "Content-Length")

    def _read_exact(self, size: int, framing: str, parts: list[bytes] | None = None) -> bytes:
        data = self.rfile.read1(size) if size else b""
        if len(data) == size:
            return data  # the usual case: the body came with the headers
        got, chunks = len(data), [data]
        how = ""
        try:
            while got < size:
                self._pace()
                chunk = self.rfile.read1(size - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except TimeoutError:
            how = f"the body did not arrive within {self.server.owner.timeout:g} s"
        except OSError:
            pass
        if got == size:
            return b"".join(chunks)
        if not how:  # judged when the body stopped coming: stop() ends connections mid-body too
            how = "the connection ended" if self.server.owner.running else "the server stopped"
        before = b"".join(parts) if parts else b""
        raise _Refused(
            400, f"body truncated: {framing} said {size:,} bytes, {how} after {got:,}", body=before + b"".join(chunks)
        )

    def _pace(self) -> None:
        """Bound the next read by what is left of the body's time budget, so a trickling sender ends too."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError
        self.connection.settimeout(min(left, self.server.owner.timeout))
        self._paced = True

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0
        try:
            while True:
                self._pace()
                line = self.rfile.readline(1026)
                if not line.endswith(b"\n"):
                    raise _Refused(400, "chunked body truncated or its chunk-size line too long", body=b"".join(parts))
                size_text = line.split(b";", 1)[0].strip()
                if not _HEX.fullmatch(size_text):
                    raise _Refused(
                        400, f"malformed chunk size {size_text[:20]!r} in a chunked body", body=b"".join(parts)
                    )
                size = int(size_text, 16)
                if size == 0:
                    for _ in range(100):  # trailer fields, then the empty line
                        self._pace()
                        if self.rfile.readline(8192).strip() == b"":
                            return b"".join(parts)
                    raise _Refused(400, "too many trailer lines after a chunked body", body=b"".join(parts))
                total += size
                if total > limit:
                    raise _Refused(413, f"chunked body grew past the {limit:,}-byte limit", drain=_DRAIN_BYTES)
                parts.append(self._read_exact(size, "a chunk header", parts))
                self._pace()
                if self.rfile.readline(3).strip() != b"":
                    raise _Refused(400, "chunk data not followed by CRLF in a chunked body", body=b"".join(parts))
        except TimeoutError:
            stalled = f"chunked body did not arrive within {self.server.owner.timeout:g} s"
            raise _Refused(400, stalled, body=b"".join(parts)) from None
        except (ConnectionError, ValueError):
            raise _Refused(400, "connection ended inside a chunked body", body=b"".join(parts)) from None

    def _send(self, reply: Response) -> None:
        """Write the reply in one send; ``Connection: close`` when this connection ends here."""
        headers = reply.headers.to_wsgi_list()
        lowered = {key.lower() for key, _ in headers}
        data = reply.get_data()
        body = b"" if self.command == "HEAD" else data
        if "transfer-encoding" in lowered or reply.headers.get("Content-Length", str(len(data))) != str(len(data)):
            self.close_connection = True  # scripted framing: the next request cannot follow on this connection
        if "connection" in lowered and reply.headers.get("Connection", "").lower() == "close":
            self.close_connection = True
        lines = [f"HTTP/1.1 {reply.status}\r\n"]
        lines += [f"{key}: {value}\r\n" for key, value in headers]
        if self.close_connection and "connection" not in lowered:
            lines.append("Connection: close\r\n")
        elif self.request_version == "HTTP/1.0" and not self.close_connection:
            lines.append("Connection: keep-alive\r\n")
        lines.append("\r\n")
        try:
            self.wfile.write("".join(lines).encode("latin-1") + body)
        except OSError:
            self.close_connection = True

    def _discard(self, size: int) -> None:
        """Read and drop what the sender is still sending (bounded), so it can read our answer."""
        deadline = time.monotonic() + _DRAIN_SECONDS
        left = min(size, _DRAIN_BYTES)
        with contextlib.suppress(OSError):
            self.connection.settimeout(_DRAIN_IDLE)
            while left > 0 and time.monotonic() < deadline:
                chunk = self.rfile.read1(min(left, 65536))
                if not chunk:
                    break
                left -= len(chunk)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's errors (bad request line, header too long ...), in the contract's shape.

        Recorded when the request line was readable (there was a request, with a method and path).
        """
        self.close_connection = True
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "Error"
        text = f"HTTP {code} {phrase}" + (f": {message}" if message and message != phrase else "")
        if explain:
            text += f" ({explain})"
        if len(text) > _PREVIEW:
            text = text[:_PREVIEW] + "…"  # http.server quotes the whole request line, which may be huge
        reply = _error_response(code, text)
        if self.command:
            owner = self.server.owner
            path, query = _split_target(self.path)
            record = RecordedCallback(
                self.command, path, query, Headers(), b"", None, CallbackError([Problem("$", text)]), reply, time.time()
            )
            owner._record(record, owner._generation)
        self._send(reply)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Quiet: every request is in ``callbacks``; werkzeug's access log would only add noise."""

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug(format, *args)

    def log_error(self, format: str, *args: Any) -> None:
        _log.debug(format, *args)


def _split_target(target: str) -> tuple[str, str]:
    """``/a%20b?x=1`` -> (``/a b``, ``x=1``); an absolute-form target keeps only its path."""
    if not target.startswith("/") and "://" in target:
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    path, _, query = target.partition("?")
    return unquote(path), query


def _content_length(values: set[str]) -> int:
    if len(values) > 1:
        raise _Refused(400, f"conflicting Content-Length headers: {', '.join(sorted(values))}")
    (value,) = values
    if not value.isdigit() or not value.isascii() or len(value) > 18:
        raise _Refused(400, f"Content-Length {value[:40]!r} is not a byte count")
    return int(value)
