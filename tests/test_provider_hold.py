"""Held calls: ``provider.on(n).hold()`` (or ``+8613900000007``) places a call that owes no callback until
``provider.decide`` (or ``POST /voicecb-api/decide``) says what the callee's phone did."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pytest_voicecb.provider import Provider
from pytest_voicecb.server import CallbackServer
from tests.test_console_provider import place_call

HELD_NUMBER = "+8613900000007"


def control(provider: Provider, name: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    host, port = provider.endpoint.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", f"/voicecb-api/{name}", json.dumps(body), {"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def test_a_held_call_owes_nothing_until_decided_then_its_callbacks_match_the_decision() -> None:
    with CallbackServer() as receiver, Provider(receiver.url, seed=3) as provider:
        provider.on("+8613900000009").hold()
        callid = place_call(provider.settings(), "+8613900000009")
        assert provider.run_until_idle() == []
        assert [c.callid for c in provider.held] == [callid]
        assert provider.find_deliveries(callid=callid) == []
        provider.advance(30)  # the phone rings for 30 s, then the developer presses "press keys"
        deliveries = provider.decide(callid, "press", keys="12", talk=10)
        assert [d.kind for d in deliveries] == ["voicekey_callback", "voicekey_callback", "voiceprompt_callback"]
        provider.run_until_idle()
        records = receiver.wait_for(3, callid=callid, timeout=10)
        assert provider.held == []
        provider.check()
    status = records[-1].json["voiceprompt_callback"]
    call = provider.call(callid)
    assert status["result"] == "0"
    assert int(status["accept_time"]) == int(call.sent_at) + 30  # ring = the time held
    assert int(status["end_calltime"]) - int(status["accept_time"]) == 10
    assert [r.json["voicekey_callback"]["keypress"] for r in records[:2]] == ["1", "2"]
    with pytest.raises(ValueError, match="is not held"):
        provider.decide(callid, "answer")


@pytest.mark.parametrize(
    ("outcome", "kwargs", "kinds", "result"),
    [
        ("answer", {"ring": 5, "talk": 61}, ["voiceprompt_callback"], "0"),
        ("hang_up", {}, ["voiceprompt_callback"], "0"),
        ("no_answer", {}, ["voiceprompt_callback"], "1"),
        ("fail", {"code": 8}, ["voiceprompt_callback", "voice_failure_callback"], "2"),
    ],
)
def test_each_decision_gives_its_callbacks(outcome: str, kwargs: dict[str, Any], kinds: list[str], result: str) -> None:
    with Provider(lambda environ, start: [], seed=1) as provider:  # nothing delivered: only the plan is checked
        callid = place_call(provider.settings(), HELD_NUMBER)
        assert "held" in provider.call(callid).outcome.describe()
        deliveries = provider.decide(callid, outcome, **kwargs)
    assert [d.kind for d in deliveries] == kinds
    status = deliveries[0].fields
    assert status["result"] == result
    if outcome == "answer":
        assert status["fee"] == "2"
    if outcome == "hang_up":
        assert int(status["end_calltime"]) - int(status["accept_time"]) == 1
    if outcome == "fail":
        assert deliveries[1].fields["failure_code"] == 8


def test_check_reports_a_held_call_never_decided_unless_expected() -> None:
    with Provider(seed=2) as provider:
        callid = place_call(provider.settings(), HELD_NUMBER)
        with pytest.raises(AssertionError, match=r"1 held call was never decided") as caught:
            provider.check()
        assert callid in str(caught.value)
        provider.expect_undelivered()
        provider.check()


def test_the_control_api_decides_a_held_call_and_refuses_garbage() -> None:
    with CallbackServer() as receiver, Provider(receiver.url, seed=4) as provider:
        assert control(provider, "script", {"outcome": "hold"}) == (200, {"ok": True})
        callid = place_call(provider.settings(), "+8613900000009")
        host, port = provider.endpoint.split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/voicecb-api/state")
        state = json.loads(conn.getresponse().read())
        conn.close()
        assert [(c["callid"], c["held"]) for c in state["calls"]] == [(callid, True)]
        bad = [
            control(provider, "decide", {"outcome": "answer"}),
            control(provider, "decide", {"callid": "nope", "outcome": "answer"}),
            control(provider, "decide", {"callid": callid, "outcome": "explode"}),
            control(provider, "decide", {"callid": callid, "outcome": "press", "keys": ["x"]}),
            control(provider, "decide", {"callid": callid, "outcome": "answer", "talk": -1}),
            control(provider, "decide", {"callid": callid, "outcome": "answer", "volume": 11}),
        ]
        assert [status for status, _ in bad] == [400] * 6, bad
        assert "callid must be" in bad[0][1]["error"]
        assert "no call with callid" in bad[1][1]["error"]
        status, answer = control(provider, "decide", {"callid": callid, "outcome": "call_error", "code": 8})
        assert status == 200
        assert len(answer["deliveries"]) == 2
        provider.run_until_idle()
        records = receiver.wait_for(2, callid=callid, timeout=10)
        assert control(provider, "decide", {"callid": callid, "outcome": "answer"})[0] == 400  # decided already
    assert sorted(r.kind for r in records) == ["voice_failure_callback", "voiceprompt_callback"]


def test_voicecb_provider_hold_holds_every_call_until_decided() -> None:
    root = Path(__file__).resolve().parents[1]
    with CallbackServer() as receiver:
        command = [sys.executable, "-m", "pytest_voicecb", "provider", "--callback-url", receiver.url]
        command += ["--scale", "1000", "--seed", "5", "--hold", "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(root)}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(8)]
            settings = dict(line.strip().split(" = ") for line in lines[1:8])
            callid = place_call(settings, "+8613900000000")  # a number that is answered on its own
            host, port = settings["endpoint"].split(":")
            conn = http.client.HTTPConnection(host, int(port), timeout=10)
            conn.request("GET", "/voicecb-api/state")
            state = json.loads(conn.getresponse().read())
            body = json.dumps({"callid": callid, "outcome": "no_answer"})
            conn.request("POST", "/voicecb-api/decide", body, {"Content-Type": "application/json"})
            decided = conn.getresponse()
            decided.read()
            conn.close()
            (record,) = receiver.wait_for(1, callid=callid, timeout=10)
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=10)
    assert [call["held"] for call in state["calls"]] == [True]
    assert state["deliveries"] == []
    assert decided.status == 200
    assert record.json["voiceprompt_callback"]["result"] == "1"


def test_a_held_call_decided_by_hand_on_a_scaled_clock_rang_as_long_as_the_person_waited() -> None:
    """At --scale 60 a person who waits half a second before pressing a button gave the call half a
    second of ringing, not 30 s (a minute of scripted ringing takes a second; a person is not sped up)."""
    import time

    from pytest_voicecb.provider import SystemClock

    with CallbackServer() as receiver, Provider(receiver.url, seed=1, clock=SystemClock(scale=60)) as provider:
        began = time.monotonic()
        callid = place_call(provider.settings(), HELD_NUMBER)
        time.sleep(0.5)
        provider.decide(callid, "no_answer")
        waited = time.monotonic() - began
        (record,) = receiver.wait_for(1, callid=callid, timeout=10)
        call = provider.call(callid)
        assert call.outcome.ring <= waited + 1  # scaled, it would be 60 x 0.5 s = 30 s at least
        assert f"not answered ({call.outcome.ring} s ringing)" in call.summary()
        assert record.json["voiceprompt_callback"]["result"] == "1"
