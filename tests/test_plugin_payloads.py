"""The voicecb_payload fixture and the seed, as a user's pytest run sees them (pytester)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from pytest_voicecb.factory import PayloadFactory

# A user's project: tests that record what voicecb_payload built for them, one file per test, so the
# runs below can be compared test by test (also across xdist workers).
CONFTEST = """
import json, os, pathlib, pytest

@pytest.fixture
def record(request):
    def record(payloads):
        out = pathlib.Path(os.environ["VOICECB_RECORD"])
        name = request.node.nodeid.replace("/", "_").replace(":", "_")
        (out / (name + ".json")).write_text(json.dumps({"test": request.node.nodeid, "payloads": payloads}))
    return record
"""
TEST_CALLS = """
import pytest

@pytest.mark.parametrize("n", range(4))
def test_prompts(voicecb_payload, record, n):
    record([voicecb_payload() for _ in range(3)] + [voicecb_payload.failure(), voicecb_payload.unanswered()])

def test_batch(voicecb_payload, record):
    record(voicecb_payload.batch(5, kind="code"))

class TestKeys:
    def test_keypress(self, voicecb_payload, record, voicecb_seed):
        assert isinstance(voicecb_seed, int)
        record([voicecb_payload.keypress(), voicecb_seed])
"""
TEST_MORE = """
def test_variants(voicecb_payload, record):
    record([v.payload for v in voicecb_payload.variants("failure")])

def test_malformed(voicecb_payload, record):
    record([case.body.decode("utf-8", "replace")[:200] for case in voicecb_payload.malformed("prompt")][:20])
