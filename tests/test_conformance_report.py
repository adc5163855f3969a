"""The report a team reads: causes, not lists. A naive handler's default report fits one screen; the
verbose one has every id; the signature of a cause ignores what changes from one delivery to the next."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.logging import default_handler

from pytest_voicecb.conformance import Runner, run_conformance
from pytest_voicecb.conformance.report import normalise
from tests.handlers import fastapi_app, flask_app
from tests.handlers.serve import serving

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SCREEN = 60


@pytest.fixture
def naive(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The naive handlers of the examples: Flask from the docs, FastAPI with a pydantic body model."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    from fastapi_handler import naive as fastapi_naive
    from flask_handler import naive as flask_naive

    # Flask logs an escaped exception to wsgi.errors (which the client reads) only where logging is not
    # configured; under pytest it is, so give the app the handler a plain deployment has.
    flask_naive.app.logger.addHandler(default_handler)
    yield {"flask": flask_naive.app, "fastapi": fastapi_naive.app}
    flask_naive.app.logger.removeHandler(default_handler)


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_a_naive_handlers_default_report_fits_one_screen(naive: dict[str, Any], framework: str) -> None:
    report = run_conformance(naive[framework], seed=1)
    assert len(report.failures) > 100
    text = str(report)
    assert len(text.splitlines()) < SCREEN, text
    causes = report.causes
    biggest = max(causes, key=lambda cause: len(cause.results))
    assert len(biggest.results) > 100, "the one bug behind most failures is one cause"
    assert biggest.rules[0] == 1
    outcomes = [cause.outcome for cause in causes]
    assert outcomes == sorted(outcomes), "every failing cause comes before any warning"
    assert text.count("\ncurl -sS") + text.count("\nprintf ") + text.count("\npython3 -c") >= 3
    verbose = report.format(verbose=True)
    assert all(f"  - {result.id}: " in verbose for result in report.failures + report.warnings)
    assert verbose.count("e.g. ") == len(causes)


def test_the_flask_naive_handlers_biggest_cause_names_its_exception(naive: dict[str, Any]) -> None:
    report = run_conformance(naive["flask"], seed=2)
    top = report.causes[0]
    assert top.signature == "HTTP 500 text/html (the app logged KeyError: 'voiceprompt_callback')"
    assert top.headline().startswith(f"FAIL {top.signature} \u00d7 {len(top.results)} checks (rule 1: ")
    lines = str(report).splitlines()
    logged = [line for line in lines if "the app logged:" in line]
    assert len(logged) <= 4, "the app's log once per worked example, not once per check"


def test_signatures_ignore_callids_numbers_and_addresses() -> None:
    assert normalise("callback 0bd403fe-ffd6-11eb-935a-5254002ab735 was already processed") == (
        "callback <uuid> was already processed"
    )
    assert normalise("callid 04f1259aa1b7489c9c95f0e9dff60b1f at 0x7f2709855b60, line 3") == (
        "callid <hex> at 0x…, line N"
    )


def test_one_bug_is_one_cause_however_the_bodies_differ() -> None:
    app = flask_app.create_app("crash-on-bad-json")
    app.logger.addHandler(default_handler)  # see the naive fixture
    report = run_conformance(app, seed=3)
    signatures = [cause.signature for cause in report.causes]
    assert "HTTP 500 text/html (the app logged JSONDecodeError)" in signatures
    assert len(report.causes) <= 4, signatures


def test_the_json_report_has_outcomes_causes_and_counts() -> None:
    report = run_conformance(fastapi_app.create_pydantic_app(), seed=4)
    data = json.loads(report.to_json())
    summary = data["summary"]
    assert summary["total"] == summary["passed"] + summary["warned"] + summary["failed"]
    assert summary["warned"] == len(report.warnings) > 0
    assert {entry["outcome"] for entry in data["results"]} == {"passed", "warned", "failed"}
    assert [cause["count"] for cause in data["causes"]] == [len(cause.results) for cause in report.causes]
    assert all(entry["cause"] for entry in data["results"] if entry["outcome"] != "passed")


def test_strict_turns_warnings_into_failures() -> None:
    app = flask_app.create_app("lenient")
    lenient = run_conformance(app, seed=5, skip="deadline")  # timing is not what this test is about
    assert lenient.ok
    assert lenient.warnings
    assert lenient.summary().startswith("PASSED with warnings: ")
    strict = run_conformance(flask_app.create_app("lenient"), seed=5, strict=True, skip="deadline")
    assert not strict.ok
    assert {result.id for result in strict.failures} == {result.id for result in lenient.warnings}


# ---- preflight, paths, runs -----------------------------------------------------------------------


def test_preflight_says_in_one_line_why_a_target_cannot_be_checked() -> None:
    with Runner(flask_app.create_app(), seed=1) as runner:
        assert runner.preflight() is None
    with Runner(flask_app.create_app(path="/hooks/voice"), seed=1) as runner:
        reason = runner.preflight()
    assert reason is not None
    assert reason.startswith("answered a valid callback with HTTP 404 ")
    assert reason.endswith("is this the callback URL? (the path is /voice/callback; set it with path=/--voicecb-path)")
    with serving(flask_app.create_app()) as base:
        pass  # nothing listens there any more
    with Runner(base + "/voice/callback", seed=1) as runner:
        reason = runner.preflight()
    assert reason is not None
    assert "connection refused" in reason
    assert "\n" not in reason


def test_a_handler_at_another_path_passes_with_path_and_paths() -> None:
    assert run_conformance(flask_app.create_app(path="/hooks/voice"), seed=1, path="/hooks/voice", skip="deadline").ok
    kinds = {"prompt": "/hooks/voice", "code": "/hooks/voice", "keypress": "/hooks/voice", "failure": "/hooks/voice"}
    report = run_conformance(flask_app.create_app(path="/hooks/voice"), seed=1, path="/elsewhere", paths=kinds)
    valid = [result for result in report.results if result.id.startswith("valid/")]
    assert all(result.passed for result in valid)


def test_two_runs_in_one_process_never_reuse_a_callid_and_a_fresh_process_repeats_the_first() -> None:
    import subprocess
    import sys

    app = flask_app.create_app()  # module-level in a real project: it sees both runs
    first = run_conformance(app, seed=9090, skip=["reject/*", "robust/*", "deadline"])
    second = run_conformance(app, seed=9090, skip=["reject/*", "robust/*", "deadline"])
    assert first.ok
    assert second.ok, "no 'first delivery' was really a duplicate of the first run's"
    assert second.run == 1
    assert "run 2 of this seed in this process" in second.header()

    def callids(report: Any) -> set[str]:
        found = set()
        for result in report.results:
            if result.reply is not None:
                data = json.loads(result.reply.request.body)
                found |= {inner["callid"] for inner in data.values() if isinstance(inner, dict)}
        return found

    assert not callids(first) & callids(second)
    script = (
        "import json, sys; from pytest_voicecb.conformance import run_conformance; "
        "from tests.handlers import flask_app; "
        "r = run_conformance(flask_app.create_app(), seed=9090, skip=['reject/*', 'robust/*', 'deadline']); "
        "print(json.dumps(sorted(json.loads(x.reply.request.body).__repr__() for x in r.results if x.reply)))"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, check=True)
    fresh = json.loads(out.stdout)
    assert fresh == sorted(json.loads(r.reply.request.body).__repr__() for r in first.results if r.reply)


def test_a_4xx_saying_result_0_is_contradictory_and_fails() -> None:
    from pytest_voicecb.contract import CallbackError, parse_callback

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        try:
            parse_callback(body)
            status = "200 OK"
        except CallbackError:
            status = "400 Bad Request"  # the right status, with a body that says the opposite
        start_response(status, [("Content-Type", "application/json")])
        return [b'{"result": 0, "errmsg": "OK"}']

    report = run_conformance(app, seed=6, skip=["valid/*", "duplicate*", "sibling/*", "deadline"])
    result = report["reject/envelope/empty-body"]
    assert result.failed
    assert result.problems == ("HTTP status 400 says failure but result 0 says success: contradictory",)
    assert not report.warnings, "a contradiction is never only a warning"


def test_the_same_app_gives_the_same_causes_with_and_without_pytests_logging_plugin(pytester: pytest.Pytester) -> None:
    """Flask logs an escaped exception to wsgi.errors only where logging is not configured, and pytest's
    logging plugin configures it: the client reads the app's log records itself, so the causes agree."""
    pytester.makepyfile(
        test_causes="""
        from flask import Flask, request

        def test_causes(voicecb_conformance):
            app = Flask("crashes")

            @app.post("/voice/callback")
            def callback():
                return {"result": 0, "errmsg": request.get_json(force=True)["voiceprompt_callback"]["callid"]}

            report = voicecb_conformance(app, assert_ok=False, skip=["robust/*", "deadline"])
            print("CAUSES", sorted(cause.signature for cause in report.causes))
        """
    )
    with_logging = pytester.runpytest("-s", "--voicecb-seed=3")
    without = pytester.runpytest("-s", "--voicecb-seed=3", "-p", "no:logging")
    causes = [next(line for line in run.outlines if "CAUSES [" in line) for run in (with_logging, without)]
    assert causes[0] == causes[1]
    assert "(the app logged KeyError: 'voiceprompt_callback')" in causes[0]
