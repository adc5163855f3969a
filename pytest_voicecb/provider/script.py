"""Scripted outcomes: ``provider.on(number)``'s verbs, and the decisions that settle a held call.

Both turn words (``no_answer``, ``press("1")``, ``decide(callid, "fail")``) into a ``CallOutcome`` the
backend applies to the next sends or to a held call.
"""

from __future__ import annotations

from typing import Any

from pytest_voicecb import _arguments
from pytest_voicecb.provider.exceptions import SendApiError, error_for
from pytest_voicecb.provider.models import (
    DEFAULT_RING,
    DEFAULT_TALK,
    ERROR_RING,
    HELD,
    NO_ANSWER_RING,
    CallOutcome,
    SimulatorBackend,
    _Rule,
    normalize_number,
)

__all__ = ["DECISIONS", "MAX_SLOW", "Script", "decision"]


class Script:
    """The outcome of the next sends to one number (or to any number): ``provider.on(number)``.

    Each outcome verb (``answer``, ``no_answer``, ``call_error``, ``press``, ``refuse``, ``drop``,
    ``hold``) takes ``times=n`` (the next n sends; every send when None, as ``reply_with`` does) and
    returns the script, so ``provider.on(n).no_answer(times=1).answer()`` reads in the order it applies:
    the first rule with sends left wins, and a number's rules come before any-number rules. ``duplicate``
    and ``slow`` right after an outcome verb add to that outcome (``no_answer().duplicate()``: the
    unanswered status is delivered twice); a combination that cannot happen (a refused send duplicated)
    is a ``ValueError`` at once. On their own they script an answered call.
    """

    def __init__(self, backend: SimulatorBackend, number: str | None) -> None:
        self._backend = backend
        self.number = normalize_number(number)
        self._last: _Rule | None = None

    def _add(self, outcome: CallOutcome, times: int | None) -> Script:
        self._last = self._backend.script(self.number, outcome, times)
        return self

    def _compose(self, verb: str, times: int | None, **changes: Any) -> Script:
        """Add ``changes`` to the outcome scripted just before, or script an answered call with them."""
        last = self._last
        if last is None:
            return self._add(CallOutcome(**changes), times)
        if times is not None and times != last.times:
            raise ValueError(
                f"{verb}(times={times}) follows an outcome scripted for {last.times or 'every'} sends: "
                f"give times= on the outcome verb only"
            )
        outcome = last.outcome
        if verb == "duplicate" and (outcome.refuse is not None or outcome.drop or outcome.status == "held"):
            raise ValueError(f"duplicate() cannot follow {outcome.describe()!r}: no status callback is scheduled")
        if verb == "slow" and outcome.drop:
            raise ValueError("slow() cannot follow drop(): a dropped connection has no reply to delay")
        self._backend.amend(last, **changes)
        return self

    def answer(self, ring: int = DEFAULT_RING, talk: int = DEFAULT_TALK, *, times: int | None = None) -> Script:
        """Answered after ``ring`` seconds, ``talk`` seconds long (billed per started minute)."""
        return self._add(CallOutcome(ring=_whole("ring", ring), talk=_whole("talk", talk)), times)

    def no_answer(self, ring: int = NO_ANSWER_RING, *, times: int | None = None) -> Script:
        """Rings ``ring`` seconds, nobody answers: status ``result "1"``."""
        return self._add(CallOutcome("no_answer", ring=_whole("ring", ring)), times)

    def call_error(self, code: int = 11, *, ring: int = ERROR_RING, times: int | None = None) -> Script:
        """The call fails: status ``result "2"`` and a ``voice_failure_callback`` with ``failure_code=code``."""
        return self._add(CallOutcome("call_error", ring=_whole("ring", ring), failure_code=_whole("code", code)), times)

    def fail(self, code: int = 8, *, ring: int = ERROR_RING, times: int | None = None) -> Script:
        """``call_error`` with a failure code (8: number not in service, by default)."""
        return self.call_error(code, ring=ring, times=times)

    def press(self, *keys: str, ring: int = DEFAULT_RING, talk: int = DEFAULT_TALK, times: int | None = None) -> Script:
        """Answered, and the callee presses ``keys`` (a ``voicekey_callback`` each) before hanging up."""
        pressed = _keys("press()", keys, keys)
        return self._add(CallOutcome(ring=_whole("ring", ring), talk=_whole("talk", talk), keys=pressed), times)

    def duplicate(self, copies: int = 1, *, times: int | None = None) -> Script:
        """The status callback is delivered ``copies`` more times after it was acknowledged (of the outcome
        scripted just before; on its own, of an answered call)."""
        return self._compose("duplicate", times, duplicates=_arguments.whole("copies", copies, minimum=1, maximum=100))

    def refuse(
        self, code: str | int | type[SendApiError] = "LimitExceeded.DeliveryFrequencyLimit", *, times: int | None = None
    ) -> Script:
        """The send itself fails with ``code`` (an API 3.0 code, a legacy result or an error class)."""
        return self._add(CallOutcome(refuse=error_for(code)), times)

    def slow(self, seconds: float, *, times: int | None = None) -> Script:
        """The send's HTTP reply comes ``seconds`` real seconds late (for the sender's timeout; at most
        ``MAX_SLOW`` seconds)."""
        return self._compose("slow", times, delay=_arguments.seconds("seconds", seconds, maximum=MAX_SLOW))

    def drop(self, *, times: int | None = None) -> Script:
        """The connection is closed without a reply; no call is placed."""
        return self._add(CallOutcome(drop=True), times)

    def hold(self, *, times: int | None = None) -> Script:
        """The call is placed and rings until decided by hand: no callback is scheduled until
        ``provider.decide(callid, ...)`` (or a button on the console's card) says what happened."""
        return self._add(HELD, times)


