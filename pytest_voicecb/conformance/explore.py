"""The exploration phase of the conformance suite: generated cases beyond the fixed corpus.

``explore(client, n, seed=...)`` lets Hypothesis draw ``n`` cases (valid callbacks of every kind from
``strategies.callbacks()``, broken ones from ``strategies.malformed()``), delivers each, judges each reply
with ``verdict.judge`` (so it agrees with the rest of the suite), and returns one failed ``CheckResult``
per DISTINCT cause (``report.signature`` of the reply, as ``Report.causes`` groups them), carrying the payload
Hypothesis shrank it to: ids ``explore/1``, ``explore/2`` ... in the order the causes were found.

A first pass delivers the ``n`` cases and notes each cause's first example; then, per cause, Hypothesis
replays the same draws until that cause shows up and shrinks it, so every cause is shrunk on its own.
The run is reproducible from the seed (``hypothesis.seed``, no example database) as long as the handler
is deterministic; the explain phase is off (it is slow). Hypothesis is imported only when exploring;
without it, a clear ``ImportError`` names the extra to install.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pytest_voicecb import _arguments
from pytest_voicecb._text import one_line, preview
from pytest_voicecb.conformance.report import CheckResult, signature
from pytest_voicecb.conformance.verdict import judge

if TYPE_CHECKING:
    from pytest_voicecb.client import CallbackClient, Reply

__all__ = ["explore"]

STOP_AFTER_TIMEOUTS = 3
"""Deliveries in a row without a reply in time after which the remaining generated cases are not sent."""


class _Found(AssertionError):
    """A failing reply to a generated case, raised in the Hypothesis test so it shrinks the case."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.message)
        self.result = result


def _stopped(exc: BaseException, where: str) -> CheckResult:
    message = f"the exploration phase stopped: {one_line(f'{type(exc).__name__}: {exc}', 300)} ({where})"
    return CheckResult(id="explore", outcome="failed", rule=1, message=message, cause=message)


def explore(
    client: CallbackClient,
    n: int,
    *,
    seed: object,
    strict: bool = False,
    deadline: float | None = None,
) -> list[CheckResult]:
    """Deliver ``n`` generated cases through ``client``; one failed ``CheckResult`` per distinct cause,
    with the shrunk payload (and its curl) as its reply's request. ``deadline``: a slower reply is a failure
    too (rule 6). Never raises for what the handler does.

    Two passes, both from the same seed: the first delivers the ``n`` cases and notes the first example of
    each cause; then, per cause, Hypothesis replays the same draws until that cause shows up and shrinks it
    (a cause that is a timeout or a slow reply is not shrunk: each attempt would cost the whole wait).
    """
    n = _arguments.whole("explore", n)
    if n == 0:
        return []
    hypothesis, st = import_hypothesis()
    # Imported by name from the module itself, not as an attribute of the package: a test runner that
    # unloads our modules between runs (pytester) leaves a stale attribute there, but never in sys.modules.
    from pytest_voicecb.integrations.strategies import callbacks, malformed

    run = _runner(hypothesis, st.one_of(callbacks(), malformed()), n, seed)
    deliver = _Sender(client, strict=strict, deadline=deadline)
    where = f"explored {n} generated cases with seed {seed!r}"
    results: list[CheckResult] = []
    for key, example in _survey(run, deliver, hypothesis.Phase, where).items():
        shrunk = example
        if example.rule != 6 and example.reply is not None:
            shrunk = _shrink(run, deliver, key, hypothesis.Phase) or example
        note = "the payload is the shrunk example" if shrunk is not example else "not shrunk"
        message = f"{shrunk.message} ({where}; {note})"
        results.append(dataclasses.replace(shrunk, id=f"explore/{len(results) + 1}", message=message))
    return results


class _Sender:
    """Delivers a generated case through the client and judges the reply (None: not sent, because the
    handler stopped answering: ``STOP_AFTER_TIMEOUTS`` timeouts in a row)."""

    def __init__(self, client: CallbackClient, *, strict: bool, deadline: float | None) -> None:
        self.client, self.strict, self.deadline = client, strict, deadline
        self.timeouts = 0

    def __call__(self, sent: Any) -> CheckResult | None:
        if self.timeouts >= STOP_AFTER_TIMEOUTS:
            return None  # no point sending more
        from pytest_voicecb.client import DeliveryError

        try:
            reply = self.client.post(sent)
        except DeliveryError as error:
            self.timeouts = self.timeouts + 1 if error.timed_out else 0
            message = f"no reply: {error.reason}"
            result = CheckResult(
                id="explore",
                outcome="failed",
                rule=6 if error.timed_out else 1,
                message=message,
                cause=signature(None, message),
            )
            return dataclasses.replace(result, curl=error.request.curl())
        self.timeouts = 0
        return _judged(reply, sent, strict=self.strict, deadline=self.deadline)


