"""The exploration phase (``explore=N``): generated cases find what the fixed corpus misses, each distinct
cause once, with the payload Hypothesis shrank it to, reproducibly from the seed; through
``run_conformance``, the ``voicecb_conformance`` fixture with ``--voicecb-explore`` and ``voicecb check
--explore``."""

from __future__ import annotations

import io
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from pytest_voicecb.conformance import Runner, run_conformance
from pytest_voicecb.conformance.report import Report
from tests.handlers import flask_app
from tests.handlers.serve import serving
from tests.test_cli import voicecb

pytest_plugins = ["pytester"]
pytest.importorskip("hypothesis")

SEED = 3
App = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def crashing(inner: App, *, zeros_callid: bool = False) -> App:
    """A correct handler, except that it crashes (HTTP 500) for a Chinese mobile number ending in 0000
    and, with ``zeros_callid``, divides by zero for an all-zero callid: bugs the fixed corpus misses."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            fields = next(iter(json.loads(body).values()))
            nationcode, mobile, callid = fields.get("nationcode"), str(fields.get("mobile")), fields.get("callid")
        except Exception:  # not a callback: the real handler judges it
            return inner(environ, start_response)
        if zeros_callid and isinstance(callid, str) and callid and set(callid) == {"0"}:
            _ = 1 / 0
        if nationcode == "86" and mobile.endswith("0000"):
            raise KeyError("tariff zone")
        return inner(environ, start_response)

    return app


def explored(report: Report) -> list[Any]:
    return [result for result in report.results if result.id.startswith("explore/")]


def test_explore_finds_a_bug_the_fixed_corpus_misses_with_the_shrunk_payload() -> None:
    app = crashing(flask_app.create_app())
    assert run_conformance(app, seed=SEED).ok  # the fixed corpus never sends such a number
    report = run_conformance(app, seed=SEED, explore=50)
    assert not report.ok
    assert [result.id for result in report.failures] == ["explore/1"]
    found = report["explore/1"]
    assert found.rule == 1
    assert "KeyError: 'tariff zone'" in found.cause
    assert found.reply is not None
    sent = json.loads(found.reply.request.body)
    fields = sent["voiceprompt_callback"]  # shrunk to the simplest kind, the simplest values
    assert fields["nationcode"] == "86"
    assert fields["mobile"] == "13000000000"
    assert fields["callid"] == "0" * 32
    assert f"explored 50 generated cases with seed {SEED}" in found.message
    text = report.format()
    assert "explore/1" in text
    assert "curl" in text
    assert '"mobile":"13000000000"' in text
    # reproducible from the seed: the same shrunk payload again
    again = run_conformance(app, seed=SEED, explore=50)["explore/1"]
    assert again.reply is not None
    assert again.reply.request.body == found.reply.request.body


def test_each_distinct_cause_is_reported_once() -> None:
    report = run_conformance(crashing(flask_app.create_app(), zeros_callid=True), seed=SEED, explore=50)
    found = explored(report)
    assert [result.id for result in found] == ["explore/1", "explore/2"]
    causes = sorted(result.cause for result in found)
    assert "KeyError" in causes[0]
    assert "ZeroDivisionError" in causes[1]
    assert len(report.causes) == 2
    for result in found:
        assert result.reply is not None
        fields = next(iter(json.loads(result.reply.request.body).values()))
        if "KeyError" in result.cause:  # it could not shrink the callid to zeros: that is the other bug
            assert set(fields["callid"]) != {"0"}
            assert fields["mobile"].endswith("0000")
        else:
            assert set(fields["callid"]) == {"0"}


def test_off_by_default_and_bad_values_refused() -> None:
    app = crashing(flask_app.create_app())
    assert explored(run_conformance(app, seed=SEED)) == []
    assert explored(run_conformance(app, seed=SEED, explore=0)) == []
    for bad in (-1, True, "5", 2.5):
        with pytest.raises(ValueError, match="explore must be a whole number"):
            Runner(app, explore=bad)  # type: ignore[arg-type]


def test_without_hypothesis_a_clear_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [name for name in sys.modules if name == "hypothesis" or name.startswith("hypothesis.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "hypothesis", None)
    with pytest.raises(ImportError, match=r'pip install "pytest-voicecb\[hypothesis\]"'):
        Runner(flask_app.create_app(), explore=5)
    assert Runner(flask_app.create_app()).explore == 0  # not exploring: Hypothesis is not needed


def test_voicecb_explore_option_on_the_fixture(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from tests.handlers import flask_app
        from tests.test_explore import crashing

        @pytest.fixture
        def voicecb_target():
            return crashing(flask_app.create_app())
        """
    )
    pytester.makepyfile("def test_conformance(voicecb_conformance):\n    voicecb_conformance()\n")
    pytester.runpytest("-p", "no:randomly", "--voicecb-seed=3").assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:randomly", "--voicecb-seed=3", "--voicecb-explore", "50")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*explore/1*", "*KeyError*tariff zone*", "*curl*"])
    bad = pytester.runpytest("-p", "no:randomly", "--voicecb-explore", "-2")
    assert bad.ret == pytest.ExitCode.USAGE_ERROR
    bad.stderr.fnmatch_lines(["*'-2' is not a whole number*"])


def test_voicecb_check_explore(tmp_path: Any) -> None:
    with serving(crashing(flask_app.create_app())) as base:
        url = base + "/voice/callback"
        proc = voicecb("check", url, "--seed", "3", "--explore", "50")
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "explore/1" in proc.stdout
        assert "13000000000" in proc.stdout
        assert "curl" in proc.stdout
        assert voicecb("check", url, "--seed", "3").returncode == 0
        bad = voicecb("check", url, "--explore", "many")
        assert bad.returncode == 2
        assert "expected a whole number, 0 or more, got 'many'" in bad.stderr