"""
SEED_LINE = re.compile(r"^voicecb: --voicecb-seed=(\d+) \((.*)\)$")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(test_calls=TEST_CALLS, test_more=TEST_MORE)
    return pytester


class Run:
    """One pytest run of the project: its outcome, the seed in its header, and what each test built."""

    def __init__(self, result: pytest.RunResult, record: Path) -> None:
        self.result = result
        headers = [m for line in result.outlines if (m := SEED_LINE.match(line))]
        assert len(headers) == 1, result.outlines[:10]
        self.seed, self.source = int(headers[0][1]), headers[0][2]
        self.payloads: dict[str, Any] = {}
        for path in record.iterdir():
            data = json.loads(path.read_text())
            self.payloads[data["test"]] = data["payloads"]


@pytest.fixture
def run(project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    count = 0

    def run(*args: str, subprocess: bool = False, outcome: dict[str, int] | None = None) -> Run:
        nonlocal count
        count += 1
        record = tmp_path / f"record-{count}"
        record.mkdir()
        monkeypatch.setenv("VOICECB_RECORD", str(record))
        result = run_subprocess(project, monkeypatch, *args) if subprocess else project.runpytest(*args)
        result.assert_outcomes(**(outcome or {"passed": 8}))
        return Run(result, record)

    return run


def run_subprocess(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, *args: str) -> pytest.RunResult:
    """pytest in a subprocess (xdist needs one) with only the plugins under test: without the other
    installed plugins (schemathesis, hypothesis, ...) it and its workers start ten times faster."""
    with monkeypatch.context() as env:
        env.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
        return pytester.runpytest_subprocess("-p", "voicecb", "-p", "xdist", *args)


def test_the_fixture_is_a_payload_factory_seeded_by_session_seed_and_test_id(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_it="""
        from pytest_voicecb import PayloadFactory, parse_callback

        def test_it(voicecb_payload, voicecb_seed, request):
            assert isinstance(voicecb_payload, PayloadFactory)
            assert voicecb_payload.seed == (voicecb_seed, request.node.nodeid) == (31, "test_it.py::test_it")
            assert voicecb_payload() == PayloadFactory((31, "test_it.py::test_it")).prompt()
            assert parse_callback(voicecb_payload.answered()).kind == "voiceprompt_callback"

        def test_fresh_per_test(voicecb_payload):
            assert voicecb_payload.seed == (31, "test_it.py::test_fresh_per_test")
        """
    )
    pytester.runpytest("-p", "no:randomly", "--voicecb-seed=31").assert_outcomes(passed=2)


def test_the_same_seed_gives_the_same_payloads_and_another_seed_others(run: Any) -> None:
    first, again, other = run("--voicecb-seed=1234"), run("--voicecb-seed", "1234"), run("--voicecb-seed=1235")
    assert (first.seed, first.source) == (1234, "given")
    assert len(first.payloads) == 8
    assert first.payloads == again.payloads
    assert set(other.payloads) == set(first.payloads)
    assert all(other.payloads[test] != first.payloads[test] for test in first.payloads)


def test_each_test_gets_its_own_stream(run: Any) -> None:
    payloads = run("--voicecb-seed=9", "-p", "no:randomly").payloads
    first_prompts = [p[0] for test, p in payloads.items() if "test_prompts" in test]
    assert len(first_prompts) == 4
    assert len({json.dumps(p) for p in first_prompts}) == 4


def test_without_a_seed_a_random_one_is_drawn_and_shown_in_the_header(run: Any) -> None:
    first, second = run("-p", "no:randomly"), run("-p", "no:randomly")
    assert first.source == second.source == "random"
    assert first.seed != second.seed
    assert first.payloads != second.payloads
    # The header's seed reproduces the run.
    assert run("-p", "no:randomly", f"--voicecb-seed={second.seed}").payloads == second.payloads
    assert second.payloads["test_calls.py::TestKeys::test_keypress"][1] == second.seed


def test_last_reuses_the_previous_runs_seed(run: Any) -> None:
    first = run("-p", "no:randomly")
    last = run("-p", "no:randomly", "--voicecb-seed=last")
    assert (last.seed, last.source) == (first.seed, "the last run's")
    assert last.payloads == first.payloads
    given = run("-p", "no:randomly", "--voicecb-seed=77")
    assert run("-p", "no:randomly", "--voicecb-seed=last").seed == given.seed == 77


def test_last_without_a_previous_run_draws_a_new_seed_and_says_so(run: Any) -> None:
    assert run("-p", "no:randomly", "--voicecb-seed=last").source == "random: no previous run to reuse"


def test_last_needs_the_cache(project: pytest.Pytester) -> None:
    result = project.runpytest("-p", "no:randomly", "-p", "no:cacheprovider", "--voicecb-seed=last")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--voicecb-seed=last needs pytest's cache*"])


def test_a_seed_that_is_not_a_number_is_a_usage_error(project: pytest.Pytester) -> None:
    result = project.runpytest("--voicecb-seed=soon")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*argument --voicecb-seed: 'soon' is not an integer or 'last'*"])


def test_the_ini_seed_pins_the_payloads_and_the_option_wins_over_it(run: Any, project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nvoicecb_seed = 4242\n")
    pinned = run("-p", "randomly")  # pinned in the ini: pytest-randomly's seed does not replace it
    assert (pinned.seed, pinned.source) == (4242, "ini voicecb_seed")
    assert run("-p", "no:randomly").payloads == pinned.payloads
    given = run("-p", "no:randomly", "--voicecb-seed=5")
    assert (given.seed, given.source) == (5, "given")
    assert given.payloads != pinned.payloads


def test_an_ini_seed_that_is_not_an_integer_is_a_usage_error(project: pytest.Pytester) -> None:
    project.makeini("[pytest]\nvoicecb_seed = soon\n")
    result = project.runpytest("-p", "no:randomly")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*voicecb_seed ini option: 'soon' is not an integer*"])


def test_the_option_is_documented_in_help(pytester: pytest.Pytester) -> None:
    pytester.runpytest("--help").stdout.fnmatch_lines(["*voice-notification callbacks*", "*--voicecb-seed=N|last*"])


def test_one_test_alone_gets_the_payloads_it_got_in_the_full_run(run: Any) -> None:
    full = run("--voicecb-seed=5", "-p", "no:randomly")
    for test in ("test_calls.py::test_prompts[2]", "test_more.py::test_variants", "test_calls.py::TestKeys"):
        alone = run("--voicecb-seed=5", "-p", "no:randomly", test, outcome={"passed": 1})
        assert alone.payloads
        assert all(alone.payloads[t] == full.payloads[t] for t in alone.payloads)


def test_two_xdist_workers_reproduce_a_serial_run(run: Any) -> None:
    serial = run("--voicecb-seed=2024", "-p", "no:randomly")
    parallel = run("--voicecb-seed=2024", "-n", "2", subprocess=True)
    assert parallel.payloads == serial.payloads
    # Without --voicecb-seed the workers still share the controller's (random) seed.
    drawn = run("-n", "2", subprocess=True)
    assert drawn.source == "random"
    assert drawn.payloads["test_calls.py::TestKeys::test_keypress"][1] == drawn.seed
    assert run(f"--voicecb-seed={drawn.seed}", "-p", "no:randomly").payloads == drawn.payloads


def test_randomly_seed_reproduces_the_payloads(run: Any) -> None:
    first = run("-p", "randomly", "--randomly-seed=4321")
    assert (first.seed, first.source) == (4321, "--randomly-seed")
    assert run("-p", "randomly", "--randomly-seed=4321").payloads == first.payloads
    assert run("-p", "no:randomly", "--voicecb-seed=4321").payloads == first.payloads
    assert run("-p", "randomly", "--randomly-seed=4322").payloads != first.payloads
    # An explicit --voicecb-seed wins over pytest-randomly's.
    explicit = run("-p", "randomly", "--randomly-seed=4321", "--voicecb-seed=8")
    assert (explicit.seed, explicit.source) == (8, "given")


def test_randomly_seed_under_xdist(run: Any) -> None:
    parallel = run("-p", "randomly", "--randomly-seed=99", "-n", "2", subprocess=True)
    assert parallel.seed == 99
    assert run("-p", "no:randomly", "--voicecb-seed=99").payloads == parallel.payloads


FAILING = """
def test_uses_payloads(voicecb_payload):
    assert voicecb_payload()["voiceprompt_callback"]["result"] == "1"

