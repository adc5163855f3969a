"""The live console's store: what ``voicecb serve`` received, fed from its ``on_callback`` hook.

``Feed.add`` runs in the request's thread before the reply, so it only queues the recorded callback and
the log record ``serve`` already built (``log.record_of``): one append, no lock. ``flush`` flattens what
is queued into numbered tuples (a body over ``BODY_KEPT`` bytes is cut) in one batch, off the callback
path: ``voicecb serve``'s main loop calls it twice a second, and a browser's ask calls it first.
Verdicts, latencies (``RecordedCallback.latency``, set once the reply is written) and rows are computed
when a browser asks (``summaries``/``detail``). The newest ``capacity`` callbacks are kept (100,000 by
default): the page asks for them a page at a time.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from pytest_voicecb import _text
from pytest_voicecb.contract import kind_named

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
PROBLEMS, TRUNCATED = 12, 13
Row = tuple[Any, ...]
_QUEUED_MAX = 8192
"""Callbacks ``add`` queues before it flushes them itself (nobody flushed: a library user without a loop)."""
_WAITING_MAX = 256
"""Records kept waiting for their reply at most (e.g. in a long scripted delay); the oldest lose latency."""


_SHARED_MAX = 4096
"""Distinct header sets, replies and paths ``flush`` shares between rows before it starts afresh."""


def _row(seq: int, recorded: RecordedCallback, record: Mapping[str, Any], share: Callable[[Any], Any]) -> Row:
    """The kept tuple; ``share`` returns an equal value kept already (headers, replies and paths repeat), so
    a row holds little of its own and the temporary copies are freed at once. Iterating werkzeug's
    ``Headers`` yields its own ``(name, value)`` tuples, so taking them copies no strings."""
    reply = recorded.reply
    return (
        seq,
        recorded.body[: BODY_KEPT + 1],
        share(tuple(recorded.headers)),
        None if reply is None else reply.status_code,
        () if reply is None else share(tuple(reply.headers)),
        b"" if reply is None else share(reply.get_data()[:BODY_KEPT]),
        record.get("received_at") or "",
        recorded.method,
        share(record.get("path") or recorded.path),
        record.get("kind"),
        record.get("callid"),
        bool(record.get("valid")),
        tuple(record.get("problems") or ()),
        bool(record.get("truncated")),
    )


def _number(body: bytes) -> str | None:
    """The callee's number (``mobile``) in a callback's body, read when a row is shown (not kept)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    if not isinstance(data, dict) or len(data) != 1:
        return None
    fields = next(iter(data.values()))
    mobile = fields.get("mobile") if isinstance(fields, dict) else None
    return mobile if isinstance(mobile, str) else None


