"""A recording callback server: a real HTTP/1.1 server on loopback that keeps every request it gets.

For code that *sends* callbacks (a relay, a gateway fanning the provider's callbacks out to customers,
a simulator): point it at ``server.url``, then assert on ``server.requests``, ``server.find(...)`` or
``server.wait_for(...)``.
Every request is recorded, valid or not, as a :class:`RecordedCallback`; validity is decided by
``contract.parse_callback`` alone. Answers follow the contract unless a test scripts them
(``reply_with``, ``reply_sequence``, ``reply_raw``, ``drop_connection``), so a sender's retry and
timeout logic can meet every way a receiver fails.

The package is split by job: this module is the facade and the owner of the records; ``records.py``
is what a test reads; ``scripts.py`` holds scripted answers; ``_http11.py`` is the keep-alive HTTP/1.1
layer (``_session.py`` serves one connection, ``_wire.py`` parses and renders the bytes), which reaches
this server only through :meth:`CallbackServer.receive`. werkzeug's ``Headers`` and
``Response`` types are what a test sees.
"""

from __future__ import annotations

import dataclasses
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from functools import partial
from types import TracebackType
from typing import Any, Final

from werkzeug.wrappers import Response

from pytest_voicecb import _arguments, _deprecation, _text, _tls, contract
from pytest_voicecb.contract import Callback, CallbackError, Problem
from pytest_voicecb.server._http11 import Answer as _Answer
from pytest_voicecb.server._http11 import HTTP11Server, Incoming, listen
from pytest_voicecb.server.expectations import Expectation, declared_invalid, matcher, message, problems
from pytest_voicecb.server.mounts import WsgiApp, answer_mounted, check_mounts, mounted_prefix
from pytest_voicecb.server.records import RecordedCallback, replied
from pytest_voicecb.server.scripts import ReplyScript, contract_plan, drop_plan, plan_from_item, raw_plan

__all__ = ["CallbackServer", "Expectation", "RecordedCallback"]

_log = logging.getLogger("pytest_voicecb.server")

_OK_BODY: Final = contract.encode(contract.ok_reply())
_OK: list[Response] = []


def _ok_reply() -> Response:
    """The default reply to a valid callback: one ``Response`` shared by every record (treat it as read-only),
    whose bytes the HTTP layer renders once (``_wire.render``): most callbacks get it, and building and
    rendering a new one cost a fifth of a callback's CPU."""
    if not _OK:
        reply = Response(_OK_BODY, 200, content_type=contract.JSON_CONTENT_TYPE)
        reply.voicecb_rendered = {}  # type: ignore[attr-defined]
        _OK.append(reply)
    return _OK[0]


@dataclasses.dataclass
class _State:
    """What a test leaves on a server: ``reset()`` replaces it whole, as moto's reset re-runs ``__init__``.

    ``clear()`` empties only the first two (what was recorded); scripts and declarations stay.
    """

    records: list[RecordedCallback] = dataclasses.field(default_factory=list)
    aborted: int = 0
    script: ReplyScript = dataclasses.field(default_factory=ReplyScript)
    invalid_expected: bool = False
    expectations: list[Expectation] = dataclasses.field(default_factory=list)
    fail_on_unexpected: bool = False