def test_fails_without_voicecb():
    assert False

def test_passes(voicecb_payload):
    assert voicecb_payload()

def test_fails_in_setup(broken):
    pass
"""
FAILING_CONFTEST = """
import pytest

@pytest.fixture
def broken(voicecb_seed):
    raise RuntimeError("fixture broke")
"""


def test_a_failure_report_names_the_seed_and_how_to_rerun(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(FAILING_CONFTEST)
    pytester.makepyfile(test_failing=FAILING)
    result = pytester.runpytest("-p", "no:randomly", "--voicecb-seed=606")
    result.assert_outcomes(failed=2, passed=1, errors=1)
    text = result.stdout.str()
    section = "payloads were built with --voicecb-seed=606; rerun with: pytest {} --voicecb-seed=606"
    assert section.format("test_failing.py::test_uses_payloads") in text
    assert section.format("test_failing.py::test_fails_in_setup") in text
    assert "test_failing.py::test_fails_without_voicecb --voicecb-seed" not in text
    assert "test_failing.py::test_passes --voicecb-seed" not in text
    assert text.count("voicecb-seed=606; rerun with") == 2


def test_the_failure_section_reaches_the_controller_under_xdist(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytester.makepyfile(test_failing=FAILING.split("def test_fails_without")[0])
    result = run_subprocess(pytester, monkeypatch, "-n", "2", "--voicecb-seed=7")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*voicecb-seed=7; rerun with: pytest test_failing.py::test_uses_payloads*"])


def test_a_test_id_with_shell_characters_is_quoted_in_the_rerun_command(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_quoted="""
        import pytest

        @pytest.mark.parametrize("who", ["a b"])
        def test_it(voicecb_payload, who):
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--voicecb-seed=1")
    assert "rerun with: pytest 'test_quoted.py::test_it[a b]' --voicecb-seed=1" in result.stdout.str()


def test_payload_stream_matches_the_library(pytester: pytest.Pytester) -> None:
    """The fixture adds nothing of its own: the same (seed, test id) in plain code builds the same payloads."""
    pytester.makepyfile(
        test_match="""
        import json

        def test_it(voicecb_payload):
            print("PAYLOADS" + json.dumps([voicecb_payload(), voicecb_payload.code()]))
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--voicecb-seed=3", "-s")
    found = re.search(r"PAYLOADS(.*)$", result.stdout.str(), re.MULTILINE)
    assert found
    factory = PayloadFactory((3, "test_match.py::test_it"))
    assert json.loads(found[1]) == [factory(), factory.code()]


def test_the_seed_footer_appears_only_where_payloads_were_built(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_footer="""
        import pytest

        @pytest.fixture
        def callback(voicecb_payload):
            return voicecb_payload()

        def test_server_only(voicecb_server):
            assert False

        def test_through_a_fixture(callback, voicecb_server):
            assert False
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "--voicecb-seed=8")
    result.assert_outcomes(failed=2)
    text = result.stdout.str()
    assert "rerun with: pytest test_footer.py::test_through_a_fixture --voicecb-seed=8" in text
    assert "test_server_only --voicecb-seed" not in text
    assert text.count("payloads were built with") == 1
