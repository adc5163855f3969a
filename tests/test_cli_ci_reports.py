"""``voicecb check --junit FILE`` and ``--summary FILE``: the reports CI systems read, parsed as they would
parse them, for a failing handler, a passing one, a hostile one and under ``--strict``."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.handlers.flask_app import create_app
from tests.handlers.report_apps import HOSTILE, hostile_app
from tests.handlers.serve import serving
from tests.test_cli import PATH, assert_one_line_error, voicecb


@pytest.fixture(scope="module")
def good() -> Iterator[str]:
    with serving(create_app()) as base:
        yield base + PATH


@pytest.fixture(scope="module")
def broken() -> Iterator[str]:
    with serving(create_app("crash-on-empty-times", "reject-duplicates")) as base:
        yield base + PATH


@pytest.fixture(scope="module")
def lenient() -> Iterator[str]:
    with serving(create_app("lenient")) as base:
        yield base + PATH


def run_check(url: str, tmp_path: Path, *options: str) -> tuple[int, ET.Element, str, dict[str, object]]:
    """``voicecb check URL --junit --summary --json``: the exit status, the parsed XML's testsuite, the
    Markdown, and the JSON report of the same run (to compare counts against)."""
    junit, summary, report = tmp_path / "junit.xml", tmp_path / "summary.md", tmp_path / "report.json"
    done = voicecb("check", url, "--junit", str(junit), "--summary", str(summary), "--json", str(report), *options)
    assert done.returncode in (0, 1), done.stderr
    root = ET.parse(junit).getroot()
    assert root.tag == "testsuites"
    (suite,) = root.findall("testsuite")
    for key in ("tests", "failures", "errors", "skipped"):
        assert root.get(key) == suite.get(key)
    return done.returncode, suite, summary.read_text(encoding="utf-8"), json.loads(report.read_text())


def counts_add_up(suite: ET.Element) -> dict[str, int]:
    """The testsuite's counts checked against its testcases; the counts by outcome."""
    cases = suite.findall("testcase")
    failed = sum(case.find("failure") is not None for case in cases)
    skipped = sum(case.find("skipped") is not None for case in cases)
    warned = sum(case.find("system-out") is not None for case in cases)
    assert int(suite.get("tests", "-1")) == len(cases)
    assert int(suite.get("failures", "-1")) == failed
    assert int(suite.get("skipped", "-1")) == skipped
    assert suite.get("errors") == "0"
    return {"tests": len(cases), "failed": failed, "skipped": skipped, "warned": warned}


def test_a_failing_handler_has_one_testcase_per_check_and_a_failure_with_cause_and_curl(
    broken: str, tmp_path: Path
) -> None:
    status, suite, summary, report = run_check(broken, tmp_path, "--skip", "deadline*")
    assert status == 1
    counts = counts_add_up(suite)
    numbers = report["summary"]
    assert isinstance(numbers, dict)
    assert counts == {
        "tests": numbers["total"] + numbers["skipped"],
        "failed": numbers["failed"],
        "skipped": numbers["skipped"],
        "warned": numbers["warned"],
    }
    assert counts["failed"] > 0
    assert counts["skipped"] == 1
    cases = {case.get("name"): case for case in suite.findall("testcase")}
    assert {case.get("classname") for case in cases.values()} >= {"valid", "reject", "duplicate", "sibling"}
    results = report["results"]
    assert isinstance(results, list)
    for result in results:
        case = cases[result["id"]]
        assert case.get("classname") == result["id"].split("/")[0]
        failure = case.find("failure")
        assert (failure is not None) == (result["outcome"] == "failed"), result["id"]
        if failure is not None:
            assert failure.get("message") == result["message"]
            assert f"rule {result['rule']}" in (failure.get("type") or "")
            assert "curl " in (failure.text or "")
            assert (failure.text or "").startswith(f"cause: {result['cause']}")
    assert cases["deadline"].find("skipped") is not None
    # The Markdown: the verdict, every cause with its count, a worked example, a table by kind and rule.
    assert summary.startswith("## \u274c voicecb check: FAILED")
    causes = report["causes"]
    assert isinstance(causes, list)
    for cause in causes:
        row = next(line for line in summary.splitlines() if line.startswith("|") and f"`{cause['example']}`" in line)
        assert f"| {cause['count']:,} |" in row
    assert "<details><summary>Example: " in summary
    assert "curl " in summary
    table = summary[summary.index("### By kind and rule") :].splitlines()
    assert table[2].startswith("| kind | rule 1 |")
    assert any(line.startswith("| prompt |") and "\u2717" in line for line in table)


