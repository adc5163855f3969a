"""The conformance verdict as pytest shows it: warnings vs strict, grouped causes, effects, the path
setting, the preflight, selection and rerunning one check by its node id. Run as users run it: a
conftest.py with a real Flask app, pytest in-process (``runpytest``)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.handlers import flask_app
from tests.handlers.serve import serving

ROOT = Path(__file__).resolve().parents[1]
LEAN = ("-p", "no:randomly", "-p", "no:cacheprovider")

CONFTEST = """
import pytest
from tests.handlers.flask_app import create_app

@pytest.fixture(scope="session")
def voicecb_target():
    return create_app({args})
"""

# A handler that places an escalation call for every failure callback it reads, duplicates included
# (a bug seen in real handlers), and for any body it could not parse (the other one).
DIALLER = """
import json
import pytest
from flask import Flask, jsonify, request

DIALLED = []
app = Flask("dialler")

@app.post("/voice/callback")
def callback():
    try:
        data = json.loads(request.get_data())
    except ValueError:
        DIALLED.append("garbage")
        return jsonify(result=1, errmsg="bad json")
    if isinstance(data, dict) and isinstance(data.get("voice_failure_callback"), dict):
        DIALLED.append(data["voice_failure_callback"].get("callid"))
    return jsonify(result=0, errmsg="OK")

@pytest.fixture(scope="session")
def voicecb_target():
    return app
"""
EFFECTS = """
@pytest.fixture
def voicecb_effects():
    return lambda: list(DIALLED)
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.syspathinsert(ROOT)  # the test handlers live in this repository's tests/handlers
    return pytester


def conftest(project: pytest.Pytester, *args: str) -> None:
    project.makeconftest(CONFTEST.format(args=", ".join(args)))


