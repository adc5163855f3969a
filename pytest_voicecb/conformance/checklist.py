"""The list of conformance checks: what each one sends and which rule it enforces.

``checks(factory)`` builds them all, in the order the suite runs them: every valid variant (rule 1), every
case of the malformed corpus (rules 2 and 3), duplicates of every kind and outcome, one by one and at the
same moment (rule 4), each kind at the same path (rule 5), and the deadline (rule 6). The kinds and their
outcomes come from the kind registry (``contract.registered_kinds()``). The ids, and what
each check proves, do not depend on the seed; only incidental values of the payloads do.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from pytest_voicecb.contract import ANSWERED, FAILURE, PROMPT, CallbackKind, registered_kinds
from pytest_voicecb.factory import PayloadFactory

__all__ = ["Check", "Family", "Together", "checks", "every_check", "matches", "skip_patterns"]

Family = Literal["valid", "reject", "robust", "duplicate", "together", "sibling", "deadline"]


@dataclass(frozen=True)
class Check:
    """One check: its ``id``, the ``rule`` it enforces, what it sends (``data``: a payload, a ``Case``, or
    for ``together`` checks a tuple of payloads delivered at the same moment)."""

    id: str
    rule: int
    family: Family
    data: Any = field(repr=False, compare=False)
    what: str = ""


# ---- the checks ----------------------------------------------------------------------------------


def checks(
    factory: PayloadFactory | None = None, *, seed: object = None, skip: str | Iterable[str] = ()
) -> list[Check]:
    """Every check, in the order the suite runs them, built from ``factory`` (or ``PayloadFactory(seed)``).

    The ids, and what each check proves, do not depend on the seed; the payloads' incidental values do,
    and the same seed always gives the same ones. ``skip`` drops checks whose id equals or matches
    (``fnmatch``) any of its patterns.
    """
    if factory is None:
        factory = PayloadFactory(seed)
    patterns = skip_patterns(skip)
    return [check for check in every_check(factory) if not matches(check.id, patterns)]


# A duplicate of every kind and outcome. Unanswered calls pin their times to "0" so that what the check
# proves does not hang on the seed's "0" or "" (the valid/* variants cover both).
_UNSET = {"accept_time": "0", "end_calltime": "0", "fee": "0"}
_OUTCOME_WORDS = {ANSWERED: "an answered {}", "1": "an unanswered {}", "2": "a {} whose call failed"}
"""How a duplicate check names a call status kind with its outcome (the results are ``contract.RESULTS``)."""
_EXTRA_DUPLICATES: tuple[tuple[str, str, Callable[[PayloadFactory], dict[str, Any]]], ...] = (
    ("duplicate/failure/no-answer", "a failure callback for no answer", lambda f: f.failure(failure_code=5)),
)


def _duplicates() -> list[tuple[str, str, Callable[[PayloadFactory], dict[str, Any]]]]:
    """(id, what, build) of a duplicate of every registered kind and outcome; the first, an answered
    prompt, is plain ``duplicate``."""
    found: list[tuple[str, str, Callable[[PayloadFactory], dict[str, Any]]]] = []
    for kind in registered_kinds():
        for result, outcome in kind.outcomes.items():
            check_id = "duplicate" if (kind.key, result) == (PROMPT, ANSWERED) else f"duplicate/{kind.short}/{outcome}"
            what = _OUTCOME_WORDS.get(result, f"a {{}} with result {result!r}").format(kind.display)
            unset = _UNSET if result != ANSWERED else {}
            found.append((check_id, what, _builder(kind, {"result": result, **unset})))
        if not kind.outcomes:
            found.append((f"duplicate/{kind.short}", f"a {kind.display}", _builder(kind, {})))
    return found + list(_EXTRA_DUPLICATES)


def _builder(kind: CallbackKind, overrides: dict[str, Any]) -> Callable[[PayloadFactory], dict[str, Any]]:
    return lambda factory: factory.build(kind.key, **overrides)


def every_check(factory: PayloadFactory) -> list[Check]:
    found: list[Check] = []
    for variant in factory.variants():
        found.append(Check(f"valid/{variant.id}", 1, "valid", variant.payload, "a valid callback gets result 0"))
    for case in factory.malformed():
        if case.expect == "reject":
            found.append(Check(f"reject/{case.id}", 2, "reject", case, case.why))
        else:
            found.append(Check(f"robust/{case.id}", 3, "robust", case, case.why))
    for check_id, what, build in _duplicates():
        found.append(Check(check_id, 4, "duplicate", build(factory), f"{what} delivered twice gets result 0 twice"))
    unanswered = factory.prompt(result="1", **_UNSET)
    found.append(
        Check(
            "duplicate/at-once",
            4,
            "together",
            Together((unanswered, unanswered), (factory.prompt(result="1", **_UNSET),)),
            "an unanswered prompt delivered twice at the same moment gets result 0 twice, and does what one did",
        )
    )
    found.append(
        Check(
            "duplicate/status-and-failure-at-once",
            4,
            "together",
            Together(_failed_call(factory), _failed_call(factory)),
            "a failed call's status and failure callbacks (one callid) arriving together both get result 0",
        )
    )
    for kind in registered_kinds():
        payload = factory.build(kind.key)
        found.append(
            Check(f"sibling/{kind.short}", 5, "sibling", payload, f"a {kind.key} at the same path gets result 0")
        )
    found.append(Check("deadline", 6, "deadline", factory.answered(), "every reply arrives within the deadline"))
    return found


class Together(NamedTuple):
    """What a ``together`` check sends: ``items`` at the same moment; with ``effects``, first ``twins``
    (the same shapes, other callids) one after the other, to learn what one delivery does."""

    items: tuple[dict[str, Any], ...]
    twins: tuple[dict[str, Any], ...]


def _failed_call(factory: PayloadFactory) -> tuple[dict[str, Any], ...]:
    """A failed call's status callback and its failure callback: one callid, one number."""
    status = factory.prompt(result="2", **_UNSET)
    fields = status[PROMPT]
    failure = factory.failure(callid=fields["callid"], nationcode=fields["nationcode"])
    failure[FAILURE]["mobile"] = fields["mobile"]
    return status, failure


def skip_patterns(skip: str | Iterable[str]) -> tuple[str, ...]:
    if isinstance(skip, str):
        return (skip,)
    try:
        patterns = tuple(skip)
    except TypeError:
        raise TypeError(f"skip takes check ids or globs (a str or a list of them), got {skip!r}") from None
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise TypeError(f"skip takes check ids or globs (str), got {pattern!r}")
    return patterns


def matches(check_id: str, patterns: tuple[str, ...]) -> bool:
    return any(check_id == p or fnmatch.fnmatchcase(check_id, p) for p in patterns)
