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
import threading
import time
from collections.abc import Callable
from typing import Final

from werkzeug.wrappers import Response

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
    ) -> None:
        self.receiver = receiver
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
        selector = selectors.DefaultSelector()
        deadlines: list[tuple[float, int, Conn | _Linger]] = []
        order = itertools.count()
        paused_until: float | None = None
        backoff = _BACKOFF_FIRST
        lingering: set[_Linger] = set()

        def watch(item: Conn | _Linger) -> None:
            heapq.heappush(deadlines, (item.deadline, next(order), item))

        try:
            selector.register(self._listener, selectors.EVENT_READ, "listener")
            selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            while True:
                now = time.monotonic()
                wait = deadlines[0][0] - now if deadlines else None
                if paused_until is not None:
                    wait = min(wait, paused_until - now) if wait is not None else paused_until - now
                events = selector.select(None if wait is None else max(wait, 0.0))
                now = time.monotonic()
                for key, _ in events:
                    item = key.data
                    if item == "wake":
                        with contextlib.suppress(OSError):
                            while self._wake_r.recv(4096):
                                pass
                        if self._stopping:
                            return
                        with self._lock:
                            returned = list(self._returned)
                            self._returned.clear()
                        for conn in returned:
                            conn.deadline = now + self.timeout
                            selector.register(conn.sock, selectors.EVENT_READ, conn)
                            watch(conn)
                    elif item == "listener":
                        for _ in range(_ACCEPTS_PER_WAKE):
                            try:
                                sock, _address = self._listener.accept()
                            except (BlockingIOError, InterruptedError):
                                break
                            except OSError as exc:
                                if exc.errno in _OUT_OF_FDS:  # pause, don't spin on a listener that stays readable
                                    _log.debug("accept() failed (%s); pausing %.2f s", exc, backoff)
                                    selector.unregister(self._listener)
                                    paused_until, backoff = now + backoff, min(backoff * 2, _BACKOFF_MAX)
                                    break
                                continue  # the sender gave up before accept()
                            backoff = _BACKOFF_FIRST
                            admitted = self._admit(sock, now, lingering=len(lingering))
                            if isinstance(admitted, _Linger):
                                lingering.add(admitted)
                            if admitted is not None:
                                selector.register(admitted.sock, selectors.EVENT_READ, admitted)
                                watch(admitted)
                    elif isinstance(item, _Linger):
                        if not _discard_available(item.sock):
                            selector.unregister(item.sock)
                            lingering.discard(item)
                            item.sock.close()
                    else:
                        state = self._readable(item, now)
                        if state == "wait":
                            watch(item)
                            continue
                        selector.unregister(item.sock)
                        if state == "ready":
                            self._dispatch(item)
                        elif state == "ended":
                            self._end_partial(item)
                        else:
                            self.close(item.sock)
                while deadlines and deadlines[0][0] <= now:
                    deadline, _, item = heapq.heappop(deadlines)
                    if item.deadline != deadline or item.sock.fileno() < 0:
                        continue  # superseded, or already gone
                    try:
                        key = selector.get_key(item.sock)
                    except (KeyError, ValueError):
                        continue  # with a worker now
                    if key.data is not item:
                        continue
                    selector.unregister(item.sock)
                    if isinstance(item, Conn):
                        self._expire(item)
                    else:
                        lingering.discard(item)
                        item.sock.close()
                if paused_until is not None and time.monotonic() >= paused_until:
                    paused_until = None
                    selector.register(self._listener, selectors.EVENT_READ, "listener")
        except Exception:  # pragma: no cover - a bug here must not leave connections hanging silently
            _log.exception("the %s accept loop failed", self.name)
        finally:
            for key in list(selector.get_map().values()):
                if isinstance(key.data, Conn):
                    self.close(key.data.sock)
                elif isinstance(key.data, _Linger):
                    key.data.sock.close()
            selector.close()

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
        except (BlockingIOError, InterruptedError):
            return "wait"
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


class _Linger:
    """A refused connection, read and discarded until the sender closes it or ``deadline``."""

    __slots__ = ("deadline", "sock")

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock = sock
        self.deadline = deadline


def _discard_available(sock: socket.socket) -> bool:
    """Read and drop what a refused sender sent; False once it has closed."""
    try:
        return bool(sock.recv(65536))
    except (BlockingIOError, InterruptedError):
        return True
    except OSError:
        return False