def section(text: str, title: str) -> list[str]:
    """The lines of one ``==== title ====`` section of pytest's output."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if re.fullmatch(rf"=+ {re.escape(title)} =+", line))
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("===")), len(lines))
    return lines[start + 1 : end]


def junit_cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name") or "": case for case in ET.parse(path).getroot().iter("testcase")}


def properties(case: ET.Element) -> dict[str, str]:
    return {p.get("name") or "": p.get("value") or "" for p in case.iter("property")}


# ---- severity: warnings pass and are listed once per cause; strict fails them ----------------------


def test_a_warned_check_passes_and_its_cause_is_listed_once_in_the_summary_and_junit(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    conftest(project, '"lenient"')
    xml = tmp_path / "junit.xml"
    result = project.runpytest(*LEAN, "--voicecb-conformance", "-k", "reject/prompt", f"--junitxml={xml}")
    outcomes = result.parseoutcomes()
    assert result.ret == pytest.ExitCode.OK
    assert outcomes["passed"] > 2
    assert "failed" not in outcomes
    lines = section(result.stdout.str(), "voicecb conformance warnings")
    assert lines[-1] == "(warnings do not fail the run; --voicecb-strict makes them failures)"
    assert len(lines) == 2, lines  # one cause, however many checks showed it
    assert re.fullmatch(
        r"HTTP 200 .* \u00d7 \d+ checks \(rule 2: .*\), e\.g\. voicecb-conformance::reject/prompt/\S+", lines[0]
    ), lines[0]
    warned = [case for case in junit_cases(xml).values() if "voicecb_warning" in properties(case)]
    assert 2 < len(warned) <= outcomes["passed"]
    assert warned[0].find("failure") is None
    assert properties(warned[0])["voicecb_warning"].startswith("HTTP 200 ")
    assert properties(warned[0])["voicecb_rule"].startswith("rule 2: ")


def test_strict_turns_the_warnings_into_failures(project: pytest.Pytester) -> None:
    conftest(project, '"lenient"')
    result = project.runpytest(*LEAN, "--voicecb-conformance", "-k", "reject/prompt", "--voicecb-strict")
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] > 2
    assert "(rule 2: " in section(result.stdout.str(), "voicecb conformance failures")[0]


def test_voicecb_conformance_warns_without_failing_and_fails_under_strict(
    project: pytest.Pytester, tmp_path: Path
) -> None:
    conftest(project, '"lenient"')
    project.makepyfile(
        """
        def test_conforms(voicecb_conformance):
            report = voicecb_conformance(skip=["valid/*", "robust/*"])
            assert report.ok and report.warnings
        """
    )
    xml = tmp_path / "junit.xml"
    result = project.runpytest(*LEAN, f"--junitxml={xml}")
    result.assert_outcomes(passed=1)
    lines = section(result.stdout.str(), "voicecb conformance warnings")
    assert re.fullmatch(r"WARN .*rule 2.*, e\.g\. reject/\S+, in test_\w+\.py::test_conforms", lines[0])
    assert "voicecb_conformance_warning" in properties(junit_cases(xml)["test_conforms"])
    strict = project.runpytest(*LEAN, "--voicecb-strict")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines(["FAIL *rule 2*"])


# ---- output that scales: grouped by cause by default, everything with -v ----------------------------


def test_voicecb_conformance_groups_by_cause_and_shows_everything_with_v(project: pytest.Pytester) -> None:
    conftest(project, '"reject-duplicates"')
    project.makepyfile(
        "def test_conforms(voicecb_conformance):\n    voicecb_conformance(skip=['valid/*', 'reject/*', 'robust/*'])\n"
    )
    # What the failure shows (on CI, pytest repeats a failure message in its short summary: not counted).
    short = project.runpytest(*LEAN, "--voicecb-seed=3").stdout.str().partition("short test summary info")[0]
    verbose = project.runpytest(*LEAN, "--voicecb-seed=3", "-v").stdout.str().partition("short test summary info")[0]
    causes = [line for line in short.splitlines() if line.startswith("FAIL ") and "rule 4" in line]
    assert 1 <= len(causes) <= 3  # one line per cause
    assert len(verbose.splitlines()) > len(short.splitlines())
    for check in ("duplicate/keypress", "duplicate/failure", "duplicate/code/answered"):
        assert f"  - {check}: second delivery of callid" in verbose
        assert f"  - {check}: second delivery of callid" not in short


def test_a_failing_check_with_v_shows_what_was_sent_and_what_came_back(project: pytest.Pytester) -> None:
    conftest(project, '"reject-duplicates"')
    result = project.runpytest(*LEAN, "--voicecb-conformance", "-k", "duplicate/keypress", "-v")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*sent: POST http://localhost:8000/voice/callback*", "*got:  HTTP 200*"])


# ---- side effects ----------------------------------------------------------------------------------


def test_the_voicecb_effects_fixture_catches_a_second_escalation_call(project: pytest.Pytester) -> None:
    project.makeconftest(DIALLER + EFFECTS)
    project.makepyfile(
        """
        def test_conforms(voicecb_conformance):
            report = voicecb_conformance(assert_ok=False, skip=["valid/*", "robust/*", "reject/*"])
            assert report["duplicate/failure"].failed
            assert not report["duplicate/keypress"].failed

        def test_not_checked_when_given_none(voicecb_conformance):
            assert voicecb_conformance(effects=None, skip=["valid/*", "robust/*", "reject/*"]).ok
        """
    )
    project.runpytest(*LEAN).assert_outcomes(passed=2)
    items = project.runpytest(*LEAN, "--voicecb-conformance", "-k", "duplicate/failure or reject/envelope/truncated")
    items.assert_outcomes(failed=3)  # two duplicate/failure checks, and a dial for a body it could not parse
    assert "garbage" in items.stdout.str()


def test_without_voicecb_effects_what_the_handler_did_is_not_checked(project: pytest.Pytester) -> None:
    project.makeconftest(DIALLER)
    project.runpytest(*LEAN, "--voicecb-conformance", "-k", "duplicate/failure").assert_outcomes(passed=2)


# ---- targets: the path setting, CallbackClient targets, the preflight -------------------------------

ELSEWHERE = """
def test_client(voicecb_client, voicecb_payload):
    assert voicecb_client.post(voicecb_payload()).json == {"result": 0, "errmsg": "OK"}

def test_conforms(voicecb_conformance):
    voicecb_conformance(skip=["robust/*", "reject/*"])