def _default_max_connections() -> int:
    """Half the process's file-descriptor limit, from 16 to 4,096 (512 under the usual ``ulimit -n 1024``)."""
    try:
        import resource  # Unix only; imported here so the server still imports elsewhere
    except ImportError:  # pragma: no cover - Windows
        return 512
    try:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    except (OSError, ValueError):  # pragma: no cover - no such limit on this platform
        return 512
    if soft == resource.RLIM_INFINITY:
        return 4096
    return max(16, min(soft // 2, 4096))


class CallbackServer:
    """A recording HTTP/1.1 callback server on loopback; start it, point a sender at ``url``, assert.

    ``path`` is the path ``url`` names (any path is accepted and recorded). ``max_body_size`` bodies
    are refused with 413. ``on_callback`` is called in the request's thread with each
    ``RecordedCallback`` before it is added to ``requests`` and before the reply is written; if it
    raises, the sender gets a 500 (so it knows the callback was not taken) and the record carries
    ``server_error``.
    ``answer`` decides the reply to a request no script answers: it gets the ``RecordedCallback`` (with
    the contract's default reply) and returns a werkzeug ``Response``, or None to keep the default;
    ``voicecb serve --forward-to`` relays each callback to a handler and answers with its reply so. If it
    raises, the sender gets a 502.
    ``mounts`` maps path prefixes (``{"/_voicecb/": wsgi_app}``) to WSGI apps answered on the same port,
    never recorded and never scripted (``voicecb serve`` mounts its web console so).

    Slow and hostile senders cannot pin it:

    - ``timeout`` (default 30 s): how long a connection may sit idle, or stall in the middle of a
      request, and how long a whole body may take to arrive, however slowly it trickles. A body cut
      short is recorded with ``truncated=True`` and answered 400.
    - ``header_timeout`` (default 10 s): how long a request head (request line and headers) may take
      from its first byte, so a sender trickling a header byte every few seconds is cut off.
    - ``max_connections`` (default half the file-descriptor limit, from 16 to 4,096: 512 under the usual
      ``ulimit -n 1024``): open connections beyond it get an immediate 503 in the contract's error shape
      and are closed. Idle and slow connections wait in a selector, not in threads.

    A request whose head never completed (closed, stalled, past ``header_timeout``) or whose request line
    is unreadable is not recorded: there was no request to show. ``aborted`` counts them.

    ``tls=True`` serves HTTPS (``url`` starts ``https://``) with a certificate for loopback from a
    throw-away test CA (trustme: ``pip install 'pytest-voicecb[tls]'``); clients trust ``ca_path``, its
    PEM file, without disabling verification. ``tls=`` also takes your own ``ssl.SSLContext``.

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
        header_timeout: float = 10.0,
        max_connections: int | None = None,
        on_callback: Callable[[RecordedCallback], object] | None = None,
        mounts: Mapping[str, WsgiApp] | None = None,
        answer: Callable[[RecordedCallback], Response | None] | None = None,
        tls: bool | ssl.SSLContext = False,
    ) -> None:
        path = contract.DEFAULT_PATH if path is None else path
        if not isinstance(tls, (bool, ssl.SSLContext)):
            raise TypeError(f"tls must be True, False or an ssl.SSLContext, got {tls!r}")
        self.tls = tls
        if not isinstance(path, str) or not path.startswith("/"):
            raise ValueError(f"path must be a string starting with '/', got {path!r}")
        self._port = _arguments.whole("port", port, maximum=65535)
        self.max_body_size = _arguments.whole("max_body_size", max_body_size)
        self.timeout = _arguments.seconds("timeout", timeout)
        self.header_timeout = _arguments.seconds("header_timeout", header_timeout)
        self.max_connections = (
            _default_max_connections()
            if max_connections is None
            else _arguments.whole("max_connections", max_connections, minimum=1)
        )
        if on_callback is not None and not callable(on_callback):
            raise TypeError(f"on_callback must be callable, got {on_callback!r}")
        if answer is not None and not callable(answer):
            raise TypeError(f"answer must be callable, got {answer!r}")
        self.host = host
        self.path = path
        self.on_callback = on_callback
        self.answer = answer
        self.mounts = check_mounts(mounts)
        self._bound_port: int | None = None
        self._ca_path: str | None = None
        self._http: HTTP11Server | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = _State()
        self._epoch = 0  # bumped by clear() and reset(): wait_for restarts its scan
        self._reset_at = float("-inf")  # requests whose head completed before the last reset() are not recorded
        self._interrupt = threading.Event()  # set (and replaced) by reset()/stop() to cut scripted delays

    # ---- lifecycle ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The bound port (the last one, after ``stop()``)."""
        if self._bound_port is None:
            raise RuntimeError("the CallbackServer has not been started: call start() or use it in a with block")
        return self._bound_port

    @property
    def url(self) -> str:
        """The callback URL, ``http://127.0.0.1:PORT/voice/callback`` unless another path was given
        (``https://`` with ``tls``)."""
        return self.url_for(self.path)

    def url_for(self, path: str) -> str:
        """The URL of any path on this server (every path is accepted and recorded)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        scheme = "https" if self.tls is not False else "http"
        return f"{scheme}://{host}:{self.port}{path if path.startswith('/') else '/' + path}"

    @property
    def ca_path(self) -> str | None:
        """With ``tls=True``: the PEM file of the test CA that issued this server's certificate, for clients
        to trust (``SSL_CERT_FILE``, ``REQUESTS_CA_BUNDLE``, ``NODE_EXTRA_CA_CERTS``, ``--cacert``); else None."""
        return self._ca_path

    @property
    def running(self) -> bool:
        return self._http is not None

    def start(self) -> CallbackServer:
        """Bind and listen (a free port when ``port=0``) and serve in a daemon thread."""
        if self._http is not None:
            raise RuntimeError(f"the CallbackServer is already running at {self.url}")
        context, self._ca_path = _tls.server_context(self.tls, self.host)
        http = HTTP11Server(
            self,
            listen(self.host, self._port),
            name="callback server",
            error_reply=_error_response,
            max_body_size=self.max_body_size,
            timeout=self.timeout,
            header_timeout=self.header_timeout,
            max_connections=self.max_connections,
            tls=context,
        )
        self._bound_port = http.port
        self._http = http
        http.start()
        return self

    def stop(self) -> None:
        """Stop at once: close the listener and every open connection; never waits for a handler."""
        http, self._http = self._http, None
        if http is None:
            return
        self._cut_delays()
        http.stop()

    def __enter__(self) -> CallbackServer:
        if self._http is None:
            self.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._bound_port is not None else f"{self.host}:{self._port}"
        state = "running" if self.running else "stopped"
        return f"<CallbackServer {where} {state}, {len(self._state.records)} recorded>"

    # ---- records ------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedCallback]:
        """A snapshot of every request recorded since the last ``clear()``/``reset()``, valid or not,
        oldest first (``find(...)`` for the matching ones)."""
        with self._lock:
            return list(self._state.records)

    @property
    def callbacks(self) -> list[RecordedCallback]:
        """Deprecated: every request, valid or not, so it is named ``requests`` now."""
        _deprecation.warn("CallbackServer.callbacks", "CallbackServer.requests (every request, valid or not)")
        return self.requests

    def find(self, *, where: Callable[[RecordedCallback], bool] | None = None, **match: Any) -> list[RecordedCallback]:
        """The recorded requests matching ``match`` and ``where`` (``wait_for``'s criteria), oldest first;
        does not wait."""
        return matcher(where, match).select(self.requests)

    @property
    def aborted(self) -> int:
        """Requests not recorded since the last ``clear()``/``reset()``: their head never completed (the
        sender closed, stalled or ran past ``header_timeout``) or their request line was unreadable."""
        return self._state.aborted

    def clear(self) -> None:
        """Forget what was recorded: the requests and the ``aborted`` tally (scripts and expectations
        stay). On both the server and the provider, ``clear`` forgets records and ``reset`` starts over."""
        with self._lock:
            self._state.records = []
            self._state.aborted = 0
            self._epoch += 1
            self._changed.notify_all()

    def reset(self) -> None:
        """Start over, as a server just made: no records, no scripts, no expectations, strict again.

        A request still sleeping in a scripted delay is woken and answered at once, and a request that
        began before the reset is not recorded: nothing leaks into the next test. Never blocks.
        """
        with self._lock:
            self._state = _State()
            self._epoch += 1
            self._reset_at = time.monotonic()
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
        count = _arguments.whole("count", count)
        timeout = _arguments.seconds("timeout", timeout, allow_zero=True)
        matches = matcher(where, match)
        deadline = time.monotonic() + timeout
        found: list[RecordedCallback] = []
        seen, epoch = 0, -1
        while True:
            with self._changed:
                if epoch != self._epoch:
                    epoch, seen, found = self._epoch, 0, []
                fresh = self._state.records[seen:]
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
        raise AssertionError(self._timeout_message(count, timeout, matches.wanted, len(found)))

    def _timeout_message(self, count: int, timeout: float, wanted: str, matched: int) -> str:
        records = self.requests
        lines = [
            f"waited {timeout:g} s for {_text.plural(count, 'callback')}"
            f"{' matching ' + wanted if wanted else ''} at {self._where()}; {matched} matched."
        ]
        if not records:
            lines.append(
                "Nothing arrived: no request reached this server since it started or was last cleared "
                "(voicecb_server is reset before each test)."
            )
        else:
            lines.append(f"{_text.plural(len(records), 'request')} arrived:")
            lines += _text.listing(records, RecordedCallback.summary, numbered=True)
        if self._state.aborted:
            lines.append(f"({_text.plural(self._state.aborted, 'request')} aborted before the headers were complete.)")
        return "\n".join(lines)

    def _where(self) -> str:
        if self._bound_port is None:
            return "a CallbackServer that was never started"
        return self.url_for("/") + ("" if self.running else " (stopped)")

    # ---- strictness ---------------------------------------------------------------------------

    def expect_invalid(self) -> None:
        """Declare that invalid callbacks are expected until the next ``reset()`` (``check()`` passes)."""
        self._state.invalid_expected = True

    @property
    def unexpected_invalid(self) -> list[RecordedCallback]:
        """The invalid requests recorded, unless ``expect_invalid()`` was called or an expectation with
        ``valid=False`` took them (a property; calling it is deprecated)."""
        found: list[RecordedCallback] = []
        if not self._state.invalid_expected:
            expectations = self.expectations
            records = self.requests
            problems(records, expectations, fail_on_unexpected=False)  # fills each expectation's matched
            declared = declared_invalid(expectations)
            found = [record for record in records if not record.valid and id(record) not in declared]
        return _deprecation.RecordList(
            found, "CallbackServer.unexpected_invalid()", "CallbackServer.unexpected_invalid (a property)"
        )

    def expect(
        self,
        kind: str | None = None,
        count: int | None = 1,
        *,
        where: Callable[[RecordedCallback], bool] | None = None,
        **match: Any,
    ) -> Expectation:
        """Declare that exactly ``count`` requests matching this will arrive (``count=None``: at least one).

        Matching is ``wait_for``'s (``kind``, ``valid``, ``method``, ``path``, ``query``, any callback
        field, a callable for a value, ``where=`` for the whole record). Checked by ``check()`` (and at
        the ``voicecb_server`` fixture's teardown), which lists what was expected and what arrived; like
        pytest-httpserver's ``expect_request`` + ``check_assertions``. ``match`` with ``valid=False``
        also declares the invalid requests it takes. ``reset()`` forgets expectations.
        """
        return self._add_expectation(kind, count, where, match, ordered=False)

    def expect_ordered(
        self,
        kind: str | None = None,
        count: int | None = 1,
        *,
        where: Callable[[RecordedCallback], bool] | None = None,
        **match: Any,
    ) -> Expectation:
        """Like ``expect``, but the ordered expectations must be met one after the other, in the order
        declared (pytest-httpserver's ``expect_ordered_request``). Other requests may come in between."""
        return self._add_expectation(kind, count, where, match, ordered=True)

    def _add_expectation(
        self,
        kind: str | None,
        count: int | None,
        where: Callable[[RecordedCallback], bool] | None,
        match: dict[str, Any],
        *,
        ordered: bool,
    ) -> Expectation:
        if count is not None:
            count = _arguments.whole("count", count)
        if kind is not None:
            match = {"kind": kind, **match}
        matches = matcher(where, match)  # raises ValueError for an unknown kind, now rather than at check()
        expectation = Expectation(
            wanted=matches.wanted,
            count=count,
            ordered=ordered,
            matches=matches,
            declares_invalid=match.get("valid") is False,
        )
        with self._lock:
            self._state.expectations.append(expectation)
        return expectation

    def fail_on_unexpected(self, enabled: bool = True) -> None:
        """Make ``check()`` fail on any request no expectation matched (until the next ``reset()``)."""
        self._state.fail_on_unexpected = bool(enabled)

    @property
    def expectations(self) -> list[Expectation]:
        """The expectations declared since the last ``reset()``, in order."""
        with self._lock:
            return list(self._state.expectations)

    def check_assertions(self) -> None:
        """Raise ``AssertionError`` if a declared expectation is unmet, met out of order, or (after
        ``fail_on_unexpected()``) a request matched none; the message lists what arrived."""
        __tracebackhide__ = True
        message = self._expectation_message()
        if message:
            raise AssertionError(message)

    def _expectation_message(self) -> str:
        fail_on_unexpected = self._state.fail_on_unexpected
        return message(self._where(), self.requests, self.expectations, fail_on_unexpected=fail_on_unexpected)

    def check(self) -> None:
        """Raise ``AssertionError`` showing each invalid request received without ``expect_invalid()``,
        and each unmet expectation (``check_assertions()``)."""
        __tracebackhide__ = True
        messages = []
        expectation_message = self._expectation_message()
        unexpected = self.unexpected_invalid
        if unexpected:
            n = len(unexpected)
            lines = [f"the callback server at {self._where()} received {_text.plural(n, 'invalid request')}:"]
            for i, record in enumerate(unexpected[:10], 1):
                lines.append(f"#{i} " + record.describe())
            if n > 10:
                lines.append(f"... and {n - 10} more")
            lines.append("If the test sends invalid callbacks on purpose, call expect_invalid() on the server.")
            messages.append("\n".join(lines))
        if expectation_message:
            messages.append(expectation_message)
        if messages:
            raise AssertionError("\n\n".join(messages))

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
        self._state.script.add(contract_plan(result, errmsg, status, delay), times)

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
        self._state.script.add(raw_plan(status, body, headers, delay), times)

    def drop_connection(self, times: int | None = 1, *, delay: float = 0.0) -> None:
        """Close the connection without any reply (after ``delay``), for the next ``times`` requests."""
        self._state.script.add(drop_plan(delay), times)

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
                plans.append(plan_from_item(item))
            except (TypeError, ValueError) as exc:
                raise type(exc)(f"reply_sequence item {i} ({item!r}): {exc}") from None
        self._state.script.extend(plans)

    # ---- the one way in from the HTTP layer ---------------------------------------------------

    def receive(self, incoming: Incoming) -> _Answer:
        """Record one request (or count an aborted one) and say how to answer it.

        Called by the HTTP layer, in the request's thread; not for tests.
        """
        if not incoming.method:  # the head never completed or was unreadable: nothing to record
            with self._lock:
                self._state.aborted += 1
            refusal = incoming.refusal
            status = refusal.status if refusal is not None else None
            message = refusal.message if refusal is not None else ""
            return _Answer(reply=None if status is None else _error_response(status, message))
        if self.mounts and incoming.refusal is None and incoming.path.startswith(tuple(self.mounts)):
            mounted = answer_mounted(self.mounts, incoming, self.host, self.port)  # not a callback: not recorded
            return _Answer(
                reply=mounted
                or _error_response(500, f"the app mounted at {mounted_prefix(self.mounts, incoming.path)} failed")
            )
        with self._lock:
            current = incoming.started >= self._reset_at
            interrupt = self._interrupt
        plan = None
        if incoming.refusal is not None:
            refusal = incoming.refusal
            reply: Response | None = _error_response(refusal.status or 400, refusal.message)
            callback: Callback | None = None
            error: CallbackError | None = CallbackError([Problem("$", refusal.message)])
        else:
            callback, error = None, None
            try:
                callback = contract.parse_callback(incoming.body, max_size=self.max_body_size)
            except CallbackError as exc:
                error = exc.with_traceback(None)
            plan = self._state.script.take() if current else None
            if plan is not None:
                reply = None if plan.drop else plan.response()
            elif error is None:
                reply = _ok_reply()
            else:
                body = contract.encode(contract.error_reply(str(error.problems[0])))
                reply = Response(body, 200, content_type=contract.JSON_CONTENT_TYPE)
        record = RecordedCallback(
            method=incoming.method,
            path=incoming.path,
            query=incoming.query,
            headers=incoming.headers,
            body=incoming.body,
            callback=callback,
            error=error,
            reply=reply,
            received_at=incoming.received_at,
            truncated=incoming.truncated,
        )
        if self.answer is not None and plan is None and incoming.refusal is None:
            record = dataclasses.replace(record, reply=self._answer_by_hook(record))
        record = self._record(record, incoming.started)
        delay = plan.delay if plan is not None and record.server_error is None else 0.0
        return _Answer(
            reply=record.reply, delay=delay, interrupt=interrupt, sent=partial(replied, record, incoming.started)
        )

    def _answer_by_hook(self, record: RecordedCallback) -> Response:
        """``answer``'s reply to ``record``; the contract's default when it returns None, a 502 when it raises."""
        assert self.answer is not None
        try:
            reply = self.answer(record)
        except Exception as exc:
            _log.exception("answer failed for %s", record.summary())
            return _error_response(502, f"the callback could not be answered: {type(exc).__name__}: {exc}")
        if reply is not None and not isinstance(reply, Response):
            return _error_response(502, f"answer returned {type(reply).__name__}, not a werkzeug Response")
        return reply if reply is not None else record.reply or _error_response(500, "no reply")

    def _record(self, record: RecordedCallback, started: float) -> RecordedCallback:
        """Run ``on_callback``, then keep the record unless a ``reset()`` came after the request began."""
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
            if started >= self._reset_at:
                self._state.records.append(record)
                self._changed.notify_all()
        return record


def _error_response(status: int, message: str) -> Response:
    """An error in the contract's shape, ``{"result": 1, "errmsg": message}``, with HTTP ``status``."""
    return Response(contract.encode(contract.error_reply(message)), status, content_type=contract.JSON_CONTENT_TYPE)
