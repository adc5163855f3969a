"""A keep-alive HTTP/1.1 server for test doubles on loopback: framing, deadlines and connection limits.

It reads each request exactly (``Content-Length`` or chunked, within a size limit), so connections stay
alive as senders with connection pools expect, and hands it to its owner through one call:
``answer = receiver.receive(Incoming(...))``. It never touches the owner's state or lock, so any
:class:`Receiver` can sit behind it (the recording callback server, a provider simulator).

How connections are served, so that slow or idle peers cost a file descriptor and not a thread:

- One thread (the accept loop) accepts connections and keeps every connection that is waiting for a
  request head in a selector. When a head is complete the connection goes to a worker thread (reused
  when one is idle), which reads the body, asks the receiver, writes the answer and reads the next
  request while the sender keeps up. A connection quiet for ``_KEEP_ALIVE_GRACE`` goes back to the
  selector.
- TLS (``tls``, a server context): a new connection goes straight to a worker, which does the
  handshake (``_tls.handshake``: its first byte within ``timeout``, all of it within ``header_timeout``),
  so a client that connects and sends nothing holds one worker, never the accept loop. A handshake that
  fails is logged and reported as an aborted request. A client speaking plain HTTP gets a 400 saying to
  use https, or is served in plain HTTP with ``plain_too`` (the simulator's proxy port).
- Deadlines: a request head must be complete within ``header_timeout`` of its first byte, a body within
  ``timeout`` of its head, and no read may stall longer than ``timeout``; an idle connection is closed
  after ``timeout``.
- At most ``max_connections`` are open at once; one more gets an immediate 503 and is closed. When
  ``accept()`` fails for want of file descriptors (``EMFILE``), accepting pauses (10 ms, doubling up to
  0.5 s) instead of spinning on a listener that stays readable.

What the receiver is told: every request whose head was read, with its body (``truncated`` when it never
fully arrived), and every refusal this layer decided (``refusal``: 413, a framing error, 431 ...). A head
that never completed (closed, stalled, past its deadline) or whose request line is unreadable arrives
with ``method == ""``: nothing is known of it but that it happened. Those are reported from the accept
thread, so ``receive()`` must return quickly for them.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import heapq
import itertools
import logging
import queue
import selectors
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Final

from werkzeug.wrappers import Response

from pytest_voicecb import _tls
from pytest_voicecb.server._session import Session
from pytest_voicecb.server._wire import (
    Answer,
    Conn,
    Incoming,
    Receiver,
    Refusal,
    has_content,
    head_ready,
    partial_head_refusal,
    render,
)

__all__ = ["Answer", "HTTP11Server", "Incoming", "Receiver", "Refusal", "listen"]

_log = logging.getLogger("pytest_voicecb.server")

_WORKER_IDLE: Final = 30.0  # an idle worker thread waits this long for another connection
_BACKOFF_FIRST: Final = 0.01
_BACKOFF_MAX: Final = 0.5
_LINGER_MAX: Final = 64  # refused connections kept open briefly so the sender reads its 503, not a reset
_LINGER_SECONDS: Final = 1.0
_ACCEPTS_PER_WAKE: Final = 64
_OUT_OF_FDS: Final = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})


def listen(host: str, port: int) -> socket.socket:
    """A socket listening on ``host``:``port`` (IPv6 when the host has a colon) with a backlog for bursts of
    connections; ``OSError`` naming the address when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=1024)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from None


