"""What a load test posts and how it judges each reply, without Locust (so it is tested in-process).

``CallbackMix`` draws the traffic of a campaign: callbacks of every kind in realistic shares, with a
share of ``voice_failure_callback`` and a share of duplicate deliveries (the provider retries, so a
handler sees the same callback twice). ``ReplyJudge`` holds each reply to the contract with
``conformance.judge``, the verdict the conformance suite and ``voicecb send`` use, plus the deadline
(rule 6), and returns the cause of a failure as one stable line (Locust groups failures by their
text, so the line names the rule and the problem, never a callid or a time).

``locust_users.VoiceCallbackUser`` is the Locust side: it only moves bytes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic_core import to_json
from werkzeug.datastructures import Headers

from pytest_voicecb import _arguments, _deprecation, _text
from pytest_voicecb.client import Reply, SentRequest
from pytest_voicecb.conformance.runner import DEFAULT_DEADLINE
from pytest_voicecb.conformance.verdict import cite, judge
from pytest_voicecb.contract import CODE, FAILURE, JSON_CONTENT_TYPE, KEYPRESS, PROMPT
from pytest_voicecb.factory import PayloadFactory

__all__ = ["DEFAULT_DEADLINE", "CallbackMix", "Post", "ReplyJudge", "check_share", "no_reply", "stable"]

# Shares of the kinds other than failures (which have a share of their own), and of call outcomes: a
# notification campaign is mostly prompts, mostly answered.
_KIND_SHARES: tuple[tuple[str, float], ...] = ((PROMPT, 0.6), (CODE, 0.25), (KEYPRESS, 0.15))
_RESULT_SHARES: tuple[tuple[str, float], ...] = (("0", 0.7), ("1", 0.2), ("2", 0.1))
_HEADERS = {"Content-Type": JSON_CONTENT_TYPE}
_DUPLICATE_NAMES = {kind: f"{kind} (duplicate)" for kind in (PROMPT, CODE, KEYPRESS, FAILURE)}
# Built once: werkzeug's Headers cost more to build than a verdict.
_SENT_HEADERS = Headers(_HEADERS)
_NO_HEADERS = Headers()


def check_share(name: str, value: object) -> float:
    """A share from 0 to 1; ``ValueError`` naming ``name`` otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1:
        return float(value)
    raise ValueError(f"{name} must be a share from 0 to 1 (0.1 is one in ten), got {value!r}")


@dataclass(frozen=True)
class Post:
    """One POST of a load test: ``body`` as sent, the ``payload`` it encodes, and its ``name`` in the
    statistics (the kind, with `` (duplicate)`` for a second delivery)."""

    name: str
    body: bytes
    payload: dict[str, Any]
    duplicate: bool = False
    valid: bool = False
    """Known to pass ``parse_callback`` (the factory builds only valid callbacks; tests check it)."""


class CallbackMix:
    """The traffic of a campaign, drawn from ``factory``: every kind, a ``failure_share`` of
    ``voice_failure_callback`` and a ``duplicate_share`` of repeats of one of the last ``memory``
    callbacks sent. Seeded by the factory, so one seed replays the same traffic."""

    def __init__(
        self,
        factory: PayloadFactory | None = None,
        *,
        duplicate_share: float = 0.1,
        failure_share: float = 0.1,
        memory: int = 100,
    ) -> None:
        self.factory = factory if factory is not None else PayloadFactory()
        self.duplicate_share = check_share("duplicate_share", duplicate_share)
        self.failure_share = check_share("failure_share", failure_share)
        self.memory = _arguments.whole("memory", memory, minimum=1)
        self._recent: list[Post] = []
        self._next_slot = 0
        self._rnd = self.factory.random.random

    def __repr__(self) -> str:
        return (
            f"CallbackMix({self.factory!r}, duplicate_share={self.duplicate_share:g}, "
            f"failure_share={self.failure_share:g})"
        )

    def next(self) -> Post:
        """The next delivery: a repeat of a recent one, or a new callback."""
        rnd = self._rnd
        if self._recent and rnd() < self.duplicate_share:
            first = self._recent[int(rnd() * len(self._recent))]
            name = _DUPLICATE_NAMES.get(first.name) or f"{first.name} (duplicate)"
            return Post(name, first.body, first.payload, duplicate=True, valid=first.valid)
        delivery = self._new(rnd)
        if len(self._recent) < self.memory:
            self._recent.append(delivery)
        else:  # a ring: the oldest callback is forgotten
            self._recent[self._next_slot] = delivery
            self._next_slot = (self._next_slot + 1) % self.memory
        return delivery

    def _new(self, rnd: Any) -> Post:
        factory = self.factory
        if rnd() < self.failure_share:
            kind, payload = FAILURE, factory.failure()
        else:
            kind = _pick(_KIND_SHARES, rnd())
            if kind == KEYPRESS:
                payload = factory.keypress()
            else:
                build = factory.prompt if kind == PROMPT else factory.code
                result = _pick(_RESULT_SHARES, rnd())
                payload = build() if result == "0" else build(result=result)  # answered is the default
        # pydantic's Rust encoder writes the same bytes as contract.encode for the factory's payloads
        # (strings and whole numbers; tests compare them) in a sixth of the time.
        return Post(kind, to_json(payload), payload, valid=True)


