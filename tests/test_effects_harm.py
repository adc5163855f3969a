"""Rule 7 by harm: what a handler *does* on every check, judged against ``effects_on``, with ``prepare`` for
handlers that act only on calls they placed. The handlers are shaped like the public ones we measured
(``tests/handlers/effects_apps.py``); each verdict is shown in-process and, for the same handler served on
loopback, through ``voicecb check --effects-url/--prepare-url``."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from pytest_voicecb.conformance import Report, run_conformance
from pytest_voicecb.conformance.effects import EffectsOn
from tests.handlers.effects_apps import ESCALATES, EdgeRejecter, EffectsApp
from tests.handlers.serve import serving
from tests.raw_upstream import raw_server, read_request

SEED = 11
QUICK = ["deadline", "reject/transport/deep-nesting"]  # the deep-nesting case crashes the stdlib json: not ours


def run(app: EffectsApp, **options: Any) -> Report:
    options.setdefault("effects", app.effects)
    return run_conformance(app, seed=SEED, skip=options.pop("skip", QUICK), **options)


def rule7(report: Report, outcome: str = "failed") -> dict[str, str]:
    """Check id -> message of every rule-7 finding with this outcome (primary or ``also``)."""
    found = {}
    for result in report.results:
        for finding in result.findings():
            if finding.rule == 7 and finding.outcome == outcome:
                found[result.id] = finding.message
    return found


def test_the_correct_escalator_passes_every_effect_check_with_effects_on() -> None:
    app = EffectsApp("escalate-unanswered")
    report = run(app, effects_on=ESCALATES)
    assert not rule7(report), str(report)
    assert report.ok, str(report)
    assert {result.input for result in report.results if result.change} >= {"prompt/not-answered", "failure"}


def test_dialling_on_call_for_every_kind_fails_each_class_outside_effects_on() -> None:
    app = EffectsApp("escalate-everything")
    report = run(app, effects_on=ESCALATES)
    failed = rule7(report)
    assert "valid/keypress/typical" in failed
    assert "valid/code/answered" in failed
    assert "sibling/keypress" in failed
    message = failed["valid/keypress/key-1"]
    assert message.startswith("a valid keypress changed effects(): added 1 item: ['dial', 'voicekey_callback', ")
    assert message.endswith("effects_on allows prompt/not-answered, prompt/call-error, failure")
    assert not {i for i in failed if i.startswith(("valid/prompt/not-answered", "valid/failure/"))}
    head = str(report).splitlines()
    assert any(line.startswith("FAIL a keypress changed effects() (outside effects_on) \u00d7 ") for line in head)


def test_escalating_an_answered_call_whose_result_is_the_number_0_fails_with_effects_on() -> None:
    app = EffectsApp("lenient-result")
    judged = run(app, effects_on=ESCALATES)
    assert rule7(judged).keys() == {"robust/prompt/result-as-number", "robust/prompt/result-as-number-times-empty"}
    assert "a questionable prompt/answered changed effects()" in judged["robust/prompt/result-as-number"].message
    # without effects_on nothing says an answered call must not act: a warning, not a failure
    reported = run(EffectsApp("lenient-result"))
    assert "robust/prompt/result-as-number" in rule7(reported, "warned")
    assert not rule7(reported)


def test_a_void_reply_and_an_sms_per_duplicate_say_both() -> None:
    app = EffectsApp("sms-per-delivery")
    report = run(app, effects_on=["failure"])
    result = report["duplicate/failure"]
    assert result.failed
    assert result.rule == 7, "the side effect leads: it costs money"
    assert result.message.startswith("a repeat delivery of callid ")
    assert "changed effects(): added 1 item: ['sms', " in result.message
    assert [finding.cause for finding in result.also] == ["HTTP 200 (empty body)"]
    causes = {cause.signature: cause for cause in report.causes}
    assert "duplicate/failure" in causes["a repeat delivery changed effects()"].ids
    assert "duplicate/failure" in causes["HTTP 200 (empty body)"].ids, "the check is in both causes"
    assert "also failed: first delivery of callid" in result.details()
    text = str(report)
    assert text.index("FAIL a repeat delivery changed effects()") < text.index("FAIL HTTP 200 (empty body)")
    # a cause's example is told by that cause's finding, even where the check's reply failed too
    warned = next(cause for cause in report.causes if cause.signature == "a questionable callback changed effects()")
    assert warned.example.rule == 7
    assert warned.example.message.startswith("a questionable ")
    assert [finding.cause for finding in warned.example.also] == ["HTTP 200 (empty body)"]


def test_a_handler_that_knows_only_its_own_calls_needs_prepare() -> None:
    vacuous = run(EffectsApp("escalate-unanswered", known_only=True))
    assert not any(result.change for result in vacuous.results), "it ignores the suite's callids: nothing to see"
    assert "0 of 4 checks changed it" in "\n".join(vacuous.effects_lines())
    assert '<section id="effects"><h2>Side effects</h2><pre>side effects seen by effects() on valid input' in (
        vacuous.to_html()
    )
    missing = run(EffectsApp("escalate-unanswered", known_only=True), effects_on=ESCALATES)
    failed = rule7(missing)
    assert "valid/prompt/not-answered-times-zero" in failed
    assert failed["valid/failure/typical"].startswith("expected an effect and saw none: a valid failure left effects()")
    assert (
        "does the handler know this callid? A handler that acts only on calls it placed needs prepare"
        in (failed["valid/failure/typical"])
    )
    app = EffectsApp("escalate-unanswered", known_only=True)
    prepared = run(app, effects_on=ESCALATES, prepare=app.place)
    assert not rule7(prepared), str(prepared)
    assert prepared.ok
    assert len(app.placed) > 100, "every call was registered before its first delivery"


def test_a_framework_400_to_garbage_warns_and_never_fails() -> None:
    report = run(EffectsApp("framework-400"), effects_on=ESCALATES)
    assert report.ok, str(report)
    assert report["reject/envelope/empty-body"].warned
    assert report["reject/envelope/empty-body"].reply.status == 400  # type: ignore[union-attr]
    strict = run(EffectsApp("framework-400"), effects_on=ESCALATES, strict=True)
    assert strict["reject/envelope/empty-body"].failed


def test_recording_an_incomplete_callback_warns() -> None:
    report = run(EffectsApp("record-status"), effects_on=["prompt"])
    warned = rule7(report, "warned")
    assert "reject/prompt/missing-fee" in warned
    assert warned["reject/prompt/missing-fee"].startswith("a questionable prompt/answered changed effects()")
    assert not {i for i in rule7(report) if i.startswith("reject/prompt/missing")}, "not a failure"
    assert not rule7(report), "recording every prompt, as declared, is right"


def test_acting_on_a_callback_in_utf16_warns() -> None:
    """Python's json.loads(bytes) reads UTF-16: a handler built on it acts on a body the provider never sends."""
    warned = rule7(run(EffectsApp("escalate-unanswered"), effects_on=ESCALATES), "warned")
    assert "reject/encoding/utf-16" in warned
    assert warned["reject/encoding/utf-16"].startswith("a failure in another JSON encoding changed effects()")