class Feed:
    """The newest ``capacity`` callbacks, numbered from 1; thread-safe.

    ``add`` queues (it runs before the reply); ``flush`` (call it now and then, off the callback path)
    turns the queue into flat rows; judging (duplicates, verdicts) happens in order when a browser asks,
    for what arrived since it last asked.
    """

    def __init__(self, capacity: int = 100_000, *, url: str = "") -> None:
        self.capacity = capacity
        self.url = url
        self._lock = threading.Lock()
        self._judging = threading.Lock()
        self._rows: deque[Row] = deque(maxlen=capacity)
        self._queued: deque[tuple[RecordedCallback, Mapping[str, Any]]] = deque()
        self._seen: dict[bytes, int] = {}  # body digest -> the first seq that carried it (duplicates warn)
        self._verdicts: dict[int, tuple[str, str]] = {}  # seq -> (warn or fail, why); absent: pass
        self._judged = 0
        self._seq = 0
        self.epoch = 0
        # Latency is known only once the reply is written, after ``add``: a flushed record waits in
        # ``_unreplied`` (a few hundred at most) until ``_settle`` moves its ``latency`` into ``_latency``.
        self._unreplied: dict[int, RecordedCallback] = {}
        self._latency: dict[int, float] = {}
        self._shared: dict[Any, Any] = {}

    def _share(self, value: Any) -> Any:
        """An equal value kept already, or ``value`` (now kept); holding ``_lock``."""
        shared = self._shared
        found = shared.get(value)
        if found is not None:
            return found
        if len(shared) >= _SHARED_MAX:
            shared.clear()
        shared[value] = value
        return value

    def add(self, recorded: RecordedCallback, record: Mapping[str, Any]) -> None:
        """Keep one callback (``record`` is its ``log.record_of``); called before the reply, so it only queues."""
        self._queued.append((recorded, record))  # atomic: no lock on the callback path
        if len(self._queued) >= _QUEUED_MAX:
            self.flush()

    def flush(self) -> None:
        """Number and flatten the queued callbacks, oldest first (rows are what the page reads)."""
        if not self._queued:
            return
        with self._lock:
            queued, rows, share = self._queued, self._rows, self._share
            while queued:
                recorded, record = queued.popleft()
                self._seq += 1
                rows.append(_row(self._seq, recorded, record, share))
                self._unreplied[self._seq] = recorded
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
        if len(unreplied) > _WAITING_MAX:
            self._unreplied = dict(list(unreplied.items())[-_WAITING_MAX:])
        if len(self._latency) > 2 * self.capacity:
            oldest = self._rows[0][SEQ] if self._rows else 0
            self._latency = {seq: value for seq, value in self._latency.items() if seq >= oldest}

    def latency(self, row: Row) -> float | None:
        """Seconds the server took to answer this callback; None while its reply is not written yet."""
        return self._latency.get(row[SEQ])

    def clear(self) -> None:
        with self._judging, self._lock:  # the order _catch_up takes them in
            self._queued.clear()
            self._rows.clear()
            self._seen.clear()
            self._verdicts.clear()
            self._unreplied.clear()
            self._latency.clear()
            self.epoch += 1

    def __len__(self) -> int:
        self.flush()
        return len(self._rows)

    @property
    def last(self) -> int:
        """The number of the newest callback."""
        self.flush()
        return self._seq

    def _window(
        self, after: int, before: int | None, newest: int | None = None, oldest: int | None = None
    ) -> list[Row]:
        """Kept rows with ``after < seq < before``, oldest first; only the ``newest`` (or ``oldest``) of them
        when given.

        Seqs are consecutive, so the range is found by index and only its pointers are copied, walking
        from the newer end (the usual ask, what arrived since the last poll, copies a few rows of 100,000).
        """
        self.flush()
        with self._lock:
            self._settle()
            rows = self._rows
            if not rows:
                return []
            first = rows[0][SEQ]
            lo = max(after + 1 - first, 0)
            hi = len(rows) if before is None else min(max(before - first, 0), len(rows))
            if newest is not None:
                lo = max(lo, hi - newest)
            if oldest is not None:
                hi = min(hi, lo + oldest)
            if lo >= hi:
                return []
            window = list(itertools.islice(reversed(rows), len(rows) - hi, len(rows) - lo))
        window.reverse()
        return window

    def _catch_up(self) -> None:
        """Judge, oldest first, the rows not judged yet."""
        with self._judging:
            rows = self._window(self._judged, None)
            for row in rows:
                seq = row[SEQ]
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
                with self._lock:
                    oldest = self._rows[0][SEQ] if self._rows else 0
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
        oldest: bool = False,
    ) -> list[dict[str, Any]]:
        """Up to ``limit`` summaries with ``after < seq < before`` matching the filters, newest first: the
        newest such, or with ``oldest`` the oldest (the page after ``after``, when paging towards now)."""
        self._catch_up()
        filtered = bool(kind or callid or verdict)
        cap = None if filtered else limit
        rows = self._window(after, before, None if oldest else cap, cap if oldest else None)
        out = []
        for row in rows if oldest else reversed(rows):
            if kind and row[KIND] != kind and not (kind == "invalid" and row[KIND] is None):
                continue
            if callid and callid not in str(row[CALLID] or ""):
                continue
            if verdict and self.verdict(row)[0] != verdict:
                continue
            out.append(self.summary(row))
            if len(out) >= limit:
                break
        return out[::-1] if oldest else out

    def summary(self, row: Row) -> dict[str, Any]:
        """The table row of one callback."""
        verdict, why = self.verdict(row)
        return {
            "seq": row[SEQ],
            "at": row[AT],
            "method": row[METHOD],
            "path": row[PATH],
            "kind": row[KIND],
            "name": kind_named(row[KIND], short=True) if row[KIND] else None,
            "callid": row[CALLID],
            "number": _number(row[BODY]) if row[VALID] else None,
            "verdict": verdict,
            "why": why,
            "status": row[STATUS],
            "reply": reply_text(row[STATUS], row[REPLY_BODY]),
            "latency": self.latency(row),
        }

    def detail(self, seq: int) -> dict[str, Any] | None:
        """Everything about one callback: the summary, the body, the headers, the reply, a curl command."""
        self._catch_up()
        found = self._window(seq - 1, seq + 1)
        return self._detail(found[0]) if found else None

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


def reply_text(status: int | None, body: bytes) -> str:
    """The reply column: the status and what the body says under the contract (``result 1`` is a
    refusal the provider retries, not a success, though it came with HTTP 200)."""
    if status is None:
        return "dropped"
    from pytest_voicecb.contract import ReplyContractError, parse_reply

    try:
        reply = parse_reply(body)
    except ReplyContractError:
        return f"HTTP {status}, not a contract reply"
    if reply.result == 0 and 200 <= status < 300:
        return f"HTTP {status}, result 0: acknowledged"
    return f"HTTP {status}, result {reply.result}: an error (the provider retries)"


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