class HTTP11Server:
    """Serves ``receiver`` on ``listener`` (an already bound, listening socket it now owns)."""

    def __init__(
        self,
        receiver: Receiver,
        listener: socket.socket,
        *,
        name: str,
        error_reply: Callable[[int, str], Response],
        max_body_size: int,
        timeout: float,
        header_timeout: float,
        max_connections: int,
        tls: ssl.SSLContext | None = None,
        plain_too: bool = False,
    ) -> None:
        self.receiver = receiver
        self.tls = tls
        self.plain_too = plain_too  # with tls: a client speaking plain HTTP is served too (else refused)
        self.name = name
        self.error_reply = error_reply
        self.max_body_size = max_body_size
        self.timeout = timeout
        self.header_timeout = header_timeout
        self.max_connections = max_connections
        self.port: int = listener.getsockname()[1]
        self._listener = listener
        listener.setblocking(False)
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._lock = threading.Lock()
        self._open = 0  # connections counted against max_connections
        self._active: set[socket.socket] = set()  # connections a worker holds
        self._returned: collections.deque[Conn] = collections.deque()  # handed back by workers
        self._jobs: queue.SimpleQueue[Conn | None] = queue.SimpleQueue()
        self._idle_workers = 0
        self._stopping = False
        self.stopped = threading.Event()  # cuts delays when the server stops
        self._thread = threading.Thread(target=self._accept_loop, name=f"voicecb {name}:{self.port}", daemon=True)

    # ---- lifecycle ------------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        return self._stopping

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """Close the listener and every connection at once; never waits for a receiver."""
        with self._lock:
            self._stopping = True
        self.stopped.set()
        self._wake()
        self._thread.join(timeout=5.0)
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()
        with self._lock:
            active = list(self._active)
            idle, self._idle_workers = self._idle_workers, 0
        for sock in active:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        with self._lock:
            returned = list(self._returned)
            self._returned.clear()
        for conn in returned:
            self.close(conn.sock)
        for _ in range(idle):
            self._jobs.put(None)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"x")

    # ---- the accept loop: new and idle connections, waiting for a request head ------------------

    def _accept_loop(self) -> None:
        loop = _Loop()
        try:
            loop.selector.register(self._listener, selectors.EVENT_READ, "listener")
            loop.selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            while True:
                now = time.monotonic()
                events = loop.selector.select(loop.wait(now))
                now = time.monotonic()
                for key, _ in events:
                    if key.data == "wake":
                        if not self._on_wake(loop, now):
                            return
                    elif key.data == "listener":
                        self._accept(loop, now)
                    else:
                        self._on_readable(loop, key.data, now)
                self._expire_due(loop, now)
                if loop.paused_until is not None and time.monotonic() >= loop.paused_until:
                    loop.paused_until = None
                    loop.selector.register(self._listener, selectors.EVENT_READ, "listener")
        except Exception:  # pragma: no cover - a bug here must not leave connections hanging silently
            _log.exception("the %s accept loop failed", self.name)
        finally:
            for key in list(loop.selector.get_map().values()):
                if isinstance(key.data, Conn):
                    self.close(key.data.sock)
                elif isinstance(key.data, _Linger):
                    key.data.sock.close()
            loop.selector.close()

    def _on_wake(self, loop: _Loop, now: float) -> bool:
        """Take back the connections workers handed back; False when the server is stopping."""
        with contextlib.suppress(OSError):
            while self._wake_r.recv(4096):
                pass
        if self._stopping:
            return False
        with self._lock:
            returned = list(self._returned)
            self._returned.clear()
        for conn in returned:
            conn.deadline = now + self.timeout
            loop.selector.register(conn.sock, selectors.EVENT_READ, conn)
            loop.watch(conn)
        return True

    def _accept(self, loop: _Loop, now: float) -> None:
        """Accept what is waiting (a burst at most); with TLS a new connection goes straight to a worker,
        which does the handshake, so a client that connects and sends nothing stalls nobody."""
        for _ in range(_ACCEPTS_PER_WAKE):
            try:
                sock, _address = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                if exc.errno in _OUT_OF_FDS:  # pause, don't spin on a listener that stays readable
                    _log.debug("accept() failed (%s); pausing %.2f s", exc, loop.backoff)
                    loop.selector.unregister(self._listener)
                    loop.paused_until, loop.backoff = now + loop.backoff, min(loop.backoff * 2, _BACKOFF_MAX)
                    return
                continue  # the sender gave up before accept()
            loop.backoff = _BACKOFF_FIRST
            admitted = self._admit(sock, now, lingering=len(loop.lingering))
            if isinstance(admitted, _Linger):
                loop.lingering.add(admitted)
            elif isinstance(admitted, Conn) and self.tls is not None:
                self._dispatch(admitted)
                continue
            if admitted is not None:
                loop.selector.register(admitted.sock, selectors.EVENT_READ, admitted)
                loop.watch(admitted)

    def _on_readable(self, loop: _Loop, item: Conn | _Linger, now: float) -> None:
        """A watched connection has bytes (or closed): more of a head, a whole one for a worker, or its end."""
        if isinstance(item, _Linger):
            if not _discard_available(item.sock):
                loop.selector.unregister(item.sock)
                loop.lingering.discard(item)
                item.sock.close()
            return
        state = self._readable(item, now)
        if state == "wait":
            loop.watch(item)
            return
        loop.selector.unregister(item.sock)
        if state == "ready":
            self._dispatch(item)
        elif state == "ended":
            self._end_partial(item)
        else:
            self.close(item.sock)

    def _expire_due(self, loop: _Loop, now: float) -> None:
        """Close the watched connections whose deadline has passed (an aborted head is reported)."""
        deadlines = loop.deadlines
        while deadlines and deadlines[0][0] <= now:
            deadline, _, item = heapq.heappop(deadlines)
            if item.deadline != deadline or item.sock.fileno() < 0:
                continue  # superseded, or already gone
            try:
                key = loop.selector.get_key(item.sock)
            except (KeyError, ValueError):
                continue  # with a worker now
            if key.data is not item:
                continue
            loop.selector.unregister(item.sock)
            if isinstance(item, Conn):
                self._expire(item)
            else:
                loop.lingering.discard(item)
                item.sock.close()

    def _admit(self, sock: socket.socket, now: float, *, lingering: int) -> Conn | _Linger | None:
        """A new connection to watch, or a refusal (503) when ``max_connections`` are open."""
        with self._lock:
            full = self._open >= self.max_connections
            if not full:
                self._open += 1
        sock.setblocking(False)
        if full:
            message = f"the server is at its limit of {self.max_connections:,} open connections; retry later"
            reply = self.error_reply(503, message)
            reply.headers["Retry-After"] = "1"
            data, _ = render(reply, head_only=False, close=True, version=(1, 1))
            with contextlib.suppress(OSError):
                sock.send(data)
                sock.shutdown(socket.SHUT_WR)
            if lingering >= _LINGER_MAX:
                sock.close()
                return None
            return _Linger(sock, now + _LINGER_SECONDS)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn = Conn(sock)
        conn.deadline = now + self.timeout
        return conn

    def _readable(self, conn: Conn, now: float) -> str:
        """Read what arrived: ``ready`` for a worker (a whole head, or too much of one), ``wait`` for more,
        ``ended`` (closed in the middle of a head) or ``closed`` (between requests)."""
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return "wait"  # (TLS: only part of a record has arrived)
        except OSError:
            data = b""
        if not data:
            conn.deadline = -1.0
            return "ended" if has_content(conn.buf) else "closed"
        conn.buf += data
        if conn.head_started is None and has_content(conn.buf):
            conn.head_started = now
        if head_ready(conn):
            return "ready"
        conn.deadline = now + self.timeout
        if conn.head_started is not None:
            conn.deadline = min(conn.deadline, conn.head_started + self.header_timeout)
        return "wait"

    def _end_partial(self, conn: Conn) -> None:
        """A connection closed in the middle of a head: reported and answered (if it still reads) here, not in
        a worker, so thousands of slow senders closing at once cost no threads."""
        refused = partial_head_refusal(bytes(conn.buf))
        now = time.monotonic()
        refusal = Refusal(status=refused.status, message=refused.message)
        answer = self.ask(Incoming(received_at=time.time(), started=now, refusal=refusal))
        if answer.reply is not None:
            with contextlib.suppress(OSError):
                conn.sock.send(render(answer.reply, head_only=False, close=True, version=(1, 1))[0])
        self.close(conn.sock)

    def _expire(self, conn: Conn) -> None:
        """A connection whose deadline passed in the selector: closed, and an aborted head reported."""
        if has_content(conn.buf):
            now = time.monotonic()
            started = conn.head_started or now
            if now - started >= self.header_timeout:
                why = f"the request head was not complete within {self.header_timeout:g} s"
            else:
                why = f"the request head stalled for {self.timeout:g} s"
            self.ask(Incoming(received_at=time.time(), started=now, refusal=Refusal(status=None, message=why)))
        self.close(conn.sock)

    def close(self, sock: socket.socket) -> None:
        with self._lock:
            self._open -= 1
            self._active.discard(sock)
        with contextlib.suppress(OSError):
            sock.close()

    # ---- workers --------------------------------------------------------------------------------

    def _dispatch(self, conn: Conn) -> None:
        with self._lock:
            self._active.add(conn.sock)
            if self._idle_workers:
                self._idle_workers -= 1
                self._jobs.put(conn)
                return
        worker = threading.Thread(
            target=self._work, args=(conn,), daemon=True, name=f"voicecb {self.name} worker:{self.port}"
        )
        try:
            worker.start()
        except RuntimeError:  # no more threads: refuse this one, keep serving the rest
            _log.warning("cannot start a worker thread; closing a connection")
            self.close(conn.sock)

    def _work(self, conn: Conn | None) -> None:
        while conn is not None:
            try:
                tls = self.tls
                if tls is None or isinstance(conn.sock, ssl.SSLSocket) or self.secure(conn, tls, self.plain_too):
                    Session(self, conn).run()
            except Exception:  # pragma: no cover - a bug here must cost one connection, never the server
                _log.exception("the %s failed on a connection", self.name)
                self.close(conn.sock)
            with self._lock:
                self._idle_workers += 1
            try:
                conn = self._jobs.get(timeout=_WORKER_IDLE)
            except queue.Empty:
                with self._lock:  # jobs are queued under this lock: none can slip in unseen
                    try:
                        conn = self._jobs.get_nowait()
                    except queue.Empty:
                        self._idle_workers -= 1
                        return

    def secure(self, conn: Conn, context: ssl.SSLContext, plain_too: bool = False) -> bool:
        """The TLS handshake of a new connection (or a ``CONNECT`` tunnel), in its worker; False (closed, a
        failure reported as an aborted request and logged) when it did not complete. A client speaking
        plain HTTP is served so with ``plain_too``, else refused with a 400 saying to use https."""
        plain = conn.sock
        try:
            secured = _tls.handshake(plain, context, timeout=self.timeout, header_timeout=self.header_timeout)
        except _tls.PlainHttp:
            if plain_too:
                return True
            self._refuse_plain(plain)
            return False
        except EOFError:  # connected and closed without a byte: quietly, as in plain HTTP
            self.close(plain)
            return False
        except (TimeoutError, ssl.SSLError, OSError) as exc:
            if not self._stopping and not (isinstance(exc, TimeoutError) and "began" in str(exc)):
                self._handshake_failed(_handshake_reason(exc))  # an idle connection closes quietly, as in plain HTTP
            self.close(plain)
            return False
        with self._lock:
            self._active.discard(plain)
            self._active.add(secured)
            stopping = self._stopping
        conn.sock = secured
        if stopping:
            self.close(secured)
            return False
        return True

    def _refuse_plain(self, sock: socket.socket) -> None:
        """Plain HTTP on the HTTPS port: a 400 saying so, in plain HTTP, so the sender reads why."""
        why = f"this {self.name} speaks HTTPS: use an https:// URL (and trust its CA, ca_path)"
        self._handshake_failed("a plain HTTP request reached this HTTPS server: use an https:// URL")
        data, _ = render(self.error_reply(400, why), head_only=False, close=True, version=(1, 1))
        with contextlib.suppress(OSError):
            sock.setblocking(True)
            sock.settimeout(1.0)
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            _discard_available(sock)
        self.close(sock)

    def _handshake_failed(self, why: str) -> None:
        _log.warning("the %s on port %s: a TLS handshake failed: %s", self.name, self.port, why)
        self.ask(Incoming(received_at=time.time(), started=time.monotonic(), refusal=Refusal(status=None, message=why)))

    def hand_back(self, conn: Conn) -> None:
        """A quiet keep-alive connection goes back to the selector, freeing its worker."""
        conn.head_started = None
        conn.scanned = 0
        with self._lock:
            self._active.discard(conn.sock)
            stopping = self._stopping
            if not stopping:
                self._returned.append(conn)
        if stopping:
            self.close(conn.sock)
        else:
            self._wake()

    def ask(self, incoming: Incoming) -> Answer:
        """The receiver's answer; a bug behind it costs one 500, never the server."""
        try:
            return self.receiver.receive(incoming)
        except Exception as exc:
            _log.exception("the %s failed on %s %s", self.name, incoming.method, incoming.path)
            reply = self.error_reply(500, f"the {self.name} failed: {type(exc).__name__}: {exc}")
            reply.headers["Connection"] = "close"  # after a bug, start the next request afresh
            return Answer(reply=reply)


