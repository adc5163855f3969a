"""The transports behind ``CallbackClient``: in-process WSGI (ASGI through ``asgi.AsgiBridge``) and HTTP.

Each implements ``deliver(request, path, timeout, max_size) -> Reply`` and ``deliver_concurrently``,
as httpx's transports implement ``handle_request``; network failures become ``DeliveryError`` in one
place, ``_delivery_error``. A timeout bounds the WHOLE delivery: over HTTP every socket operation gets
only the time left until one deadline (``_DeadlineSocket``), so a handler trickling its reply a byte a
second times out like a silent one; in-process the app runs in a worker thread the caller stops
waiting for. Every HTTP reply is read in one place, ``_exchange``, for every client (``check``, ``send``,
``replay``, the provider's deliveries, ``--forward-to``): a reply counts only when all of it arrived and
its status is final.
"""

from __future__ import annotations

import errno
import http.client
import io
import itertools
import logging
import queue
import random
import socket
import ssl
import threading
import time
import traceback
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from types import TracebackType
from typing import Any, Protocol

from werkzeug.datastructures import Headers

from pytest_voicecb._models import Reply, SentRequest
from pytest_voicecb._text import safe, shorten
from pytest_voicecb._tls import untrusted_reason
from pytest_voicecb.asgi import AsgiBridge
from pytest_voicecb.errors import DeliveryError, TargetError

__all__ = ["HttpTransport", "Transport", "WsgiTransport"]


class Transport(Protocol):
    """How a ``CallbackClient`` reaches its target."""

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


class WsgiTransport:
    """Calls a WSGI app with the environ a real server builds, and never lets its exceptions out.

    ``remote_addr`` is the client address the app sees (``REMOTE_ADDR``; ASGI apps get it as the scope's
    ``client`` through a2wsgi), each delivery with an ephemeral ``REMOTE_PORT`` of its own.
    """

    def __init__(self, app: Any, base_url: str, remote_addr: str = "127.0.0.1") -> None:
        self.app = app
        self.base_url = base_url
        self.remote_addr = remote_addr
        self._ports = itertools.count(random.randrange(49152, 60000))
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
        __tracebackhide__ = True
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

    def _environ(self, request: SentRequest, path: str, errors: io.StringIO) -> dict[str, Any]:
        """The environ a real server would build: werkzeug's, plus the client's address and port."""
        from werkzeug.test import EnvironBuilder

        builder = EnvironBuilder(
            path=path,
            base_url=self.base_url,
            method=request.method,
            data=request.body,
            headers=request.headers,
            errors_stream=errors,
            environ_overrides={"REMOTE_ADDR": self.remote_addr, "REMOTE_PORT": str(next(self._ports) % 65536)},
        )
        try:
            environ: dict[str, Any] = builder.get_environ()
        finally:
            builder.close()
        return environ

    def _call(self, request: SentRequest, path: str, max_size: int) -> Reply:
        errors = io.StringIO()
        environ = self._environ(request, path, errors)
        started: list[tuple[str, list[tuple[str, str]]]] = []
        chunks: list[bytes] = []  # what the legacy write() callable and the app's iterable produce
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

        truncated = False
        log = _AppLog()
        root = logging.getLogger()
        root.addHandler(log)
        begin = time.perf_counter()
        try:
            result = self.app(environ, start_response)
            if not started and callable(result) and not hasattr(result, "__iter__"):
                raise _factory_error(self.app, result)
            truncated = _read_app_iter(result, max_size, chunks)
        except TargetError:
            raise
        except Exception as exc:  # a real server answers 500; so do we
            status_line, crash_headers, crash_body, trace = _crash_reply(exc)
            escaped.append(trace)
            if not started:
                started[:] = [(status_line, crash_headers)]
                chunks[:] = [crash_body]
        finally:
            root.removeHandler(log)
        elapsed = time.perf_counter() - begin
        if not started:
            started[:] = [_crash_reply(None)[:2]]
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
            errors=log.merged(errors.getvalue()) + "".join(escaped),
        )