"""


def test_one_path_setting_serves_the_client_the_fixture_and_the_items(project: pytest.Pytester) -> None:
    conftest(project, 'path="/hooks/voice"')
    project.makepyfile(ELSEWHERE)
    args = (*LEAN, "--voicecb-conformance", "-k", "client or conforms or sibling")
    project.runpytest(*args, "--voicecb-path=/hooks/voice").assert_outcomes(passed=6)
    project.makeini("[pytest]\nvoicecb_path = /hooks/voice\n")
    project.runpytest(*args).assert_outcomes(passed=6)


def test_the_wrong_path_is_one_clear_error_not_one_per_check(project: pytest.Pytester) -> None:
    conftest(project, 'path="/hooks/voice"')
    result = project.runpytest(*LEAN, "--voicecb-conformance", "-rs")
    total = result.parseoutcomes()
    assert total["failed"] == 1
    assert total["skipped"] > 200
    result.stdout.fnmatch_lines(
        [
            "the target cannot take callbacks: answered a valid callback with HTTP 404 *",
            "*--voicecb-path or the voicecb_path ini option*",
            "the other conformance checks of this target are skipped*",
        ]
    )
    result.stdout.fnmatch_lines(["SKIPPED * not run: the target cannot take callbacks, see voicecb-conformance::*"])
    project.makepyfile(ELSEWHERE.split("def test_conforms")[1].join(["def test_conforms", ""]))
    fixture = project.runpytest(*LEAN)
    fixture.assert_outcomes(failed=1)
    fixture.stdout.fnmatch_lines(["the target cannot take callbacks: *HTTP 404*", "no conformance check was run"])


def test_a_bad_path_option_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest(*LEAN, "--voicecb-path=hooks")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'hooks' is not a URL path*"])
    project.makeini("[pytest]\nvoicecb_path = hooks/voice\n")
    ini = project.runpytest(*LEAN)
    assert ini.ret == pytest.ExitCode.USAGE_ERROR
    ini.stderr.fnmatch_lines(["ERROR: voicecb_path ini option: 'hooks/voice' is not a URL path*"])


def test_the_target_fixture_may_return_a_callback_client(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest
        from pytest_voicecb import CallbackClient
        from tests.handlers.flask_app import create_app

        @pytest.fixture(scope="session")
        def voicecb_target():
            with CallbackClient(create_app(path="/hooks/voice"), path="/hooks/voice") as client:
                yield client
        """
    )
    project.makepyfile(
        ELSEWHERE + "\ndef test_same(voicecb_target, voicecb_client):\n    assert voicecb_client is voicecb_target\n"
    )
    result = project.runpytest(*LEAN, "--voicecb-conformance", "-k", "client or conforms or same or sibling")
    result.assert_outcomes(passed=7)


def test_a_target_fixture_that_breaks_errors_once_and_skips_the_other_checks(project: pytest.Pytester) -> None:
    project.makeconftest(
        """
        import pytest

        @pytest.fixture
        def voicecb_target():
            raise RuntimeError("the database is down")
        """
    )
    result = project.runpytest(*LEAN, "--voicecb-conformance", "-k", "sibling", "-rs")
    result.assert_outcomes(errors=1, skipped=3)
    assert result.stdout.str().count("ERROR at setup of") == 1
    result.stdout.fnmatch_lines(["*not run: setting up the target failed in voicecb-conformance::sibling/*"])


@pytest.mark.parametrize(
    ("option", "says"),
    [
        ("--voicecb-target=ftp://example.com/cb", "only http:// and https:// URLs"),
        ("--voicecb-target=http://exa mple.com:x/", "bad target URL"),
        ("--voicecb-target=nowhere", "is neither a URL"),
    ],
)
def test_a_bad_target_option_is_one_usage_error(project: pytest.Pytester, option: str, says: str) -> None:
    project.makepyfile("def test_mine():\n    pass\n")
    result = project.runpytest(*LEAN, option)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    errors = [line for line in result.stderr.lines if line.strip()]
    assert len(errors) == 1, errors
    assert "--voicecb-target" in errors[0]
    assert says in errors[0]


def test_a_target_option_that_cannot_be_imported_is_one_usage_error_for_the_items(project: pytest.Pytester) -> None:
    project.makepyfile("def test_mine():\n    pass\n")
    result = project.runpytest(*LEAN, "--voicecb-conformance", "--voicecb-target=nowhere:app")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--voicecb-target / voicecb_target ini option: target 'nowhere:app': cannot import*"])


# ---- items behave like tests: selection, rerunning one by its node id --------------------------------


def test_selecting_other_tests_does_not_add_the_checks(project: pytest.Pytester) -> None:
    conftest(project)
    project.makepyfile(test_mine="def test_mine():\n    pass\n\ndef test_other():\n    pass\n")
    for args in (["test_mine.py::test_mine"], ["test_mine.py"], ["-k", "test_other"]):
        result = project.runpytest(*LEAN, "--voicecb-conformance", *args)
        assert result.parseoutcomes()["passed"] == (2 if args == ["test_mine.py"] else 1), args
        assert "voicecb-conformance::" not in result.stdout.str()


