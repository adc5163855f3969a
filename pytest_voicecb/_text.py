"""Text for people: previews of bodies, plurals, bullet lists, and escaping for a terminal.

Everything pytest-voicecb prints that came from the network goes through ``safe`` or ``preview``, so a
body, a header or a status line can never move the cursor, recolour the terminal or forge a line.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

__all__ = ["LISTED", "bullets", "listing", "media_type", "one_line", "plural", "preview", "safe", "shorten"]

_ESCAPES = {"\r": "\\r", "\n": "\\n", "\t": "\\t"}


def safe(text: str, *, keep_newlines: bool = False) -> str:
    """``text`` with every control or non-printable character shown as an escape (ESC as ``\\x1b``).

    ``keep_newlines`` keeps ``\\n`` as a line break (for multi-line text that is ours, holding values
    that are not).
    """
    if text.isprintable():
        return text
    out = []
    for char in text:
        if char.isprintable() or (keep_newlines and char == "\n"):
            out.append(char)
        elif char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) <= 0xFF:
            out.append(f"\\x{ord(char):02x}")
        elif ord(char) <= 0xFFFF:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(f"\\U{ord(char):08x}")
    return "".join(out)


def preview(data: bytes | str, limit: int = 200) -> str:
    """A body on one line, safe for a terminal: its text (undecodable bytes as ``\\xNN``), cut at
    ``limit`` characters with the full size said; ``(empty body)`` for nothing."""
    if not data:
        return "(empty body)"
    size = len(data)
    text = data[: limit * 4].decode("utf-8", "backslashreplace") if isinstance(data, bytes) else data[: limit * 4]
    text = safe(text)
    if len(text) <= limit and size <= limit * 4:
        return text
    unit = "bytes" if isinstance(data, bytes) else "characters"
    return text[:limit] + f"… ({size:,} {unit})"


def one_line(text: str, limit: int = 200) -> str:
    """``text`` with its lines joined by spaces, escaped for a terminal, cut at ``limit`` characters."""
    flat = safe(" ".join(text.split()))
    return shorten(flat, limit)


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``…`` when cut."""
    return text if len(text) <= limit else text[: max(limit - 1, 0)] + "…"


def plural(count: int, word: str, many: str | None = None) -> str:
    """``1 check``, ``2 checks``; ``many`` for irregular plurals (``plural(2, "body", "bodies")``)."""
    return f"{count:,} {word if count == 1 else (many or word + 's')}"


def bullets(items: Iterable[object], indent: str = "  ") -> list[str]:
    """One ``  - item`` line per item."""
    return [f"{indent}- {item}" for item in items]


def media_type(content_type: str | None) -> str:
    """The media type of a ``Content-Type`` value, lower-cased and without its parameters
    (``"Application/JSON; charset=utf-8"`` -> ``"application/json"``); ``""`` when there is none."""
    return (content_type or "").split(";", 1)[0].strip().lower()


_T = TypeVar("_T")

LISTED = 20
"""How many records a failure message lists before ``... and N more``."""


def listing(
    items: Sequence[_T], line: Callable[[_T], str], *, numbered: bool = False, limit: int = LISTED, indent: str = "  "
) -> list[str]:
    """One ``line(item)`` per item (``#1 ...`` when ``numbered``) for the first ``limit``, then
    ``... and N more``: how a failure message lists what did arrive."""
    lines = [f"{indent}{f'#{i} ' if numbered else ''}{line(item)}" for i, item in enumerate(items[:limit], 1)]
    if len(items) > limit:
        lines.append(f"{indent}... and {len(items) - limit} more")
    return lines
