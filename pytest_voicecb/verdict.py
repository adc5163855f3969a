"""The verdict on one reply: what the contract demanded of it, how it fell short, fail or warn.

``judge(reply, sent)`` is the one place the conformance suite and ``voicecb send`` decide it, so the two
never disagree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from pytest_voicecb.assertions import Expect, expectation, reply_problems
from pytest_voicecb.contract import (
    MAX_BODY_SIZE,
    CallbackError,
    ReplyBody,
    ReplyContractError,
    parse_callback,
    parse_reply,
)
from pytest_voicecb.report import Outcome
from pytest_voicecb.values import Case

if TYPE_CHECKING:
    from pytest_voicecb.client import Reply

__all__ = ["Verdict", "judge", "reply_body"]


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
