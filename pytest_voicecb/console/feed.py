"""The live console's store: what ``voicecb serve`` received, fed from its ``on_callback`` hook.

``Feed.add`` runs in the request's thread before the reply, so it only flattens the recorded callback
and the log record ``serve`` already built (``log.record_of``) into one numbered tuple (a body over
``BODY_KEPT`` bytes is cut; about 5 us). Verdicts, latencies (``RecordedCallback.latency``, set once the
reply is written) and rows are computed when a browser asks (``summaries``/``detail``). The newest
``capacity`` callbacks are kept (100,000 by default): the page asks for them a page at a time.
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

__all__ = ["BODY_KEPT", "Feed"]

BODY_KEPT = 64 * 1024
"""Bytes of a body (request or reply) the console keeps; the log (``--log``) keeps all of it."""
PREVIEW = 4000
"""Characters of a body the page shows."""


# A kept callback is a plain tuple of strings, bytes, numbers and tuples of those: the garbage collector
# stops tracking such tuples, so 100,000 kept callbacks add nothing to each collection's work (objects,
# dicts or werkzeug types would be walked again and again, slowing every reply of the server).
SEQ, BODY, HEADERS, STATUS, REPLY_HEADERS, REPLY_BODY, AT, METHOD, PATH, KIND, CALLID, VALID = range(12)
PROBLEMS, TRUNCATED, NUMBER = 12, 13, 14
Row = tuple[Any, ...]
_SETTLE_EVERY = 1024
"""Records waiting for their reply that make ``add`` settle them (when no browser asks)."""


def _row(seq: int, recorded: RecordedCallback, record: Mapping[str, Any]) -> Row:
    reply = recorded.reply
    mobile = recorded.fields.get("mobile")
    return (
        seq,
        recorded.body[: BODY_KEPT + 1],
        tuple(recorded.headers.items()),
        None if reply is None else reply.status_code,
        () if reply is None else tuple(reply.headers.items()),
        b"" if reply is None else reply.get_data()[:BODY_KEPT],
        str(record.get("received_at") or ""),
        recorded.method,
        str(record.get("path") or recorded.path),
        recorded.kind,
        record.get("callid"),
        recorded.valid,
        tuple(str(problem) for problem in record.get("problems") or ()),
        bool(record.get("truncated")),
        mobile if isinstance(mobile, str) else None,
    )


class Feed:
    """The newest ``capacity`` callbacks, numbered from 1; thread-safe.

    ``add`` keeps a flat tuple (it runs before the reply); judging (duplicates, verdicts) happens in
    order when a browser asks, for what arrived since it last asked.
    """

    def __init__(self, capacity: int = 100_000, *, url: str = "") -> None:
        self.capacity = capacity
        self.url = url
        self._lock = threading.Lock()
        self._judging = threading.Lock()
        self._rows: deque[Row] = deque(maxlen=capacity)
        self._seen: dict[bytes, int] = {}  # body digest -> the first seq that carried it (duplicates warn)
        self._verdicts: dict[int, tuple[str, str]] = {}  # seq -> (warn or fail, why); absent: pass
        self._judged = 0
        self._seq = 0
        self.epoch = 0
        # Latency is known only once the reply is written, after ``add``: the record waits in ``_unreplied``
        # (a few hundred at most) until ``_settle`` moves its ``latency`` into ``_latency`` (seq -> seconds).
        self._unreplied: dict[int, RecordedCallback] = {}
        self._latency: dict[int, float] = {}

    def add(self, recorded: RecordedCallback, record: Mapping[str, Any]) -> None:
        """Keep one callback (``record`` is its ``log.record_of``); called before the reply, so cheap."""
        with self._lock:
            self._seq += 1
            self._rows.append(_row(self._seq, recorded, record))
            self._unreplied[self._seq] = recorded
            if len(self._unreplied) >= _SETTLE_EVERY:
                self._settle()

    def _settle(self) -> None:
        """Move the latency of every replied record into ``_latency`` (holding ``_lock``); forget records
        whose reply could not be written once too many wait."""
        unreplied = self._unreplied
        for seq, recorded in list(unreplied.items()):
            latency = recorded.latency
            if latency is not None:
                self._latency[seq] = latency
                del unreplied[seq]
        if len(unreplied) > _SETTLE_EVERY // 2:
            self._unreplied = dict(list(unreplied.items())[-(_SETTLE_EVERY // 2) :])
        if len(self._latency) > 2 * self.capacity:
            oldest = self._rows[0][SEQ] if self._rows else 0
            self._latency = {seq: value for seq, value in self._latency.items() if seq >= oldest}

    def latency(self, row: Row) -> float | None:
        """Seconds the server took to answer this callback; None while its reply is not written yet."""
        return self._latency.get(row[SEQ])

    def clear(self) -> None:
        with self._lock, self._judging:
            self._rows.clear()
            self._seen.clear()
            self._verdicts.clear()
            self._unreplied.clear()
            self._latency.clear()
            self.epoch += 1

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def last(self) -> int:
        return self._seq

    def _newest_first(self) -> Iterator[Row]:
        with self._lock:
            rows = list(self._rows)  # a snapshot (pointers only)
            self._settle()
        self._catch_up(rows)
        return reversed(rows)

    def _catch_up(self, rows: list[Row]) -> None:
        """Judge, oldest first, the rows not judged yet."""
        with self._judging:
            for row in rows:
                seq = row[SEQ]
                if seq <= self._judged:
                    continue
                first = self._seen.setdefault(hashlib.blake2b(row[BODY], digest_size=16).digest(), seq)
                if not row[VALID]:
                    self._verdicts[seq] = ("fail", (row[PROBLEMS] or ("not a valid callback",))[0])
                elif row[STATUS] is None:
                    self._verdicts[seq] = ("warn", "answered by dropping the connection (scripted)")
                elif first != seq:
                    self._verdicts[seq] = ("warn", f"a duplicate of #{first}: the same body again (a retry?)")
                self._judged = seq
            if len(self._seen) > 2 * self.capacity:
                self._seen = dict(list(self._seen.items())[-self.capacity :])
            if len(self._verdicts) > 2 * self.capacity:
                oldest = rows[0][SEQ] if rows else 0
                self._verdicts = {seq: v for seq, v in self._verdicts.items() if seq >= oldest}

    def verdict(self, row: Row) -> tuple[str, str]:
        return self._verdicts.get(row[SEQ], ("pass", ""))

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
        for row in self._newest_first():
            if row[SEQ] <= after:
                break
            if before is not None and row[SEQ] >= before:
                continue
            if kind and row[KIND] != kind and not (kind == "invalid" and row[KIND] is None):
                continue
            if callid and callid not in str(row[CALLID] or ""):
                continue
            if verdict and self.verdict(row)[0] != verdict:
                continue
            out.append(self.summary(row))
            if len(out) >= limit:
                break
        return out

    def summary(self, row: Row) -> dict[str, Any]:
        """The table row of one callback."""
        verdict, why = self.verdict(row)
        return {
            "seq": row[SEQ],
            "at": row[AT],
            "method": row[METHOD],
            "path": row[PATH],
            "kind": row[KIND],
            "callid": row[CALLID],
            "number": row[NUMBER],
            "verdict": verdict,
            "why": why,
            "status": row[STATUS],
            "latency": self.latency(row),
        }

    def detail(self, seq: int) -> dict[str, Any] | None:
        """Everything about one callback: the summary, the body, the headers, the reply, a curl command."""
        for row in self._newest_first():
            if row[SEQ] == seq:
                return self._detail(row)
            if row[SEQ] < seq:
                break
        return None

    def _detail(self, row: Row) -> dict[str, Any]:
        """The expanded row: body (and hex for a binary one), headers, the reply, a curl command."""
        from pytest_voicecb.repro import curl

        body: bytes = row[BODY]
        command = None
        if len(body) <= BODY_KEPT:
            skipped = {"host", "content-length", "connection", "transfer-encoding"}
            headers = {name: value for name, value in row[HEADERS] if name.lower() not in skipped}
            command = curl(_Sent(row[METHOD] or "POST", self.url + row[PATH], headers, body))
        return {
            **self.summary(row),
            "problems": list(row[PROBLEMS]),
            "truncated": row[TRUNCATED],
            "body": _text.preview(body[:BODY_KEPT], PREVIEW) if body else "(empty body)",
            "body_hex": body[:512].hex(" ") if _binary(body[:BODY_KEPT]) else None,
            "headers": [[_text.safe(name), _text.safe(value)] for name, value in row[HEADERS]],
            "reply": None
            if row[STATUS] is None
            else {
                "status": row[STATUS],
                "headers": [[_text.safe(name), _text.safe(value)] for name, value in row[REPLY_HEADERS]],
                "body": _text.preview(row[REPLY_BODY], PREVIEW),
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
