"""Reply scripts: the answers a test queued for the next requests, and the one answering every request.

No sockets and no records here: ``ReplyScript.take()`` hands the next :class:`_ReplyPlan` (or None for the
contract's default answer) to the server, which builds the reply from it.
"""

from __future__ import annotations

import dataclasses
import re
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Final

from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response

from pytest_voicecb import _arguments, contract

__all__ = ["ReplyScript", "contract_plan", "drop_plan", "plan_from_item", "raw_plan"]

_TOKEN: Final = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclasses.dataclass(frozen=True, kw_only=True)
class _ReplyPlan:
    """A scripted answer: a response to build for each request, or a dropped connection."""

    status: int = 200
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()
    delay: float = 0.0
    drop: bool = False

    def response(self) -> Response:
        """A fresh werkzeug Response for one request (a test may keep and inspect it)."""
        response = Response(self.body, self.status, headers=self.headers or None)
        given = {key.lower(): value for key, value in self.headers}
        if "content-type" not in given:
            del response.headers["Content-Type"]  # werkzeug's text/plain default is not what was scripted
        if "content-length" in given:  # a scripted (possibly lying) length is sent as given
            response.headers["Content-Length"] = given["content-length"]
        elif self.status < 200 or self.status in (204, 304):
            del response.headers["Content-Length"]  # these statuses carry no body and no length
        return response


class _Entry:
    """A one-shot plan in the queue, used ``remaining`` more times."""

    __slots__ = ("plan", "remaining")

    def __init__(self, plan: _ReplyPlan, remaining: int) -> None:
        self.plan = plan
        self.remaining = remaining


class ReplyScript:
    """The queue of one-shot answers (used first, in order) and the persistent answer (used after).

    Thread-safe: request threads ``take()`` while the test scripts more.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: deque[_Entry] = deque()
        self._persistent: _ReplyPlan | None = None

    def add(self, plan: _ReplyPlan, times: int | None) -> None:
        """Queue ``plan`` for the next ``times`` requests, or (``times=None``) answer every request with it."""
        if times is not None:
            times = _arguments.whole("times", times, minimum=1)
        with self._lock:
            if times is None:
                self._persistent = plan
            else:
                self._queue.append(_Entry(plan, times))

    def extend(self, plans: Iterable[_ReplyPlan]) -> None:
        """Queue one request's answer per plan, in order."""
        with self._lock:
            self._queue.extend(_Entry(plan, 1) for plan in plans)

    def take(self) -> _ReplyPlan | None:
        """The next request's plan, consumed (None: the contract's default answer)."""
        with self._lock:
            if self._queue:
                entry = self._queue[0]
                entry.remaining -= 1
                if entry.remaining <= 0:
                    self._queue.popleft()
                return entry.plan
            return self._persistent

    def clear(self) -> None:
        """Forget every scripted answer."""
        with self._lock:
            self._queue.clear()
            self._persistent = None


def contract_plan(result: int | None, errmsg: str | None, status: int, delay: float) -> _ReplyPlan:
    """``{"result": result, "errmsg": errmsg}`` as JSON with HTTP ``status`` (``reply_with``)."""
    status = _arguments.status("status", status)
    if result is None:
        result = 0 if status < 400 else 1
    if isinstance(result, bool) or not isinstance(result, int):
        raise TypeError(f"result must be an integer (the contract's JSON number), got {result!r}")
    if errmsg is None:
        errmsg = "OK" if result == 0 else f"scripted failure (result {result}, HTTP {status})"
    if not isinstance(errmsg, str):
        raise TypeError(f"errmsg must be a string, got {errmsg!r}")
    body = contract.encode(contract.error_reply(errmsg, result))
    headers = (("Content-Type", contract.JSON_CONTENT_TYPE),)
    return _ReplyPlan(status=status, body=body, headers=headers, delay=_delay(delay))


def raw_plan(
    status: int,
    body: bytes | str | Mapping[str, Any] | list[Any],
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    delay: float,
) -> _ReplyPlan:
    """Exactly this status, body (a dict or list as JSON) and headers (``reply_raw``)."""
    status = _arguments.status("status", status)
    header_list = _header_list(headers)
    if isinstance(body, (Mapping, list)):
        data = contract.encode(body)
        if not any(key.lower() == "content-type" for key, _ in header_list):
            header_list.append(("Content-Type", contract.JSON_CONTENT_TYPE))
    elif isinstance(body, str):
        data = body.encode("utf-8")
    elif isinstance(body, (bytes, bytearray)):
        data = bytes(body)
    else:
        raise TypeError(f"body must be bytes, str, a dict or a list, got {type(body).__name__}")
    return _ReplyPlan(status=status, body=data, headers=tuple(header_list), delay=_delay(delay))


def drop_plan(delay: float) -> _ReplyPlan:
    """Close the connection without a reply, after ``delay`` (``drop_connection``)."""
    return _ReplyPlan(drop=True, delay=_delay(delay))


def plan_from_item(item: object) -> _ReplyPlan:
    """One ``reply_sequence`` item as a plan."""
    if isinstance(item, Response):
        return raw_plan(item.status_code, item.get_data(), item.headers.to_wsgi_list(), 0.0)
    if not isinstance(item, Mapping):
        raise TypeError("each reply must be a dict or a werkzeug Response")
    options = dict(item)
    if options.pop("drop", False):
        _check_keys(options, {"delay"}, "a drop")
        return drop_plan(options.get("delay", 0.0))
    if "body" in options:
        _check_keys(options, {"status", "body", "headers", "delay"}, "a raw reply")
        return raw_plan(options.get("status", 200), options["body"], options.get("headers"), options.get("delay", 0.0))
    _check_keys(options, {"result", "errmsg", "status", "delay"}, "a contract reply")
    return contract_plan(
        options.get("result"), options.get("errmsg"), options.get("status", 200), options.get("delay", 0.0)
    )


def _delay(delay: object) -> float:
    return _arguments.seconds("delay", delay, allow_zero=True)


def _check_keys(options: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(
            f"unknown {'keys' if len(unknown) > 1 else 'key'} {', '.join(unknown)} for {what}; "
            f"allowed: {', '.join(sorted(allowed))}"
        )


def _header_list(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    if headers is None:
        return []
    items = list(headers.items() if isinstance(headers, (Mapping, Headers)) else headers)
    result = []
    for item in items:
        if not (isinstance(item, tuple) and len(item) == 2 and all(isinstance(part, str) for part in item)):
            raise TypeError(f"headers must be a mapping or (name, value) string pairs, got {item!r}")
        name, value = item
        if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
            raise ValueError(f"not a valid HTTP header: {name!r}: {value!r}")
        try:
            value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueError(f"header {name!r} has characters HTTP/1.1 cannot carry: {value!r}") from None
        result.append((name, value))
    return result
