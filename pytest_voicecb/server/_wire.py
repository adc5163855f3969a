"""The HTTP/1.1 wire format without threads: the seam's types, request heads parsed, replies rendered.

``Incoming``, ``Answer``, ``Refusal`` and ``Receiver`` are the one way from the HTTP layer to its owner;
everything else here is pure functions of bytes, shared by the accept loop and the worker sessions.
"""

from __future__ import annotations

import dataclasses
import re
import socket
import ssl
import threading
from collections.abc import Callable
from http import HTTPStatus
from typing import Final, Protocol
from urllib.parse import unquote

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response

from pytest_voicecb import _text

__all__ = [
    "Answer",
    "Conn",
    "Head",
    "Incoming",
    "Receiver",
    "Refusal",
    "Refused",
    "content_length",
    "has_content",
    "head_end",
    "head_ready",
    "http_error",
    "parse_head",
    "partial_head_refusal",
    "render",
    "split_target",
    "target_authority",
]

_MAX_LINE: Final = 65536  # a request line or header line longer than this is refused (as http.server does)
_MAX_HEADERS: Final = 100
_MAX_HEAD: Final = 256 * 1024  # the whole head, however its lines are cut
_HEAD_END: Final = re.compile(rb"\n\r?\n")
_REQUEST_LINE: Final = re.compile(r"([!#$%&'*+.^_`|~0-9A-Za-z-]+) +(\S+) +HTTP/(\d{1,3})\.(\d{1,3})")
_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclasses.dataclass(frozen=True, kw_only=True)
class Refusal:
    """An answer this layer decided: ``status`` with ``message`` (None: the connection just closes)."""

    status: int | None
    message: str


@dataclasses.dataclass(frozen=True, kw_only=True)
class Incoming:
    """One request as it arrived. ``method`` is empty when its head never completed or was unreadable."""

    method: str = ""
    path: str = ""
    query: str = ""
    headers: Headers = dataclasses.field(default_factory=Headers)
    body: bytes = b""
    authority: str = ""
    """The ``host[:port]`` of an absolute-form target (``POST http://host/ HTTP/1.1``, what a client sends
    to a proxy); empty for the usual ``POST / HTTP/1.1``. ``CONNECT host:443`` has it too."""
    received_at: float
    """Wall-clock time (``time.time()``) when the head was complete (or given up on)."""
    started: float
    """``time.monotonic()`` at the same moment, to order the request against the owner's own events."""
    truncated: bool = False
    """The body never fully arrived: ``body`` is what did."""
    refusal: Refusal | None = None


@dataclasses.dataclass(frozen=True, kw_only=True)
class Answer:
    """What to send back: ``reply`` (None: close without one) after ``delay`` seconds, cut short when
    ``interrupt`` is set."""

    reply: Response | None
    delay: float = 0.0
    interrupt: threading.Event | None = None
    sent: Callable[[], object] | None = None
    """Called once the reply was written (or the connection dropped as the answer says)."""
    tunnel: bool = False
    """A ``CONNECT`` answered: the connection goes on (whatever its ``Connection`` header said) as a tunnel
    to this server, ..."""
    secure: ssl.SSLContext | None = None
    """... inside TLS with this context when one is given."""


class Receiver(Protocol):
    """The owner behind the HTTP layer: one call per request, refusals and aborted heads included."""

    def receive(self, incoming: Incoming) -> Answer: ...


