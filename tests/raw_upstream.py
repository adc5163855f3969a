"""Raw-socket HTTP servers on loopback for tests of how clients read replies: each connection gets a
function that reads requests and writes whatever bytes the test needs, HTTP or not."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable, Iterator


def read_request(conn: socket.socket, buf: bytearray | None = None) -> bool:
    """Consume one request (head and ``Content-Length`` body) from ``conn``; False when it closed first.

    ``buf`` carries bytes read past this request into the next call (pipelined or keep-alive requests).
    """
    buf = bytearray() if buf is None else buf
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return False
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = next(
        (int(line.split(b":", 1)[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")),
        0,
    )
    while len(rest) < length:
        data = conn.recv(65536)
        if not data:
            return False
        rest += data
    buf[:] = rest[length:]
    return True


@contextlib.contextmanager
def raw_server(answer: Callable[[socket.socket, threading.Event], None], path: str = "/cb") -> Iterator[str]:
    """``answer(conn, stopping)`` runs in a thread for each connection (and closes it); yields the URL of
    ``path``. On exit ``stopping`` is set and no more connections are accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=answer, args=(conn, stopping), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{path}"
    finally:
        stopping.set()
        with contextlib.suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() (close alone does not on Linux)
        listener.close()
        thread.join(5)