def test_every_failure_is_shown_with_its_example_before_any_warning() -> None:
    app = EffectsApp("lenient-result")
    text = str(run(app, effects_on=ESCALATES))
    lines = text.splitlines()
    first_warning = next(n for n, line in enumerate(lines) if line.startswith("WARN "))
    fail_heads = [n for n, line in enumerate(lines) if line.startswith("FAIL ")]
    assert fail_heads
    assert max(fail_heads) < first_warning
    assert "e.g. robust/prompt/result-as-number" in text


def test_effects_on_names_only_known_classes() -> None:
    assert EffectsOn(["failure", "prompt/not-answered"]).classes == ("prompt/not-answered", "failure")
    assert set(EffectsOn("code").classes) == {"code/answered", "code/not-answered", "code/call-error"}
    with pytest.raises(ValueError, match="unknown input class 'keypresses'; known: prompt/answered"):
        EffectsOn(["keypresses"])
    with pytest.raises(ValueError, match="effects_on needs effects="):
        run_conformance(EffectsApp("escalate-unanswered"), effects_on=["failure"])


@pytest.mark.parametrize("edge", EdgeRejecter.EDGES)
def test_a_handler_rejecting_one_edge_value_fails_the_same_checks_whatever_the_seed(edge: str) -> None:
    failing = set()
    for seed in range(1, 21):
        report = run_conformance(EdgeRejecter(edge), seed=seed, skip="deadline")
        failing.add(frozenset(result.id for result in report.failures))
    assert len(failing) == 1, f"{edge}: {len(failing)} different failing sets over seeds 1-20"
    (ids,) = failing
    assert ids, "it does fail the checks named after its edge value"