class _AppLog(logging.Handler):
    """What the app logged during one in-process call (this thread only), whatever logging is configured:
    Flask writes an escaped exception to ``wsgi.errors`` only where no handler is configured, and under
    pytest's logging plugin one is, so without this the same app would say less under pytest."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.thread = threading.get_ident()
        self.entries: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            text = f"{record.levelname} in {record.name}: {record.getMessage()}\n"
        except Exception:
            text = f"{record.levelname} in {record.name}: {record.msg!r}\n"
        if record.exc_info and record.exc_info[1] is not None:
            text += "".join(traceback.format_exception(record.exc_info[1]))
        self.entries.append(text)

    def merged(self, written: str) -> str:
        """``written`` (the app's ``wsgi.errors``) plus the records it does not hold already."""
        extra = []
        for entry in self.entries:
            message, _, trace = entry.partition("\n")
            if (trace.strip() or message.partition(": ")[2]) not in written:
                extra.append(entry)
        return written + "".join(extra)


def _factory_error(app: object, result: object) -> TargetError:
    """The target returned an app instead of a response: it is a factory taking ``*args``."""
    name = getattr(app, "__name__", None) or "create_app"
    return TargetError(
        f"the target {name} returned {type(result).__name__} {safe(repr(result))[:80]} instead of a response: "
        f"it is an app factory, not the app: call it: return {name}()"
    )


def _read_app_iter(app_iter: Iterable[bytes], max_size: int, into: list[bytes]) -> bool:
    """Append the app's body chunks to ``into`` up to just past ``max_size`` bytes, then close the
    iterable as a server must; True when the app had more to send."""
    size = 0
    try:
        for chunk in app_iter:
            if not chunk:
                continue
            into.append(bytes(chunk))
            size += len(chunk)
            if size > max_size:
                return True
        return False
    finally:
        close = getattr(app_iter, "close", None)
        if close is not None:
            close()


def _crash_reply(exc: BaseException | None) -> tuple[str, list[tuple[str, str]], bytes, str]:
    """What a server answers when the app crashed: status line, headers, body, and the traceback."""
    trace = "".join(traceback.format_exception(exc)) if exc is not None else ""
    return "500 INTERNAL SERVER ERROR", [("Content-Type", "text/plain; charset=utf-8")], b"Internal Server Error", trace


def _status_code(status_line: str) -> int:
    try:
        return int(status_line.split(None, 1)[0])
    except (ValueError, IndexError):
        return 500


class HttpTransport:
    """Real HTTP over one keep-alive connection (stdlib ``http.client``), reopened when it breaks."""

    def __init__(self, scheme: str, host: str, port: int, context: ssl.SSLContext | None = None) -> None:
        self.scheme, self.host, self.port = scheme, host, port
        self.context = context  # https: whom to trust (None: the system's CAs)
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
        self._conn = _new_connection(self.scheme, self.host, self.port, timeout, self.context)
        return self._conn, False

    def deliver(self, request: SentRequest, path: str, timeout: float | None, max_size: int) -> Reply:
        __tracebackhide__ = True
        with self._lock:  # the deadline starts once the connection is ours, not while another thread uses it
            deadline = None if timeout is None else time.monotonic() + timeout
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
            conn = _new_connection(self.scheme, self.host, self.port, timeout, self.context)
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


def _new_connection(
    scheme: str, host: str, port: int, timeout: float | None, context: ssl.SSLContext | None
) -> http.client.HTTPConnection:
    if scheme == "https":
        return http.client.HTTPSConnection(host, port, timeout=timeout, context=context)
    return http.client.HTTPConnection(host, port, timeout=timeout)


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

    Network exceptions come out raw, for the caller to translate (and to retry a stale keep-alive);
    a timeout comes out as ``_Timeout`` saying what was still arriving (nothing: a silent handler).
    """
    begin = time.perf_counter()
    phase = ""
    try:
        if conn.sock is None:
            if deadline is not None:
                conn.timeout = _time_left(deadline)
            conn.connect()
        sock = conn.sock
        if not isinstance(sock, _DeadlineSocket):
            sock = conn.sock = _DeadlineSocket(sock)
        sock.deadline = deadline
        sock.received = 0
        conn.request(request.method, path, body=request.body, headers=dict(request.headers))
        phase = "the reply's status line and headers were still arriving"
        response = conn.getresponse()
        phase = "the reply's body was still arriving"
        try:
            _refuse_interim(response)
            body = _read_body(response, max_size)
        except BaseException:
            response.close()
            raise
        phase = "the reply was complete only after the deadline"
        if deadline is not None:
            _time_left(deadline)
    except TimeoutError:
        silent = (
            phase.startswith("the reply's status") and isinstance(conn.sock, _DeadlineSocket) and not conn.sock.received
        )
        raise _Timeout("" if silent else phase) from None
    elapsed = time.perf_counter() - begin
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


def _refuse_interim(response: http.client.HTTPResponse) -> None:
    """``_BadReply`` for a 1xx status as the reply (http.client skips only ``100 Continue``): a callback
    gets one final reply, and a ``101`` switches to a protocol nobody asked for."""
    if 100 <= response.status < 200:
        raise _BadReply(
            f"the reply's status is {response.status} {safe(response.reason)}, an interim (1xx) status, not a "
            "final reply: a callback handler answers with a final status (200 with the contract's JSON body)"
        )


def _read_body(response: http.client.HTTPResponse, max_size: int) -> bytes:
    """The reply's body up to ``max_size + 1`` bytes; ``_BadReply`` when it ended before its framing said
    (``Content-Length`` not reached, a chunked body cut off), with what did arrive."""
    try:
        body = response.read(max_size + 1)
    except http.client.IncompleteRead as exc:
        raise _BadReply(_cut_short(response, "its chunked body ended before the last chunk", exc.partial)) from None
    if len(body) <= max_size and response.length:  # http.client returns a short read as it is
        promised = len(body) + response.length
        raise _BadReply(_cut_short(response, f"Content-Length said {promised:,} bytes", body))
    return body


def _cut_short(response: http.client.HTTPResponse, framing: str, received: bytes) -> str:
    shown = safe(shorten(received.decode("utf-8", "replace"), 200))
    return (
        f"the reply was cut short: HTTP {response.status}, {framing}, the connection closed after "
        f"{len(received):,} bytes ({shown!r}); a reply counts only when all of it arrives"
    )


class _BadReply(http.client.HTTPException):
    """A reply that arrived but cannot count as one; ``reason`` says what was received."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class _Timeout(TimeoutError):
    """The deadline passed; ``phase`` says what was still arriving (empty: nothing had come back)."""

    def __init__(self, phase: str) -> None:
        super().__init__(phase)
        self.phase = phase


class _DeadlineSocket:
    """A connected socket whose every send and receive gets only the time left until one deadline.

    ``http.client`` bounds each socket operation separately, so a handler trickling its reply a byte a
    second never timed out: a 2 s timeout waited 26 s. Wrapped, the timeout bounds the whole exchange.
    """

    def __init__(self, sock: Any) -> None:
        self.sock = sock
        self.deadline: float | None = None
        self.received = 0
        """Bytes received since the exchange began: zero at a timeout means a silent handler, not a slow one."""
        self._readers = 0
        self._closing = False

    def _arm(self) -> None:
        self.sock.settimeout(None if self.deadline is None else _time_left(self.deadline))

    def sendall(self, data: bytes, flags: int = 0) -> None:
        self._arm()
        self.sock.sendall(data, flags)

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        self._arm()
        received: int = self.sock.recv_into(buffer, nbytes, flags)
        self.received += received
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
    if isinstance(exc, ssl.SSLCertVerificationError):
        return DeliveryError(request, untrusted_reason(host, exc), unreachable=True)
    if isinstance(exc, ssl.SSLError):
        return DeliveryError(request, f"the TLS handshake with {host} failed ({safe(exc.reason or str(exc))})")
    if isinstance(exc, socket.gaierror):
        return DeliveryError(request, f"cannot resolve the host of {host} ({exc.strerror or exc})", unreachable=True)
    if isinstance(exc, (TimeoutError, socket.timeout)):
        reason = f"no reply within {timeout:g} s" if timeout else "timed out"
        if isinstance(exc, _Timeout) and exc.phase:
            reason += f" ({exc.phase})"
        return DeliveryError(request, reason, timed_out=True)
    if isinstance(exc, _BadReply):
        return DeliveryError(request, exc.reason)
    if isinstance(exc, http.client.HTTPException):
        return DeliveryError(request, f"the reply is not HTTP ({type(exc).__name__}: {safe(str(exc))})")
    if isinstance(exc, OSError):
        unreachable = isinstance(exc, ConnectionError) or exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)
        return DeliveryError(request, safe(f"{exc.strerror or exc}"), unreachable=unreachable)
    return exc
