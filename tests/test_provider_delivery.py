"""Calls, their callbacks and delivery: outcomes, retries, duplicates, ordering, the clock, bad targets."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_voicecb.provider import ManualClock, Provider, RetryPolicy, SystemClock
from pytest_voicecb.provider.v3.signing import authorization_header
from pytest_voicecb.server import CallbackServer
from tests.handlers.fastapi_app import create_app as create_fastapi_app
from tests.handlers.flask_app import create_app as create_flask_app
from tests.handlers.serve import serving


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackServer]:
    with CallbackServer() as server:
        yield server


@pytest.fixture
def provider(receiver: CallbackServer) -> Iterator[Provider]:
    receiver.reset()
    with Provider(receiver.url, seed=3, clock=ManualClock(1_700_000_000)) as sim:
        yield sim


def send(provider: Provider, number: str = "+8613800138000", action: str = "SendTtsVoice") -> str:
    """One signed API 3.0 send over HTTP (what the SDK does, without it); returns the CallId."""
    import http.client
    import json

    params: dict[str, Any] = {"CalledNumber": number, "VoiceSdkAppid": provider.voice_sdk_appid}
    params.update({"TemplateId": "1"} if action == "SendTtsVoice" else {"CodeMessage": "1234"})
    body = json.dumps(params).encode()
    stamp = int(time.time())
    headers = {
        "Content-Type": "application/json",
        "Host": provider.endpoint,
        "X-TC-Action": action,
        "X-TC-Version": "2020-09-02",
        "X-TC-Timestamp": str(stamp),
        "Authorization": authorization_header(
            provider.secret_id, provider.secret_key, host=provider.endpoint, payload=body, timestamp=stamp
        ),
    }
    connection = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
    connection.request("POST", "/", body=body, headers=headers)
    data = json.loads(connection.getresponse().read())["Response"]
    connection.close()
    assert "Error" not in data, data
    callid: str = data["SendStatus"]["CallId"]
    return callid


def kinds(receiver: CallbackServer) -> list[str]:
    return [next(iter(record.json)) for record in receiver.requests]


def test_an_unanswered_call_reports_after_its_ringing_and_no_test_waits_for_it(
    provider: Provider, receiver: CallbackServer
) -> None:
    provider.on("+8613800138000").no_answer(ring=60)
    callid = send(provider)
    assert provider.advance(30) == []
    assert receiver.requests == []
    began = time.monotonic()
    (attempt,) = provider.advance(40)
    assert attempt.acknowledged
    assert time.monotonic() - began < 2
    fields = receiver.requests[0].json["voiceprompt_callback"]
    assert fields["callid"] == callid
    assert fields["result"] == "1"
    assert fields["fee"] == "0"
    assert fields["accept_time"] in ("0", "")
    assert fields["accept_time"] == fields["end_calltime"]


@pytest.mark.parametrize("failure_first", [False, True])
def test_a_failed_call_sends_status_and_failure_callbacks_in_the_configured_order(
    receiver: CallbackServer, failure_first: bool
) -> None:
    receiver.reset()
    with Provider(receiver.url, seed=3, failure_first=failure_first) as provider:
        provider.on("13800138000").fail(code=8)
        send(provider)
        provider.run_until_idle()
    expected = ["voiceprompt_callback", "voice_failure_callback"]
    assert kinds(receiver) == (expected[::-1] if failure_first else expected)
    failure = receiver.wait_for(1, kind="failure")[0].json["voice_failure_callback"]
    assert failure["failure_code"] == 8
    assert receiver.wait_for(1, kind="prompt")[0].json["voiceprompt_callback"]["result"] == "2"


def test_key_presses_come_during_the_call_before_its_status(provider: Provider, receiver: CallbackServer) -> None:
    provider.on().press("1", "#", talk=30)
    send(provider)
    provider.run_until_idle()
    assert kinds(receiver) == ["voicekey_callback", "voicekey_callback", "voiceprompt_callback"]
    assert [r.json["voicekey_callback"]["keypress"] for r in receiver.requests[:2]] == ["1", "#"]


def test_magic_numbers_choose_the_outcome(provider: Provider, receiver: CallbackServer) -> None:
    send(provider, "+8613900000001")
    send(provider, "+8613900000115")
    send(provider, "+8613900000005")
    provider.run_until_idle()
    assert receiver.wait_for(1, mobile="13900000001")[0].json["voiceprompt_callback"]["result"] == "1"
    assert receiver.wait_for(1, kind="failure")[0].json["voice_failure_callback"]["failure_code"] == 15
    duplicates = provider.find_deliveries(kind="prompt", mobile="13900000005")
    assert [d.duplicate for d in duplicates] == [False, True]
    assert all(d.acknowledged for d in duplicates)


def test_a_failed_delivery_is_retried_after_the_backoff_and_every_attempt_is_recorded(
    provider: Provider, receiver: CallbackServer
) -> None:
    receiver.reply_with(status=500, times=1)
    callid = send(provider)
    provider.advance(8 + 24 + 2)
    (delivery,) = provider.find_deliveries(callid=callid)
    assert delivery.state == "pending"
    assert delivery.attempts[0].reply is not None
    assert delivery.attempts[0].reply.status == 500
    assert delivery.attempts[0].verdict is not None
    assert delivery.attempts[0].verdict.problems
    assert provider.advance(9) == []  # the default first backoff is 10 s
    (retry,) = provider.advance(1)
    assert retry.number == 2
    assert retry.acknowledged
    assert delivery.state == "acknowledged"
    assert receiver.requests[0].body == receiver.requests[1].body  # the same bytes again
    provider.check()


def test_retries_run_out_and_check_names_the_callback(provider: Provider, receiver: CallbackServer) -> None:
    receiver.reply_with(result=1, errmsg="db down")
    provider.dispatcher.policy = RetryPolicy(retries=2, backoff=[1, 2])
    callid = send(provider)
    attempts = provider.run_until_idle()
    assert [a.number for a in attempts] == [1, 2, 3]
    assert attempts[2].at - attempts[1].at == 2
    assert provider.undelivered[0].callid == callid
    with pytest.raises(AssertionError, match=f"1 callback was never acknowledged after 2 retries:\n#1 .*{callid}"):
        provider.check()
    provider.expect_undelivered()
    provider.check()


def test_a_hanging_target_fails_its_attempts_and_does_not_hold_up_other_calls() -> None:
    release = threading.Event()
    hung_mobile = "13800000001"
    arrived: dict[str, float] = {}

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        mobile = json.loads(body)["voiceprompt_callback"]["mobile"]
        arrived.setdefault(mobile, time.monotonic())
        if mobile == hung_mobile:
            release.wait(10)
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"result":0,"errmsg":"OK"}']

    policy = RetryPolicy(retries=1, backoff=5, timeout=0.5)
    try:
        with serving(app) as url, Provider(url, seed=1, retry=policy) as provider:
            slow = send(provider, "+86" + hung_mobile)
            fast = send(provider, "+8613800000002")
            began = time.monotonic()
            provider.run_until_idle()
            (fast_delivery,) = provider.find_deliveries(callid=fast)
            (slow_delivery,) = provider.find_deliveries(callid=slow)
            assert fast_delivery.acknowledged
            assert arrived["13800000002"] - began < 0.4  # not queued behind the hung call's 0.5 s timeout
            assert slow_delivery.state == "failed"
            assert len(slow_delivery.attempts) == 2
            assert "0.5" in (slow_delivery.attempts[0].error or "")
            provider.expect_undelivered()
    finally:
        release.set()


def test_garbage_replies_and_a_refused_connection_are_failed_deliveries(
    provider: Provider, receiver: CallbackServer
) -> None:
    receiver.reply_raw(200, b"<html>OK</html>", {"Content-Type": "text/html"})
    send(provider)
    provider.run_until_idle()
    assert [a.acknowledged for a in provider.deliveries[0].attempts] == [False, False, False]
    provider.reset()
    provider.deliver_to("http://127.0.0.1:9/voice/callback")  # discard port: nothing listens
    send(provider)
    attempts = provider.run_until_idle()
    assert len(attempts) == 3
    assert all(a.reply is None and a.error for a in attempts)
    provider.expect_undelivered()


@pytest.mark.parametrize("make_app", [create_flask_app, create_fastapi_app], ids=["wsgi", "asgi"])
def test_in_process_targets(make_app: Any) -> None:
    app = make_app()
    with Provider(app, seed=5) as provider:
        callid = send(provider, action="SendCodeVoice")
        provider.on().duplicate()
        send(provider)
        attempts = provider.run_until_idle()
        assert all(a.acknowledged for a in attempts)
        assert len(attempts) == 3
        assert provider.find_deliveries(callid=callid)[0].kind == "voicecode_callback"
        provider.check()


def test_a_real_time_clock_delivers_by_itself(receiver: CallbackServer) -> None:
    receiver.reset()
    with Provider(receiver.url, seed=2, clock=SystemClock(scale=1000)) as provider:
        callid = send(provider)
        receiver.wait_for(1, callid=callid, timeout=10)
        assert provider.wait_for_deliveries(1, timeout=5)[0].acknowledged


def test_the_scaled_clock_advances_and_runs_until_idle_by_request(receiver: CallbackServer) -> None:
    """The standalone's clock verbs: a jump forward delivers what falls due, at once, not 60 s later."""
    receiver.reset()
    with Provider(receiver.url, seed=2, clock=SystemClock(scale=1)) as provider:
        callid = send(provider, "+8613900000001")  # 60 s of ringing at scale 1
        before = provider.clock.now()
        attempts = provider.advance(120)
        assert provider.clock.now() >= before + 120
        assert provider.wait_for_deliveries(1, timeout=5, result="1")[0].acknowledged
        assert len(attempts) + len(receiver.requests) >= 1
        send(provider, "+8613900000006")  # 40 s ringing, 425 s talk
        provider.run_until_idle()
        assert [d.state for d in provider.deliveries] == ["acknowledged", "acknowledged"]
        assert receiver.wait_for(2, timeout=5)[0].json["voiceprompt_callback"]["callid"] == callid
        with pytest.raises(ValueError, match="seconds"):
            provider.advance(float("inf"))


