"""Hypothesis strategies: valid payloads that pass the contract, malformed cases it refuses, real shrinking."""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
from importlib.metadata import EntryPoint
from typing import Any

import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

from pytest_voicecb.contract import (
    CODE,
    FAILURE,
    KEYPRESS,
    PROMPT,
    CallbackError,
    FailureCallback,
    PromptCallback,
    ReplyBody,
    parse_callback,
    parse_reply,
)
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.integrations import strategies
from pytest_voicecb.integrations.strategies import bodies, callbacks, every_variant, malformed
from pytest_voicecb.values import MISSING, Case

HOOK = "pytest_voicecb.integrations._hypothesis_hook:_hypothesis_setup_hook"
quick = settings(max_examples=150, database=None)


def inner(payload: dict[str, Any]) -> dict[str, Any]:
    (fields,) = payload.values()
    assert isinstance(fields, dict)
    return fields


# ---- valid payloads -----------------------------------------------------------------------------------


@quick
@given(callbacks())
def test_every_generated_callback_passes_the_contract(payload: dict[str, Any]) -> None:
    parse_callback(payload)


@pytest.mark.parametrize("kind", ["prompt", CODE, "keypress", FAILURE])
def test_callbacks_of_one_kind_are_of_that_kind(kind: str) -> None:
    @quick
    @given(callbacks(kind))
    def check(payload: dict[str, Any]) -> None:
        assert parse_callback(payload).kind in (kind, {"prompt": PROMPT, "keypress": KEYPRESS}.get(kind))

    check()


@quick
@given(bodies())
def test_bodies_are_the_compact_utf8_the_provider_sends(body: bytes) -> None:
    assert isinstance(body, bytes)
    assert b": " not in body[:40]
    parse_callback(body)


@quick
@given(callbacks("prompt", result="1", nationcode="44", fee=MISSING, callid=st.sampled_from(["a", "b"])))
def test_fixed_fields_steer_the_draw_or_are_laid_over_it(payload: dict[str, Any]) -> None:
    fields = inner(payload)
    assert fields["result"] == "1"
    assert fields["accept_time"] in ("0", "")
    assert fields["nationcode"] == "44"
    assert fields["mobile"].startswith("7")
    assert len(fields["mobile"]) == 10
    assert "fee" not in fields
    assert fields["callid"] in ("a", "b")


@quick
@given(callbacks("failure", failure_code=8), callbacks("prompt", nationcode=st.sampled_from(["81", "999"])))
def test_a_fixed_failure_code_gets_its_reason_and_a_nationcode_strategy_works(
    failure: dict[str, Any], prompt: dict[str, Any]
) -> None:
    assert inner(failure)["failure_code"] == 8
    parse_callback(failure)
    fields = inner(prompt)
    assert fields["nationcode"] in ("81", "999")
    parse_callback(prompt)


def test_without_a_kind_only_shared_fields_can_be_fixed() -> None:
    with pytest.raises(ValueError, match=r"fix only the fields every kind has .* got result: pass kind="):
        callbacks(result="1")
    with pytest.raises(ValueError, match="unknown callback kind 'bogus'"):
        callbacks("bogus")


def test_every_variant_tries_each_documented_shape_first() -> None:
    seen: list[dict[str, Any]] = []

    @settings(phases=[Phase.explicit], database=None)
    @given(payload=callbacks())
    @every_variant(argname="payload")
    def record(payload: dict[str, Any]) -> None:
        seen.append(payload)

    record()
    expected = [variant.payload for variant in PayloadFactory(strategies.VARIANT_SEED).variants()]
    assert seen == expected
    assert len(seen) > 100


# ---- malformed input -------------------------------------------------------------------------------


@settings(max_examples=300, database=None)
@given(malformed())
def test_every_malformed_case_is_refused_by_the_contract(case: Case) -> None:
    assert isinstance(case, Case)
    if case.id == "transport/form-content-type" or case.id.startswith("prompt/extra-key-"):
        return  # valid bodies: a wrong content type, or extra keys (legal, however suspicious their names)
    with pytest.raises(CallbackError):
        parse_callback(case.body)


@quick
@given(malformed("reject"), malformed("robust"))
def test_malformed_keeps_only_the_expectation_asked_for(reject: Case, robust: Case) -> None:
    assert reject.expect == "reject"
    assert robust.expect == "robust"


def test_mutations_cover_every_kind_of_change() -> None:
    ids: list[str] = []

    # derandomized: the same 300 draws every run, so coverage is a fact about the strategy, not luck
    @settings(max_examples=300, database=None, phases=[Phase.generate], derandomize=True)
    @given(strategies._mutations(None))
    def collect(case: Case) -> None:
        ids.append(case.id)

    collect()
    assert all(case_id.startswith("mutation/") for case_id in ids)
    changes = ("-missing", "callid-empty", "-lone-surrogate", "-null", "-as-", "-boundary-", "-odd-unicode-")
    assert [change for change in changes if not any(change in case_id for case_id in ids)] == []


def test_a_wrong_expectation_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r'takes None, "reject" or "robust", got \'rejected\''):
        malformed("rejected")  # type: ignore[arg-type]


# ---- models and the entry point ------------------------------------------------------------------------


