"""Assertions on a handler's reply, in the words of CONTRACT.md's rules.

``assert_reply_ok``, ``assert_reply_error`` and ``assert_reply_contract`` judge a ``Reply`` with
``contract.parse_reply`` (the one validator) plus the HTTP status the rules ask for. A failure says
what was sent, what came back, which rule broke, and how to reproduce it with curl.
"""

from __future__ import annotations

from typing import Literal

from pytest_voicecb._models import Reply
from pytest_voicecb._text import preview, safe
from pytest_voicecb.contract import ReplyBody, ReplyContractError, parse_reply
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

RULES: dict[int, str] = {
    1: "valid input gets success",
    2: "unprocessable input gets a contract error, never a crash",
    3: "questionable input gets the contract shape, never a crash",
    4: "a duplicate gets success again",
    5: "all four kinds are acknowledged",
    6: "answer promptly",
    7: "no side effect on a repeat or on garbage; the declared ones on valid input",
}
"""Short titles of the seven handler rules at the end of CONTRACT.md, for citing in messages."""

Expect = Literal["ok", "error", "contract"]


_HEADLINES: dict[Expect, tuple[str, int]] = {
    "ok": ("expected a success reply", 1),
    "error": ("expected an error reply", 2),
    "contract": ("expected a reply in the contract shape", 3),
}


def cite(rule: int) -> str:
    """``CONTRACT.md rule 2 (unprocessable input gets ...)``."""
    return f"CONTRACT.md rule {rule} ({RULES[rule]})"


def expectation(expect: Expect, rule: int | None = None) -> str:
    """What was demanded, ``expected an error reply``; with ``rule``, citing it: ``...: CONTRACT.md rule 2 (...)``."""
    headline = _HEADLINES[expect][0]
    return headline if rule is None else f"{headline}: {cite(rule)}"


def reply_problems(reply: Reply, expect: Expect, *, result: int | None = None, errmsg: str | None = None) -> list[str]:
    """Everything wrong with ``reply`` for the expectation; empty when it holds.

    ``"ok"``: HTTP 200 and a contract body with ``result`` 0. ``"error"``: HTTP 200 or 4xx and a contract
    body with ``result`` not 0 (equal to ``result`` and containing ``errmsg`` when given). ``"contract"``:
    HTTP 200 or 4xx and a contract body, any result.
    """
    problems: list[str] = []
    status = reply.status
    if expect == "ok":
        if status != 200:
            problems.append(f"HTTP status {status}: a success reply is HTTP 200")
    elif status >= 500:
        problems.append(f"HTTP status {status}: a server error, where the handler must answer (200 or 4xx)")
    elif status != 200 and not 400 <= status < 500:
        problems.append(f"HTTP status {status}: expected 200 or a 4xx")
    body = _parsed(reply, problems)
    if body is None:
        return problems
    if expect == "ok" and body.result != 0:
        problems.append(f"result is {body.result} (a failure, errmsg {body.errmsg!r}); expected 0")
    elif expect == "error":
        if body.result == 0:
            problems.append("result is 0 (success); expected a non-zero result rejecting this input")
        elif result is not None and body.result != result:
            problems.append(f"result is {body.result}; expected {result}")
        if errmsg is not None and errmsg not in body.errmsg:
            problems.append(f"errmsg {body.errmsg!r} does not contain {errmsg!r}")
    return problems


def _parsed(reply: Reply, problems: list[str]) -> ReplyBody | None:
    if reply.truncated:
        problems.append(
            f"the reply is larger than {len(reply.body):,} bytes (the read limit); "
            'the contract reply is a small JSON object: {"result": 0, "errmsg": "OK"}'
        )
        return None
    try:
        return parse_reply(reply.body)
    except ReplyContractError as exc:
        problems.extend(str(problem) for problem in exc.problems)
        return None


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
        raise AssertionError(explain(reply, expectation(expect, _HEADLINES[expect][1]), problems))


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
