"""The plugin as users run it: voicecb_target / voicecb_client / voicecb_conformance, and --voicecb-conformance."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_voicecb.conformance import checks
from tests.handlers import flask_app
from tests.handlers.serve import serving

ROOT = Path(__file__).resolve().parents[1]
N_CHECKS = len(checks(seed=0))

CONFTEST = """
import pytest
from tests.handlers.flask_app import create_app

@pytest.fixture(scope="{scope}")
def voicecb_target():
    return create_app({bugs})
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.syspathinsert(ROOT)  # the test handlers live in this repository's tests/handlers
    return pytester


def conftest(project: pytest.Pytester, *bugs: str, scope: str = "function", where: str = "") -> None:
    text = CONFTEST.format(scope=scope, bugs=", ".join(repr(b) for b in bugs))
    if where:
        project.mkpydir(where).joinpath("conftest.py").write_text(text)
    else:
        project.makeconftest(text)


@pytest.fixture
def live_url() -> Iterator[str]:
    with serving(flask_app.create_app()) as base:
        yield base + "/voice/callback"


# ---- voicecb_client and the assertions ------------------------------------------------------------


def test_voicecb_client_delivers_to_the_conftest_target(project: pytest.Pytester) -> None:
    conftest(project)
    project.makepyfile(
        """
        from pytest_voicecb import assert_reply_ok, assert_reply_error

        def test_ok(voicecb_client, voicecb_payload):
            reply = voicecb_client.post(voicecb_payload.keypress())
            assert_reply_ok(reply)
            assert reply.json == {"result": 0, "errmsg": "OK"}

        def test_rejects_garbage(voicecb_client):
            assert_reply_error(voicecb_client.post(b"not json"))
        """
    )
    project.runpytest("-p", "no:randomly").assert_outcomes(passed=2)


def test_a_failing_assertion_reads_as_a_test_failure(project: pytest.Pytester) -> None:
    conftest(project, "string-result")
    project.makepyfile(
        """
        from pytest_voicecb import assert_reply_ok

        def test_ok(voicecb_client, voicecb_payload):
            assert_reply_ok(voicecb_client.post(voicecb_payload()))
        """
    )
    result = project.runpytest("-p", "no:randomly")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*assert_reply_ok(voicecb_client.post(voicecb_payload()))*",
            "E*expected a success reply: CONTRACT.md rule 1 (valid input gets success)",
            'E*$.result: must be a JSON number (an integer), got the string "0"',
            "E*sent: POST http://localhost:8000/voice/callback (application/json, *",
            "E*got:  HTTP 200 (application/json, *",
            "E*curl -sS -i -X POST http://localhost:8000/voice/callback*",
        ]
    )
    assert "pytest_voicecb/assertions.py" not in result.stdout.str()  # our frames are hidden


def test_without_a_target_the_error_says_how_to_configure_one(project: pytest.Pytester) -> None:
    project.makepyfile("def test_it(voicecb_client):\n    pass\n")
    result = project.runpytest("-p", "no:randomly")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-voicecb has no target*",
            "*def voicecb_target():*",
            "*pytest --voicecb-target=http://127.0.0.1:8000/voice/callback*",
            "*voicecb_target = myproject.wsgi:application*",
        ]
    )


def test_the_target_option_takes_a_url(project: pytest.Pytester, live_url: str) -> None:
    project.makepyfile(
        f"""
        from pytest_voicecb import assert_reply_ok

        def test_it(voicecb_client, voicecb_payload):
            assert voicecb_client.url == "{live_url}"
            assert_reply_ok(voicecb_client.post(voicecb_payload.failure()))
        """
    )
    project.runpytest("-p", "no:randomly", f"--voicecb-target={live_url}").assert_outcomes(passed=1)