def test_the_entry_point_hook_registers_the_models_lazily() -> None:
    code = f"""
import sys
from importlib.metadata import EntryPoint
from hypothesis import strategies as st
EntryPoint(name="voicecb", value="{HOOK}", group="hypothesis").load()()
assert "pytest_voicecb.integrations.strategies" not in sys.modules, "the hook imported the strategies"
from pytest_voicecb.contract import Callback, FailureCallback, PromptCallback, ReplyBody
assert isinstance(st.from_type(PromptCallback).example(), PromptCallback)
assert isinstance(st.from_type(FailureCallback).example(), FailureCallback)
assert isinstance(st.from_type(Callback).example(), Callback)
assert isinstance(st.from_type(ReplyBody).example(), ReplyBody)
print("ok")
"""
    env = {"HYPOTHESIS_NO_PLUGINS": "1", "PATH": "", "PYTHONPATH": ":".join(sys.path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert done.stdout.strip() == "ok", done.stderr


def test_register_strategies_in_process() -> None:
    EntryPoint(name="voicecb", value=HOOK, group="hypothesis").load()()

    @settings(max_examples=30, database=None)
    @given(st.from_type(PromptCallback), st.from_type(FailureCallback), st.from_type(ReplyBody))
    def check(prompt: PromptCallback, failure: FailureCallback, reply: ReplyBody) -> None:
        assert prompt.kind == PROMPT
        assert failure.kind == FAILURE
        parse_reply(reply.model_dump())

    check()


# ---- shrinking to a minimal payload ----------------------------------------------------------------------

SHRINK_TESTS = """
import json
from hypothesis import Phase, given, settings
from pytest_voicecb import CallbackClient, assert_reply_ok
from pytest_voicecb.integrations.strategies import callbacks


def handler_for(bug):
    def handler(environ, start_response):
        body = json.loads(environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0)))
        (fields,) = body.values()
        bug(fields)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"result": 0, "errmsg": "OK"}']
    return handler


# Hypothesis' explain phase (which lines only failing examples ran) takes seconds and is not needed here.
fast = settings(database=None, max_examples=500, derandomize=True, phases=[p for p in Phase if p.name != "explain"])


def no_route_for_44(fields):
    if fields.get("nationcode") == "44":
        raise KeyError("no route for +44")


def year_zero(fields):
    if fields.get("accept_time") == "0":
        raise ValueError("year 0 is out of range")


@fast
@given(payload=callbacks())
def test_nationcode(payload):
    with CallbackClient(handler_for(no_route_for_44)) as client:
        assert_reply_ok(client.post(payload))


@fast
@given(payload=callbacks("prompt"))
def test_accept_time(payload):
    with CallbackClient(handler_for(year_zero)) as client:
        assert_reply_ok(client.post(payload))
"""


@pytest.fixture(scope="module")
def shrunk(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The payload Hypothesis reports for each buggy handler, read back from its report.

    One pytest run in a process of its own, as a user runs it: schemathesis' pytest plugin (installed
    for the benchmarks) patches Hypothesis when imported, which blanks printed examples, and this
    process has imported it. Only Hypothesis' own plugin is loaded, which keeps the start fast.
    """
    folder = tmp_path_factory.mktemp("shrink")
    (folder / "test_shrink.py").write_text(SHRINK_TESTS, encoding="utf-8")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "_hypothesis_pytestplugin", "-p", "no:cacheprovider"]
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "2 failed" in done.stdout, done.stdout + done.stderr
    output = "\n".join(line.removeprefix("E").strip() for line in done.stdout.splitlines())
    found = {}
    for test in ("test_nationcode", "test_accept_time"):
        header = rf"(?:Falsifying example|Failing test case): {test}\((?:\s*#[^\n]*)*\s*payload="
        match = re.search(header + r"(\{.*?\}\}),\s*\)", output, re.S)
        assert match, output
        found[test] = ast.literal_eval(match.group(1))
    return found


MINIMAL_START = "1672531200"  # the first second of the strategies' time window
MINIMAL_FIELDS = {  # what every field other than the one that matters shrinks to, kind by kind
    PROMPT: {"result": "0", "accept_time": MINIMAL_START, "end_calltime": MINIMAL_START, "fee": "0"},
    KEYPRESS: {"keypress": "0"},
    FAILURE: {"failure_code": 1, "failure_reason": "关机"},
}
MINIMAL_FIELDS[CODE] = MINIMAL_FIELDS[PROMPT]


def test_a_handler_crashing_for_one_nationcode_shrinks_to_the_minimal_payload(
    shrunk: dict[str, dict[str, Any]],
) -> None:
    ((kind, fields),) = shrunk["test_nationcode"].items()
    expected = {"call_from": "", "callid": "0" * 32, "mobile": "7400000000", "nationcode": "44"}
    expected |= MINIMAL_FIELDS[kind]  # the UK plan's first prefix, every other choice at its simplest
    if kind in (PROMPT, CODE):
        expected["start_calltime"] = MINIMAL_START
    assert fields == expected


def test_a_handler_crashing_on_an_accept_time_of_zero_shrinks_to_an_unanswered_call(
    shrunk: dict[str, dict[str, Any]],
) -> None:
    assert shrunk["test_accept_time"] == {  # result "1": an answered call never has "0", the smallest that may
        PROMPT: {
            "result": "1",
            "accept_time": "0",
            "call_from": "",
            "callid": "0" * 32,
            "end_calltime": "0",
            "fee": "0",
            "mobile": "13000000000",
            "nationcode": "86",
            "start_calltime": MINIMAL_START,
        }
    }


def test_the_public_alias_is_the_same_module() -> None:
    from pytest_voicecb import strategies as alias

    assert alias.callbacks is callbacks
    assert alias.malformed is malformed
