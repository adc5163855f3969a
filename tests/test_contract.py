"""The contract in code: what parse_callback and parse_reply accept, what they refuse, and how they say it."""

from __future__ import annotations

import json
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_voicecb.contract import (
    CALLBACK_MODELS,
    CODE,
    FAILURE,
    FAILURE_CODES,
    KEYPRESS,
    KINDS,
    MAX_BODY_SIZE,
    PROMPT,
    SHORT_NAMES,
    Callback,
    CallbackError,
    CodeCallback,
    FailureCallback,
    KeypressCallback,
    Problem,
    PromptCallback,
    ReplyBody,
    ReplyContractError,
    encode,
    error_reply,
    kind_named,
    ok_reply,
    parse_callback,
    parse_reply,
)
from pytest_voicecb.factory import MISSING, PayloadFactory


@pytest.fixture
def factory() -> PayloadFactory:
    return PayloadFactory(20240501)


def paths(error: CallbackError | ReplyContractError) -> list[str]:
    return [problem.path for problem in error.problems]


# ---- valid callbacks --------------------------------------------------------------------------------


def test_every_documented_variant_of_every_kind_is_valid(factory: PayloadFactory) -> None:
    variants = factory.variants()
    assert {v.id.split("/")[0] for v in variants} == set(SHORT_NAMES)
    for variant in variants:
        callback = parse_callback(variant.payload)
        (kind, fields), *_ = variant.payload.items()
        assert callback.kind == kind, variant.id
        assert callback.model_dump() == fields, variant.id


@pytest.mark.parametrize(
    ("kind", "model"),
    [(PROMPT, PromptCallback), (CODE, CodeCallback), (KEYPRESS, KeypressCallback), (FAILURE, FailureCallback)],
)
def test_each_kind_parses_to_its_model(factory: PayloadFactory, kind: str, model: type[Callback]) -> None:
    payload = factory.batch(1, kind=kind)[0]
    callback = parse_callback(encode(payload))
    assert type(callback) is model
    assert callback.envelope() == payload


def test_bytes_text_bytearray_and_mappings_are_all_accepted(factory: PayloadFactory) -> None:
    payload = factory.failure(failure_code=8)
    body = encode(payload)
    forms: list[Any] = [body, bytearray(body), body.decode(), payload, MappingProxyType(payload)]
    parsed = [parse_callback(form) for form in forms]
    assert all(callback == parsed[0] for callback in parsed)
    assert isinstance(parsed[0], FailureCallback)
    assert parsed[0].failure_reason == FAILURE_CODES[8].reason


def test_unknown_extra_fields_are_accepted_and_kept(factory: PayloadFactory) -> None:
    callback = parse_callback(factory.prompt(future_field="x", another={"nested": [1]}))
    assert callback.model_dump()["future_field"] == "x"
    assert callback.envelope()[PROMPT]["another"] == {"nested": [1]}


@pytest.mark.parametrize("times", ["0", ""])
@pytest.mark.parametrize("result", ["1", "2"])
def test_unanswered_calls_with_zero_or_empty_times_are_valid(factory: PayloadFactory, result: str, times: str) -> None:
    callback = parse_callback(factory.prompt(result=result, accept_time=times, end_calltime=times, fee="0"))
    assert isinstance(callback, PromptCallback)
    assert not callback.answered


def test_leading_whitespace_and_an_unknown_top_level_key_next_to_the_kind_are_fine(factory: PayloadFactory) -> None:
    body = b" \n" + encode({**factory.code(), "request_id": "x"}) + b"\n"
    assert parse_callback(body).kind == CODE


# ---- invalid callbacks: every problem, with its JSON path ---------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_every_missing_field_is_reported_at_its_path(factory: PayloadFactory, kind: str) -> None:
    required = [name for name, field in CALLBACK_MODELS[kind].model_fields.items() if field.is_required()]
    for name in required:
        with pytest.raises(CallbackError) as caught:
            parse_callback(factory.build(kind, **{name: MISSING}))
        assert caught.value.problems == (Problem(f"$.{kind}.{name}", "required field is missing"),)
        assert caught.value.kind == kind


