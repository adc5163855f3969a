"""Assertions on a handler's reply, in the words of CONTRACT.md's rules.

``assert_reply_ok``, ``assert_reply_error`` and ``assert_reply_contract`` judge a ``Reply`` with
``verdict.reply_problems`` (the rules live with the verdict) and raise when it falls short. A failure
says what was sent, what came back, which rule broke, and how to reproduce it with curl. ``RULES``,
``cite``, ``expectation`` and ``reply_problems`` are re-exported from ``verdict`` under their old names.
"""

from __future__ import annotations

from pytest_voicecb._models import Reply
from pytest_voicecb._text import preview, safe
from pytest_voicecb.conformance.verdict import RULES, Expect, cite, expectation, headline_rule, reply_problems
from pytest_voicecb.errors import REPRODUCE

__all__ = [
    "RULES",
    "assert_reply_contract",
    "assert_reply_error",
    "assert_reply_ok",
    "cite",
    "expectation",
    "explain",
    "preview",
    "reply_problems",
]


def assert_reply_ok(reply: Reply) -> None:
    """The reply is a success: HTTP 200, a JSON object, ``result`` the number 0, ``errmsg`` a string."""
    __tracebackhide__ = True
    _assert(reply, "ok")


def assert_reply_error(reply: Reply, result: int | None = None, errmsg: str | None = None) -> None:
    """The reply rejects the input in the contract shape: ``result`` not 0, HTTP 200 or 4xx, never 5xx.

    ``result`` demands that exact code; ``errmsg`` a substring of the reply's ``errmsg``.
    """
    __tracebackhide__ = True
    if result is not None and (not isinstance(result, int) or isinstance(result, bool) or result == 0):
        raise TypeError(f"result must be a non-zero int (an error code), got {result!r}")
    if errmsg is not None and not isinstance(errmsg, str):
        raise TypeError(f"errmsg must be a str to look for in the reply's errmsg, got {errmsg!r}")
    _assert(reply, "error", result=result, errmsg=errmsg)


def assert_reply_contract(reply: Reply) -> None:
    """The reply has the contract shape (any result): HTTP 200 or 4xx, ``{"result": <int>, "errmsg": <str>}``."""
    __tracebackhide__ = True
    _assert(reply, "contract")


def _assert(reply: Reply, expect: Expect, *, result: int | None = None, errmsg: str | None = None) -> None:
    __tracebackhide__ = True
    if not isinstance(reply, Reply):
        raise TypeError(f"expected a Reply (from CallbackClient.post), got {type(reply).__name__}")
    problems = reply_problems(reply, expect, result=result, errmsg=errmsg)
    if problems:
        raise AssertionError(explain(reply, expectation(expect, headline_rule(expect)), problems))


def explain(reply: Reply, headline: str, problems: list[str] | tuple[str, ...] = ()) -> str:
    """The full failure text: headline, problems, what was sent, what came back, the curl reproducer.

    Everything that came from the handler is escaped for the terminal; the curl command comes last,
    flush left after ``reproduce (paste as is):``, so it can be copied exactly.
    """
    request = reply.request
    lines = [headline]
    lines += [f"  - {safe(problem)}" for problem in problems]
    lines.append(f"sent: {request.summary()}")
    lines.append(f"      {preview(request.body)}")
    size = f"{len(reply.body):,}{'+' if reply.truncated else ''} bytes"
    content_type = safe(reply.content_type) if reply.content_type is not None else "no content type"
    lines.append(f"got:  HTTP {reply.status} ({content_type}, {size}, {reply.elapsed * 1000:.1f} ms)")
    lines.append(f"      {preview(reply.body)}")
    if reply.errors.strip():
        lines.append("the app logged:")
        lines += ["  " + safe(line) for line in reply.errors.strip().splitlines()[-12:]]
    lines.append(REPRODUCE)
    lines.append(reply.curl())
    return "\n".join(lines)
