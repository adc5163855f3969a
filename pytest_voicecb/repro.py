"""Reproducers: a shell command that sends exactly the bytes a delivery sent, and the redaction of secrets.

``curl(request)`` renders any request (the client's ``SentRequest``, later the provider simulator's
deliveries) as a command to paste into a shell. It must be exact for ANY body, because a reproducer
that sends different bytes sends the reader after a different bug:

- printable UTF-8 text (line breaks allowed) up to 8 KiB goes inline in single quotes;
- other bodies up to 8 KiB go through ``printf`` with octal escapes (a leading ``-`` escaped too, so
  ``printf`` never takes the body for an option);
- larger bodies are compressed and base64-encoded into a here-document that ``python3`` decodes. The
  body is always in the command: never a file that nobody wrote.

The command is printed flush left after ``errors.REPRODUCE``: indenting it would change a body that
holds a line break. ``Authorization``, ``Cookie`` and ``Proxy-Authorization`` values and ``user:pass@``
in URLs are replaced by ``<redacted>`` unless ``redact=False``, so a CI log never shows a credential.
"""

from __future__ import annotations

import base64
import shlex
import urllib.parse
import zlib
from collections.abc import Iterable
from typing import Protocol

__all__ = ["REDACTED", "SECRET_HEADERS", "curl", "redact_header", "redact_url"]

REDACTED = "<redacted>"
"""What a secret is shown as."""

SECRET_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Request headers (lower case) whose values are credentials."""

_SKIPPED_HEADERS = {"host", "content-length", "accept-encoding"}
_INLINE_LIMIT = 8 * 1024
_HEREDOC_END = "VOICECB_BODY"  # '_' is not in the base64 alphabet, so no line of the body can end it
_DECODER = "import base64, sys, zlib; sys.stdout.buffer.write(zlib.decompress(base64.b64decode(sys.stdin.read())))"


class Request(Protocol):
    """What ``curl`` needs of a request (``client.SentRequest`` has it)."""

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def headers(self) -> _Items: ...

    @property
    def body(self) -> bytes: ...

    @property
    def in_process(self) -> bool: ...


class _Items(Protocol):
    def items(self) -> Iterable[tuple[str, str]]: ...


def redact_header(name: str, value: str, *, redact: bool = True) -> str:
    """``value``, or ``<redacted>`` for a credential header when ``redact``."""
    return REDACTED if redact and name.lower() in SECRET_HEADERS else value


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``<redacted>@``; unparseable text is returned as is."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{REDACTED}@{host}"))


def curl(request: Request, *, redact: bool = True) -> str:
    """A shell command (bash or POSIX sh) that sends the same method, URL, headers and body bytes.

    One line for most bodies, a here-document for bodies over 8 KiB. For an in-process target the
    first line is a comment saying to replace the placeholder host with where the handler is served.
    """
    url = redact_url(request.url) if redact else request.url
    parts = ["curl", "-sS", "-i", "-X", _quote(request.method), _quote(url)]
    has_type = False
    for name, value in request.headers.items():
        lower = name.lower()
        if lower in _SKIPPED_HEADERS:
            continue
        has_type = has_type or lower == "content-type"
        value = redact_header(name, value, redact=redact)
        # "Name:" makes curl drop a header; "Name;" sends it empty
        parts += ["-H", _quote(f"{name}: {value}" if value else f"{name};", encoding="latin-1")]
    if not has_type:
        parts += ["-H", _quote("Content-Type:")]  # curl would add a form content type otherwise
    lines = []
    if request.in_process:
        parsed = urllib.parse.urlsplit(request.url)
        lines.append(f"# in-process target: replace {parsed.scheme}://{parsed.netloc} with where the handler is served")
    command = " ".join(parts)
    body = request.body
    text = _inline_text(body)
    if text is not None:
        lines.append(f"{command} --data-binary {shlex.quote(text)}")
    elif len(body) <= _INLINE_LIMIT:
        lines.append(f"printf {shlex.quote(_printf_format(body))} | {command} --data-binary @-")
    else:
        lines.append(f"python3 -c {shlex.quote(_DECODER)} <<'{_HEREDOC_END}' | {command} --data-binary @-")
        encoded = base64.b64encode(zlib.compress(body, 9)).decode("ascii")
        lines += [encoded[i : i + 76] for i in range(0, len(encoded), 76)]
        lines.append(_HEREDOC_END)
    return "\n".join(lines)


def _inline_text(body: bytes) -> str | None:
    """The body as text when a quoted shell argument carries it exactly and a terminal shows it as is.

    UTF-8, up to 8 KiB, printable characters and line breaks only (a tab could trigger completion
    when pasted, a control character could move the cursor), not starting with ``@`` (curl would
    read a file).
    """
    if not body:
        return ""
    if len(body) > _INLINE_LIMIT or body.startswith(b"@"):
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if all(line.isprintable() for line in text.split("\n")):
        return text
    return None


def _printf_format(body: bytes) -> str:
    """A ``printf`` format writing exactly ``body``: printable ASCII as is, other bytes in octal.

    A leading ``-`` is written in octal too: ``printf -n...`` would be taken for an option.
    """
    out = []
    for index, byte in enumerate(body):
        char = chr(byte)
        if char == "%":
            out.append("%%")
        elif char == "\\":
            out.append("\\\\")
        elif 32 <= byte < 127 and not (index == 0 and char == "-"):
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return "".join(out)


def _quote(text: str, encoding: str = "utf-8") -> str:
    """``text`` as one shell word that gives the program ``text`` encoded in ``encoding``.

    Printable text as is (printable ASCII only for latin-1: a terminal would paste é as UTF-8), else
    bash's ``$'...'`` with ``\\xNN`` escapes (http.client sends header values in latin-1).
    """
    if text.isprintable() and (encoding == "utf-8" or text.isascii()):
        return shlex.quote(text)
    escaped = []
    for char in text:
        if char in "\\'":
            escaped.append("\\" + char)
        elif char.isprintable() and char.isascii():
            escaped.append(char)
        else:
            escaped += [f"\\x{byte:02x}" for byte in char.encode(encoding, "backslashreplace")]
    return "$'" + "".join(escaped) + "'"