def test_all_problems_are_listed_at_once_in_readable_words(factory: PayloadFactory) -> None:
    payload = factory.prompt(result=0, fee=None, mobile="+8613800138000", nationcode=86, callid="")
    with pytest.raises(CallbackError) as caught:
        parse_callback(payload)
    problems = dict(caught.value.problems)
    assert problems == {
        "$.voiceprompt_callback.result": "must be one of '0', '1' or '2', got the number 0",
        "$.voiceprompt_callback.callid": "must not be empty",
        "$.voiceprompt_callback.fee": "must be a JSON string, got null",
        "$.voiceprompt_callback.mobile": 'must be decimal digits, got the string "+8613800138000"',
        "$.voiceprompt_callback.nationcode": "must be a JSON string, got the number 86",
    }
    text = str(caught.value)
    assert text.splitlines()[0] == "invalid voiceprompt_callback: 5 problems"
    assert "  - $.voiceprompt_callback.fee: must be a JSON string, got null" in text.splitlines()


@pytest.mark.parametrize(
    ("kind", "overrides", "path", "message"),
    [
        (PROMPT, {"accept_time": "soon"}, "accept_time", 'must be decimal digits or "", got the string "soon"'),
        (PROMPT, {"start_calltime": ""}, "start_calltime", 'must be decimal digits, got the string ""'),
        (PROMPT, {"result": "3"}, "result", "must be one of '0', '1' or '2', got the string \"3\""),
        (PROMPT, {"fee": "-1"}, "fee", 'must be decimal digits or "", got the string "-1"'),
        (CODE, {"call_from": "+86 755"}, "call_from", 'must be decimal digits or "", got the string "+86 755"'),
        (KEYPRESS, {"keypress": "A"}, "keypress", 'must be keypad characters (0-9, * or #), got the string "A"'),
        (KEYPRESS, {"keypress": 2}, "keypress", "must be a JSON string, got the number 2"),
        (FAILURE, {"failure_code": "8"}, "failure_code", 'must be a JSON number (an integer), got the string "8"'),
        (FAILURE, {"failure_code": True}, "failure_code", "must be a JSON number (an integer), got the boolean true"),
        (FAILURE, {"failure_code": 0}, "failure_code", "must be a positive integer, got the number 0"),
        (FAILURE, {"failure_reason": ["x"]}, "failure_reason", "must be a JSON string, got an array of 1 item"),
        (FAILURE, {"mobile": {}}, "mobile", "must be a JSON string, got an empty object"),
    ],
)
def test_wrong_values_are_said_in_the_contracts_words(
    factory: PayloadFactory, kind: str, overrides: dict[str, Any], path: str, message: str
) -> None:
    with pytest.raises(CallbackError) as caught:
        parse_callback(encode(factory.build(kind, **overrides)))
    assert caught.value.problems == (Problem(f"$.{kind}.{path}", message),)