def test_a_passing_handler_has_no_failure_and_a_green_summary(good: str, tmp_path: Path) -> None:
    status, suite, summary, report = run_check(good, tmp_path)
    assert status == 0
    counts = counts_add_up(suite)
    numbers = report["summary"]
    assert isinstance(numbers, dict)
    assert counts["tests"] == numbers["total"] > 200
    assert counts["failed"] == counts["skipped"] == 0
    assert summary.startswith("## \u2705 voicecb check: PASSED\n")
    assert "### Causes" not in summary


def test_a_warned_check_passes_with_its_warning_in_system_out_and_fails_under_strict(
    lenient: str, tmp_path: Path
) -> None:
    status, suite, summary, _report = run_check(lenient, tmp_path)
    assert status == 0
    counts = counts_add_up(suite)
    assert counts["warned"] > 0
    assert counts["failed"] == 0
    warned = next(case for case in suite.findall("testcase") if case.find("system-out") is not None)
    assert (warned.findtext("system-out") or "").startswith("warning: ")
    assert summary.startswith("## \u26a0\ufe0f voicecb check: PASSED with warnings")
    status, strict_suite, _summary, _report = run_check(lenient, tmp_path, "--strict")
    assert status == 1
    strict = counts_add_up(strict_suite)
    assert strict["failed"] >= counts["warned"]
    assert strict["warned"] == 0


def test_hostile_replies_stay_text_in_the_xml_and_the_markdown(tmp_path: Path) -> None:
    with serving(hostile_app) as base:
        status, suite, summary, _report = run_check(base + "/voice/callback", tmp_path)
    assert status == 1
    failures = [case.find("failure") for case in suite.findall("testcase") if case.find("failure") is not None]
    assert any(HOSTILE.decode() in (failure.text or "") for failure in failures if failure is not None)
    assert "<script>" not in re.sub(r"(?s)(`{3,})text\n.*?\n\1", "", summary)  # only inside code blocks


def test_an_unwritable_junit_file_is_a_usage_error_before_the_run(good: str, tmp_path: Path) -> None:
    done = voicecb("check", good, "--junit", str(tmp_path / "missing" / "junit.xml"))
    assert_one_line_error(done, "cannot write the JUnit XML report", "missing")


def test_a_run_that_ends_early_leaves_the_previous_files_as_they_were(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    junit.write_text("previous")
    done = voicecb("check", "http://127.0.0.1:9/voice/callback", "--junit", str(junit), "--timeout", "2")
    assert done.returncode == 2
    assert junit.read_text() == "previous"
    assert [path.name for path in tmp_path.iterdir()] == ["junit.xml"]


def test_characters_xml_cannot_hold_are_shown_as_escapes_and_the_file_still_parses() -> None:
    from pytest_voicecb.conformance.report import CheckResult, Report
    from pytest_voicecb.console import report_junit

    result = CheckResult(id="valid/prompt/typical", outcome="failed", rule=1, message="got \x00\x1b[2J", cause="\ufffe")
    report = Report(target="http://t\x07", path=PATH, seed=1, deadline=2.0, strict=False, results=(result,))
    suite = ET.fromstring(report_junit.render(report)).find("testsuite")
    assert suite is not None
    failure = suite.find("testcase/failure")
    assert failure is not None
    assert failure.get("message") == "got \\x00\\x1b[2J"
    assert (failure.text or "").startswith("cause: \\ufffe\n")
    assert suite.get("name") == "voicecb check http://t\\x07"
