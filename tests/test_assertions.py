"""assert_reply_ok / _error / _contract: what they accept, what they refuse, and what a failure says."""

from __future__ import annotations

import pytest
from flask import Flask, Response

from pytest_voicecb.assertions import assert_reply_contract, assert_reply_error, assert_reply_ok
from pytest_voicecb.client import CallbackClient, Reply
from pytest_voicecb.factory import PayloadFactory
from tests.handlers import flask_app


def reply_from(body: bytes, status: int = 200, content_type: str = "application/json") -> Reply:
    """A real delivery to a Flask app that answers ``body`` with ``status``."""
    app = Flask("fixed")

    @app.post("/voice/callback")
    def fixed() -> Response:
        return Response(body, status=status, content_type=content_type)

    with CallbackClient(app) as client:
        return client.post(PayloadFactory(11).answered())


OK = b'{"result": 0, "errmsg": "OK"}'
ERROR = b'{"result": 1001, "errmsg": "callid is empty"}'


def test_a_success_reply_passes_assert_reply_ok_and_contract() -> None:
    reply = reply_from(OK)
    assert_reply_ok(reply)
    assert_reply_contract(reply)
    with pytest.raises(AssertionError, match="result is 0 \\(success\\); expected a non-zero result"):
        assert_reply_error(reply)


@pytest.mark.parametrize(
    ("body", "status", "problem"),
    [
        (b'{"result": "0", "errmsg": "OK"}', 200, '$.result: must be a JSON number (an integer), got the string "0"'),
        (b'{"result": false, "errmsg": "OK"}', 200, "$.result: must be a JSON number (an integer), got the boolean"),
        (b'{"result": 0}', 200, "$.errmsg: required field is missing"),
        (b'{"result": 0, "errmsg": null}', 200, "$.errmsg: must be a JSON string, got null"),
        (b"", 200, "$: body is empty"),
        (b"<html><body>OK</body></html>", 200, "$: not JSON"),
        (b'[{"result": 0}]', 200, "$: must be a JSON object"),
        (OK, 201, "HTTP status 201: a success reply is HTTP 200"),
        (OK, 500, "HTTP status 500"),
        (ERROR, 200, "result is 1001 (a failure, errmsg 'callid is empty'); expected 0"),
    ],
)
def test_assert_reply_ok_refuses(body: bytes, status: int, problem: str) -> None:
    reply = reply_from(body, status)
    with pytest.raises(AssertionError) as caught:
        assert_reply_ok(reply)
    message = str(caught.value)
    assert problem in message
    assert message.startswith("expected a success reply: CONTRACT.md rule 1 (valid input gets success)")


def test_a_failure_message_shows_what_was_sent_what_came_back_and_how_to_reproduce() -> None:
    reply = reply_from(b'{"result": "0", "errmsg": "OK"}')
    with pytest.raises(AssertionError) as caught:
        assert_reply_ok(reply)
    lines = str(caught.value).splitlines()
    assert lines[1] == '  - $.result: must be a JSON number (an integer), got the string "0"'
    assert lines[2].startswith("sent: POST http://localhost:8000/voice/callback (application/json, ")
    assert lines[3].strip().startswith('{"voiceprompt_callback":{')
    assert lines[4].startswith("got:  HTTP 200 (application/json, 31 bytes, ")
    assert lines[5].strip() == '{"result": "0", "errmsg": "OK"}'
    assert lines[6] == "reproduce (paste as is):"
    assert lines[7].startswith("# in-process target")  # flush left: the command is pasted exactly
    assert lines[8].startswith("curl -sS -i -X POST http://localhost:8000/voice/callback")


def test_an_error_reply_passes_assert_reply_error_in_200_or_4xx() -> None:
    for status in (200, 400, 422):
        reply = reply_from(ERROR, status)
        assert_reply_error(reply)
        assert_reply_error(reply, result=1001)
        assert_reply_error(reply, errmsg="callid")
        assert_reply_contract(reply)
        with pytest.raises(AssertionError, match="result is 1001 \\(a failure"):
            assert_reply_ok(reply)


@pytest.mark.parametrize(
    ("body", "status", "options", "problem"),
    [
        (ERROR, 500, {}, "HTTP status 500: a server error, where the handler must answer (200 or 4xx)"),
        (ERROR, 302, {}, "HTTP status 302: expected 200 or a 4xx"),
        (ERROR, 200, {"result": 2}, "result is 1001; expected 2"),
        (ERROR, 200, {"errmsg": "fee"}, "errmsg 'callid is empty' does not contain 'fee'"),
        (b"<h1>Bad Request</h1>", 400, {}, "$: not JSON"),
        (b'{"detail": [{"loc": ["body"]}]}', 422, {}, "$.result: required field is missing"),
    ],
)
def test_assert_reply_error_refuses(body: bytes, status: int, options: dict[str, object], problem: str) -> None:
    with pytest.raises(AssertionError) as caught:
        assert_reply_error(reply_from(body, status), **options)  # type: ignore[arg-type]
    assert problem in str(caught.value)
    assert "CONTRACT.md rule 2" in str(caught.value)


def test_assert_reply_contract_accepts_any_result_and_refuses_the_rest() -> None:
    assert_reply_contract(reply_from(b'{"result": 7, "errmsg": ""}'))
    for body, status in ((ERROR, 503), (b"Internal Server Error", 500), (b'{"result": 0.5, "errmsg": "x"}', 200)):
        with pytest.raises(AssertionError, match=r"CONTRACT\.md rule 3"):
            assert_reply_contract(reply_from(body, status))


def test_a_truncated_reply_says_so() -> None:
    with CallbackClient(flask_app.create_app("huge-reply")) as client:
        reply = client.post(PayloadFactory(1).answered())
    with pytest.raises(AssertionError, match="the reply is larger than 1,048,576 bytes"):
        assert_reply_ok(reply)


def test_what_the_app_logged_is_shown() -> None:
    app = flask_app.create_app("raise")
    app.testing = True
    with CallbackClient(app) as client:
        reply = client.post(PayloadFactory(1).answered())
    with pytest.raises(AssertionError) as caught:
        assert_reply_ok(reply)
    assert "the app logged:" in str(caught.value)
    assert "RuntimeError: the handler blew up" in str(caught.value)


def test_garbage_arguments_are_type_errors() -> None:
    reply = reply_from(ERROR)
    with pytest.raises(TypeError, match="expected a Reply"):
        assert_reply_ok({"result": 0, "errmsg": "OK"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="result must be a non-zero int"):
        assert_reply_error(reply, result=0)
    with pytest.raises(TypeError, match="result must be a non-zero int"):
        assert_reply_error(reply, result="1001")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="errmsg must be a str"):
        assert_reply_error(reply, errmsg=1)  # type: ignore[arg-type]


def test_the_rules_live_with_the_verdict_and_keep_their_old_names() -> None:
    """The rule table, its citations and ``reply_problems`` moved to ``verdict``; the old imports still work."""
    from pytest_voicecb import assertions, conformance
    from pytest_voicecb.conformance import report, verdict

    assert assertions.RULES is verdict.RULES is report.RULES is conformance.RULES
    assert assertions.cite is verdict.cite
    assert assertions.expectation is verdict.expectation
    assert assertions.reply_problems is verdict.reply_problems
    assert report.Outcome is verdict.Outcome
    assert verdict.cite(2) == "CONTRACT.md rule 2 (unprocessable input gets a contract error, never a crash)"
