"""One connection in a worker thread: requests read exactly, handed to the receiver, answered, kept alive."""

from __future__ import annotations

import contextlib
import re
import socket
import ssl
import struct
import sys
import threading
import time
from typing import Final, Protocol

from pytest_voicecb.server._wire import (
    Answer,
    Conn,
    Head,
    Incoming,
    Refusal,
    Refused,
    content_length,
    has_content,
    head_end,
    head_ready,
    parse_head,
    partial_head_refusal,
    render,
)

__all__ = ["Session"]

_KEEP_ALIVE_GRACE: Final = 0.25  # a worker waits this long for a keep-alive sender's next request
_DRAIN_BYTES: Final = 64 * 1024 * 1024  # after a 413, read and discard at most this much ...
_DRAIN_SECONDS: Final = 2.0  # ... for at most this long, so the sender can read the 413 before the close
_DRAIN_IDLE: Final = 0.2
_HEX: Final = re.compile(rb"[0-9A-Fa-f]{1,16}")
_KERNEL_TIMEOUTS: Final = sys.platform != "win32" and hasattr(socket, "SO_RCVTIMEO")


class _TimedSocket:
    """A blocking socket whose reads and writes give up after a time, as cheaply as the kernel allows.

    Python's own socket timeout costs a ``poll()`` before every read and write and an ``ioctl()`` at every
    change; a keep-alive callback paid five system calls for its two (one read, one write). Here the
    timeouts are the kernel's ``SO_RCVTIMEO``/``SO_SNDTIMEO``, set only when they change (the keep-alive
    wait's is always the same), so a read or a write is one call. A read past its time raises
    ``TimeoutError`` as a Python timeout does. Windows and TLS connections keep Python's timeouts.
    """

    __slots__ = ("_kernel", "_receive", "sock")

    def __init__(self, sock: socket.socket, send_timeout: float) -> None:
        self.sock = sock
        self._receive = -1.0
        # TLS reads retry a kernel timeout forever (OpenSSL's "want read" on a blocking socket): Python's own.
        self._kernel = _KERNEL_TIMEOUTS and not isinstance(sock, ssl.SSLSocket)
        sock.setblocking(True)
        if self._kernel:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, _timeval(send_timeout))
        else:  # pragma: no cover - Windows
            sock.settimeout(send_timeout)

    def recv(self, size: int, seconds: float) -> bytes:
        """Up to ``size`` bytes, waiting at most ``seconds`` (``TimeoutError`` past it)."""
        if seconds <= 0:
            raise TimeoutError
        if seconds != self._receive:
            self._receive = seconds
            if self._kernel:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, _timeval(seconds))
            else:  # pragma: no cover - Windows
                self.sock.settimeout(seconds)
        try:
            return self.sock.recv(size)
        except BlockingIOError:  # SO_RCVTIMEO ran out
            raise TimeoutError from None

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)


def _timeval(seconds: float) -> bytes:
    """``struct timeval`` for a socket option; never zero, which the kernel reads as "wait forever"."""
    whole, micro = divmod(max(round(seconds * 1_000_000), 1), 1_000_000)
    return struct.pack("@ll", whole, micro)


class Server(Protocol):
    """What a session needs of the server that owns its connection."""

    timeout: float
    header_timeout: float
    max_body_size: int
    stopped: threading.Event

    @property
    def stopping(self) -> bool: ...

    def ask(self, incoming: Incoming) -> Answer: ...

    def hand_back(self, conn: Conn) -> None: ...

    def close(self, sock: socket.socket) -> None: ...

    def secure(self, conn: Conn, context: ssl.SSLContext) -> bool: ...


