"""The conformance suite: every handler rule of CONTRACT.md run against one target.

``run_conformance(target)`` delivers every valid variant of the four kinds (rule 1), every ``reject``
case of the malformed corpus (rule 2), every ``robust`` case (rule 3), a duplicate delivery (rule 4),
one callback of each kind at the same path (rule 5), and times every reply against a deadline
(rule 6). Each check has a stable id (``valid/prompt/typical``, ``reject/envelope/not-an-object``,
``duplicate``, ``sibling/keypress``, ``deadline`` ...), so a failure can be named, skipped or re-run.
A handler that raises or hangs makes its check fail; the suite itself never crashes.
"""

from __future__ import annotations

import fnmatch
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from pytest_voicecb.assertions import RULES, Expect, expectation, explain, preview, reply_problems
from pytest_voicecb.client import CallbackClient, DeliveryError, Reply
from pytest_voicecb.contract import KINDS, MAX_BODY_SIZE, CallbackError, kind_named, parse_callback
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.values import Case

__all__ = [
    "DEFAULT_DEADLINE",
    "Check",
    "CheckResult",
    "Report",
    "Runner",
    "Verdict",
    "checks",
    "judge",
    "run_conformance",
]

DEFAULT_DEADLINE = 2.0
"""Seconds a reply may take (CONTRACT.md rule 6: the provider's timeout is unconfirmed, so it is an option)."""

STOP_AFTER_TIMEOUTS = 3
"""After this many deliveries in a row got no reply in time, the remaining checks fail without being sent."""

Family = Literal["valid", "reject", "robust", "duplicate", "sibling", "deadline"]