class Refused(Exception):
    """A request this layer answers itself; ``known`` when its request line was read (so it is recordable)."""

    def __init__(
        self, status: int | None, message: str, *, body: bytes = b"", drain: int = 0, truncated: bool = False
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body
        self.drain = drain  # bytes still to be discarded so the sender can read the answer
        self.truncated = truncated


@dataclasses.dataclass(kw_only=True)
class Head:
    method: str = ""
    path: str = ""
    query: str = ""
    version: tuple[int, int] = (1, 1)
    headers: Headers = dataclasses.field(default_factory=Headers)
    authority: str = ""
    received_at: float = 0.0
    started: float = 0.0
    close: bool = False  # the framing forbids another request on this connection
    index: dict[str, list[str]] = dataclasses.field(default_factory=dict)
    """Each header's values by lower-case name, built once: the framing looks up four names per request,
    and werkzeug's ``Headers.get`` scans the list (and raises an exception inside for every miss)."""

    def field(self, name: str, default: str = "") -> str:
        """The first value of the header ``name`` (lower-case), or ``default``."""
        values = self.index.get(name)
        return values[0] if values else default

    @property
    def keep_alive(self) -> bool:
        if self.close:
            return False
        connection = self.field("connection").lower()
        if self.version >= (1, 1):
            return connection != "close"
        return connection == "keep-alive"


class Conn:
    """A connection and the bytes read from it that no request has consumed yet."""

    __slots__ = ("buf", "deadline", "head_started", "scanned", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()
        self.scanned = 0  # the head end was looked for up to here
        self.head_started: float | None = None
        self.deadline = 0.0


# ---- heads ------------------------------------------------------------------------------------------


def has_content(buf: bytearray) -> bool:
    """Anything but the empty lines a sender may send between requests."""
    return bool(buf) and bool(buf.strip(b"\r\n"))


def head_end(conn: Conn) -> int:
    """The offset just past the head's blank line, or -1; scans only what is new since the last look."""
    buf = conn.buf
    start = len(buf) - len(buf.lstrip(b"\r\n")) if buf and buf[0] in b"\r\n" else 0  # empty lines before a request
    match = _HEAD_END.search(buf, max(start, conn.scanned - 3))
    if match is None:
        conn.scanned = len(buf)
        return -1
    return match.end()


def head_ready(conn: Conn) -> bool:
    """A complete head is buffered, or so much without one that it must be refused."""
    if head_end(conn) >= 0:
        return True
    buf = conn.buf
    return len(buf) > _MAX_HEAD or (len(buf) > _MAX_LINE and len(buf) - buf.rfind(b"\n") - 1 > _MAX_LINE)


def http_error(status: int, message: str = "") -> Refused:
    """http.server's wording: ``HTTP 431 Request Header Fields Too Large: Line too long``."""
    phrase = HTTPStatus(status).phrase
    return Refused(status, f"HTTP {status} {phrase}" + (f": {message}" if message else ""))


def parse_head(raw: bytes, head: Head, *, complete: bool) -> None:
    """Fill ``head`` from the raw head (without its blank line); ``Refused`` for what cannot be served.

    ``head.method`` is set as soon as the request line is read, so a refusal after it can be recorded.
    """
    lines = raw.lstrip(b"\r\n").split(b"\n")
    request_line = lines[0].rstrip(b"\r")
    if len(request_line) > _MAX_LINE:
        raise http_error(414)
    text = request_line.decode("latin-1")
    match = _REQUEST_LINE.fullmatch(text)
    if match is None:
        raise http_error(400, f"Bad request syntax ({_text.shorten(repr(text), 100)})")
    method, target, major, minor = match.groups()
    if int(major) >= 2:
        raise http_error(505, f"Invalid HTTP version ({major}.{minor})")
    if int(major) != 1:
        raise http_error(400, f"Bad request version ({_text.shorten(repr(text), 100)})")
    head.method, head.version = method, (1, int(minor))
    head.path, head.query = split_target(target)
    head.authority = target_authority(method, target)
    fields: list[list[str]] = []
    for line in lines[1:]:
        if len(line) > _MAX_LINE:
            raise http_error(431, "Line too long")
        text = line.rstrip(b"\r").decode("latin-1")
        if not text:
            continue
        if "\r" in text:  # a bare CR inside a field (RFC 9112 2.2): refused, never passed on
            raise http_error(400, f"a bare CR in header line {_text.shorten(repr(text), 80)}")
        if text[0] in " \t":  # obs-fold (RFC 9112 5.2): joined to the previous field with one space
            if not fields:
                raise http_error(400, "a folded header line with no header before it")
            fields[-1][1] = (fields[-1][1] + " " + text.strip(" \t")).strip(" \t")
            continue
        name, colon, value = text.partition(":")
        if not colon or not _TOKEN.fullmatch(name):
            raise http_error(400, f"malformed header line {_text.shorten(repr(text), 80)}")
        fields.append([name, value.strip(" \t")])
        if len(fields) > _MAX_HEADERS:
            raise http_error(431, "Too many headers")
    if not complete:
        if len(raw) > _MAX_HEAD:
            raise http_error(431, f"the request head is over {_MAX_HEAD:,} bytes")
        raise Refused(400, "the connection closed before the request head was complete")
    pairs = [(name, value) for name, value in fields]
    head.headers = _checked_headers(pairs)
    index = head.index
    for name, value in pairs:
        index.setdefault(name.lower(), []).append(value)


def _checked_headers(pairs: list[tuple[str, str]]) -> Headers:
    """werkzeug ``Headers`` holding ``pairs`` as they are: ``parse_head`` has checked what ``Headers.add``
    would check again one field at a time (names are tokens, values hold no CR or LF)."""
    headers = Headers()
    headers._list = pairs
    return headers


def partial_head_refusal(raw: bytes) -> Refused:
    """Why the start of a head, cut off by the sender's close, is refused: its request line's fault, or
    simply that it ended (400 either way, unless a line was already too long)."""
    whole_lines = raw[: raw.rfind(b"\n") + 1].strip(b"\r\n")  # the last line may be cut anywhere: not judged
    if whole_lines:
        try:
            parse_head(whole_lines, Head(), complete=False)
        except Refused as refused:
            return refused
    return Refused(400, "the connection closed before the request head was complete")


def split_target(target: str) -> tuple[str, str]:
    """``/a%20b?x=1`` -> (``/a b``, ``x=1``); an absolute-form target keeps only its path."""
    if not target.startswith("/") and "://" in target:
        target = "/" + target.split("://", 1)[1].partition("/")[2]
    path, _, query = target.partition("?")
    return unquote(path), query


def target_authority(method: str, target: str) -> str:
    """``host[:port]`` of an absolute-form target (``http://vms.tencentcloudapi.com/``) or of a ``CONNECT``'s
    authority-form (``vms.tencentcloudapi.com:443``), lower-case, without any ``user@``; else empty."""
    if method == "CONNECT":
        return target.lower()
    if target.startswith("/") or "://" not in target:
        return ""
    authority = target.split("://", 1)[1].split("/", 1)[0].split("?", 1)[0]
    return authority.rpartition("@")[2].lower()


def content_length(values: set[str]) -> int:
    if len(values) > 1:
        raise Refused(400, f"conflicting Content-Length headers: {', '.join(sorted(values))}")
    (value,) = values
    if not value.isdigit() or not value.isascii() or len(value) > 18:
        raise Refused(400, f"Content-Length {value[:40]!r} is not a byte count")
    return int(value)


# ---- replies --------------------------------------------------------------------------------------


def render(reply: Response, *, head_only: bool, close: bool, version: tuple[int, int]) -> tuple[bytes, bool]:
    """The reply's bytes, for one send; and whether the connection ends after it (``Connection: close``).
    A reply carrying a ``voicecb_rendered`` dict (the shared default reply) is rendered once per framing."""
    cache: dict[tuple[bool, bool, tuple[int, int]], tuple[bytes, bool]] | None = getattr(
        reply, "voicecb_rendered", None
    )
    if cache is None:
        return _render(reply, head_only=head_only, close=close, version=version)
    key = (head_only, close, version)
    found = cache.get(key)
    if found is None:
        found = cache[key] = _render(reply, head_only=head_only, close=close, version=version)
    return found


def _render(reply: Response, *, head_only: bool, close: bool, version: tuple[int, int]) -> tuple[bytes, bool]:
    headers = reply.headers.to_wsgi_list()
    data = reply.get_data()
    length = str(len(data))
    named_connection = False
    lines = [f"HTTP/1.1 {reply.status}\r\n"]
    for key, value in headers:  # one pass: this runs for every reply
        lines.append(f"{key}: {value}\r\n")
        name = key.lower()
        if name == "transfer-encoding" or (name == "content-length" and value != length):
            close = True  # scripted framing: the next request cannot follow on this connection
        elif name == "connection":
            named_connection = True
            close = close or value.lower() == "close"
    if close and not named_connection:
        lines.append("Connection: close\r\n")
    elif version == (1, 0) and not close:
        lines.append("Connection: keep-alive\r\n")
    lines.append("\r\n")
    return "".join(lines).encode("latin-1") + (b"" if head_only else data), close