_Run = Callable[[Callable[[Any], None], tuple[Any, ...]], None]


def _runner(hypothesis: Any, cases: Any, n: int, seed: object) -> _Run:
    """``run(test, phases)``: Hypothesis runs ``test`` on ``n`` draws of ``cases``, always the same draws
    for ``seed`` (no example database), quietly, never the explain phase (it is slow)."""

    def run(test: Callable[[Any], None], phases: tuple[Any, ...]) -> None:
        settings = hypothesis.settings(
            max_examples=n,
            database=None,
            deadline=None,
            phases=phases,
            report_multiple_bugs=False,
            suppress_health_check=list(hypothesis.HealthCheck),
            verbosity=hypothesis.Verbosity.quiet,
            print_blob=False,
        )
        hypothesis.seed(_seed_of(seed))(settings(hypothesis.given(cases)(test)))()

    return run


def _survey(run: _Run, deliver: Callable[[Any], CheckResult | None], phase: Any, where: str) -> dict[str, CheckResult]:
    """The first pass: every draw delivered, the first example of each cause kept (by cause signature,
    as ``Report`` groups them); Hypothesis' own complaint is a cause too."""
    first: dict[str, CheckResult] = {}

    def survey(sent: Any) -> None:
        result = deliver(sent)
        if result is not None:
            first.setdefault(result.cause, result)

    try:
        run(survey, (phase.generate,))
    except Exception as exc:  # Hypothesis' own complaint (an unsatisfiable strategy, a bug of ours)
        stopped = _stopped(exc, where)
        first.setdefault(stopped.cause, stopped)
    return first


def _shrink(
    run: _Run,
    deliver: Callable[[Any], CheckResult | None],
    key: str,
    phase: Any,
) -> CheckResult | None:
    """Replay the draws until ``key``'s cause shows up, let Hypothesis shrink it, and return the result of
    the final (minimal) example; None if it did not show up again (a handler that is not deterministic)."""

    def only_this(sent: Any) -> None:
        result = deliver(sent)
        if result is not None and result.cause == key:
            raise _Found(result)

    try:
        run(only_this, (phase.generate, phase.shrink))
    except _Found as found:
        return found.result
    except Exception:  # Flaky and the like: keep the unshrunk example
        return None
    return None


def import_hypothesis() -> tuple[Any, Any]:
    """``hypothesis`` and ``hypothesis.strategies``, or an ``ImportError`` naming the extra to install."""
    try:
        import hypothesis
        from hypothesis import strategies as st
    except ImportError:
        raise ImportError(
            "the exploration phase (explore=N, --voicecb-explore, voicecb check --explore) needs Hypothesis: "
            'pip install "pytest-voicecb[hypothesis]"'
        ) from None
    from pytest_voicecb.integrations._versions import require

    require("hypothesis", hypothesis.__version__, (6, 0), "hypothesis", "the exploration phase")
    return hypothesis, st


def _seed_of(seed: object) -> int:
    """An integer for ``hypothesis.seed`` from any seed the suite uses (an int, a string, a tuple)."""
    if isinstance(seed, int) and not isinstance(seed, bool):
        return seed
    import hashlib

    return int.from_bytes(hashlib.sha256(repr(seed).encode("utf-8", "surrogatepass")).digest()[:8], "big")


def _judged(reply: Reply, sent: Any, *, strict: bool, deadline: float | None) -> CheckResult | None:
    """A failed result for this reply, or None: the verdict of ``judge``, then the deadline."""
    verdict = judge(reply, sent, strict=strict)
    if verdict.outcome == "failed":
        got = f"got HTTP {reply.status} {preview(reply.body, 60)}"
        return CheckResult(
            id="explore",
            outcome="failed",
            rule=verdict.rule,
            message=f"{verdict.expected}; {got}: {'; '.join(verdict.problems)}",
            reply=reply,
            problems=tuple(verdict.problems),
            expected=verdict.expected,
            cause=signature(reply),
        )
    if deadline is not None and reply.elapsed > deadline:
        problem = f"the reply took {reply.elapsed:.2f} s, over the {deadline:g} s deadline"
        return CheckResult(
            id="explore",
            outcome="failed",
            rule=6,
            message=problem,
            reply=reply,
            problems=(problem,),
            expected=f"a reply within {deadline:g} s",
            cause=f"replies slower than {deadline:g} s",
        )
    return None