@dataclass(frozen=True)
class Check:
    """One check: its ``id``, the ``rule`` it enforces, what it sends (``data``: a payload or a ``Case``)."""

    id: str
    rule: int
    family: Family
    data: Any = field(repr=False, compare=False)
    what: str = ""


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: ``id``, ``passed``, ``message`` (one line; empty when passed), the last
    ``reply`` (None when nothing came back), the ``rule`` it enforces, ``problems`` found in the reply, and
    ``curl``, a command reproducing the delivery that failed."""

    id: str
    passed: bool
    message: str
    reply: Reply | None
    rule: int
    problems: tuple[str, ...] = ()
    curl: str | None = None
    expected: str = ""
    """What the check demanded of the reply (``expected a success reply`` ...)."""

    def details(self) -> str:
        """The long form: what was expected, the problems, what was sent, what came back, the curl reproducer."""
        what = self.expected if self.expected and self.problems else self.message
        headline = f"{self.id}: {what} (CONTRACT.md rule {self.rule}: {RULES[self.rule]})"
        if self.reply is not None:
            return explain(self.reply, headline, self.problems)
        lines = [headline] + [f"  - {p}" for p in self.problems]
        if self.curl:
            lines += ["reproduce:"] + ["  " + line for line in self.curl.splitlines()]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """The result as JSON-ready data (the reply summarized, not its full body)."""
        reply = self.reply
        return {
            "id": self.id,
            "passed": self.passed,
            "rule": self.rule,
            "message": self.message,
            "problems": list(self.problems),
            "status": reply.status if reply is not None else None,
            "elapsed": round(reply.elapsed, 6) if reply is not None else None,
            "reply": preview(reply.body) if reply is not None else None,
            "curl": None if self.passed else self.curl,
        }


@dataclass(frozen=True)
class Report:
    """What ``run_conformance`` found. ``ok`` when every check passed; ``str(report)`` is a readable table.

    ``to_json()`` returns a JSON string (``to_dict()`` the same as data) with the seed, the target, the
    options, a summary and one entry per check.
    """

    target: str
    path: str
    seed: object
    deadline: float
    strict: bool
    results: tuple[CheckResult, ...]
    skipped: tuple[str, ...] = ()
    elapsed: float = 0.0
    in_process: bool = False

    @property
    def ok(self) -> bool:
        return all(result.passed for result in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [result for result in self.results if not result.passed]

    def __getitem__(self, check_id: str) -> CheckResult:
        """The result of one check by id."""
        for result in self.results:
            if result.id == check_id:
                return result
        raise KeyError(f"no check {check_id!r} in this report")

    def summary(self) -> str:
        failed = len(self.failures)
        skipped = f", {len(self.skipped)} skipped" if self.skipped else ""
        verdict = (
            f"PASSED: all {len(self.results)} checks passed"
            if not failed
            else f"FAILED: {failed} of {len(self.results)} checks failed"
        )
        return f"{verdict}{skipped} in {self.elapsed:.2f} s (seed {self.seed!r})"

    def __str__(self) -> str:
        lines = [
            f"pytest-voicecb conformance of {self.target}, path {self.path}, "
            f"deadline {self.deadline:g} s{', strict' if self.strict else ''}, seed {self.seed!r}"
        ]
        failures = self.failures
        if failures and self.in_process:
            lines.append("(in-process target: in the curl commands, replace http://localhost:8000 with a live URL)")
        width = max((len(result.id) for result in failures), default=0)
        for result in failures:
            lines.append(f"FAIL  {result.id:<{width}}  rule {result.rule}  {result.message}")
            if result.curl:
                lines += [f"      {line}" for line in result.curl.splitlines() if not line.startswith("# in-process")]
        lines.append(self.summary())
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "target": self.target,
            "path": self.path,
            "seed": self.seed if isinstance(self.seed, (int, str)) else repr(self.seed),
            "deadline": self.deadline,
            "strict": self.strict,
            "elapsed": round(self.elapsed, 4),
            "summary": {
                "total": len(self.results),
                "passed": len(self.results) - len(self.failures),
                "failed": len(self.failures),
                "skipped": len(self.skipped),
            },
            "skipped": list(self.skipped),
            "results": [result.to_dict() for result in self.results],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)


# ---- the checks ----------------------------------------------------------------------------------


def checks(
    factory: PayloadFactory | None = None, *, seed: object = None, skip: str | Iterable[str] = ()
) -> list[Check]:
    """Every check, in the order the suite runs them, built from ``factory`` (or ``PayloadFactory(seed)``).

    The ids do not depend on the seed; the payloads do, and the same seed always gives the same ones.
    ``skip`` drops checks whose id equals or matches (``fnmatch``) any of its patterns.
    """
    if factory is None:
        factory = PayloadFactory(seed)
    patterns = _patterns(skip)
    return [check for check in _every_check(factory) if not _matches(check.id, patterns)]


def _every_check(factory: PayloadFactory) -> list[Check]:
    found: list[Check] = []
    for variant in factory.variants():
        found.append(Check(f"valid/{variant.id}", 1, "valid", variant.payload, "a valid callback gets result 0"))
    for case in factory.malformed():
        if case.expect == "reject":
            found.append(Check(f"reject/{case.id}", 2, "reject", case, case.why))
        else:
            found.append(Check(f"robust/{case.id}", 3, "robust", case, case.why))
    found.append(Check("duplicate", 4, "duplicate", factory.answered(), "the same callback twice gets result 0 twice"))
    for kind in KINDS:
        short = kind_named(kind, short=True)
        payload = getattr(factory, short)()
        found.append(Check(f"sibling/{short}", 5, "sibling", payload, f"a {kind} at the same path gets result 0"))
    found.append(Check("deadline", 6, "deadline", factory.answered(), "every reply arrives within the deadline"))
    return found


def _patterns(skip: str | Iterable[str]) -> tuple[str, ...]:
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


def _matches(check_id: str, patterns: tuple[str, ...]) -> bool:
    return any(check_id == p or fnmatch.fnmatchcase(check_id, p) for p in patterns)


# ---- running them -------------------------------------------------------------------------------


class Runner:
    """Runs checks one by one against a target, sharing one client (one keep-alive connection).

    ``run_conformance`` uses it for a whole run; the pytest plugin uses it to run each check as a test.
    The ``deadline`` check judges every reply this runner has seen, not only its own.
    """

    def __init__(
        self,
        target: object,
        *,
        path: str | None = None,
        deadline: float = DEFAULT_DEADLINE,
        strict: bool = False,
        timeout: float | None = None,
        seed: object = None,
        factory: PayloadFactory | None = None,
        skip: str | Iterable[str] = (),
    ) -> None:
        if not isinstance(deadline, (int, float)) or isinstance(deadline, bool) or not deadline > 0:
            raise ValueError(f"deadline must be a positive number of seconds, got {deadline!r}")
        if factory is None:
            factory = PayloadFactory(seed)
        elif not isinstance(factory, PayloadFactory):
            raise TypeError(f"factory must be a PayloadFactory, got {type(factory).__name__}")
        self.deadline = float(deadline)
        self.strict = bool(strict)
        self.client: CallbackClient
        self.factory = factory
        self.seed = factory.seed
        patterns = _patterns(skip)
        self._owns_client = False
        self.retarget(target, path=path, timeout=timeout)
        every = _every_check(factory)
        self.checks = [check for check in every if not _matches(check.id, patterns)]
        self.skipped = tuple(check.id for check in every if _matches(check.id, patterns))
        self.timings: list[tuple[str, float | None]] = []
        """(check id, seconds) of every delivery so far; None where no reply came in time."""
        self._timeouts_in_a_row = 0
        self.last_error: DeliveryError | None = None
        """The last delivery that got no reply."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    def retarget(self, target: object, *, path: str | None = None, timeout: float | None = None) -> None:
        """Deliver the next checks to ``target`` (same checks, same timings so far); ``timeout`` defaults to
        twice the deadline."""
        if hasattr(self, "client"):
            self.close()
        self._owns_client = not isinstance(target, CallbackClient)
        if isinstance(target, CallbackClient):
            self.client = target
        else:
            self.client = CallbackClient(target, path=path, timeout=2 * self.deadline if timeout is None else timeout)

    def get(self, check_id: str) -> Check:
        """The check with this id."""
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(f"no check {check_id!r} (skipped, or not a check id)")

    def run(self, check: Check | str) -> CheckResult:
        """Run one check; whatever the handler does, a ``CheckResult`` comes back."""
        if isinstance(check, str):
            check = self.get(check)
        if self._timeouts_in_a_row >= STOP_AFTER_TIMEOUTS and check.family != "deadline":
            return CheckResult(
                check.id,
                False,
                f"not sent: the handler stopped answering (the last {self._timeouts_in_a_row} deliveries timed out)",
                None,
                check.rule,
            )
        try:
            return self._run(check)
        except DeliveryError as error:
            self.last_error = error
            curl = error.request.curl()
            return CheckResult(check.id, False, f"no reply: {error.reason}", None, check.rule, curl=curl)
        except Exception as exc:  # a bug of ours must not stop the other checks
            return CheckResult(check.id, False, f"pytest-voicecb could not run this check: {exc!r}", None, check.rule)

    def report(self, results: Iterable[CheckResult], elapsed: float = 0.0) -> Report:
        return Report(
            target=self.client.description,
            path=self.client.path,
            seed=self.seed,
            deadline=self.deadline,
            strict=self.strict,
            results=tuple(results),
            skipped=self.skipped,
            elapsed=elapsed,
            in_process=not isinstance(self.client.target, str),
        )

    # -- one check ---------------------------------------------------------------------------------

    def _deliver(self, check: Check, data: object) -> Reply:
        try:
            reply = self.client.post(data)
        except DeliveryError as error:
            self.timings.append((check.id, None))
            if error.timed_out:
                self._timeouts_in_a_row += 1
            raise
        self._timeouts_in_a_row = 0
        self.timings.append((check.id, reply.elapsed))
        return reply

    def _run(self, check: Check) -> CheckResult:
        if check.family == "duplicate":
            return self._duplicate(check)
        reply = self._deliver(check, check.data)
        if check.family == "deadline":
            return self._deadline(check, reply)
        verdict = judge(reply, check.data, strict=self.strict)
        return self._verdict(check, reply, verdict.problems, verdict.expected)

    def _verdict(self, check: Check, reply: Reply, problems: list[str], expected: str) -> CheckResult:
        if not problems:
            return CheckResult(check.id, True, "", reply, check.rule)
        got = f"got HTTP {reply.status} {preview(reply.body, 60)}"
        message = f"{expected}; {got}: {'; '.join(problems)}"
        return CheckResult(check.id, False, message, reply, check.rule, tuple(problems), reply.curl(), expected)

    def _duplicate(self, check: Check) -> CheckResult:
        callid = next(iter(check.data.values()))["callid"]
        for attempt in ("first", "second"):
            reply = self._deliver(check, check.data)
            problems = reply_problems(reply, "ok")
            if problems:
                return self._verdict(
                    check, reply, problems, f"{attempt} delivery of callid {callid}: expected a success reply"
                )
        return CheckResult(check.id, True, "", reply, check.rule)

    def _deadline(self, check: Check, reply: Reply) -> CheckResult:
        late = [(check_id, seconds) for check_id, seconds in self.timings if seconds is None or seconds > self.deadline]
        if not late:
            return CheckResult(check.id, True, "", reply, check.rule)
        unanswered = [check_id for check_id, seconds in late if seconds is None]
        slow = sorted(((s, i) for i, s in late if s is not None), reverse=True)
        parts = []
        if slow:
            seconds, slowest = slow[0]
            parts.append(
                f"{len(slow)} of {len(self.timings)} replies took over {self.deadline:g} s "
                f"(slowest: {slowest}, {seconds:.2f} s)"
            )
        if unanswered:
            parts.append(f"{len(unanswered)} deliveries got no reply in time (first: {unanswered[0]})")
        expected = f"every reply within {self.deadline:g} s"
        return CheckResult(check.id, False, "; ".join(parts), reply, check.rule, tuple(parts), reply.curl(), expected)