# ---- the command line: the same verdicts for a service in any language ----------------------------


def voicecb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_voicecb", *args], capture_output=True, text=True, timeout=120, check=False
    )


def check_args(base: str, *extra: str) -> list[str]:
    skips = [word for skip in QUICK for word in ("--skip", skip)]
    return ["check", f"{base}/voice/callback", "--seed", str(SEED), *skips, *extra]


SHAPES_AND_EXPECTATIONS = [
    ("escalate-everything", ESCALATES, True),
    ("lenient-result", ESCALATES, False),
    ("sms-per-delivery", ["failure"], False),
    ("escalate-unanswered", ESCALATES, True),
]


@pytest.mark.parametrize(
    ("shape", "effects_on", "known_only"), SHAPES_AND_EXPECTATIONS, ids=[s for s, _, _ in SHAPES_AND_EXPECTATIONS]
)
def test_voicecb_check_sees_what_the_in_process_run_sees(
    tmp_path: Path, shape: str, effects_on: list[str], known_only: bool
) -> None:
    """The same handler served on loopback, watched through its own test endpoints: the same rule-7 verdicts."""
    app = EffectsApp(shape, known_only=known_only)
    with serving(app) as base:
        done = voicecb(
            *check_args(base, "--effects-url", f"{base}/_test/effects", "--prepare-url", f"{base}/_test/prepare"),
            *[word for cls in effects_on for word in ("--effects-on", cls)],
            "--json",
            str(tmp_path / "report.json"),
        )
    data = json.loads((tmp_path / "report.json").read_text())
    over_http = {
        (result["id"], finding["outcome"])
        for result in data["results"]
        for finding in [result, *result.get("also", [])]
        if finding["outcome"] != "passed" and finding["rule"] == 7
    }
    in_process = EffectsApp(shape, known_only=known_only)
    report = run(in_process, effects_on=effects_on, prepare=in_process.place)
    expected = {(i, "failed") for i in rule7(report)} | {(i, "warned") for i in rule7(report, "warned")}
    assert over_http == expected
    assert done.returncode == (0 if report.ok else 1), done.stdout + done.stderr
    if shape == "escalate-everything":
        assert "FAIL a keypress changed GET /_test/effects (outside effects_on)" in done.stdout


def test_voicecb_check_with_a_prepare_that_fails_stops_with_one_error() -> None:
    app = EffectsApp("escalate-unanswered", known_only=True)
    with serving(app) as base:
        done = voicecb(*check_args(base, "--effects-url", f"{base}/_test/effects", "--prepare-url", f"{base}/nope"))
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--prepare-url: POST " in done.stderr
    assert "/nope" in done.stderr
    assert "FAIL" not in done.stdout


def test_voicecb_check_with_an_effects_endpoint_that_fails_stops_before_any_check() -> None:
    app = EffectsApp("escalate-unanswered")
    with serving(app) as base:
        done = voicecb(*check_args(base, "--effects-url", f"{base}/missing", "--effects-on", "failure"))
        bad_class = voicecb(*check_args(base, "--effects-url", f"{base}/_test/effects", "--effects-on", "keys"))
        no_effects = voicecb(*check_args(base, "--effects-on", "failure"))
    assert done.returncode == 2
    assert "--effects-url: GET " in done.stderr
    assert "answered HTTP 404" in done.stderr
    assert bad_class.returncode == 2
    assert "unknown input class 'keys'" in bad_class.stderr
    assert no_effects.returncode == 2
    assert "--effects-on needs --effects-url or --effects-cmd" in no_effects.stderr