def test_times_out_of_order_are_refused(factory: PayloadFactory) -> None:
    start = 1_700_000_000
    answered = factory.prompt(start_calltime=str(start), accept_time=str(start + 10), end_calltime=str(start - 1))
    with pytest.raises(CallbackError, match="times out of order: need start_calltime <= accept_time <= end_calltime"):
        parse_callback(answered)
    unanswered = factory.code(result="1", start_calltime=str(start), end_calltime=str(start - 60))
    with pytest.raises(CallbackError, match=f"end_calltime {start - 60} is before start_calltime {start}"):
        parse_callback(unanswered)
    no_times = factory.prompt(result="0", accept_time="", end_calltime="")
    with pytest.raises(CallbackError, match=r'an answered call \(result "0"\) needs accept_time, end_calltime'):
        parse_callback(no_times)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "body is empty"),
        (b" \t\r\n", "body is only whitespace"),
        (b"[]", "must be a JSON object, got an array of 0 items"),
        (b'"voiceprompt_callback"', 'must be a JSON object, got the string "voiceprompt_callback"'),
        (b"3.5", "must be a JSON object, got the number 3.5"),
        (b"null", "must be a JSON object, got null"),
        (b"false", "must be a JSON object, got the boolean false"),
        (
            b"{}",
            "no known callback key (expected one of voiceprompt_callback, voicecode_callback, "
            "voicekey_callback, voice_failure_callback; found none)",
        ),
        (
            b'{"callid": "1", "result": "0"}',
            "no known callback key (expected one of voiceprompt_callback, "
            "voicecode_callback, voicekey_callback, voice_failure_callback; "
            "found 'callid', 'result')",
        ),
        (
            b'{"voiceprompt_callback": {}, "voicekey_callback": {}}',
            "holds 2 callback kinds (voiceprompt_callback, voicekey_callback); expected one",
        ),
        (b"\xef\xbb\xbf{}", "body starts with a UTF-8 byte-order mark; send plain UTF-8"),
        ('{"voiceprompt_callback": {}}'.encode("utf-16"), "body looks like UTF-16; the contract is UTF-8"),
        ('{"voiceprompt_callback": {}}'.encode("utf-16-le"), "body looks like UTF-16; the contract is UTF-8"),
        (b'{"a": "\xe7\xa9"}', "not valid UTF-8 (byte 7: b'\\xe7')"),
    ],
)
def test_broken_envelopes_are_refused_at_the_root(body: bytes, message: str) -> None:
    with pytest.raises(CallbackError) as caught:
        parse_callback(body)
    assert caught.value.problems == (Problem("$", message),)


def test_a_callback_that_is_not_an_object_is_refused_at_its_key() -> None:
    with pytest.raises(CallbackError) as caught:
        parse_callback(b'{"voicekey_callback": "2"}')
    assert caught.value.problems == (Problem("$.voicekey_callback", 'must be a JSON object, got the string "2"'),)
    assert caught.value.kind == KEYPRESS


def test_not_json_names_the_parser_error_and_shows_the_start_of_the_body() -> None:
    with pytest.raises(CallbackError) as caught:
        parse_callback("<html><body>502 Bad Gateway</body></html>")
    (problem,) = caught.value.problems
    assert problem.path == "$"
    assert problem.message.startswith("not JSON: expected value at line 1 column 1")
    assert problem.message.endswith('body starts "<html><body>502 Bad Gateway</body></html>"')


def test_size_limit_is_checked_before_parsing(factory: PayloadFactory) -> None:
    body = encode(factory.prompt())
    padded = body + b" " * (MAX_BODY_SIZE - len(body))
    assert parse_callback(padded).kind == PROMPT
    with pytest.raises(CallbackError, match=r"body is 1,048,577 bytes, over the 1,048,576-byte limit"):
        parse_callback(padded + b" ")
    with pytest.raises(CallbackError, match=r"over the 100-byte limit"):
        parse_callback(body, max_size=100)


def test_deep_nesting_is_refused_without_recursion_error() -> None:
    depth = 100_000
    with pytest.raises(CallbackError, match="recursion limit exceeded"):
        parse_callback(b'{"voiceprompt_callback": ' + b"[" * depth + b"]" * depth + b"}")


@pytest.mark.parametrize(("body", "kind"), [(42, "int"), (None, "NoneType"), (memoryview(b"{}"), "memoryview")])
def test_inputs_of_the_wrong_python_type_are_refused(body: Any, kind: str) -> None:
    with pytest.raises(CallbackError, match=f"expected bytes, str or a mapping, got {kind}"):
        parse_callback(body)
    with pytest.raises(ReplyContractError, match=f"expected bytes, str or a mapping, got {kind}"):
        parse_reply(body)


def test_text_with_lone_surrogates_is_refused() -> None:
    with pytest.raises(CallbackError, match="lone surrogates"):
        parse_callback('{"voiceprompt_callback": {"call_from": "\ud800"}}')


def test_callback_error_is_a_value_error_and_lists_problems() -> None:
    error = CallbackError([Problem("$.a", "x"), Problem("$.b", "y")], PROMPT)
    assert isinstance(error, ValueError)
    assert error.problems == (Problem("$.a", "x"), Problem("$.b", "y"))
    assert str(error) == "invalid voiceprompt_callback: 2 problems\n  - $.a: x\n  - $.b: y"
    assert str(CallbackError([Problem("$", "z")])) == "invalid callback: 1 problem\n  - $: z"


