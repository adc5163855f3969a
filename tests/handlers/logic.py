"""The handler logic shared by the Flask, Django and FastAPI test apps, with bugs to switch on.

The correct handler validates with ``parse_callback``, records ``(kind, callid)`` and answers
``{"result": 0, "errmsg": "OK"}`` again for a duplicate; anything unprocessable gets a contract error.
Each bug is a mistake seen in real handlers, so the conformance suite can be tested (and benchmarked)
against the failures it must find.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

from pytest_voicecb.contract import KINDS, PROMPT, CallbackError, encode, error_reply, ok_reply, parse_callback

BUGS: dict[str, str] = {
    "string-result": 'answers {"result": "0"} (a string) instead of the number 0',
    "crash-on-bad-json": "calls json.loads on the raw body unguarded: a 500 for anything that is not JSON",
    "crash-on-empty-times": 'computes the talk time with int(end) - int(accept): a 500 for unanswered calls with ""',
    "reject-duplicates": "answers a second delivery of the same callid with an error",
    "prompt-only": "handles voiceprompt_callback only; the three other kinds get an error",
    "html-errors": "answers unprocessable input with an HTML 400 page instead of a contract error",
    "no-errmsg": 'answers {"result": 0} without errmsg',
    "lenient": "accepts any JSON object holding a known callback key whose value is an object, unvalidated",
    "slow": "sleeps `delay` seconds before answering",
    "hang": "never answers until `release` is set (at most 30 s)",
    "huge-reply": "streams a 100 MB reply",
    "raise": "raises RuntimeError on every delivery",
}

JSON = "application/json"
HTML_400 = b"<!doctype html><html><head><title>400 Bad Request</title></head><body><h1>Bad Request</h1></body></html>"
HUGE_REPLY = 100 * 1024 * 1024


class Handler:
    """Callable on a request body; returns ``(status, content type, body bytes or a chunk iterator)``."""

    def __init__(self, *bugs: str, delay: float = 0.0) -> None:
        unknown = set(bugs) - BUGS.keys()
        if unknown:
            raise ValueError(f"unknown bugs {sorted(unknown)}; known: {', '.join(BUGS)}")
        self.bugs = frozenset(bugs)
        self.delay = delay
        self.release = threading.Event()
        self.seen: set[tuple[str, str]] = set()
        self.deliveries = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Handler({', '.join(sorted(self.bugs)) or 'correct'})"

    def __call__(self, body: bytes) -> tuple[int, str, bytes | Iterator[bytes]]:
        with self._lock:
            self.deliveries += 1
        bugs = self.bugs
        if "raise" in bugs:
            raise RuntimeError("the handler blew up")
        if "slow" in bugs:
            time.sleep(self.delay)
        if "hang" in bugs:
            self.release.wait(30)
        if "huge-reply" in bugs:
            return 200, JSON, _huge()
        if "crash-on-bad-json" in bugs:
            json.loads(body)  # raises on anything that is not JSON
        if "crash-on-empty-times" in bugs:
            data = json.loads(body)
            inner = data.get("voiceprompt_callback") or data.get("voicecode_callback")
            if isinstance(inner, dict):
                _talk_time = int(inner["end_calltime"]) - int(inner["accept_time"])
        if "lenient" in bugs:
            return 200, JSON, encode(_lenient(body))
        try:
            callback = parse_callback(body)
        except CallbackError as exc:
            if "html-errors" in bugs:
                return 400, "text/html; charset=utf-8", HTML_400
            return 200, JSON, encode(error_reply(str(exc.problems[0])))
        if "prompt-only" in bugs and callback.kind != PROMPT:
            return 200, JSON, encode(error_reply(f"unsupported callback {callback.kind}"))
        key = (callback.kind, callback.callid)
        with self._lock:
            duplicate = key in self.seen
            self.seen.add(key)
        if duplicate and "reject-duplicates" in bugs:
            return 200, JSON, encode(error_reply(f"callback {callback.callid} was already processed"))
        if "string-result" in bugs:
            return 200, JSON, encode({"result": "0", "errmsg": "OK"})
        if "no-errmsg" in bugs:
            return 200, JSON, encode({"result": 0})
        return 200, JSON, encode(ok_reply())


def _lenient(body: bytes) -> dict[str, object]:
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return error_reply("not JSON")
    if isinstance(data, dict) and any(isinstance(data.get(kind), dict) for kind in KINDS):
        return ok_reply()
    return error_reply("no callback in the body")


def _huge(chunk: int = 64 * 1024) -> Iterator[bytes]:
    """100 MB of JSON-looking bytes, made a chunk at a time (never held in memory)."""
    block = b" " * chunk
    yield b'{"result": 0, "errmsg": "'
    for _ in range(HUGE_REPLY // chunk):
        yield block
    yield b'"}'