def _pick(shares: tuple[tuple[str, float], ...], draw: float) -> str:
    for value, share in shares:
        if draw < share:
            return value
        draw -= share
    return shares[-1][0]


class ReplyJudge:
    """Holds each reply to the contract with ``conformance.judge``, plus the ``deadline`` (rule 6).

    The reply is judged whole (status, headers and body), so every reply rule applies here as in the
    conformance suite. A success reply to a valid callback is remembered per (status, headers, body),
    leaving out the headers every response varies (``Date`` ...): a handler answers the same success
    thousands of times, and judging it again would make the load generator, not the handler, the
    bottleneck. Failures are always judged afresh.
    """

    MEMORY = 32
    """Distinct success replies remembered (handlers that vary their success reply are judged every time)."""

    def __init__(self, url: str, *, deadline: float = DEFAULT_DEADLINE, strict: bool = False) -> None:
        self.url = url
        self.deadline = _arguments.seconds("deadline", deadline)
        self.strict = strict
        self._ok: set[tuple[int, tuple[tuple[str, str], ...], bytes]] = set()

    def __call__(
        self,
        delivery: Post,
        status: int,
        body: bytes,
        elapsed: float,
        headers: Mapping[str, str] | None = None,
    ) -> str | None:
        """The cause of failure of one reply, on one line that reads the same for every callback; None when
        the contract holds. A valid callback must get a success reply (rule 1; rule 4 for a duplicate)."""
        seen = (status, _lasting(headers), body)
        if not (delivery.valid and seen in self._ok):
            verdict = judge(self.reply(delivery, status, headers, body, elapsed), delivery.payload, strict=self.strict)
            if verdict.problems:
                rule = 4 if delivery.duplicate and verdict.rule == 1 else verdict.rule
                return f"{cite(rule)}: {verdict.expected}: {stable(verdict.problems[0])}"
            if delivery.valid and len(self._ok) < self.MEMORY:
                self._ok.add(seen)
        if elapsed > self.deadline:
            return f"{cite(6)}: replied after the {self.deadline:g} s deadline"
        return None

    def reply(
        self, delivery: Post, status: int, headers: Mapping[str, str] | None, body: bytes, elapsed: float
    ) -> Reply:
        """The reply as a ``Reply``: what the verdict reads, and its curl reproducer."""
        request = SentRequest("POST", self.url, _SENT_HEADERS, delivery.body)
        reply_headers = Headers(list(headers.items())) if headers else _NO_HEADERS
        return Reply(status=status, headers=reply_headers, body=body, elapsed=elapsed, request=request)


# Headers that differ from one response to the next whatever the handler means: left out of the key a
# success is remembered by, so that remembering works.
_VARYING_HEADERS = frozenset({"date", "content-length", "connection", "keep-alive", "server"})


def _lasting(headers: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    if not headers:
        return ()
    return tuple(
        sorted((name.lower(), value) for name, value in headers.items() if name.lower() not in _VARYING_HEADERS)
    )


def no_reply(error: BaseException | str) -> str:
    """The cause of failure of a delivery that got no reply at all (refused, reset, timed out)."""
    what = error if isinstance(error, str) else f"{type(error).__name__}: {error}" if str(error) else repr(error)
    return f"no reply (the provider would retry): {stable(what)}"


# Ids and times in a message: a UUID or 32 hex characters, or a run of 5 or more digits.
_VARYING = re.compile(r"\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b|\b[0-9a-fA-F]{32}\b|\d{5,}")


def stable(text: str, limit: int = 160) -> str:
    """``text`` on one line, terminal-safe, with callids, timestamps and phone numbers replaced by ``…``:
    Locust counts failures per distinct text, so one cause must read the same for every callback."""
    return _text.one_line(_VARYING.sub("…", text), limit)


__getattr__ = _deprecation.moved("pytest_voicecb.integrations.load", {"Delivery": ("Post", lambda: Post)})