class Verdict(NamedTuple):
    """What the contract demanded of a reply (``expect``, under ``rule``) and how the reply fell short."""

    expect: Expect
    rule: int
    problems: list[str]

    @property
    def expected(self) -> str:
        return expectation(self.expect)


def judge(reply: Reply, sent: object, *, strict: bool = False) -> Verdict:
    """What the contract demands of the reply to ``sent``, and every way ``reply`` falls short of it.

    ``sent`` is what was delivered: a ``Case`` is judged by its ``expect`` (rules 2 and 3), anything else
    by whether ``parse_callback`` accepts it (rule 1; an invalid payload is held to rule 3). Under
    ``strict``, input that breaks the contract must be rejected. The one place the suite and
    ``voicecb send`` decide a verdict, so the two never disagree.
    """
    body = sent.body if isinstance(sent, Case) else sent
    valid = _is_valid_callback(body)
    if not isinstance(sent, Case) and valid:
        return Verdict("ok", 1, reply_problems(reply, "ok"))
    if isinstance(sent, Case) and sent.expect == "reject":
        if len(sent.body) > MAX_BODY_SIZE and reply.status == 413:
            return Verdict("error", 2, [])  # the size limit may sit in front of the handler
        return Verdict("error", 2, reply_problems(reply, "error"))
    if strict and not valid:
        return Verdict("error", 3, reply_problems(reply, "error"))
    return Verdict("contract", 3, reply_problems(reply, "contract"))