# ---- the reply ----------------------------------------------------------------------------------------


def test_ok_and_error_replies_are_valid_replies() -> None:
    ok = parse_reply(encode(ok_reply()))
    assert ok == ReplyBody(result=0, errmsg="OK")
    assert ok.ok
    failed = parse_reply(json.dumps(error_reply("callid unknown", result=2)))
    assert (failed.result, failed.errmsg, failed.ok) == (2, "callid unknown", False)
    assert error_reply("x") == {"result": 1, "errmsg": "x"}
    assert parse_reply({"result": 0, "errmsg": "OK", "extra": 1}).ok


@pytest.mark.parametrize(
    ("body", "problems"),
    [
        (b'{"result": "0", "errmsg": "OK"}', [("$.result", 'must be a JSON number (an integer), got the string "0"')]),
        (
            b'{"result": true, "errmsg": "OK"}',
            [("$.result", "must be a JSON number (an integer), got the boolean true")],
        ),
        (b'{"result": 0}', [("$.errmsg", "required field is missing")]),
        (b'{"errmsg": "OK"}', [("$.result", "required field is missing")]),
        (b'{"result": 0, "errmsg": null}', [("$.errmsg", "must be a JSON string, got null")]),
        (b"{}", [("$.result", "required field is missing"), ("$.errmsg", "required field is missing")]),
        (b"", [("$", "body is empty")]),
        (b"[0]", [("$", "must be a JSON object, got an array of 1 item")]),
        (b"0", [("$", "must be a JSON object, got the number 0")]),
        (b"OK", [("$", 'not JSON: expected value at line 1 column 1; body starts "OK"')]),
    ],
)
def test_replies_outside_the_contract_are_refused(body: bytes, problems: list[tuple[str, str]]) -> None:
    with pytest.raises(ReplyContractError) as caught:
        parse_reply(body)
    assert [tuple(p) for p in caught.value.problems] == problems
    assert str(caught.value).startswith("reply breaks the contract:")


def test_an_html_reply_is_refused_as_an_assertion_error() -> None:
    with pytest.raises(AssertionError) as caught:
        parse_reply(b"<!DOCTYPE html><title>500 Internal Server Error</title>")
    assert isinstance(caught.value, ReplyContractError)
    assert "not JSON" in str(caught.value)
    assert "500 Internal Server Error" in str(caught.value)


# ---- helpers ------------------------------------------------------------------------------------------


def test_encode_is_compact_utf8_keeping_chinese_text() -> None:
    assert encode({"a": [1, "其他"]}) == '{"a":[1,"其他"]}'.encode()


def test_kind_named_accepts_short_and_full_names() -> None:
    assert [kind_named(short) for short in SHORT_NAMES] == list(KINDS)
    assert [kind_named(full) for full in KINDS] == list(KINDS)
    assert [kind_named(full, short=True) for full in KINDS] == list(SHORT_NAMES)
    with pytest.raises(ValueError, match=r"unknown callback kind 'sms'; expected one of prompt \(voiceprompt"):
        kind_named("sms")


# ---- fuzzing: nothing but the module's own error escapes, whatever the input ---------------------------

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
# Objects whose keys are sometimes the real ones, so the fuzz reaches the field validation.
FIELD_NAMES = sorted({name for model in CALLBACK_MODELS.values() for name in model.model_fields})
ENVELOPES = st.dictionaries(
    st.sampled_from(KINDS) | st.text(max_size=8),
    st.dictionaries(st.sampled_from(FIELD_NAMES) | st.text(max_size=5), JSON_VALUES, max_size=10) | JSON_VALUES,
    max_size=3,
)


def outcome(parse: Any, error: type[Exception], body: Any) -> Any:
    """What ``parse(body)`` returned, or the ``error`` it raised (any other exception propagates)."""
    try:
        return parse(body)
    except error as raised:
        return raised


