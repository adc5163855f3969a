"""run_conformance against real Flask, Django and FastAPI handlers: a correct one passes every check, each
broken one fails exactly the checks its bug breaks, and no handler behaviour crashes the suite."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from pytest_voicecb.client import DeliveryError
from pytest_voicecb.conformance import Check, Report, Runner, checks, run_conformance
from pytest_voicecb.contract import MAX_BODY_SIZE, CallbackError, parse_callback
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.malformed import Case
from tests.handlers import django_app, fastapi_app, flask_app
from tests.handlers.serve import serving

SEED = 20240611
ALL = checks(seed=SEED)
IDS = [check.id for check in ALL]


def ids_where(predicate: Callable[[Check], bool]) -> set[str]:
    return {check.id for check in ALL if predicate(check)}


def failed(report: Report) -> set[str]:
    return {result.id for result in report.failures}


def breaks_contract(case: Case) -> bool:
    try:
        parse_callback(case.body)
    except CallbackError:
        return True
    return False


def not_json(case: Case) -> bool:
    try:
        json.loads(case.body)
    except Exception:
        return True
    return False


EVERY_SUCCESS = ids_where(lambda c: c.family in ("valid", "duplicate", "together", "sibling"))
DUPLICATES = ids_where(lambda c: c.family in ("duplicate", "together"))
ROBUST_VALID = ids_where(lambda c: c.family == "robust" and not breaks_contract(c.data))
"""Questionable only in transport (a valid body under the wrong content type): the correct handler accepts."""
EVERY_REJECTION = ids_where(lambda c: c.family == "reject")
ROBUST_BREAKING = ids_where(lambda c: c.family == "robust" and breaks_contract(c.data))
NOT_PROMPT = ids_where(
    lambda c: (
        (
            c.id.startswith(("valid/code/", "valid/keypress/", "valid/failure/", "sibling/", "duplicate/code/"))
            or c.id.startswith(("duplicate/keypress", "duplicate/failure", "duplicate/status-and-failure"))
        )
        and c.id != "sibling/prompt"
    )
)


# ---- the list of checks ---------------------------------------------------------------------------


def test_every_rule_has_its_checks_with_stable_ids() -> None:
    factory = PayloadFactory(SEED)
    variants, cases = factory.variants(), factory.malformed()
    assert len(IDS) == len(set(IDS)) == len(variants) + len(cases) + len(DUPLICATES) + 5
    assert IDS[: len(variants)] == [f"valid/{v.id}" for v in variants]
    assert {f"reject/{c.id}" for c in cases if c.expect == "reject"} == EVERY_REJECTION
    assert {
        "duplicate",
        "duplicate/prompt/not-answered",
        "duplicate/prompt/call-error",
        "duplicate/code/answered",
        "duplicate/code/not-answered",
        "duplicate/code/call-error",
        "duplicate/keypress",
        "duplicate/failure",
        "duplicate/at-once",
        "duplicate/status-and-failure-at-once",
    } <= DUPLICATES
    assert IDS[-5:] == [
        "sibling/prompt",
        "sibling/code",
        "sibling/keypress",
        "sibling/failure",
        "deadline",
    ]
    assert {check.rule for check in ALL} == {1, 2, 3, 4, 5, 6}  # rule 7 is checked where effects= is given
    assert [c.id for c in checks(seed=1)] == IDS  # ids do not depend on the seed


def test_the_same_seed_builds_the_same_deliveries() -> None:
    assert [c.data for c in checks(seed=SEED)] == [c.data for c in ALL]
    assert [c.data for c in checks(seed=SEED + 1)] != [c.data for c in ALL]


def test_skip_takes_ids_and_globs() -> None:
    kept = [c.id for c in checks(seed=SEED, skip=["valid/*", "reject/transport/*", "duplicate"])]
    assert not any(i.startswith(("valid/", "reject/transport/")) or i == "duplicate" for i in kept)
    assert "sibling/code" in kept
    assert [c.id for c in checks(seed=SEED, skip="sibling/*")] == [i for i in IDS if not i.startswith("sibling/")]
    with pytest.raises(TypeError, match="skip takes check ids or globs"):
        checks(seed=SEED, skip=[1])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="skip takes check ids or globs"):
        checks(seed=SEED, skip=3)  # type: ignore[arg-type]


# ---- a correct handler passes everything -------------------------------------------------------


CORRECT = {
    "flask": flask_app.create_app,
    "django": lambda: django_app.application,
    "fastapi": lambda: fastapi_app.create_app(lifespan=True),
}


@pytest.mark.parametrize("framework", list(CORRECT))
def test_a_correct_handler_passes_every_check_in_process(framework: str) -> None:
    report = run_conformance(CORRECT[framework](), seed=SEED)
    assert report.ok, str(report)
    assert [r.id for r in report.results] == IDS
    assert report.seed == SEED
    assert "in-process" in report.target


@pytest.mark.parametrize("framework", list(CORRECT))
def test_a_correct_handler_passes_every_check_over_http(framework: str) -> None:
    with serving(CORRECT[framework]()) as base:
        report = run_conformance(base + "/voice/callback", seed=SEED)
    assert report.ok, str(report)
    assert report.target == base + "/voice/callback"


def test_a_correct_handler_passes_strict() -> None:
    assert run_conformance(flask_app.create_app(), seed=SEED, strict=True).ok


def test_a_413_from_the_framework_counts_as_rejecting_the_oversize_body() -> None:
    app = flask_app.create_app()
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_SIZE
    oversize = ids_where(lambda c: isinstance(c.data, Case) and len(c.data.body) > MAX_BODY_SIZE)
    assert oversize
    report = run_conformance(app, seed=SEED)
    assert report.ok, str(report)
    for check_id in oversize:
        reply = report[check_id].reply
        assert reply is not None
        assert reply.status == 413


# ---- broken handlers fail exactly what they break ------------------------------------------------


EXPECTED: dict[str, set[str]] = {
    "string-result": EVERY_SUCCESS | ROBUST_VALID,
    "no-errmsg": EVERY_SUCCESS | ROBUST_VALID,
    "reject-duplicates": DUPLICATES,
    "prompt-only": NOT_PROMPT,
    "crash-on-bad-json": ids_where(lambda c: isinstance(c.data, Case) and not_json(c.data)),
}


@pytest.mark.parametrize("bug", list(EXPECTED))
def test_a_broken_flask_handler_fails_exactly_its_checks(bug: str) -> None:
    report = run_conformance(flask_app.create_app(bug), seed=SEED)
    assert failed(report) == EXPECTED[bug], str(report)


def test_a_framework_error_page_to_a_body_the_provider_never_sends_warns_and_strict_fails_it() -> None:
    """CONTRACT.md rule 2: a non-contract 4xx (an HTML error page) to a corpus body is noise, not harm."""
    app = flask_app.create_app("html-errors")
    report = run_conformance(app, seed=SEED)
    assert not failed(report), str(report)
    warned = {result.id for result in report.warnings}
    assert warned >= EVERY_REJECTION | ROBUST_BREAKING
    assert "a non-contract HTTP 400 to a body the provider never sends" in report["reject/envelope/empty-body"].message
    assert failed(run_conformance(app, seed=SEED, strict=True)) >= EVERY_REJECTION | ROBUST_BREAKING


@pytest.mark.parametrize("bug", ["prompt-only", "crash-on-bad-json"])
def test_a_broken_django_handler_fails_exactly_its_checks(bug: str) -> None:
    report = run_conformance(django_app.create_app(bug), seed=SEED)
    assert failed(report) == EXPECTED[bug], str(report)


def test_a_broken_handler_fails_the_same_checks_over_http() -> None:
    with serving(flask_app.create_app("prompt-only")) as base:
        report = run_conformance(base, seed=SEED)
    assert failed(report) == NOT_PROMPT


def test_crash_on_empty_times_fails_the_unanswered_variants() -> None:
    report = run_conformance(fastapi_app.create_app("crash-on-empty-times"), seed=SEED)
    empty_times = ids_where(
        lambda c: (
            c.family == "valid"
            and any(
                isinstance(inner, dict) and "" in (inner.get("accept_time"), inner.get("end_calltime"))
                for inner in c.data.values()
            )
        )
    )
    assert {"valid/prompt/not-answered-times-empty", "valid/code/call-error-times-empty"} <= empty_times
    assert {i for i in failed(report) if i.startswith("valid/")} == empty_times
    assert all(i.startswith(("valid/", "reject/", "robust/")) for i in failed(report))
    message = report["valid/prompt/not-answered-times-empty"].message
    assert message.startswith("expected a success reply; got HTTP 500")


def test_a_pydantic_body_model_warns_on_every_rejection_with_its_422() -> None:
    report = run_conformance(fastapi_app.create_pydantic_app(), seed=SEED)
    warned = {result.id for result in report.warnings}
    assert warned >= EVERY_REJECTION
    assert not failed(report) & EVERY_SUCCESS
    rejected_with_422 = {i for i in warned if i in EVERY_REJECTION and report[i].reply.status != 200}  # type: ignore[union-attr]
    assert rejected_with_422
    with_422 = {i for i in rejected_with_422 if "got HTTP 422" in report[i].message}
    assert len(with_422) > len(rejected_with_422) * 0.8  # the rest: 400s for bodies it cannot parse
    # its model takes any string: an empty callid gets success, which warns (rule 2) and does not fail
    assert "reject/prompt/callid-empty" in warned


def test_strict_demands_rejection_of_questionable_input() -> None:
    app = flask_app.create_app("lenient")
    assert not {i for i in failed(run_conformance(app, seed=SEED)) if i.startswith("robust/")}
    strict = {i for i in failed(run_conformance(app, seed=SEED, strict=True)) if i.startswith("robust/")}
    assert strict
    assert strict <= ROBUST_BREAKING


# ---- faults: raises, hangs, slow, huge, unreachable ----------------------------------------------


def test_a_handler_that_raises_fails_every_check_without_crashing_the_suite() -> None:
    report = run_conformance(flask_app.create_app("raise"), seed=SEED, skip="deadline")
    assert len(report.failures) == len(IDS) - 1
    assert all("got HTTP 500" in result.message for result in report.failures)


def test_a_hung_handler_fails_fast_and_the_rest_are_not_sent() -> None:
    app = flask_app.create_app("hang")
    began = time.perf_counter()
    try:
        report = run_conformance(app, seed=SEED, deadline=0.1)
    finally:
        app.extensions["voicecb"].release.set()
    assert time.perf_counter() - began < 5
    assert not report.ok
    assert len(report.failures) == len(IDS)
    assert report.results[0].message.startswith("no reply: the app did not answer within 0.2 s")
    assert report.results[3].message == "not sent: the handler stopped answering (the last 3 deliveries timed out)"
    assert app.extensions["voicecb"].deliveries == 4  # three checks and the deadline check


def test_a_hung_url_fails_after_the_socket_timeout() -> None:
    app = flask_app.create_app("hang")
    with serving(app) as base:
        try:
            report = run_conformance(base, seed=SEED, deadline=0.1, skip=["valid/*", "reject/*", "robust/*"])
        finally:
            app.extensions["voicecb"].release.set()
    assert report.results[0].message.startswith("no reply: no reply within 0.2 s")
    assert report["deadline"].message.startswith("no reply")


def test_a_slow_handler_fails_the_deadline_check() -> None:
    app = flask_app.create_app("slow", delay=0.12)
    report = run_conformance(app, seed=SEED, deadline=0.1, timeout=2, skip=["valid/*", "reject/*", "robust/*", "dup*"])
    assert failed(report) == {"deadline"}
    assert report["deadline"].message.startswith("5 of 5 replies took over 0.1 s (slowest: ")


def test_a_100_mb_reply_fails_checks_quickly() -> None:
    began = time.perf_counter()
    report = run_conformance(
        flask_app.create_app("huge-reply"), seed=SEED, skip=["valid/*", "reject/*", "robust/*", "duplicate/*"]
    )
    assert time.perf_counter() - began < 10
    assert failed(report) == {"duplicate", "sibling/prompt", "sibling/code", "sibling/keypress", "sibling/failure"}
    assert "the reply is larger than 1,048,576 bytes" in report["sibling/code"].message


def test_nothing_listening_is_one_delivery_error() -> None:
    with serving(flask_app.create_app()) as base:
        pass  # the port is free again
    with pytest.raises(DeliveryError, match="connection refused") as caught:
        run_conformance(base + "/voice/callback", seed=SEED)
    assert caught.value.unreachable


# ---- the report -----------------------------------------------------------------------------------


def test_the_report_as_text_and_json() -> None:
    report = run_conformance(flask_app.create_app("reject-duplicates"), seed=SEED, skip="robust/*")
    text = str(report)
    lines = text.splitlines()
    assert lines[0].startswith("pytest-voicecb conformance of <Flask 'voicecb-reject-duplicates'> (in-process WSGI)")
    assert f"seed {SEED}" in lines[0]
    causes = report.causes
    assert sum(len(cause.results) for cause in causes) == len(report.failures) == len(DUPLICATES)
    assert {cause.rule for cause in causes} == {4}
    heads = [line for line in lines if line.startswith("FAIL HTTP 200 {")]
    assert len(heads) == len(causes)
    assert all(head.endswith("(rule 4: a duplicate gets success again)") for head in heads)
    assert '"errmsg": "…"' in heads[0], "replies that differ only in their words are one cause"
    assert "was already processed" in text, "the worked example shows the reply's words"
    assert any(line.startswith("  e.g. duplicate") and "delivery of callid" in line for line in lines)
    assert any(line.startswith("curl -sS -i -X POST http://localhost:8000/voice/callback") for line in lines)
    assert lines[-1].startswith(f"FAILED: {len(DUPLICATES)} of {len(report.results)} checks failed, ")
    assert lines[-1].endswith(f"(seed {SEED})")
    assert len(lines) < 40

    data = json.loads(report.to_json())
    assert data["ok"] is False
    assert data["seed"] == SEED
    assert data["target"] == report.target
    assert data["summary"]["failed"] == len(DUPLICATES)
    assert data["summary"]["warned"] == 0
    assert data["summary"]["skipped"] == len([i for i in IDS if i.startswith("robust/")])
    assert sum(cause["count"] for cause in data["causes"]) == len(DUPLICATES)
    entry = next(r for r in data["results"] if r["id"] == "duplicate")
    assert entry["passed"] is False
    assert entry["outcome"] == "failed"
    assert entry["rule"] == 4
    assert entry["cause"] in {cause["signature"] for cause in data["causes"]}
    assert entry["curl"].startswith("# in-process")
    assert report.to_dict() == data
    verbose = report.format(verbose=True).splitlines()
    assert all(f"  - {i}: " in "\n".join(verbose) for i in DUPLICATES)


def test_a_passing_report_says_so() -> None:
    report = run_conformance(flask_app.create_app(), seed=SEED, skip=["valid/*", "reject/*", "robust/*"])
    assert str(report).splitlines()[-1].startswith(f"PASSED: all {len(report.results)} checks passed, ")
    with pytest.raises(KeyError, match="no check 'valid/prompt/typical' in this report"):
        report["valid/prompt/typical"]


# ---- the runner, used one check at a time ------------------------------------------------------


def test_the_runner_runs_single_checks_and_judges_the_deadline_over_all_of_them() -> None:
    app = flask_app.create_app("slow", delay=0.0)
    with Runner(app, seed=SEED, deadline=0.1) as runner:
        assert runner.run("sibling/code").passed
        app.extensions["voicecb"].delay = 0.15
        assert runner.run("sibling/keypress").passed
        app.extensions["voicecb"].delay = 0.0
        deadline = runner.run("deadline")
        assert not deadline.passed
        assert "(slowest: sibling/keypress, " in deadline.message
        with pytest.raises(KeyError, match="no check 'nope'"):
            runner.run("nope")


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"deadline": 0}, ValueError, "deadline must be a positive number"),
        ({"deadline": "2"}, ValueError, "deadline must be a positive number"),
        ({"factory": object()}, TypeError, "factory must be a PayloadFactory"),
        ({"path": "voice"}, ValueError, "path must start with '/'"),
    ],
)
def test_bad_options_are_clear_errors(options: dict[str, Any], error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        run_conformance(flask_app.create_app(), **options)