class Session:
    """One connection in a worker thread: requests read, answered and kept alive, one at a time."""

    def __init__(self, server: Server, conn: Conn) -> None:
        self.server = server
        self.conn = conn
        self.sock = conn.sock
        self.buf = conn.buf
        self.deadline = 0.0
        self.io = _TimedSocket(conn.sock, server.timeout)
        self.gone = False  # the server already closed the connection (a tunnel's handshake failed)

    def run(self) -> None:
        server = self.server
        started = self.conn.head_started or time.monotonic()
        while True:
            head = self._read_head(started)
            if head is None or not self._exchange(head):
                break
            if not self.buf and not self._next_arrives():
                server.hand_back(self.conn)
                return
            started = time.monotonic()
        if self.gone:
            return
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_WR)
        server.close(self.sock)

    def _tunnel(self, context: ssl.SSLContext) -> bool:
        """After a ``CONNECT`` answered 200: the same connection, now inside TLS; False when it ended."""
        if self.buf:  # bytes sent before our 200 cannot be part of a handshake we had not begun
            return False
        if not self.server.secure(self.conn, context):
            self.gone = True
            return False
        self.sock = self.conn.sock
        self.io = _TimedSocket(self.sock, self.server.timeout)
        return True

    def _next_arrives(self) -> bool:
        """Wait briefly for a keep-alive sender's next request; False when it stays quiet."""
        if self.server.stopping:
            return False
        try:
            data = self.io.recv(65536, _KEEP_ALIVE_GRACE)
        except TimeoutError:
            self.sock.setblocking(False)
            return False
        except OSError:
            data = b""
        if not data:
            return True  # closed: _read_head ends the session quietly
        self.buf += data
        return True

    # ---- the head -------------------------------------------------------------------------------

    def _read_head(self, started: float) -> Head | None:
        """The next request's head; None when the connection ends here (answered or reported if it must)."""
        server, conn = self.server, self.conn
        while not head_ready(conn):
            left = min(server.timeout, started + server.header_timeout - time.monotonic())
            try:
                data = self.io.recv(65536, left)
            except TimeoutError:
                if has_content(self.buf):
                    cut = time.monotonic() - started >= server.header_timeout
                    why = (
                        f"the request head was not complete within {server.header_timeout:g} s"
                        if cut
                        else f"the request head stalled for {server.timeout:g} s"
                    )
                    server.ask(
                        Incoming(
                            received_at=time.time(), started=time.monotonic(), refusal=Refusal(status=None, message=why)
                        )
                    )
                return None
            except OSError:
                data = b""
            if not data:
                if not has_content(self.buf):
                    return None  # a keep-alive connection closed between requests
                self._refuse_head(partial_head_refusal(bytes(self.buf)))
                return None
            self.buf += data
        end = head_end(conn)
        raw = bytes(self.buf[:end]) if end >= 0 else bytes(self.buf)
        del self.buf[: end if end >= 0 else len(self.buf)]
        conn.scanned = 0
        head = Head(received_at=time.time(), started=time.monotonic())
        try:
            parse_head(raw, head, complete=end >= 0)
        except Refused as refused:
            if head.method:
                self._answer(head, None, refused)
            else:
                self._refuse_head(refused)
            return None
        return head

    def _refuse_head(self, refused: Refused) -> None:
        """A head too broken to record: reported as aborted, answered with its status, then closed."""
        now = time.monotonic()
        answer = self.server.ask(
            Incoming(
                received_at=time.time(),
                started=now,
                refusal=Refusal(status=refused.status, message=refused.message),
            )
        )
        if answer.reply is not None:
            data, _ = render(answer.reply, head_only=False, close=True, version=(1, 1))
            with contextlib.suppress(OSError):
                self.io.sendall(data)

    # ---- one exchange ---------------------------------------------------------------------------

    def _exchange(self, head: Head) -> bool:
        """Read the body, ask the receiver, answer; True when the connection carries another request."""
        try:
            body = self._read_body(head)
        except Refused as refused:
            self._answer(head, None, refused)
            return False
        return self._answer(head, body, None)

    def _answer(self, head: Head, body: bytes | None, refused: Refused | None) -> bool:
        server = self.server
        incoming = Incoming(
            method=head.method,
            path=head.path,
            query=head.query,
            headers=head.headers,
            body=refused.body if refused is not None else body or b"",
            authority=head.authority,
            received_at=head.received_at,
            started=head.started,
            truncated=refused is not None and refused.truncated,
            refusal=None if refused is None else Refusal(status=refused.status, message=refused.message),
        )
        answer = server.ask(incoming)
        if answer.delay:
            (answer.interrupt or server.stopped).wait(answer.delay)
        if answer.reply is None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)
            if answer.sent is not None:
                answer.sent()
            return False
        close = refused is not None or not (head.keep_alive or answer.tunnel) or server.stopping
        data, close = render(answer.reply, head_only=head.method == "HEAD", close=close, version=head.version)
        try:
            self.io.sendall(data)
        except OSError:
            return False
        if answer.sent is not None:
            answer.sent()
        if refused is not None and refused.drain:
            self._discard(refused.drain)
        if answer.secure is not None and not close:
            return self._tunnel(answer.secure)
        return not close

    # ---- bodies ---------------------------------------------------------------------------------

    def _read_body(self, head: Head) -> bytes:
        """The request body, read exactly, all of it within ``timeout`` however slowly it trickles."""
        self.deadline = time.monotonic() + self.server.timeout
        limit = self.server.max_body_size
        expect_continue = head.version >= (1, 1) and head.field("expect").lower() == "100-continue"
        if "transfer-encoding" in head.index:
            encoding = head.field("transfer-encoding")
            if encoding.strip().lower() != "chunked":
                raise Refused(501, f"Transfer-Encoding {encoding!r} is not supported; send chunked or Content-Length")
            if "content-length" in head.index:
                head.close = True  # both framings: trust chunked, then close (RFC 9112 6.3)
            if expect_continue:
                self._send_continue()
            return self._read_chunked(limit)
        lengths = {value.strip() for value in head.index.get("content-length", ())}
        if not lengths:
            return b""
        size = content_length(lengths)
        if size > limit:
            raise Refused(413, f"body is {size:,} bytes (Content-Length), over the {limit:,}-byte limit", drain=size)
        if expect_continue and size:
            self._send_continue()
        return self._read_exact(size, "Content-Length")

    def _send_continue(self) -> None:
        with contextlib.suppress(OSError):
            self.io.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _recv(self, size: int) -> bytes:
        """Up to ``size`` bytes: what is buffered, else one read bounded by the body's time budget."""
        if self.buf:
            data = bytes(self.buf[:size])
            del self.buf[:size]
            return data
        left = self.deadline - time.monotonic()
        return self.io.recv(min(size, 65536), min(left, self.server.timeout))

    def _readline(self, limit: int) -> bytes:
        """One line (ending in ``\\n``) of at most ``limit`` bytes, or what arrived before the end."""
        while True:
            found = self.buf.find(b"\n", 0, limit)
            if found >= 0 or len(self.buf) >= limit:
                cut = found + 1 if found >= 0 else limit
                line = bytes(self.buf[:cut])
                del self.buf[:cut]
                return line
            chunk = self._recv_more()
            if not chunk:
                line = bytes(self.buf)
                self.buf.clear()
                return line

    def _recv_more(self) -> bytes:
        left = self.deadline - time.monotonic()
        chunk = self.io.recv(65536, min(left, self.server.timeout))
        self.buf += chunk
        return chunk

    def _read_exact(self, size: int, framing: str, parts: list[bytes] | None = None) -> bytes:
        chunks: list[bytes] = []
        got = 0
        how = ""
        try:
            while got < size:
                chunk = self._recv(size - got)
                if not chunk:
                    break
                chunks.append(chunk)
                got += len(chunk)
        except TimeoutError:
            how = f"the body did not arrive within {self.server.timeout:g} s"
        except OSError:
            pass
        if got == size:
            return b"".join(chunks)
        if not how:  # judged when the body stopped coming: stop() ends connections mid-body too
            how = "the server stopped" if self.server.stopping else "the connection ended"
        before = b"".join(parts) if parts else b""
        raise Refused(
            400,
            f"body truncated: {framing} said {size:,} bytes, {how} after {got:,}",
            body=before + b"".join(chunks),
            truncated=True,
        )

    def _read_chunked(self, limit: int) -> bytes:
        parts: list[bytes] = []
        total = 0

        def refused(message: str) -> Refused:
            return Refused(400, message, body=b"".join(parts), truncated=True)

        try:
            while True:
                line = self._readline(1026)
                if not line.endswith(b"\n"):
                    raise refused("chunked body truncated or its chunk-size line too long")
                size_text = line.split(b";", 1)[0].strip()
                if not _HEX.fullmatch(size_text):
                    raise Refused(
                        400, f"malformed chunk size {size_text[:20]!r} in a chunked body", body=b"".join(parts)
                    )
                size = int(size_text, 16)
                if size == 0:
                    for _ in range(100):  # trailer fields, then the empty line
                        if self._readline(8192).strip() == b"":
                            return b"".join(parts)
                    raise Refused(400, "too many trailer lines after a chunked body", body=b"".join(parts))
                total += size
                if total > limit:
                    raise Refused(413, f"chunked body grew past the {limit:,}-byte limit", drain=_DRAIN_BYTES)
                parts.append(self._read_exact(size, "a chunk header", parts))
                if self._readline(3).strip() != b"":
                    raise Refused(400, "chunk data not followed by CRLF in a chunked body", body=b"".join(parts))
        except TimeoutError:
            raise refused(f"chunked body did not arrive within {self.server.timeout:g} s") from None
        except OSError:
            ended = "the server stopped" if self.server.stopping else "the connection ended"
            raise refused(f"{ended} inside a chunked body") from None

    def _discard(self, size: int) -> None:
        """Read and drop what the sender is still sending (bounded), so it can read our answer."""
        deadline = time.monotonic() + _DRAIN_SECONDS
        left = min(size, _DRAIN_BYTES) - len(self.buf)
        self.buf.clear()
        with contextlib.suppress(OSError):
            while left > 0 and time.monotonic() < deadline:
                chunk = self.io.recv(min(left, 65536), _DRAIN_IDLE)
                if not chunk:
                    break
                left -= len(chunk)