class _Loop:
    """The accept loop's state: its selector, the deadlines it watches, the pause after ``EMFILE``."""

    def __init__(self) -> None:
        self.selector = selectors.DefaultSelector()
        self.deadlines: list[tuple[float, int, Conn | _Linger]] = []
        self.order = itertools.count()
        self.paused_until: float | None = None
        self.backoff = _BACKOFF_FIRST
        self.lingering: set[_Linger] = set()

    def watch(self, item: Conn | _Linger) -> None:
        heapq.heappush(self.deadlines, (item.deadline, next(self.order), item))

    def wait(self, now: float) -> float | None:
        """How long the selector may sleep: until the next deadline or the end of a pause."""
        wait = self.deadlines[0][0] - now if self.deadlines else None
        if self.paused_until is not None:
            wait = min(wait, self.paused_until - now) if wait is not None else self.paused_until - now
        return None if wait is None else max(wait, 0.0)


class _Linger:
    """A refused connection, read and discarded until the sender closes it or ``deadline``."""

    __slots__ = ("deadline", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline


def _handshake_reason(exc: BaseException) -> str:
    """Why a TLS handshake failed, said for the person whose client could not connect."""
    if isinstance(exc, TimeoutError):
        return str(exc)
    reason = getattr(exc, "reason", None) or str(exc)
    if "UNKNOWN_CA" in str(reason).upper() or "BAD_CERTIFICATE" in str(reason).upper():
        return f"the client does not trust this server's certificate ({reason}): give it the CA file (ca_path)"
    return f"{type(exc).__name__}: {reason}"


def _discard_available(sock: socket.socket) -> bool:
    """Read and drop what a refused sender sent; False once it has closed."""
    try:
        return bool(sock.recv(65536))
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False
