"""The conformance suite: every handler rule of CONTRACT.md run against one target.

``run_conformance(target)`` delivers every valid variant of the four kinds (rule 1), every ``reject``
case of the malformed corpus (rule 2), every ``robust`` case (rule 3), duplicates of every kind and
outcome, one by one and at the same moment (rule 4), one callback of each kind at the same path
(rule 5), and times every reply against a deadline (rule 6). Given ``effects``, a callable returning a
snapshot of what the handler did, it takes the snapshot around every check and judges each change by
harm (rule 7, ``pytest_voicecb.conformance.effects``): by the delivery's input class and standing
(``pytest_voicecb.conformance.inputs``) and the declared ``effects_on``; ``prepare`` registers each call first.

Each result is passed, warned or failed: what breaks delivery fails; acknowledging input the provider
never sends (rule 2's rejection part, rule 3's questionable input) warns; ``strict`` turns warnings into
failures. Each check has a stable id (``valid/prompt/typical``, ``reject/envelope/array-root``,
``duplicate/prompt/not-answered``, ``sibling/keypress``, ``deadline`` ...), and which checks run and
what each proves does not depend on the seed (only incidental values do). A handler that raises or
hangs makes its check fail; the suite itself never crashes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sized
from typing import Any

from pytest_voicecb import _arguments, _deprecation
from pytest_voicecb._text import preview
from pytest_voicecb.client import CallbackClient, DeliveryError, Reply
from pytest_voicecb.conformance.checklist import Check, Together, checks, every_check, matches, skip_patterns
from pytest_voicecb.conformance.effects import EffectsFailed, EffectsOn, StopRun, Watcher
from pytest_voicecb.conformance.inputs import classify
from pytest_voicecb.conformance.report import RULES, Cause, CheckResult, Outcome, Report, signature
from pytest_voicecb.conformance.verdict import Verdict, judge, reply_problems
from pytest_voicecb.conformance.watching import Watch, racing
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.values import Case

__all__ = [
    "DEFAULT_DEADLINE",
    "RULES",
    "Cause",
    "Check",
    "CheckResult",
    "Outcome",
    "Report",
    "Runner",
    "StopRun",
    "Together",
    "Verdict",
    "checks",
    "judge",
    "run_conformance",
]

DEFAULT_DEADLINE = 2.0
"""Seconds a reply may take (CONTRACT.md rule 6: the provider's timeout is unconfirmed, so it is an option)."""

STOP_AFTER_TIMEOUTS = 3
"""After this many deliveries in a row got no reply in time, the remaining checks fail without being sent."""

_RUNS: dict[str, int] = {}
_RUNS_LOCK = threading.Lock()


def _next_run(seed: object) -> int:
    with _RUNS_LOCK:
        run = _RUNS.get(str(seed), 0)
        _RUNS[str(seed)] = run + 1
    return run


# ---- running them -------------------------------------------------------------------------------


class Runner:
    """Runs checks one by one against a target, sharing one client (one keep-alive connection).

    ``run_conformance`` uses it for a whole run; the pytest plugin uses it to run each check as a test.
    The ``deadline`` check judges every reply this runner has seen, not only its own. ``preflight()``
    says in one line why a target cannot be checked at all (nothing listening, the wrong path).
    """

    def __init__(
        self,
        target: object,
        *,
        path: str | None = None,
        paths: Mapping[str, str] | None = None,
        deadline: float = DEFAULT_DEADLINE,
        strict: bool = False,
        timeout: float | None = None,
        seed: object = None,
        factory: PayloadFactory | None = None,
        skip: str | Iterable[str] = (),
        effects: Callable[[], object] | None = None,
        effects_on: Iterable[str] | str | None = None,
        prepare: Callable[[dict[str, Any]], object] | None = None,
        effects_name: str | None = None,
        explore: int = 0,
    ) -> None:
        deadline = _arguments.seconds("deadline", deadline)
        self.explore = _arguments.whole("explore", explore)
        if self.explore:
            from pytest_voicecb.conformance.explore import import_hypothesis

            import_hypothesis()  # missing or too old: say so now, before any check runs
        if factory is None:
            factory = PayloadFactory(seed)
        elif not isinstance(factory, PayloadFactory):
            raise TypeError(f"factory must be a PayloadFactory, got {type(factory).__name__}")
        self.watch(effects, effects_on, prepare, effects_name)
        self.deadline = float(deadline)
        self.strict = bool(strict)
        self.client: CallbackClient
        self.factory = factory
        self.seed = factory.seed
        self.run_number = _next_run(factory.seed)
        # Incidental values from the typical set, so the verdict does not hang on the seed (edge values
        # appear only in the checks named after them).
        typical = factory.typical()
        stream = typical if self.run_number == 0 else typical.derive(f"run-{self.run_number}")
        patterns = skip_patterns(skip)
        self._owns_client = False
        self.deliver_to(target, path=path, paths=paths, timeout=timeout)
        every = every_check(stream)
        self.checks = [check for check in every if not matches(check.id, patterns)]
        self.skipped = tuple(check.id for check in every if matches(check.id, patterns))
        self._preflight_payload = stream.derive("preflight").answered()
        self.timings: list[tuple[str, float | None]] = []
        """(check id, seconds) of every delivery so far; None where no reply came in time."""
        self._timeouts_in_a_row = 0
        self.last_error: DeliveryError | None = None
        """The last delivery that got no reply."""
        self._explored: list[CheckResult] | None = None
        self._explore_seconds = 0.0

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    @property
    def effects(self) -> Callable[[], object] | None:
        """The effects callable (``None``: side effects are not watched)."""
        return self.watcher.effects

    def watch(
        self,
        effects: Callable[[], object] | None,
        effects_on: Iterable[str] | str | None = None,
        prepare: Callable[[dict[str, Any]], object] | None = None,
        effects_name: str | None = None,
    ) -> None:
        """Judge the next checks' side effects with these hooks (the pytest items' fixtures may change)."""
        watcher = Watcher(effects, prepare, name=effects_name)
        expect = EffectsOn(effects_on)
        if expect.declared and effects is None:
            raise ValueError("effects_on needs effects= too: a callable returning a snapshot of what the handler did")
        self.watcher, self.effects_on = watcher, expect

    def retarget(self, *args: Any, **kwargs: Any) -> None:
        """Deprecated: ``deliver_to``, the one verb for where callbacks go (as ``Provider.deliver_to``)."""
        _deprecation.warn("Runner.retarget", "Runner.deliver_to")
        self.deliver_to(*args, **kwargs)

    def deliver_to(
        self,
        target: object,
        *,
        path: str | None = None,
        paths: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> None:
        """Deliver the next checks to ``target`` (same checks, same timings so far); ``timeout`` defaults to
        twice the deadline. A ``CallbackClient`` is used as is."""
        if hasattr(self, "client"):
            self.close()
        self._owns_client = not isinstance(target, CallbackClient)
        if isinstance(target, CallbackClient):
            self.client = target
        else:
            limit = 2 * self.deadline if timeout is None else timeout
            self.client = CallbackClient(target, path=path, paths=paths, timeout=limit)

    def get(self, check_id: str) -> Check:
        """The check with this id."""
        for check in self.checks:
            if check.id == check_id:
                return check
        raise KeyError(f"no check {check_id!r} (skipped, or not a check id)")

    def preflight(self) -> str | None:
        """Deliver one valid callback: None when the handler is there and answers at this path (whatever
        it answers, the checks judge it), else one line saying why checking it is pointless (nothing
        listening, no reply, or HTTP 404/405/3xx: the wrong URL)."""
        try:
            reply = self.client.post(self._preflight_payload)
        except DeliveryError as error:
            return error.reason
        if reply.status in (404, 405) or 300 <= reply.status < 400:
            return (
                f"answered a valid callback with HTTP {reply.status} {preview(reply.body, 60)}: is this the "
                f"callback URL? (the path is {self.client.path}; set it with path=/--voicecb-path)"
            )
        return None

    def run(self, check: Check | str) -> CheckResult:
        """Run one check; whatever the handler (or ``effects``) does, a ``CheckResult`` comes back."""
        if isinstance(check, str):
            check = self.get(check)
        if self._timeouts_in_a_row >= STOP_AFTER_TIMEOUTS and check.family != "deadline":
            message = (
                f"not sent: the handler stopped answering (the last {self._timeouts_in_a_row} deliveries timed out)"
            )
            return _failed(check.id, check.rule, message, cause="not sent: the handler stopped answering")
        try:
            return self._run(check)
        except DeliveryError as error:
            self.last_error = error
            message = f"no reply: {error.reason}"
            return _failed(check.id, check.rule, message, curl=error.request.curl(), cause=signature(None, message))
        except EffectsFailed as exc:
            return _failed(check.id, 7, str(exc.args[0]), cause=str(exc.args[1]))
        except StopRun:
            raise
        except Exception as exc:  # a bug of ours must not stop the other checks
            message = f"pytest-voicecb could not run this check: {exc!r}"
            return _failed(check.id, check.rule, message, cause=signature(None, message))

    def explored(self) -> list[CheckResult]:
        """The exploration phase's results (``explore`` generated cases; one failed ``explore/<n>`` result
        per distinct cause), run once, on first call; empty when ``explore`` is 0."""
        if self._explored is None:
            self._explored = []
            if self.explore:
                from pytest_voicecb.conformance.explore import explore

                begin = time.perf_counter()
                self._explored = explore(
                    self.client, self.explore, seed=self.seed, strict=self.strict, deadline=self.deadline
                )
                self._explore_seconds = time.perf_counter() - begin
        return self._explored

    def report(self, results: Iterable[CheckResult], elapsed: float = 0.0) -> Report:
        """The ``Report`` of these results, after the exploration phase's (run now if ``explore`` > 0 and
        it has not run yet, so every caller that builds a report gets it)."""
        results = tuple(results)
        if self.explore:
            ran = {result.id for result in results}
            results += tuple(result for result in self.explored() if result.id not in ran)
            elapsed += self._explore_seconds
        return Report(
            target=self.client.description,
            path=self.client.path,
            seed=self.seed,
            deadline=self.deadline,
            strict=self.strict,
            results=results,
            skipped=self.skipped,
            elapsed=elapsed,
            in_process=not isinstance(self.client.target, str),
            run=self.run_number,
            effects_name=self.watcher.name,
            effects_on=self.effects_on.classes if self.effects_on.declared else None,
        )

    # -- one check ---------------------------------------------------------------------------------

    def _deliver(self, check: Check, data: object) -> Reply:
        try:
            reply = self.client.post(data)
        except DeliveryError as error:
            self._timed(check, error)
            raise
        self._timed(check, reply)
        return reply

    def _timed(self, check: Check, outcome: Reply | DeliveryError) -> None:
        if isinstance(outcome, DeliveryError):
            self.timings.append((check.id, None))
            if outcome.timed_out:
                self._timeouts_in_a_row += 1
        else:
            self._timeouts_in_a_row = 0
            self.timings.append((check.id, outcome.elapsed))

    def _run(self, check: Check) -> CheckResult:
        if check.family == "duplicate":
            return self._duplicate(check)
        if check.family == "together":
            return self._together(check)
        body = check.data.body if isinstance(check.data, Case) else check.data
        delivery = classify(body)
        watch = Watch(self, delivery, required=check.family not in ("reject", "robust"))
        watch.first(body, delivery)
        reply = self._deliver(check, check.data)
        if check.family == "deadline":
            result = self._deadline(check, reply)
        else:
            verdict = judge(reply, check.data, strict=self.strict)
            result = self._verdict(check, reply, verdict.problems, verdict.expected, verdict.outcome)
        watch.judge(delivery)
        return watch.result(result)

    def _verdict(
        self, check: Check, reply: Reply, problems: list[str], expected: str, outcome: Outcome = "failed"
    ) -> CheckResult:
        if not problems:
            return CheckResult(id=check.id, outcome="passed", rule=check.rule, reply=reply)
        got = f"got HTTP {reply.status} {preview(reply.body, 60)}"
        return CheckResult(
            id=check.id,
            outcome=outcome if outcome != "passed" else "failed",
            rule=check.rule,
            message=f"{expected}; {got}: {'; '.join(problems)}",
            reply=reply,
            problems=tuple(problems),
            expected=expected,
            cause=signature(reply) if outcome == "failed" else f"{signature(reply)} to {_family_words(check)}",
        )

    def _success(self, check: Check, reply: Reply, expected: str, first: CheckResult | None) -> CheckResult:
        """The first reply that was not a success decides the reply's verdict; the rest still get delivered."""
        if first is not None and not first.passed:
            return first
        problems = reply_problems(reply, "ok")
        return self._verdict(check, reply, problems, expected)

    def _duplicate(self, check: Check) -> CheckResult:
        """The same callback twice, one after the other: success both times, and the second delivery does
        nothing (the first is judged as any valid first delivery is)."""
        callid = next(iter(check.data.values()))["callid"]
        delivery = classify(check.data)
        watch = Watch(self, delivery)
        watch.first(check.data, delivery)
        result: CheckResult | None = None
        for attempt in ("first", "second"):
            reply = self._deliver(check, check.data)
            expected = f"{attempt} delivery of callid {callid}: expected a success reply"
            result = self._success(check, reply, expected, result)
            watch.judge(delivery if attempt == "first" else delivery.repeated())
        assert result is not None
        return watch.result(result)

    def _together(self, check: Check) -> CheckResult:
        """Deliver the items at the same moment, twice over: every reply must be a success. With effects:
        first the twins (the same shapes, other callids) one by one, each judged as a first delivery (one
        effect per call: the second callback of a call that already acted may act or not); then the round
        at once may change the snapshot no more than the twins did (where the snapshot has a size: a
        number, or a collection's length), and the second round (repeats) must leave it unchanged."""
        together: Together = check.data
        items = list(together.items)
        deliveries = [classify(item) for item in items]
        watch = Watch(self, deliveries[0])
        result: CheckResult | None = None
        grew: float | None = None
        if watch.on:
            start = watch.snapshot()
            for twin in together.twins:
                delivery = classify(twin)
                watch.first(twin, delivery)
                reply = self._deliver(check, twin)
                result = self._success(check, reply, "a single delivery: expected a success reply", result)
                watch.judge(delivery, per_call=True)
            grew = _growth(start, watch.last)
        for attempt in ("first", "second"):
            if attempt == "first":
                for item, delivery in zip(items, deliveries, strict=True):
                    watch.first(item, delivery, snapshot=False)
            watch.mark()
            outcomes = self.client.post_concurrently(items)
            for outcome in outcomes:
                self._timed(check, outcome)
            for outcome in outcomes:
                if isinstance(outcome, DeliveryError):
                    raise outcome
                expected = f"{attempt} round of {len(items)} deliveries at the same moment: expected success"
                result = self._success(check, outcome, expected, result)
            if not watch.on:
                continue
            if attempt == "second":
                watch.judge(deliveries[0].repeated())
                continue
            before = watch.last
            after = watch.snapshot()
            grew_now = _growth(before, after)
            if grew is not None and grew_now is not None and grew_now > grew:
                what = (
                    f"{len(items)} deliveries at the same moment changed {watch.name}() by {grew_now:g} where the "
                    f"same callbacks one by one changed it by {grew:g}"
                )
                watch.found(racing(what, watch.name, watch.change_of(before, after) or ""), before, after)
        assert result is not None
        return watch.result(result)

    def _deadline(self, check: Check, reply: Reply) -> CheckResult:
        late = [(check_id, seconds) for check_id, seconds in self.timings if seconds is None or seconds > self.deadline]
        if not late:
            return CheckResult(id=check.id, outcome="passed", rule=check.rule, reply=reply)
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
        return CheckResult(
            id=check.id,
            outcome="failed",
            rule=check.rule,
            message="; ".join(parts),
            reply=reply,
            problems=tuple(parts),
            expected=f"every reply within {self.deadline:g} s",
            cause=f"replies slower than {self.deadline:g} s",
        )


def _growth(before: object, after: object) -> float | None:
    """How much a snapshot grew, where it has a size (a number, or a collection's length); else None."""
    sizes = []
    for snapshot in (before, after):
        if isinstance(snapshot, bool):
            return None
        if isinstance(snapshot, (int, float)):
            sizes.append(float(snapshot))
        elif isinstance(snapshot, Sized):
            sizes.append(float(len(snapshot)))
        else:
            return None
    return sizes[1] - sizes[0]


def _family_words(check: Check) -> str:
    return {
        "valid": "valid input rejected",
        "reject": "unprocessable input",
        "robust": "questionable input",
        "duplicate": "a duplicate delivery",
        "together": "deliveries at the same moment",
        "sibling": "a sibling kind",
        "deadline": "the deadline",
    }[check.family]


def _failed(check_id: str, rule: int, message: str, *, curl: str | None = None, cause: str = "") -> CheckResult:
    return CheckResult(id=check_id, outcome="failed", rule=rule, message=message, curl=curl, cause=cause or message)


def run_conformance(
    target: object,
    *,
    path: str | None = None,
    paths: Mapping[str, str] | None = None,
    deadline: float = DEFAULT_DEADLINE,
    strict: bool = False,
    skip: str | Iterable[str] = (),
    seed: object = None,
    factory: PayloadFactory | None = None,
    timeout: float | None = None,
    effects: Callable[[], object] | None = None,
    effects_on: Iterable[str] | str | None = None,
    prepare: Callable[[dict[str, Any]], object] | None = None,
    effects_name: str | None = None,
    explore: int = 0,
) -> Report:
    """Run every check against ``target`` (a WSGI or ASGI app, a URL, a ``module:attribute``, or a
    ``CallbackClient``) and return the ``Report``.

    ``path`` / ``paths``: where callbacks go (``paths`` maps kinds to their own paths). ``deadline``:
    seconds a reply may take (rule 6). ``strict``: success answered to input that breaks the contract
    fails instead of warning. ``skip``: check ids or globs. ``seed`` / ``factory``: the payloads (a random
    seed by default, reported in ``Report.seed``). ``timeout``: how long to wait for a reply before
    failing the check (default: twice the deadline). ``effects``: a callable returning a comparable
    snapshot of what the handler did (calls placed, rows written), taken around every check: a repeat
    delivery or a body that is no callback must leave it unchanged, a questionable callback changing it
    warns (CONTRACT.md rule 7). ``effects_on``: the input classes (``"prompt/not-answered"``,
    ``"failure"`` for all its outcomes ...) whose first valid delivery should change it; a change on any
    other class, or none on one of these, fails (without it, changes on valid input are reported).
    ``prepare``: called with each callback (the JSON object as a dict) before its call's first delivery,
    to create the record a handler that acts only on calls it placed looks up. ``effects_name``: how
    messages name the snapshot (default: the callable's name). ``explore``: after the fixed corpus,
    deliver this many cases generated by Hypothesis (``pip install "pytest-voicecb[hypothesis]"``) and
    report each distinct failure as ``explore/<n>`` with its shrunk payload, reproducible from the seed
    (0, the default: none). A target
    with nothing listening raises ``DeliveryError`` at once instead of failing every check the same way.
    """
    begin = time.perf_counter()
    with Runner(
        target,
        path=path,
        paths=paths,
        deadline=deadline,
        strict=strict,
        timeout=timeout,
        seed=seed,
        factory=factory,
        skip=skip,
        effects=effects,
        effects_on=effects_on,
        prepare=prepare,
        effects_name=effects_name,
        explore=explore,
    ) as runner:
        results: list[CheckResult] = []
        for check in runner.checks:
            results.append(runner.run(check))
            if len(results) == 1 and runner.last_error is not None and runner.last_error.unreachable:
                raise runner.last_error  # no handler there at all: one clear error, not every check failing alike
        return runner.report(results, time.perf_counter() - begin)
