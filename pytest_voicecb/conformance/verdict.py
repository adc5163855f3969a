"""The verdict on one reply: the rules, what the contract demanded of it, how it fell short, fail or warn.

The one place the reply rules live: the rule table (``RULES``) and its citations (``cite``,
``expectation``), ``reply_problems`` (everything wrong with a reply for an expectation), and ``judge(reply,
sent)``, which the conformance suite, ``voicecb send``, the Locust judge and the ``assert_reply_*`` helpers
all use, so they never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

from pytest_voicecb.contract import (
    MAX_BODY_SIZE,
    CallbackError,
    ReplyBody,
    ReplyContractError,
    parse_callback,
    parse_reply,
)
from pytest_voicecb.values import Case

if TYPE_CHECKING:
    from pytest_voicecb._models import Reply

__all__ = ["RULES", "Expect", "Outcome", "Verdict", "cite", "expectation", "judge", "reply_body", "reply_problems"]

Outcome = Literal["passed", "warned", "failed"]
"""A check's outcome: ``warned`` when only input the provider never sends was acknowledged."""

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


def headline_rule(expect: Expect) -> int:
    """The rule an expectation stands for on its own (``"error"`` -> 2)."""
    return _HEADLINES[expect][1]


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


class Verdict(NamedTuple):
    """What the contract demanded of a reply (``expect``, under ``rule``), how the reply fell short
    (``problems``), and the ``outcome``: ``failed``, ``warned`` (input the provider never sends was
    acknowledged) or ``passed``."""

    expect: Expect
    rule: int
    problems: list[str]
    outcome: Outcome = "passed"

    @property
    def expected(self) -> str:
        return expectation(self.expect)


def judge(reply: Reply, sent: object, *, strict: bool = False) -> Verdict:
    """What the contract demands of the reply to ``sent``, every way ``reply`` falls short of it, and
    whether that fails or only warns.

    ``sent`` is what was delivered: a ``Case`` is judged by its ``expect`` (rules 2 and 3), anything else
    by whether ``parse_callback`` accepts it (rule 1; an invalid payload is held to rule 3). A reply not
    in the contract shape, or contradicting itself (a non-2xx status saying ``result`` 0), fails, except a
    non-contract 4xx to a corpus body the provider never sends (a framework's error page), which warns;
    success answered to a body that breaks the contract warns; ``strict`` fails every warning. The one place the suite
    and ``voicecb send`` decide a verdict, so the two never disagree.
    """
    body = sent.body if isinstance(sent, Case) else sent
    valid = _is_valid_callback(body)
    if not isinstance(sent, Case) and valid:
        problems = reply_problems(reply, "ok")
        return Verdict("ok", 1, problems, "failed" if problems else "passed")
    unprocessable = isinstance(sent, Case) and sent.expect == "reject"
    expect: Expect = "error" if unprocessable or (strict and not valid) else "contract"
    rule = 2 if unprocessable else 3
    if isinstance(sent, Case) and unprocessable and len(sent.body) > MAX_BODY_SIZE and reply.status == 413:
        return Verdict(expect, rule, [])  # the size limit may sit in front of the handler
    problems = reply_problems(reply, "contract")
    if problems and isinstance(sent, Case) and 400 <= reply.status < 500 and not valid:
        # A framework's own error page (a body parser's 400 text/plain) to a body the provider never sends:
        # nothing in production reaches it, so it warns (strict fails it) instead of failing like a crash.
        problems.append(f"a non-contract HTTP {reply.status} to a body the provider never sends: a warning")
        return Verdict(expect, rule, problems, "failed" if strict else "warned")
    if problems:
        return Verdict(expect, rule, problems, "failed")
    answer = reply_body(reply)
    if answer is None or answer.result != 0:
        return Verdict(expect, rule, [])
    if reply.status != 200:
        return Verdict(
            expect,
            rule,
            [f"HTTP status {reply.status} says failure but result 0 says success: contradictory"],
            "failed",
        )
    if valid:
        return Verdict(expect, rule, [])  # a valid body under a questionable transport, accepted
    if unprocessable:
        problem = "result is 0 (success) for a body the provider never sends; a contract error is expected"
    else:
        problem = "result is 0 (success) for questionable input; accepting it is allowed, rejecting it preferred"
    return Verdict(expect, rule, [problem], "failed" if strict else "warned")


def _is_valid_callback(body: object) -> bool:
    try:
        parse_callback(body)  # type: ignore[arg-type]
    except CallbackError:
        return False
    return True


def reply_body(reply: Reply) -> ReplyBody | None:
    """The reply's body as the contract's model, or None when it is not in the contract shape."""
    if reply.truncated:
        return None
    try:
        return parse_reply(reply.body)
    except ReplyContractError:
        return None