def _is_valid_callback(body: object) -> bool:
    try:
        parse_callback(body)  # type: ignore[arg-type]
    except CallbackError:
        return False
    return True


def run_conformance(
    target: object,
    *,
    path: str | None = None,
    deadline: float = DEFAULT_DEADLINE,
    strict: bool = False,
    skip: str | Iterable[str] = (),
    seed: object = None,
    factory: PayloadFactory | None = None,
    timeout: float | None = None,
) -> Report:
    """Run every check against ``target`` (a WSGI or ASGI app, a URL, a ``module:attribute``, or a
    ``CallbackClient``) and return the ``Report``.

    ``deadline``: seconds a reply may take (rule 6). ``strict``: robust cases whose body breaks the
    contract must be rejected. ``skip``: check ids or globs. ``seed`` / ``factory``: the payloads (a
    random seed by default, reported in ``Report.seed``). ``timeout``: how long to wait for a reply
    before failing the check (default: twice the deadline). A target with nothing listening raises
    ``DeliveryError`` at once instead of failing every check the same way.
    """
    begin = time.perf_counter()
    with Runner(
        target, path=path, deadline=deadline, strict=strict, timeout=timeout, seed=seed, factory=factory, skip=skip
    ) as runner:
        results: list[CheckResult] = []
        for check in runner.checks:
            results.append(runner.run(check))
            if len(results) == 1 and runner.last_error is not None and runner.last_error.unreachable:
                raise runner.last_error  # no handler there at all: one clear error, not every check failing alike
        return runner.report(results, time.perf_counter() - begin)