def assert_only_own_errors(body: Any) -> None:
    """parse_callback returns a model or raises CallbackError; parse_reply likewise; messages are readable."""
    callback = outcome(parse_callback, CallbackError, body)
    assert isinstance(callback, (Callback, CallbackError))
    if isinstance(callback, CallbackError):
        assert str(callback).startswith("invalid ")
    reply = outcome(parse_reply, ReplyContractError, body)
    assert isinstance(reply, (ReplyBody, ReplyContractError))
    for error in (callback, reply):
        if isinstance(error, Exception):
            assert error.problems
            assert all(problem.path.startswith("$") and problem.message for problem in error.problems)


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_fuzz_arbitrary_bytes(body: bytes) -> None:
    assert_only_own_errors(body)


@settings(max_examples=200)
@given(st.text(max_size=200))
def test_fuzz_arbitrary_text(body: str) -> None:
    assert_only_own_errors(body)


@settings(max_examples=300)
@given(JSON_VALUES | ENVELOPES)
def test_fuzz_arbitrary_json_values_as_objects_and_as_bytes(value: Any) -> None:
    if isinstance(value, dict):
        assert_only_own_errors(value)
    assert_only_own_errors(json.dumps(value).encode())


@settings(max_examples=300)
@given(
    seed=st.integers(0, 2**32),
    kind=st.sampled_from(KINDS),
    changes=st.dictionaries(
        st.sampled_from(FIELD_NAMES) | st.text(max_size=5), JSON_VALUES | st.just(MISSING), min_size=1, max_size=4
    ),
)
def test_fuzz_mutated_valid_payloads(seed: int, kind: str, changes: dict[str, Any]) -> None:
    payload = PayloadFactory(seed).build(kind, **changes)
    assert_only_own_errors(payload)
    assert_only_own_errors(encode(payload))


@settings(max_examples=100)
@given(seed=st.integers(0, 2**32), cut=st.integers(0, 400), junk=st.binary(min_size=1, max_size=8))
def test_fuzz_truncated_and_corrupted_bodies(seed: int, cut: int, junk: bytes) -> None:
    body = encode(PayloadFactory(seed).prompt())
    cut %= len(body)
    assert_only_own_errors(body[:cut])
    assert_only_own_errors(body[:cut] + junk + body[cut:])


@settings(max_examples=30)
@given(size=st.integers(MAX_BODY_SIZE - 2, MAX_BODY_SIZE + 2), filler=st.sampled_from([b" ", b"\x00", b"\xff", b"["]))
def test_fuzz_bodies_around_the_size_limit(size: int, filler: bytes) -> None:
    body = b'{"voiceprompt_callback":{}}'
    body += filler * (size - len(body))
    assert_only_own_errors(body)
    if size > MAX_BODY_SIZE:
        with pytest.raises(CallbackError, match="over the 1,048,576-byte limit"):
            parse_callback(body)


@settings(max_examples=30)
@given(depth=st.integers(1, 200_000), opener=st.sampled_from([b"[", b'{"a":']))
def test_fuzz_deep_nesting(depth: int, opener: bytes) -> None:
    closer = b"]" if opener == b"[" else b"}"
    nested = opener * depth + b"0" + closer * depth
    assert_only_own_errors(nested)
    assert_only_own_errors(b'{"voicekey_callback":{"x":' + nested + b"}}")


@settings(max_examples=50)
@given(seed=st.integers(0, 2**32), encoding=st.sampled_from(["utf-16", "utf-16-le", "utf-16-be", "utf-32", "gbk"]))
def test_fuzz_other_encodings_of_valid_payloads(seed: int, encoding: str) -> None:
    payload = PayloadFactory(seed).failure()
    body = json.dumps(payload, ensure_ascii=False).encode(encoding)
    assert_only_own_errors(body)
    if encoding == "gbk" and payload[FAILURE]["failure_code"] == 22:
        # GBK's bytes for 系统忙 happen to be valid UTF-8 (they read as "ϵͳæ"): no parser can tell.
        assert parse_callback(body).failure_reason == "ϵͳæ"  # type: ignore[attr-defined]
        return
    with pytest.raises(CallbackError, match=r"UTF-16|UTF-8"):
        parse_callback(body)
