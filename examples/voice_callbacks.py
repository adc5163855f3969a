"""The framework-independent part of a voice-callback handler: parse, validate, deduplicate, reply.

This is integrator code, the kind you would copy into your own project: it uses the standard library
only, because production code must not depend on a test plugin. The Flask, Django and FastAPI examples
each wrap ``handle()`` in a few lines of framework wiring; the relay example builds on ``parse()``.

What it does right, rule by rule (see the provider's contract):

- reads the raw body whatever the Content-Type says, and dispatches on the single top-level key, since
  all four callback kinds arrive at the same URL;
- answers ``{"result": 0, "errmsg": "OK"}`` to every valid callback, including unknown extra fields;
- answers a contract-shaped error (``result`` 1 and a concrete ``errmsg``) to anything it cannot
  process, and never lets an exception become a 5xx or an HTML page;
- is idempotent per (kind, callid): a duplicate delivery is acknowledged again but processed once.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

MAX_BODY_SIZE = 64 * 1024
"""Real callbacks are under 1 KiB; anything much larger is refused before it is parsed."""

_CALL_STATUS = (
    "result",
    "accept_time",
    "call_from",
    "callid",
    "end_calltime",
    "fee",
    "mobile",
    "nationcode",
    "start_calltime",
)
FIELDS: dict[str, tuple[str, ...]] = {
    "voiceprompt_callback": _CALL_STATUS,
    "voicecode_callback": _CALL_STATUS,
    "voicekey_callback": ("call_from", "callid", "keypress", "mobile", "nationcode"),
    "voice_failure_callback": ("call_from", "callid", "failure_code", "failure_reason", "mobile", "nationcode"),
}
"""The required fields of each kind. All are JSON strings except ``failure_code``, a JSON number."""

_DIGITS = ("start_calltime", "mobile", "nationcode")
_DIGITS_OR_EMPTY = ("accept_time", "end_calltime", "fee", "call_from")

OK: dict[str, Any] = {"result": 0, "errmsg": "OK"}


class Rejected(ValueError):
    """The body is not a callback this handler can process; the message goes into ``errmsg``."""


def parse(body: bytes) -> tuple[str, dict[str, Any]]:
    """Return ``(kind, fields)`` of a callback body, or raise ``Rejected`` saying what is wrong."""
    if len(body) > MAX_BODY_SIZE:
        raise Rejected(f"body is {len(body)} bytes, over the {MAX_BODY_SIZE}-byte limit")
    try:
        data = json.loads(body.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Rejected("body is not a UTF-8 JSON document") from None
    if not isinstance(data, dict):
        raise Rejected("body must be a JSON object")
    kinds = [key for key in data if key in FIELDS]
    if len(kinds) != 1:
        raise Rejected(f"expected exactly one of {', '.join(FIELDS)}; found {len(kinds)}")
    kind = kinds[0]
    fields = data[kind]
    if not isinstance(fields, dict):
        raise Rejected(f"{kind} must be a JSON object")
    missing = [name for name in FIELDS[kind] if name not in fields]
    if missing:
        raise Rejected(f"{kind} is missing {', '.join(missing)}")
    for name in FIELDS[kind]:
        value = fields[name]
        if name == "failure_code":
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise Rejected("failure_code must be a positive JSON number")
        elif not isinstance(value, str):
            raise Rejected(f"{name} must be a JSON string")
        elif name in _DIGITS and not (value.isascii() and value.isdigit()):
            raise Rejected(f"{name} must be decimal digits")
        elif name in _DIGITS_OR_EMPTY and not (value.isascii() and (value.isdigit() or value == "")):
            raise Rejected(f"{name} must be decimal digits or empty")
    if not fields["callid"]:
        raise Rejected("callid must not be empty")
    if kind == "voicekey_callback" and not (fields["keypress"] and set(fields["keypress"]) <= set(_KEYPAD)):
        raise Rejected("keypress must be keypad characters: 0-9, * or #")
    if "result" in fields:
        _check_call(fields)
    return kind, fields


_KEYPAD = "0123456789*#"


def _check_call(fields: dict[str, Any]) -> None:
    """A call's result and times must agree (empty or "0" times are normal for an unanswered call)."""
    if fields["result"] not in ("0", "1", "2"):
        raise Rejected('result must be "0", "1" or "2"')
    start, accept, end = (int(fields[name] or 0) for name in ("start_calltime", "accept_time", "end_calltime"))
    if fields["result"] == "0" and not (accept and end and fields["fee"]):
        raise Rejected("an answered call needs accept_time, end_calltime and fee")
    if fields["result"] == "0" and not start <= accept <= end:
        raise Rejected("an answered call needs start_calltime <= accept_time <= end_calltime")
    if end and end < start:
        raise Rejected("end_calltime is before start_calltime")


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


class CallbackStore:
    """Which (kind, callid) pairs were processed, so a duplicate is acknowledged but not processed twice.

    In memory and thread-safe here; in production this is a table with a unique key on (kind, callid).
    """

    def __init__(self) -> None:
        self._seen: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def add(self, kind: str, fields: dict[str, Any]) -> bool:
        """Remember a callback; False if the same (kind, callid) was already there."""
        with self._lock:
            key = (kind, fields["callid"])
            if key in self._seen:
                return False
            self._seen[key] = fields
            return True

    def discard(self, kind: str, callid: str) -> None:
        """Forget a callback whose processing failed, so that the provider's retry is processed."""
        with self._lock:
            self._seen.pop((kind, callid), None)

    def get(self, kind: str, callid: str) -> dict[str, Any] | None:
        with self._lock:
            return self._seen.get((kind, callid))

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)


def handle(
    body: bytes,
    store: CallbackStore,
    process: Callable[[str, dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """The reply to one delivery: validate, hand a first delivery to ``process``, acknowledge.

    If ``process`` raises, the callback is forgotten and the reply is an error, so the provider's retry
    gets another chance; the exception never reaches the framework (no 5xx, no HTML error page).
    """
    try:
        kind, fields = parse(body)
    except Rejected as exc:
        return {"result": 1, "errmsg": str(exc)}
    if store.add(kind, fields) and process is not None:
        try:
            process(kind, fields)
        except Exception as exc:
            store.discard(kind, fields["callid"])
            return {"result": 2, "errmsg": f"temporarily unable to process the callback: {type(exc).__name__}"}
    return dict(OK)