def test_scripts_check_their_arguments(provider: Provider) -> None:
    with pytest.raises(ValueError, match="keys"):
        provider.on().press("12")
    with pytest.raises(ValueError, match="times"):
        provider.on().answer(times=0)
    with pytest.raises(ValueError, match="phone number"):
        provider.on("call me")
    with pytest.raises(ValueError, match="unknown send error"):
        provider.on().refuse("")
    with pytest.raises(ValueError, match="backoff"):
        RetryPolicy(backoff=[])


def test_injected_send_faults_slow_and_dropped_replies(provider: Provider) -> None:
    import http.client

    provider.on().drop(times=1)
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError)):
        send(provider)
    provider.on().slow(0.3, times=1)
    began = time.monotonic()
    send(provider)
    assert time.monotonic() - began >= 0.3
    assert [s.ok for s in provider.sends] == [False, True]
    provider.run_until_idle()


def test_the_control_api_scripts_advances_and_reports(provider: Provider, receiver: CallbackServer) -> None:
    import http.client
    import json

    def call(method: str, name: str, body: object = None) -> tuple[int, Any]:
        connection = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
        payload = None if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
        connection.request(method, f"/voicecb-api/{name}", body=payload)
        response = connection.getresponse()
        result = response.status, json.loads(response.read())
        connection.close()
        return result

    assert call("POST", "script", {"number": "+8613800138000", "outcome": "fail", "code": 3})[0] == 200
    callid = send(provider)
    assert call("POST", "advance", {"seconds": 1})[1]["attempts"] == 0
    assert call("POST", "run-until-idle")[1]["attempts"] == 2
    state = call("GET", f"state?callid={callid}")[1]
    assert [d["kind"] for d in state["deliveries"]] == ["voiceprompt_callback", "voice_failure_callback"]
    assert state["deliveries"][1]["payload"]["voice_failure_callback"]["failure_code"] == 3
    assert call("POST", "script", {"outcome": "explode"})[0] == 400
    assert call("POST", "advance", b"[not json")[0] == 400
    assert call("POST", "reset")[1] == {"ok": True}
    assert provider.calls == []
    assert call("GET", "nothing")[0] == 404


def test_chained_verbs_compose_and_impossible_ones_are_refused_at_once(
    provider: Provider, receiver: CallbackServer
) -> None:
    provider.on("+8613800138000").no_answer().duplicate()
    callid = send(provider)
    provider.run_until_idle()
    statuses = [
        r.json["voiceprompt_callback"] for r in receiver.requests if r.json["voiceprompt_callback"]["callid"] == callid
    ]
    assert [s["result"] for s in statuses] == ["1", "1"]  # the unanswered status, twice
    with pytest.raises(ValueError, match="cannot follow"):
        provider.on().refuse().duplicate()
    with pytest.raises(ValueError, match="cannot follow"):
        provider.on().drop().slow(1)
    with pytest.raises(ValueError, match="times="):
        provider.on().no_answer(times=1).duplicate(times=2)
