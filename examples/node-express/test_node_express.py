"""The Node.js service tested from the Python side, as CI runs it: ``voicecb check`` against the Express
handler, and ``voicecb provider`` driving the sender (the official Node.js SDK), the callbacks reaching
the handler, which escalates each unanswered call it placed once, and nothing else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from typing import Any

from conftest import HERE, NodeService

from pytest_voicecb import PayloadFactory


def voicecb(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pytest_voicecb", *args], capture_output=True, text=True, timeout=120)


def send(settings: dict[str, str], service: NodeService, *numbers: str) -> list[dict[str, str]]:
    """``node send.js NUMBERS`` configured with what ``voicecb provider`` printed; the calls placed."""
    env = {
        **os.environ,
        "TENCENTCLOUD_SECRET_ID": settings["secret_id"],
        "TENCENTCLOUD_SECRET_KEY": settings["secret_key"],
        "VMS_SDK_APPID": settings["voice_sdk_appid"],
        "VMS_ENDPOINT": settings["endpoint"],
        "VMS_PROTOCOL": "http://",
        "DATA_DIR": str(service.data),
    }
    done = subprocess.run(["node", "send.js", *numbers], cwd=HERE, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def control(settings: dict[str, str], action: str) -> Any:
    """POST (or GET ``state``) the simulator's control API."""
    url = f"http://{settings['endpoint']}/voicecb-api/{action}"
    data = None if action == "state" else b"{}"
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def delivered(settings: dict[str, str], *, count: int) -> list[dict[str, Any]]:
    """The simulator's deliveries once ``count`` of them are acknowledged (it runs on real time, 60 times
    faster: a minute of ringing takes a second); fails with the state after 60 s of waiting."""
    deadline = time.monotonic() + 60
    while True:
        deliveries: list[dict[str, Any]] = control(settings, "state")["deliveries"]
        if sum(d["state"] == "acknowledged" for d in deliveries) >= count or time.monotonic() > deadline:
            assert all(d["state"] == "acknowledged" for d in deliveries), json.dumps(deliveries, indent=1)
            assert len(deliveries) == count, json.dumps(deliveries, indent=1)
            return deliveries
        time.sleep(0.1)


def test_the_express_handler_passes_voicecb_check_and_acts_on_none_of_its_callbacks(
    node_service: NodeService,
) -> None:
    done = voicecb("check", node_service.url)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED" in done.stdout
    assert node_service.effects() == {"escalations": []}  # none of those callids was a call it placed


def test_voicecb_check_judges_what_the_express_handler_does(node_service: NodeService) -> None:
    """With its test endpoints, the check registers each call first (prepare) and judges every escalation:
    one per unanswered or failed call, none for anything else, never a second one for a duplicate."""
    base = node_service.base
    done = voicecb(
        "check",
        node_service.url,
        *("--effects-url", f"{base}/_test/effects", "--prepare-url", f"{base}/_test/prepare"),
        *("--effects-on", "prompt/not-answered", "--effects-on", "prompt/call-error", "--effects-on", "failure"),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failure              49 of 49 checks changed it" in done.stdout
    assert "keypress             0 of 30 checks changed it" in done.stdout
    assert len(node_service.effects()["escalations"]) > 50, "prepared calls were escalated, once each"


def test_calls_placed_through_the_node_sdk_are_escalated_once_when_unanswered(
    node_service: NodeService, provider_settings: dict[str, str]
) -> None:
    answered, unanswered, failed = send(
        provider_settings, node_service, "+8613800138000", "+8613900000001", "+8613900000002"
    )
    # three statuses, each delivered twice, and the failed call's voice_failure_callback
    deliveries = delivered(provider_settings, count=7)
    assert {d["callid"] for d in deliveries} == {answered["callid"], unanswered["callid"], failed["callid"]}
    assert sum(d["duplicate"] for d in deliveries) == 3
    escalations = node_service.effects()["escalations"]
    assert sorted((e["callid"], e["number"]) for e in escalations) == sorted(
        [(unanswered["callid"], "+8613900000001"), (failed["callid"], "+8613900000002")]
    )


def post(url: str, body: bytes) -> dict[str, Any]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        answer: dict[str, Any] = json.loads(response.read())
        return answer


def test_a_prepared_callid_is_escalated_once_and_an_answered_or_unknown_one_never(node_service: NodeService) -> None:
    factory = PayloadFactory(11)
    unanswered, answered, unknown = factory.unanswered(), factory.answered(), factory.unanswered()
    for payload in (unanswered, answered):
        assert post(f"{node_service.base}/_test/prepare", factory.body(payload))["prepared"]
    for payload in (unanswered, unanswered, answered, unknown):  # the first one twice: a duplicate
        assert post(node_service.url, factory.body(payload)) == {"result": 0, "errmsg": "OK"}
    escalated = [row["callid"] for row in node_service.effects()["escalations"]]
    assert escalated == [unanswered["voiceprompt_callback"]["callid"]]
