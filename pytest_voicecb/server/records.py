"""What the recording server keeps of each request: :class:`RecordedCallback`, with its one-line summary
and its several-line description for failure reports."""

from __future__ import annotations

import dataclasses
import json as _json
import time
from functools import cached_property
from typing import Any

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response

from pytest_voicecb import _text
from pytest_voicecb.contract import Callback, CallbackError, Problem

__all__ = ["RecordedCallback", "describe_reply", "replied"]

_PREVIEW = 200


@dataclasses.dataclass(frozen=True, eq=False, kw_only=True)
class RecordedCallback:
    """One request the server received, valid or not, and what it answered.

    ``callback`` is the validated model (None when invalid); ``error`` is the ``CallbackError`` saying why
    the request is not a valid callback (None when valid), for a body that broke the contract as well as
    for one the server could not read (over the size limit, truncated, malformed chunks). ``reply`` is
    the werkzeug ``Response`` that was sent, or None when the connection was dropped without one.
    ``server_error`` is set when the server failed to take the callback (the ``on_callback`` hook raised);
    the reply is then a 500. ``truncated`` is True when the body never fully arrived (the sender stalled
    or went away): ``body`` is then what did arrive.
    """

    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    callback: Callback | None
    error: CallbackError | None
    reply: Response | None
    received_at: float
    """Wall-clock time (``time.time()``) when the request's headers had arrived."""
    server_error: str | None = None
    truncated: bool = False
    latency: float | None = None
    """Seconds from the request's head complete to its reply written (or the connection dropped), a
    scripted ``delay`` and the ``on_callback``/``answer`` hooks included; None until then (so None in
    ``on_callback``, which runs before the reply), and for a reply that could not be written."""

    @property
    def valid(self) -> bool:
        return self.callback is not None

    @property
    def kind(self) -> str | None:
        """The callback kind (``voiceprompt_callback`` ...), also for an invalid one whose kind is known."""
        if self.callback is not None:
            return self.callback.kind
        return self.error.kind if self.error is not None else None

    @cached_property
    def json(self) -> Any:
        """The body decoded as JSON, or None when it is not JSON."""
        try:
            return _json.loads(self.body)
        except (ValueError, RecursionError):
            return None

    @property
    def fields(self) -> dict[str, Any]:
        """The callback's fields (the object under its kind key) as sent; empty when unreadable."""
        kind = self.kind
        data = self.json
        inner = data.get(kind) if kind is not None and isinstance(data, dict) else None
        return inner if isinstance(inner, dict) else {}

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every contract problem found (empty for a valid callback)."""
        return self.error.problems if self.error is not None else ()

    def summary(self) -> str:
        """One line: request, kind and ids, verdict and answer (escaped for a terminal)."""
        fields = self.fields
        ids = " ".join(f"{key}={fields[key]}" for key in ("callid", "mobile") if isinstance(fields.get(key), str))
        what = " ".join(part for part in (self.kind or "", ids) if part) or _text.plural(len(self.body), "byte")
        verdict = "valid" if self.valid else f"INVALID ({self.problems[0] if self.problems else 'unreadable'})"
        return _text.safe(f"{self.method} {self._target()} {what} {verdict} -> {describe_reply(self.reply)}")

    def describe(self) -> str:
        """Several lines for a failure report: request, body preview, every problem, the answer."""
        content_type = self.headers.get("Content-Type", "none")
        cut = ", truncated" if self.truncated else ""
        lines = [
            _text.safe(f"{self.method} {self._target()} ({len(self.body):,} bytes{cut}, Content-Type: {content_type})"),
            f"  body: {_quoted(self.body)}",
        ]
        if self.error is not None:
            lines += ["  " + _text.safe(line) for line in str(self.error).splitlines()]
        if self.server_error is not None:
            lines.append(f"  server error: {_text.safe(self.server_error)}")
        lines.append(f"  answered: {describe_reply(self.reply)}")
        return "\n".join(lines)

    def _target(self) -> str:
        return self.path + (f"?{self.query}" if self.query else "")

    def __repr__(self) -> str:
        return f"<RecordedCallback {self.summary()}>"


def replied(record: RecordedCallback, started: float) -> None:
    """Set ``record.latency`` now that its reply went out (``started``: ``time.monotonic()`` at its head)."""
    object.__setattr__(record, "latency", time.monotonic() - started)  # once, by the request's own thread


def _quoted(body: bytes) -> str:
    """The body's preview in quotes (``(empty body)`` unquoted), so its start and end are visible."""
    return f"'{_text.preview(body, _PREVIEW)}'" if body else _text.preview(body)


def describe_reply(reply: Response | None) -> str:
    """``200 {"result":0,...}``, or what a dropped connection looks like."""
    if reply is None:
        return "connection dropped, no reply"
    return f"{reply.status_code} {_text.preview(reply.get_data(), _PREVIEW)}"
