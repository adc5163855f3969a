"""One check's window on the handler's side effects (CONTRACT.md rule 7), for the conformance runner.

``Watch`` calls ``prepare`` before each call's first delivery, takes the snapshot around each delivery,
judges each change (``effects.judge_change``) and folds the findings into the check's result, the worst by
harm first: a check that failed for its reply and for its effect says both.
"""

from __future__ import annotations

import dataclasses
from typing import Protocol

from pytest_voicecb.conformance.effects import EffectsOn, Finding, Watcher, judge_change
from pytest_voicecb.conformance.inputs import Input, decoded
from pytest_voicecb.conformance.report import CheckResult

__all__ = ["Watch", "racing"]


class _Runs(Protocol):
    """What a watch needs of the runner: its hooks and its verdict options."""

    watcher: Watcher
    effects_on: EffectsOn
    strict: bool


class Watch:
    """One check's window on the effects: ``prepare`` before each call's first delivery, a snapshot around
    each delivery, the verdict on each change (``effects.judge_change``), and the check's result with what
    its deliveries did, the worst finding by harm first. Without ``effects`` it only prepares."""

    def __init__(self, runner: _Runs, delivery: Input, *, required: bool = True) -> None:
        self.runner = runner
        self.watcher = runner.watcher
        self.on = self.watcher.watching
        self.name = self.watcher.name
        self.input = delivery
        self.required = required
        self.last: object = None
        self._before: object = None
        self._prepared: set[str] = set()
        self._acted: dict[str, bool] = {}
        self.changes: list[str] = []
        self.findings: list[tuple[Finding, object, object]] = []

    def snapshot(self) -> object:
        self.last = self.watcher.snapshot()
        return self.last

    def first(self, body: object, delivery: Input, *, snapshot: bool = True) -> None:
        """Before a call's first delivery: ``prepare`` it (once per callid), then the snapshot to compare with."""
        callid = delivery.callid
        if self.watcher.prepare_hook is not None and callid is not None and callid not in self._prepared:
            payload = body if isinstance(body, dict) else decoded(body)[0]  # type: ignore[arg-type]
            if isinstance(payload, dict):  # a callid was read from it, so it decodes
                self.watcher.prepare(payload)
                self._prepared.add(callid)
        if snapshot:
            self.mark()

    def mark(self) -> None:
        if self.on:
            self._before = self.snapshot()

    def change_of(self, before: object, after: object) -> str | None:
        return self.watcher.change(before, after)

    def judge(self, delivery: Input, *, per_call: bool = False) -> None:
        """What the delivery just made did, judged; ``per_call``: one effect per call is right, so a call
        that already acted may act again on its other callback, or not."""
        if not self.on:
            return
        before, after = self._before, self.snapshot()
        self._before = after
        change = self.watcher.change(before, after)
        if change is not None:
            self.changes.append(f"{delivery.describe()}: {change}")
        callid = delivery.callid
        if per_call and callid is not None and self._acted.get(callid):
            return
        if callid is not None and delivery.standing != "repeat":
            self._acted[callid] = self._acted.get(callid, False) or change is not None
        runner = self.runner
        finding = judge_change(
            delivery, change, runner.effects_on, self.name, strict=runner.strict, required=self.required
        )
        if finding is not None:
            self.found(finding, before, after)

    def found(self, finding: Finding, before: object, after: object) -> None:
        self.findings.append((finding, before, after))

    def result(self, result: CheckResult) -> CheckResult:
        """``result`` (the reply's verdict) with the effects' findings: the worst by harm leads, the rest
        follow in ``also``, so a check that failed for both says both."""
        seen = {"input": self.input.cls, "standing": self.input.standing, "change": "; ".join(self.changes) or None}
        if not self.findings:
            return dataclasses.replace(result, **seen)  # type: ignore[arg-type]
        findings = sorted(self.findings, key=lambda found: found[0].outcome != "failed")
        lead, before, after = findings[0]
        rest = [finding for finding, _, _ in findings[1:]]
        if result.failed and lead.outcome != "failed":  # a failed reply outranks a warned effect
            return dataclasses.replace(result, also=_unique([lead, *rest]), effects=(before, after), **seen)  # type: ignore[arg-type]
        watched = dataclasses.replace(result, also=_unique(rest), effects=(before, after), **seen)  # type: ignore[arg-type]
        return watched.seen_as(lead)


def _unique(findings: list[Finding]) -> tuple[Finding, ...]:
    """One finding per cause, the first of each, in order."""
    return tuple({finding.cause: finding for finding in reversed(findings)}.values())[::-1]


def racing(what: str, name: str, change: str) -> Finding:
    return Finding(
        "failed",
        7,
        f"deliveries at the same moment changed {name}() more than one by one",
        f"{what}: {change}",
        (f"{name}(): {change}",),
        "deliveries at the same moment must act no more than the same callbacks one by one",
    )
