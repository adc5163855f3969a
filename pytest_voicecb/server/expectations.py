"""Declarative expectations on a ``CallbackServer``, checked after the fact (pytest-httpserver's habit).

``server.expect(kind="prompt", count=2, callid="c-1")`` says "exactly two such callbacks arrive";
``expect_ordered(...)`` adds a step that must be met in order with the other ordered ones;
``fail_on_unexpected()`` makes any request no expectation matched a failure. Nothing is decided while
requests arrive (the sender always gets the contract's answer): ``check()`` (and the ``voicecb_server``
fixture's teardown) walks the records once and lists what was expected and what arrived.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final

from pytest_voicecb import _text
from pytest_voicecb.matching import Matcher
from pytest_voicecb.server.records import RecordedCallback

__all__ = ["RECORD_KEYS", "Expectation", "matcher", "message", "problems"]

RECORD_KEYS: Final = frozenset({"kind", "valid", "method", "path", "query"})
"""The criteria read from a ``RecordedCallback`` itself; any other key is a callback field."""


@dataclasses.dataclass(frozen=True, eq=False)
class Expectation:
    """One declared expectation: ``count`` requests (exactly; ``None``: at least one) matching ``wanted``.

    ``matched`` is filled by the last ``check()`` (the records this expectation took, oldest first).
    """

    wanted: str
    count: int | None
    ordered: bool
    matches: Callable[[RecordedCallback], bool] = dataclasses.field(repr=False)
    declares_invalid: bool = False
    matched: list[RecordedCallback] = dataclasses.field(default_factory=list, repr=False)

    def describe(self) -> str:
        """``exactly 2 callbacks matching kind='voiceprompt_callback'`` and the like."""
        how_many = "at least 1 callback" if self.count is None else f"exactly {_text.plural(self.count, 'callback')}"
        return f"{how_many} matching {self.wanted or 'anything'}"

    @property
    def met(self) -> bool:
        n = len(self.matched)
        return n >= 1 if self.count is None else n == self.count

    def _full(self) -> bool:
        return self.count is not None and len(self.matched) >= self.count


def assign(
    records: Sequence[RecordedCallback], expectations: Sequence[Expectation]
) -> tuple[list[RecordedCallback], list[str]]:
    """Give each record to an expectation; return the records none took and the ordering violations.

    An ordered step takes matching records until it is full; a record matching a later step moves on
    to it once the current one is met, and is an ordering violation while it is not. A record no ordered
    step takes goes to the first unordered expectation it matches (over the count: that one fails).
    """
    for expectation in expectations:
        expectation.matched.clear()
    ordered = [e for e in expectations if e.ordered]
    unordered = [e for e in expectations if not e.ordered]
    step = 0
    unmatched: list[RecordedCallback] = []
    disorder: list[str] = []
    for number, record in enumerate(records, 1):
        placed = False
        j = step
        while j < len(ordered):
            current = ordered[j]
            if not current._full() and current.matches(record):
                current.matched.append(record)
                step, placed = j, True
                break
            if not current.met:
                later = next((k for k in range(j + 1, len(ordered)) if ordered[k].matches(record)), None)
                if later is not None:
                    disorder.append(
                        f"request #{number} ({record.summary()}) matched ordered step {later + 1} "
                        f"({ordered[later].describe()}) while step {j + 1} ({current.describe()}) "
                        f"had {len(current.matched)}"
                    )
                    placed = True  # reported as out of order, not also as unexpected
                break
            j += 1
        if placed:
            continue
        taker = next((e for e in unordered if e.matches(record)), None)
        if taker is not None:
            taker.matched.append(record)
        else:
            unmatched.append(record)
    return unmatched, disorder


def problems(
    records: Sequence[RecordedCallback], expectations: Sequence[Expectation], *, fail_on_unexpected: bool
) -> list[str]:
    """What ``check()`` reports about the expectations: unmet ones, order violations, unexpected requests."""
    if not expectations and not fail_on_unexpected:
        return []
    unmatched, disorder = assign(records, expectations)
    found: list[str] = []
    for i, expectation in enumerate(expectations, 1):
        if not expectation.met:
            label = "expect_ordered" if expectation.ordered else "expect"
            found.append(f"{label} #{i}: {expectation.describe()}; {len(expectation.matched)} arrived")
    found += disorder
    if fail_on_unexpected and unmatched:
        found.append(f"{_text.plural(len(unmatched), 'request')} matched no expectation (fail_on_unexpected):")
        found += _text.listing(unmatched, RecordedCallback.summary)
    return found


def message(
    where: str,
    records: Sequence[RecordedCallback],
    expectations: Sequence[Expectation],
    *,
    fail_on_unexpected: bool,
) -> str:
    """``check_assertions()``'s failure for the server at ``where`` ('' when none): the problems, then
    what arrived."""
    found = problems(records, expectations, fail_on_unexpected=fail_on_unexpected)
    if not found:
        return ""
    lines = [f"the callback server at {where} did not get what the test expected:"]
    lines += [f"  {line}" for line in found]
    if records:
        lines.append(f"{_text.plural(len(records), 'request')} arrived:")
        lines += _text.listing(records, RecordedCallback.summary, numbered=True)
    else:
        lines.append("Nothing arrived since the server started or was last reset.")
    return "\n".join(lines)


def declared_invalid(expectations: Sequence[Expectation]) -> set[int]:
    """Ids of the invalid records an expectation with ``valid=False`` took (they are not a failure)."""
    return {id(record) for e in expectations if e.declares_invalid for record in e.matched if not record.valid}


def matcher(where: Callable[[RecordedCallback], object] | None, match: Mapping[str, Any]) -> Matcher[RecordedCallback]:
    """``wait_for``'s, ``find``'s and ``expect``'s criteria on a record (see ``CallbackServer.wait_for``)."""
    return Matcher(match, where=where, attributes=RECORD_KEYS)
