"""``Report.to_html()``, ``voicecb check --html`` and ``--voicecb-html``: one self-contained page, safe with a
hostile handler, opened in a real (headless) Chromium with every network request blocked."""

from __future__ import annotations

import dataclasses
import html
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_voicecb.conformance import run_conformance
from pytest_voicecb.conformance.report import Report
from tests.console_browser import browser_fixture  # noqa: F401  (the browser fixture)
from tests.handlers.report_apps import failing_app, hostile_app


@pytest.fixture(scope="module")
def report() -> Report:
    return run_conformance(hostile_app, seed=7)


def test_to_html_is_the_page_the_console_registered(report: Report, monkeypatch: pytest.MonkeyPatch) -> None:
    from pytest_voicecb.conformance import pages
    from pytest_voicecb.console import report_html

    assert report.to_html(rerun="voicecb check x") == report_html.render(report, rerun="voicecb check x")
    monkeypatch.setattr(pages, "_html", [])  # as if nothing had registered the console's page
    with pytest.raises(RuntimeError, match=r"no HTML renderer is registered: import pytest_voicecb "):
        report.to_html()


def test_to_html_works_from_the_conformance_import_alone_and_loads_the_console_only_then() -> None:
    """The report never imports the console: the package root registers the page, loaded on first use."""
    script = (
        "import sys; from pytest_voicecb.conformance import run_conformance; "
        "from tests.handlers.report_apps import failing_app; "
        "report = run_conformance(failing_app, seed=1); "
        "print('pytest_voicecb.console.report_html' in sys.modules); "
        "print(report.to_html().startswith('<!DOCTYPE html>')); "
        "print('pytest_voicecb.console.report_html' in sys.modules)"
    )
    root = Path(__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["False", "True", "True"], out.stderr


def test_the_page_is_self_contained_and_escapes_what_came_back(report: Report) -> None:
    page = report.to_html()
    assert not report.ok
    assert page.startswith("<!DOCTYPE html>")
    assert "<script>window.pwned" not in page
    assert "<img src=x" not in page
    assert html.escape("<script>window.pwned=1</script>", quote=False) in page
    # Nothing to fetch: no external script, style, image or link.
    assert not re.search(r"""(src|href)=["']?(https?:|//)""", page)
    assert "default-src 'none'" in page
    assert f'seed <code id="seed">{report.seed!r}</code>' in page
    assert "run_conformance(app, seed=7" in page
    for cause in report.causes:
        assert html.escape(cause.example.id) in page


def test_a_thousand_checks_stay_under_a_mebibyte(report: Report) -> None:
    results = [dataclasses.replace(r, id=f"{r.id}-{n}") for n in range(4) for r in report.results][:1000]
    big = dataclasses.replace(report, results=tuple(results))
    page = big.to_html()
    assert len(results) == 1000
    assert len(page.encode()) < 1024 * 1024, len(page.encode())


def test_a_thousand_failing_checks_with_long_replies_share_the_mebibyte() -> None:
    failing = run_conformance(failing_app, seed=7)
    results = [dataclasses.replace(r, id=f"{r.id}-{n}") for n in range(4) for r in failing.results][:1000]
    page = dataclasses.replace(failing, results=tuple(results)).to_html()
    assert len(page.encode()) < 1024 * 1024, len(page.encode())
    details = re.findall(r'<details class="check failed" id="check-([^"]+)".*?<pre>(.*?)</pre>', page, re.S)
    assert len(details) == sum(result.failed for result in results) > 990
    for check_id, text in details:
        assert text.startswith("CONTRACT.md rule "), check_id  # each keeps its beginning
        assert text.endswith("voicecb check --json FILE has every check whole)"), check_id  # and says it was cut
    # Every cause keeps its worked example whole, with a curl command that runs as printed.
    assert page.count('<div class="curl">') == len(failing.causes)


def test_cutting_details_to_fit_keeps_short_ones_whole_and_curl_commands_whole_or_out() -> None:
    from pytest_voicecb.console.report_html import fit

    short = ("CONTRACT.md rule 1: ok", "")
    long = ("CONTRACT.md rule 2: " + "<b>" * 400, "curl -sS -X POST http://localhost:8000/cb --data-binary '{}'")
    assert fit([short, long], 100_000) == [short[0], html.escape(long[0], quote=False) + "\nreproduce:\n" + long[1]]
    kept = fit([short] * 10 + [long] * 10, 4_000)
    assert kept[:10] == [short[0]] * 10  # under the fair share: whole
    for text in kept[10:]:
        assert len(text.encode()) <= (4_000 - 10 * len(short[0])) // 10
        assert "curl " not in text  # a command is never cut in the middle
        assert text.endswith("(cut to fit the report: voicecb check --json FILE has every check whole)")
        assert "&lt;b&gt;" in text
        assert "&lt;b&" not in text.rpartition("&lt;b&gt;")[2]  # no entity cut in half


def test_a_passing_report_says_so() -> None:
    from tests.handlers import flask_app

    page = run_conformance(flask_app.create_app(), seed=3).to_html()
    assert 'class="verdict passed"' in page or 'class="verdict warned"' in page
    assert "No check failed" in page or "Causes (" in page


def test_check_html_writes_the_file(tmp_path: Path) -> None:
    from tests.handlers import flask_app
    from tests.handlers.serve import serving  # a real server on loopback

    out = tmp_path / "report.html"
    with serving(flask_app.create_app("prompt-only")) as base:
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest_voicecb",
                "check",
                base + "/voice/callback",
                "--seed",
                "5",
                "--html",
                str(out),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stderr
    page = out.read_text(encoding="utf-8")
    assert 'class="verdict failed"' in page
    assert "--seed 5" in page
    assert not list(tmp_path.glob(".report.html.*"))  # the temporary file was renamed, not left behind


def test_check_html_to_an_unwritable_place_is_a_usage_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_voicecb",
            "check",
            "http://127.0.0.1:9/x",
            "--html",
            str(tmp_path / "no" / "r.html"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "cannot write the HTML report" in done.stderr


def test_the_report_renders_offline_in_chromium(report: Report, browser: Any, tmp_path: Path) -> None:
    file = tmp_path / "report.html"
    file.write_text(report.to_html(), encoding="utf-8")
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1200, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    requests: list[str] = []

    def block(route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            requests.append(route.request.url)
            route.abort()

    context.route("**/*", block)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(file.as_uri())  # how fast it renders: benchmarks/bench_console.py
    page.wait_for_selector("#matrix td.failed")
    page.screenshot(path=str(tmp_path / "report-top.png"))
    assert requests == []
    assert errors == []
    assert page.evaluate("window.pwned") is None
    assert page.locator("#verdict").get_attribute("class") == "verdict failed"
    # The hostile body is shown as text.
    assert "<script>window.pwned=1</script>" in page.locator("#causes").inner_text()
    # The matrix: a failing cell lists only its checks.
    total = page.locator("details.check").count()
    cell = page.locator('#matrix td.failed[data-kind="keypress"] button').first
    cell.click()
    visible = page.locator("details.check:not([hidden])")
    assert 0 < visible.count() < total
    assert all(kind == "keypress" for kind in visible.evaluate_all("els => els.map(e => e.dataset.kind)"))
    # A check's details open on demand.
    first = visible.first
    first.locator("summary").click()
    assert first.locator("pre").is_visible()
    page.screenshot(path=str(tmp_path / "report-filtered.png"), full_page=False)
    # The copy button copies the worked example's curl command.
    button = page.locator("#causes button.copy").first
    button.click()
    expect(button).to_have_attribute("data-copied", "1")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == page.locator("#curl-0").inner_text()
    context.close()


# ---- --voicecb-html in pytest -------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
LEAN = ("-p", "no:randomly", "-p", "no:cacheprovider")
CONFTEST = """
import pytest
from tests.handlers.flask_app import create_app

@pytest.fixture(scope="session")
def voicecb_target():
    return create_app("prompt-only")
"""


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.syspathinsert(ROOT)  # the test handlers live in this repository's tests/handlers
    pytester.makeconftest(CONFTEST)
    return pytester


def test_voicecb_html_writes_the_items_results(project: pytest.Pytester) -> None:
    out = project.path / "out" / "conformance.html"
    out.parent.mkdir()
    result = project.runpytest(
        *LEAN, "--voicecb-conformance", "-k", "valid/", "--voicecb-seed=4", f"--voicecb-html={out}"
    )
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] > 0
    result.stdout.fnmatch_lines([f"voicecb HTML report: {out} (FAILED: *"])
    page = out.read_text(encoding="utf-8")
    assert 'class="verdict failed"' in page
    assert page.count('<details class="check') == outcomes["failed"] + outcomes.get("passed", 0)
    assert 'data-kind="keypress" data-rule="1"' in page  # a failing check of the matrix
    assert "--voicecb-seed=4" in page  # how to rerun


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_voicecb_html_from_items_reads_like_the_command_lines_page(
    project: pytest.Pytester, workers: list[str]
) -> None:
    """Each failed item carries its whole result: what was sent, what came back (its real HTTP status, not
    "no reply"), the curl command, and the run's real elapsed time."""
    project.makeconftest(CONFTEST.replace('create_app("prompt-only")', 'create_app("raise")'))
    out = project.path / "conformance.html"
    result = project.runpytest(
        *LEAN, *workers, "--voicecb-conformance", "-k", "sibling or duplicate", f"--voicecb-html={out}"
    )
    assert result.parseoutcomes()["failed"] > 0
    page = out.read_text(encoding="utf-8")
    assert '<p class="got">got: HTTP 500 ' in page
    assert '<p class="got">no reply</p>' not in page
    assert '<p class="sent">sent: POST ' in page
    assert "curl -sS -i -X POST" in page
    assert " in 0.00 s " not in page


def test_the_end_of_run_summary_lists_every_cause_of_a_fixture_call(project: pytest.Pytester) -> None:
    project.makeconftest(CONFTEST.replace('create_app("prompt-only")', 'create_app("lenient")'))
    project.makepyfile(
        test_suite="""
        def test_conformance(voicecb_conformance):
            report = voicecb_conformance(skip=["valid/*", "duplicate*", "sibling/*"])
            print("CAUSES", len([c for c in report.causes if c.outcome == "warned"]))
        """
    )
    result = project.runpytest(*LEAN, "-s")
    result.assert_outcomes(passed=1)
    count = int(next(line for line in result.outlines if "CAUSES " in line).split("CAUSES ")[1])
    assert count > 1
    summary = result.outlines[
        result.outlines.index(next(line for line in result.outlines if "voicecb conformance warnings" in line)) :
    ]
    assert len([line for line in summary if ", in test_suite.py::test_conformance" in line]) == count


def test_voicecb_html_writes_a_fixture_calls_report(project: pytest.Pytester) -> None:
    project.makepyfile(
        test_suite="""
        def test_conformance(voicecb_conformance):
            voicecb_conformance(skip=["robust/*", "reject/*"])
        """
    )
    out = project.path / "r.html"
    result = project.runpytest(*LEAN, f"--voicecb-html={out}")
    result.assert_outcomes(failed=1)
    page = out.read_text(encoding="utf-8")
    assert "valid/code/typical" in page
    assert 'class="verdict failed"' in page


def test_voicecb_html_into_a_missing_folder_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest(*LEAN, f"--voicecb-html={project.path / 'nowhere' / 'r.html'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--voicecb-html*is not a folder*"])


BROWSER_TEST = """
from tests.console_browser import browser_fixture

def test_needs_a_browser(browser):
    pass
"""


@pytest.mark.parametrize(("required", "outcome"), [("", "skipped"), ("1", "errors")])
def test_a_missing_browser_skips_unless_required(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, required: str, outcome: str
) -> None:
    monkeypatch.setenv("VOICECB_CHROMIUM", str(project.path / "no-such-chromium"))
    monkeypatch.setenv("VOICECB_REQUIRE_BROWSER", required)
    project.makepyfile(test_browser=BROWSER_TEST)
    result = project.runpytest(*LEAN, "-rs")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*no chromium on PATH*"])