def test_a_printed_node_id_reruns_exactly_that_check(project: pytest.Pytester) -> None:
    conftest(project, '"prompt-only"')
    project.mkpydir("sub").joinpath("conftest.py").write_text(CONFTEST.format(args='"reject-duplicates"'))
    project.makepyfile(test_mine="def test_mine():\n    pass\n", **{"sub/test_sub": "def test_sub():\n    pass\n"})
    first = project.runpytest(*LEAN, "--voicecb-conformance", "-k", "sibling/code or duplicate/keypress")
    first.assert_outcomes(passed=1, failed=3)
    reruns = re.findall(r"^rerun this check: (.*)$", first.stdout.str(), re.MULTILINE)
    assert len(reruns) == 3
    for rerun in (reruns[0], reruns[-1]):  # one at the root, one in sub/
        argv = rerun.split()  # node ids here hold no shell characters
        assert argv[0] == "pytest"
        again = project.runpytest(*LEAN, *argv[1:])
        again.assert_outcomes(failed=1)  # that check alone: not test_mine, test_sub or the other checks
        again.stdout.fnmatch_lines(["collected 1 item", f"FAILED {argv[1]} - *"])
    both = project.runpytest(*LEAN, "sub/voicecb-conformance::duplicate/keypress", "test_mine.py::test_mine")
    both.assert_outcomes(passed=1, failed=1)


def test_a_check_id_that_does_not_exist_is_a_usage_error(project: pytest.Pytester) -> None:
    conftest(project)
    result = project.runpytest(*LEAN, "voicecb-conformance::duplicate/nothing")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*no check named 'duplicate/nothing'*--collect-only*"])


def test_checks_of_a_target_defined_in_a_test_module_rerun_by_node_id(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_app=CONFTEST.format(args='"reject-duplicates"') + "\ndef test_here():\n    pass\n",
    )
    first = project.runpytest(*LEAN, "--voicecb-conformance", "-k", "here or duplicate/keypress")
    first.assert_outcomes(passed=1, failed=1)
    first.stdout.fnmatch_lines(["FAILED test_app-voicecb-conformance::duplicate/keypress - *"])
    again = project.runpytest(*LEAN, "test_app-voicecb-conformance::duplicate/keypress")
    again.assert_outcomes(failed=1)


def test_host_port_is_a_url_target_and_the_path_setting_applies_to_it(project: pytest.Pytester) -> None:
    with serving(flask_app.create_app(path="/hooks/voice")) as base:
        host_port = base.removeprefix("http://")
        project.makepyfile(ELSEWHERE.split("def test_conforms")[0])
        args = (*LEAN, f"--voicecb-target={host_port}", "--voicecb-path=/hooks/voice", "--voicecb-conformance")
        project.runpytest(*args, "-k", "client or sibling").assert_outcomes(passed=5)
        # A URL that names its path keeps it: the path setting is for apps and bare host:port.
        own = (*LEAN, f"--voicecb-target={base}/hooks/voice", "--voicecb-path=/elsewhere", "--voicecb-conformance")
        project.runpytest(*own, "-k", "client or sibling").assert_outcomes(passed=5)


def test_the_path_setting_applies_to_a_host_port_returned_by_the_target_fixture(project: pytest.Pytester) -> None:
    with serving(flask_app.create_app(path="/hooks/voice")) as base:
        project.makeconftest(
            f"import pytest\n\n@pytest.fixture\ndef voicecb_target():\n    return {base.removeprefix('http://')!r}\n"
        )
        project.makepyfile(ELSEWHERE.split("def test_conforms")[0])
        project.runpytest(*LEAN, "--voicecb-path=/hooks/voice").assert_outcomes(passed=1)


def test_naming_tests_needs_no_target_but_naming_checks_of_a_directory_without_one_is_an_error(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_mine="def test_mine():\n    pass\n")
    project.runpytest(*LEAN, "--voicecb-conformance", "test_mine.py::test_mine").assert_outcomes(passed=1)
    result = project.runpytest(*LEAN, "voicecb-conformance::duplicate")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--voicecb-conformance for */voicecb-conformance: pytest-voicecb has no target*"])