def test_voicecb_check_takes_commands_for_effects_and_prepare(tmp_path: Path) -> None:
    app = EffectsApp("escalate-unanswered", known_only=True)
    placed = tmp_path / "placed.jsonl"
    (tmp_path / "effects.py").write_text(
        "import sys, urllib.request\nsys.stdout.write(urllib.request.urlopen(sys.argv[1]).read().decode())\n"
    )
    (tmp_path / "prepare.py").write_text(
        "import sys, urllib.request\n"
        "body = sys.stdin.buffer.read()\n"
        "open(sys.argv[2], 'ab').write(body + b'\\n')\n"
        "urllib.request.urlopen(urllib.request.Request(sys.argv[1], data=body, method='POST'))\n"
    )
    effects = f"{sys.executable} {tmp_path / 'effects.py'}"
    prepare = f"{sys.executable} {tmp_path / 'prepare.py'}"
    with serving(app) as base:
        done = voicecb(
            *check_args(
                base, "--skip", "reject/*", "--skip", "robust/*", "--skip", "valid/*", "--skip", "duplicate/[!f]*"
            ),
            "--effects-cmd",
            f"{effects} {base}/_test/effects",
            "--prepare-cmd",
            f"{prepare} {base}/_test/prepare {placed}",
            "--effects-on",
            "failure",
            "--effects-on",
            "prompt/not-answered",
            "--effects-on",
            "prompt/call-error",
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert len(placed.read_text().splitlines()) == len(app.placed) >= 5


# ---- pytest: the fixtures and the ini option ------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
CONFTEST = """
import pytest
from tests.handlers.effects_apps import EffectsApp

@pytest.fixture(scope="session")
def app():
    return EffectsApp("escalate-unanswered", known_only=True)

@pytest.fixture
def voicecb_target(app):
    return app

@pytest.fixture
def voicecb_effects(app):
    return app.effects
"""
PREPARE = """
@pytest.fixture
def voicecb_prepare(app):
    return app.place
"""


@pytest.mark.parametrize("prepared", [True, False], ids=["with-prepare", "without-prepare"])
def test_the_items_take_effects_on_from_the_ini_and_prepare_from_its_fixture(
    pytester: pytest.Pytester, prepared: bool
) -> None:
    pytester.syspathinsert(ROOT)
    pytester.makeconftest(CONFTEST + (PREPARE if prepared else ""))
    pytester.makeini("[pytest]\nvoicecb_effects_on =\n    prompt/not-answered\n    prompt/call-error\n    failure\n")
    result = pytester.runpytest(
        "-p", "no:randomly", "--voicecb-conformance", "-k", "valid/failure/typical or valid/keypress/typical"
    )
    if prepared:
        result.assert_outcomes(passed=2)
        return
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*valid/failure/typical: expected an effect and saw none: a valid failure left effects() unchanged;*"
            "needs prepare to register each callback's call first (the voicecb_prepare fixture*"
        ]
    )


def test_a_snapshot_endpoint_whose_reply_is_cut_short_stops_the_run_with_one_error() -> None:
    def cut_short(conn: socket.socket, stopping: threading.Event) -> None:
        with conn:
            if read_request(conn):
                conn.sendall(
                    b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\nContent-Type: application/json\r\n\r\n{"a": 1}'
                )

    app = EffectsApp("escalate-unanswered")
    with serving(app) as base, raw_server(cut_short, "/effects") as effects_url:
        done = voicecb(*check_args(base, "--effects-url", effects_url))
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"--effects-url: GET {effects_url} failed: " in done.stderr
    assert "Traceback" not in done.stderr
