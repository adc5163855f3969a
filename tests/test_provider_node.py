"""The official Node.js SDK (``tencentcloud-sdk-nodejs``, through the example's ``send.js``) against a real
``voicecb provider`` process: it signs its credential scope with the endpoint's first label (``127``),
which the simulator accepts; its calls' callbacks reach a handler; a wrong key is refused with AuthFailure."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_voicecb.server import CallbackServer
from tests.node_project import node_project, running_provider


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackServer]:
    with CallbackServer() as server:
        yield server


@pytest.fixture(scope="module")
def settings(receiver: CallbackServer) -> Iterator[dict[str, str]]:
    node_project()
    with running_provider(receiver.url, "--scale", "200", "--seed", "5") as printed:
        yield printed


def send(
    settings: dict[str, str], tmp_path: Path, *numbers: str, endpoint: str | None = None, key: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``node send.js NUMBERS`` configured as the README says, with the printed endpoint over http."""
    env = {
        **os.environ,
        "TENCENTCLOUD_SECRET_ID": settings["secret_id"],
        "TENCENTCLOUD_SECRET_KEY": key or settings["secret_key"],
        "VMS_SDK_APPID": settings["voice_sdk_appid"],
        "VMS_ENDPOINT": endpoint or settings["endpoint"],
        "VMS_PROTOCOL": "http://",
        "DATA_DIR": str(tmp_path),
    }
    project = node_project()
    return subprocess.run(
        ["node", "send.js", *numbers], cwd=project, env=env, capture_output=True, text=True, timeout=60
    )


def test_the_node_sdk_places_calls_with_the_printed_endpoint_and_their_callbacks_arrive(
    settings: dict[str, str], receiver: CallbackServer, tmp_path: Path
) -> None:
    receiver.reset()
    sent = send(settings, tmp_path, "+8613800138000", "+8613900000001")
    assert sent.returncode == 0, sent.stderr
    calls = [json.loads(line) for line in sent.stdout.splitlines()]
    assert [call["number"] for call in calls] == ["+8613800138000", "+8613900000001"]
    answered = receiver.wait_for(1, callid=calls[0]["callid"], timeout=30)[0]
    unanswered = receiver.wait_for(1, callid=calls[1]["callid"], timeout=30)[0]
    assert answered.json["voiceprompt_callback"]["result"] == "0"
    assert unanswered.json["voiceprompt_callback"]["result"] == "1"
    placed = [json.loads(line)["callid"] for line in (tmp_path / "calls.jsonl").read_text().splitlines()]
    assert placed == [call["callid"] for call in calls]


def test_the_node_sdk_with_endpoint_localhost_signs_for_localhost_port_and_is_accepted(
    settings: dict[str, str], tmp_path: Path
) -> None:
    port = settings["endpoint"].rsplit(":", 1)[1]
    sent = send(settings, tmp_path, "+8613800138000", endpoint=f"localhost:{port}")
    assert sent.returncode == 0, sent.stderr
    assert json.loads(sent.stdout)["callid"]


def test_the_node_sdk_with_a_wrong_key_is_refused_with_auth_failure(settings: dict[str, str], tmp_path: Path) -> None:
    sent = send(settings, tmp_path, "+8613800138000", key="not-the-key")
    assert sent.returncode == 1
    assert sent.stdout == ""
    assert sent.stderr.startswith("AuthFailure.SignatureFailure: ")
    assert not (tmp_path / "calls.jsonl").exists()


@pytest.mark.parametrize(("required", "outcome"), [("1", pytest.fail.Exception), ("", pytest.skip.Exception)])
def test_a_missing_node_project_skips_with_its_reason_unless_ci_requires_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, required: str, outcome: type[BaseException]
) -> None:
    monkeypatch.setattr("tests.node_project.PROJECT", tmp_path)
    monkeypatch.setenv("VOICECB_REQUIRE_NODE", required)
    with pytest.raises(outcome, match="npm ci"):
        node_project()