MAX_SLOW = 600.0
"""The longest scripted ``slow`` reply, in real seconds (an SDK's own timeout is 60 s by default)."""

DECISIONS = ("answer", "no_answer", "call_error", "fail", "press", "hang_up")
"""What ``Provider.decide`` (and ``POST /voicecb-api/decide``) accept as a held call's outcome."""


def _whole(name: str, value: object) -> int:
    return _arguments.whole(name, value, maximum=24 * 3600)


def decision(outcome: str, *, ring: int, talk: int, code: int, keys: tuple[str, ...] | list[str] | str) -> CallOutcome:
    """The outcome a held call's decision names (one of ``DECISIONS``; see ``Provider.decide``)."""
    ring, talk = _whole("ring", ring), _whole("talk", talk)
    if outcome == "answer":
        return CallOutcome(ring=ring, talk=talk)
    if outcome == "hang_up":
        return CallOutcome(ring=ring, talk=1)
    if outcome == "no_answer":
        return CallOutcome("no_answer", ring=ring)
    if outcome in ("call_error", "fail"):
        return CallOutcome("call_error", ring=ring, failure_code=_whole("code", code))
    if outcome == "press":
        pressed = tuple(keys) if not isinstance(keys, str) else tuple(keys.replace(",", " ").split() or keys)
        if len(pressed) == 1 and len(pressed[0]) > 1:
            pressed = tuple(pressed[0])
        return CallOutcome(ring=ring, talk=talk, keys=_keys("press", pressed, keys))
    raise ValueError(f"outcome must be one of {', '.join(DECISIONS)}, got {outcome!r}")


def _keys(verb: str, pressed: tuple[object, ...], given: object) -> tuple[str, ...]:
    """``pressed`` when it is one or more keys among 0-9, * and #; ``ValueError`` naming ``verb`` otherwise."""
    if not pressed or not all(isinstance(k, str) and len(k) == 1 and k in "0123456789*#" for k in pressed):
        raise ValueError(f"{verb} takes one or more keys among 0-9, * and #, got {given!r}")
    return tuple(str(k) for k in pressed)
