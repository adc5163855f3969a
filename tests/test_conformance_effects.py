"""Rule 7: what the handler did counts. ``effects=`` snapshots it; duplicates, and unprocessable or rejected
input, must leave it unchanged. Real Flask handlers that dial a (fake) escalation call, in-process and
over HTTP; whatever ``effects`` does is reported, never a crash of the run."""

from __future__ import annotations

from typing import Any

import pytest

from pytest_voicecb.conformance import Report, Runner, run_conformance
from tests.handlers import escalation
from tests.handlers.serve import serving

SEED = 7
# Only the checks rule 7 is about, to keep the tests fast: duplicates, the corpus, and a few valid ones.
FAST = ["valid/*", "sibling/*", "deadline"]


def dialled(app: Any) -> Any:
    dialler = app.extensions["escalation"]
    return lambda: list(dialler.calls)


def run(app: Any, **options: Any) -> Report:
    return run_conformance(app, seed=SEED, effects=dialled(app), skip=options.pop("skip", FAST), **options)


def rule7(report: Report) -> set[str]:
    return {result.id for result in report.failures if result.rule == 7}


def test_an_idempotent_handler_passes_with_effects() -> None:
    app = escalation.create_app()
    report = run_conformance(app, seed=SEED, effects=dialled(app), skip="deadline")
    assert report.ok, str(report)
    assert app.extensions["escalation"].calls, "it did dial for the failed calls it was sent"


def test_redialling_on_a_duplicate_fails_every_duplicate_of_a_failed_call_with_the_diff() -> None:
    app = escalation.create_app("redial-duplicates")
    report = run(app)
    assert rule7(report) == {
        "duplicate/prompt/not-answered",
        "duplicate/prompt/call-error",
        "duplicate/code/not-answered",
        "duplicate/code/call-error",
        "duplicate/failure",
        "duplicate/failure/no-answer",
        "duplicate/at-once",
        "duplicate/status-and-failure-at-once",
    }
    assert "duplicate" not in rule7(report), "an answered call dials nothing, so its duplicate changes nothing"
    result = report["duplicate/prompt/not-answered"]
    assert result.effects is not None
    before, after = result.effects
    assert isinstance(before, list)
    assert isinstance(after, list)
    assert len(after) == len(before) + 1
    callid = result.message.split("callid ")[1].split(" ")[0]
    assert result.message.startswith(
        f"a repeat delivery of callid {callid} (a prompt/not-answered) changed effects(): added 1 item: ("
    )
    assert result.input == "prompt/not-answered"
    text = str(report)
    head = next(line for line in text.splitlines() if line.startswith("FAIL a repeat delivery changed "))
    assert head.startswith("FAIL a repeat delivery changed effects() \u00d7 8 checks (rule 7: "), head
    assert "<locals>" not in text
    assert "effects before: [" in report.format(verbose=True)


def test_dialling_on_a_garbage_body_fails_the_unprocessable_checks_it_acknowledged() -> None:
    app = escalation.create_app("dial-on-garbage")
    report = run(app)
    broke = rule7(report)
    assert {"reject/envelope/empty-body", "reject/envelope/truncated"} <= broke
    assert all(i.startswith(("reject/", "robust/", "duplicate")) for i in broke)
    assert report["reject/envelope/empty-body"].message.startswith(
        "a body that is no callback at all changed effects()"
    )
    # GBK text is a callback a lenient reader (Go, Node) reads with replacement characters: a warning
    assert report["reject/encoding/gbk"].warned
    # without effects, the same handler only warns: success to a body the provider never sends
    quiet = run_conformance(app, seed=SEED, skip=FAST)
    assert "reject/envelope/empty-body" in {result.id for result in quiet.warnings}
    assert quiet.ok


def test_a_race_between_two_deliveries_at_once_is_found_in_process_and_over_http() -> None:
    only = ["valid/*", "reject/*", "robust/*", "sibling/*", "deadline", "duplicate", "duplicate/[!as]*"]
    app = escalation.create_app("race")
    report = run(app, skip=only)
    assert rule7(report) == {"duplicate/at-once", "duplicate/status-and-failure-at-once"}, str(report)
    assert "where the same callbacks one by one changed it by 1" in report["duplicate/at-once"].message
    app = escalation.create_app("race")
    with serving(app) as base:
        over_http = run_conformance(base + "/voice/callback", seed=SEED, effects=dialled(app), skip=only)
    assert rule7(over_http) == {"duplicate/at-once", "duplicate/status-and-failure-at-once"}, str(over_http)


def test_a_snapshot_that_changes_on_every_request_fails_with_the_diff() -> None:
    app = escalation.create_app()
    dialler = app.extensions["escalation"]
    report = run_conformance(app, seed=SEED, effects=lambda: dialler.requests, skip=["valid/*", "robust/*"])
    assert not report.ok
    assert report["duplicate/keypress"].message.endswith(" -> " + str(report["duplicate/keypress"].effects[1]))  # type: ignore[index]
    assert {result.rule for result in report.failures} == {7}


class Unorderable:
    def __eq__(self, other: object) -> bool:
        raise TypeError("snapshots of this kind cannot be compared")

    __hash__ = None  # type: ignore[assignment]


@pytest.mark.parametrize(
    ("effects", "words"),
    [
        (lambda: 1 / 0, "raised ZeroDivisionError('division by zero')"),
        (Unorderable, "returned snapshots that cannot be compared: TypeError"),
    ],
    ids=["raises", "uncomparable"],
)
def test_whatever_effects_does_is_a_failed_check_naming_it_never_a_crash(effects: Any, words: str) -> None:
    app = escalation.create_app()
    report = run_conformance(app, seed=SEED, effects=effects, skip=["valid/*", "robust/*", "reject/[!e]*"])
    assert not report.ok
    assert report.results, "the run finished"
    broken = [result for result in report.failures if result.rule == 7]
    assert broken
    assert all("the effects callable" in result.message and words in result.message for result in broken)
    assert len(report.causes) == 1, "one cause, not one per check"


def test_effects_must_be_callable() -> None:
    with pytest.raises(TypeError, match="effects must be a callable"):
        Runner(escalation.create_app(), effects=[1, 2])  # type: ignore[arg-type]