def test_the_ini_option_takes_module_attribute(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nvoicecb_target = tests.handlers.django_app:application\n")
    project.makepyfile(
        """
        from pytest_voicecb import assert_reply_ok
        from tests.handlers import django_app

        def test_it(voicecb_target, voicecb_client, voicecb_payload):
            assert voicecb_target is django_app.application
            assert_reply_ok(voicecb_client.post(voicecb_payload.code()))
        """
    )
    project.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_an_unusable_configured_target_is_explained(project: pytest.Pytester) -> None:
    project.makepyfile("def test_it(voicecb_client):\n    pass\n")
    result = project.runpytest("-p", "no:randomly", "--voicecb-target=nowhere:app")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*--voicecb-target / voicecb_target ini option: target 'nowhere:app': cannot import*"])


def test_a_bad_deadline_option_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:randomly", "--voicecb-deadline=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'soon' is not a positive number of seconds*"])


# ---- voicecb_conformance ------------------------------------------------------------------------


def test_voicecb_conformance_in_one_line(project: pytest.Pytester) -> None:
    conftest(project)
    project.makepyfile("def test_conforms(voicecb_conformance):\n    voicecb_conformance()\n")
    project.runpytest("-p", "no:randomly").assert_outcomes(passed=1)


def test_voicecb_conformance_fails_with_the_table(project: pytest.Pytester) -> None:
    conftest(project, "reject-duplicates")
    project.makepyfile(
        """
        def test_conforms(voicecb_conformance):
            voicecb_conformance(skip="robust/*")

        def test_report_only(voicecb_conformance, voicecb_seed):
            report = voicecb_conformance(assert_ok=False, skip=["valid/*", "reject/*", "robust/*"])
            assert "duplicate" in [r.id for r in report.failures]
            assert all(r.id.startswith("duplicate") for r in report.failures)
            assert report.seed == voicecb_seed
        """
    )
    result = project.runpytest("-p", "no:randomly", "--voicecb-seed=42")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*pytest-voicecb conformance of <Flask 'voicecb-reject-duplicates'> (in-process WSGI)*seed 42",
            "FAIL *rule 4*",
            "  e.g. duplicate*: second delivery of callid *",
            "*FAILED: * of * checks failed*(seed 42)",
        ]
    )
    assert "Traceback" not in result.stdout.str()


def test_voicecb_conformance_takes_the_deadline_and_strict_options(project: pytest.Pytester) -> None:
    conftest(project, "lenient")
    project.makepyfile(
        """
        def test_conforms(voicecb_conformance):
            report = voicecb_conformance(assert_ok=False, skip=["valid/*", "reject/*"])
            assert report.strict and report.deadline == 0.5
            assert any(r.id.startswith("robust/") for r in report.failures)
        """
    )
    project.runpytest("-p", "no:randomly", "--voicecb-strict", "--voicecb-deadline=0.5").assert_outcomes(passed=1)


def test_voicecb_conformance_reports_an_unreachable_target(project: pytest.Pytester) -> None:
    with serving(flask_app.create_app()) as base:
        pass  # nothing listens there any more
    project.makepyfile("def test_conforms(voicecb_conformance):\n    voicecb_conformance()\n")
    result = project.runpytest("-p", "no:randomly", f"--voicecb-target={base}")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["the target cannot take callbacks: connection refused*", "*--voicecb-path*", "no conformance check was run"]
    )


# ---- --voicecb-conformance ------------------------------------------------------------------------


def test_each_check_is_a_test_item(project: pytest.Pytester) -> None:
    conftest(project, scope="module")
    project.makepyfile("def test_mine():\n    pass\n")
    result = project.runpytest("-p", "no:randomly", "--voicecb-conformance", "-v")
    result.assert_outcomes(passed=N_CHECKS + 1)
    result.stdout.fnmatch_lines(
        [
            f"*collected {N_CHECKS + 1} items",
            "voicecb-conformance::valid/prompt/typical PASSED*",
            "voicecb-conformance::duplicate PASSED*",
            "voicecb-conformance::deadline PASSED*",
        ]
    )


