"""The live console's store: what ``voicecb serve`` received, fed from its ``on_callback`` hook.

``Feed.add`` runs in the request's thread before the reply, so it does only cheap work: it keeps the log
record ``serve`` already built (``log.record_of``), the headers and the reply, with bodies over
``BODY_KEPT`` bytes cut, and numbers it. Everything shown is computed when a browser asks
(``summaries``/``detail``), so a console nobody watches costs an append. The newest ``capacity``
callbacks are kept (100,000 by default): the page asks for them a page at a time.
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from pytest_voicecb import _text

if TYPE_CHECKING:
    from pytest_voicecb.server import RecordedCallback

__all__ = ["BODY_KEPT", "Entry", "Feed"]

BODY_KEPT = 64 * 1024
"""Bytes of a body (request or reply) the console keeps; the log (``--log``) keeps all of it."""
PREVIEW = 4000
"""Characters of a body the page shows."""


class Entry:
    """One received callback as the console keeps it."""

    __slots__ = ("body", "digest", "headers", "record", "reply_body", "reply_headers", "seq", "url", "verdict", "why")

    def __init__(self, seq: int, recorded: RecordedCallback, record: Mapping[str, Any], url: str) -> None:
        self.seq = seq
        self.record = dict(record)
        self.record.pop("body", None)  # the bytes are kept below, cut
        self.body = recorded.body[:BODY_KEPT]
        self.digest = hashlib.blake2b(recorded.body, digest_size=16).digest()
        self.headers = list(recorded.headers.items())
        reply = recorded.reply
        self.reply_body = reply.get_data()[:BODY_KEPT] if reply is not None else None
        self.reply_headers = list(reply.headers.items()) if reply is not None else []
        self.url = url
        self.verdict = "pass"
        self.why = ""


class Feed:
    """The newest ``capacity`` callbacks, numbered from 1; thread-safe."""

    def __init__(self, capacity: int = 100_000, *, url: str = "") -> None:
        self.capacity = capacity
        self.url = url
        self._lock = threading.Lock()
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._seen: dict[bytes, int] = {}  # body digest -> the first seq that carried it (duplicates warn)
        self._seq = 0
        self.epoch = 0

    def add(self, recorded: RecordedCallback, record: Mapping[str, Any]) -> None:
        """Keep one callback (``record`` is its ``log.record_of``); cheap, called before the reply."""
        with self._lock:
            self._seq += 1
            entry = Entry(self._seq, recorded, record, self.url + recorded.path)
            first = self._seen.setdefault(entry.digest, entry.seq)
            if not record.get("valid"):
                problems = record.get("problems") or ["not a valid callback"]
                entry.verdict, entry.why = "fail", str(problems[0])
            elif record.get("reply_status") is None:
                entry.verdict, entry.why = "warn", "answered by dropping the connection (scripted)"
            elif first != entry.seq:
                entry.verdict, entry.why = "warn", f"a duplicate of #{first}: the same body again (a retry?)"
            self._entries.append(entry)
            if len(self._seen) > 2 * self.capacity:
                self._seen = {entry.digest: entry.seq for entry in self._entries}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._seen.clear()
            self.epoch += 1

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def last(self) -> int:
        return self._seq

    def _newest_first(self) -> Iterator[Entry]:
        with self._lock:
            entries = list(self._entries)  # a snapshot (pointers only)
        return reversed(entries)

    def summaries(
        self,
        *,
        after: int = 0,
        before: int | None = None,
        limit: int = 200,
        kind: str = "",
        callid: str = "",
        verdict: str = "",
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` summaries, newest first, with ``after < seq < before``, matching the filters."""
        out = []
        for entry in self._newest_first():
            if entry.seq <= after:
                break
            if before is not None and entry.seq >= before:
                continue
            record = entry.record
            if kind and record.get("kind") != kind and not (kind == "invalid" and record.get("kind") is None):
                continue
            if callid and callid not in str(record.get("callid") or ""):
                continue
            if verdict and entry.verdict != verdict:
                continue
            out.append(summary(entry))
            if len(out) >= limit:
                break
        return out

    def detail(self, seq: int) -> dict[str, Any] | None:
        """Everything about one callback: the summary, the body, the headers, the reply, a curl command."""
        for entry in self._newest_first():
            if entry.seq == seq:
                return detail(entry)
            if entry.seq < seq:
                break
        return None


def summary(entry: Entry) -> dict[str, Any]:
    record = entry.record
    return {
        "seq": entry.seq,
        "at": record.get("received_at"),
        "method": record.get("method"),
        "path": record.get("path"),
        "kind": record.get("kind"),
        "callid": record.get("callid"),
        "number": _number(entry),
        "verdict": entry.verdict,
        "why": entry.why,
        "status": record.get("reply_status"),
    }


def _number(entry: Entry) -> str | None:
    """The phone number the callback is about (``mobile``), from the body when it is a JSON callback."""
    import json

    try:
        data = json.loads(entry.body)
    except ValueError:
        return None
    if isinstance(data, dict) and len(data) == 1:
        inner = next(iter(data.values()))
        if isinstance(inner, dict) and isinstance(inner.get("mobile"), str):
            return str(inner["mobile"])
    return None


def detail(entry: Entry) -> dict[str, Any]:
    from pytest_voicecb.repro import curl

    record = entry.record
    command = None
    if len(entry.body) < BODY_KEPT:
        skipped = {"host", "content-length", "connection", "transfer-encoding"}
        headers = {name: value for name, value in entry.headers if name.lower() not in skipped}
        command = curl(_Sent(str(record.get("method") or "POST"), entry.url, headers, entry.body))
    return {
        **summary(entry),
        "problems": record.get("problems") or [],
        "truncated": bool(record.get("truncated")),
        "body": _text.preview(entry.body, PREVIEW) if entry.body else "(empty body)",
        "body_hex": entry.body[:512].hex(" ") if _binary(entry.body) else None,
        "headers": [[_text.safe(name), _text.safe(value)] for name, value in entry.headers],
        "reply": None
        if entry.reply_body is None
        else {
            "status": record.get("reply_status"),
            "headers": [[_text.safe(name), _text.safe(value)] for name, value in entry.reply_headers],
            "body": _text.preview(entry.reply_body, PREVIEW),
        },
        "curl": command or "(the body is over 64 KiB: voicecb serve --log FILE keeps it whole)",
    }


def _binary(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


class _Sent:
    """What ``repro.curl`` needs of a request, for a received one."""

    in_process = False

    def __init__(self, method: str, url: str, headers: dict[str, str], body: bytes) -> None:
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