def test_failing_checks_fail_their_items(project: pytest.Pytester) -> None:
    conftest(project, "prompt-only", where="handlers_tests")
    project.makepyfile(**{"handlers_tests/test_mine": "def test_mine():\n    pass\n"})
    result = project.runpytest("-p", "no:randomly", "--voicecb-conformance", "-k", "sibling")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines(
        [
            "FAILED handlers_tests/voicecb-conformance::sibling/code*",
            "FAILED handlers_tests/voicecb-conformance::sibling/keypress*",
            "FAILED handlers_tests/voicecb-conformance::sibling/failure*",
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "_* voicecb conformance check sibling/code _*",
            "sibling/code: expected a success reply; got HTTP 200 *: result is 1 *; expected 0",
            'cause: HTTP 200 {"result": 1, "errmsg": "…"} (rule 5: all four kinds are acknowledged)',
            "reproduce:",
            "curl -sS -i -X POST http://localhost:8000/voice/callback *",  # flush left, ready to paste
            "rerun this check: pytest handlers_tests/voicecb-conformance::sibling/code --voicecb-conformance "
            "--voicecb-seed=*",
            "_* voicecb conformance check sibling/keypress _*",
        ]
    )
    text = result.stdout.str()
    assert "traceback" not in text.lower()  # no banner
    assert "conftest.py:" not in text  # no fixture frames


def test_k_selects_checks_and_junit_xml_names_them(project: pytest.Pytester, tmp_path: Path) -> None:
    conftest(project, "reject-duplicates", scope="session")
    xml = tmp_path / "junit.xml"
    result = project.runpytest(
        "-p", "no:randomly", "--voicecb-conformance", "-k", "duplicate/keypress or sibling/prompt", f"--junitxml={xml}"
    )
    result.assert_outcomes(passed=1, failed=1)
    cases = {case.get("name"): case for case in ET.parse(xml).getroot().iter("testcase")}
    assert set(cases) == {"duplicate/keypress", "sibling/prompt"}
    assert cases["duplicate/keypress"].get("classname") == "voicecb-conformance"
    failure = cases["duplicate/keypress"].find("failure")
    assert failure is not None
    assert "second delivery of callid" in (failure.get("message") or "")
    properties = {p.get("name"): p.get("value") for p in cases["duplicate/keypress"].iter("property")}
    assert (properties["voicecb_failure"] or "").startswith("HTTP 200 ")
    assert properties["voicecb_rule"] == "rule 4: a duplicate gets success again"


def test_the_target_option_alone_is_enough(project: pytest.Pytester, live_url: str) -> None:
    result = project.runpytest("-p", "no:randomly", "--voicecb-conformance", f"--voicecb-target={live_url}", "-q")
    result.assert_outcomes(passed=N_CHECKS)


def test_each_conftest_target_gets_its_own_checks(project: pytest.Pytester) -> None:
    conftest(project, where="good")
    conftest(project, "reject-duplicates", where="bad")
    result = project.runpytest("-p", "no:randomly", "--voicecb-conformance", "-k", "duplicate/keypress", "-v")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "bad/voicecb-conformance::duplicate/keypress FAILED*",
            "good/voicecb-conformance::duplicate/keypress PASSED*",
        ]
    )


def test_conformance_without_a_target_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makepyfile("def test_mine():\n    pass\n")
    result = project.runpytest("-p", "no:randomly", "--voicecb-conformance")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--voicecb-conformance: pytest-voicecb has no target*"])


def test_conformance_items_run_under_xdist(project: pytest.Pytester) -> None:
    conftest(project, "lenient")
    lean = ("-p", "no:randomly", "-p", "no:schemathesis", "-p", "no:hypothesispytest", "-p", "no:faker")
    chosen = "valid/keypress or reject/prompt/missing-callid"
    result = project.runpytest_subprocess(*lean, "--voicecb-conformance", "-n", "2", "-k", chosen)
    result.assert_outcomes(passed=len([c for c in checks(seed=0) if c.id.startswith("valid/keypress/")]) + 1)
    # The warning crossed from the worker to the controller's summary.
    result.stdout.fnmatch_lines(
        ["*= voicecb conformance warnings =*", "* (rule 2: *), e.g. voicecb-conformance::reject/prompt/missing-callid"]
    )
