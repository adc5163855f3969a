"""The ``voicecb_provider`` fixture, run as users run it (pytester)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]
pytest.importorskip("tencentcloud.vms.v20200902")

# The official SDK calls datetime.utcfromtimestamp, deprecated since Python 3.12.
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcfromtimestamp:DeprecationWarning")

HELPERS = """
import pytest
from flask import Flask, jsonify, request
from tencentcloud.common import credential
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vms.v20200902 import models, vms_client

app = Flask("handler")
app.config["answer"] = 0


@app.post("/voice/callback")
def callback():
    request.get_data()
    result = app.config["answer"]
    return jsonify(result=result, errmsg="OK" if result == 0 else "failed")


@pytest.fixture
def voicecb_target():
    return app


def send(provider, number="+8613800138000"):
    cred = credential.Credential(provider.secret_id, provider.secret_key)
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=provider.endpoint))
    request = models.SendTtsVoiceRequest()
    request.TemplateId, request.CalledNumber, request.VoiceSdkAppid = "1", number, provider.voice_sdk_appid
    return vms_client.VmsClient(cred, "ap-guangzhou", profile).SendTtsVoice(request).SendStatus.CallId

PORTS = []
"""


def run(pytester: pytest.Pytester, tests: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(HELPERS + tests)
    return pytester.runpytest("-p", "no:randomly", *args)


def test_one_provider_per_session_reset_per_test_delivering_to_voicecb_target(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
def test_first(voicecb_provider):
    PORTS.append(voicecb_provider.endpoint)
    callid = send(voicecb_provider)
    attempts = voicecb_provider.run_until_idle()
    assert [a.acknowledged for a in attempts] == [True]
    assert voicecb_provider.find_deliveries(callid=callid)[0].kind == "voiceprompt_callback"

def test_second(voicecb_provider):
    assert voicecb_provider.sends == [] and voicecb_provider.calls == []
    assert voicecb_provider.endpoint == PORTS[0]
""",
    )
    result.assert_outcomes(passed=2)


def test_an_unacknowledged_callback_fails_the_test_at_teardown_unless_expected(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
@pytest.fixture(autouse=True)
def broken_handler():
    app.config["answer"] = 1
    yield
    app.config["answer"] = 0

def test_not_expected(voicecb_provider):
    send(voicecb_provider)
    voicecb_provider.run_until_idle()

def test_expected(voicecb_provider):
    voicecb_provider.expect_undelivered()
    send(voicecb_provider)
    voicecb_provider.run_until_idle()

@pytest.mark.voicecb(allow_undelivered=True)
def test_marked(voicecb_provider):
    send(voicecb_provider)
    voicecb_provider.run_until_idle()
""",
    )
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        ["*1 callback was never acknowledged after 2 retries:*", "*attempt 3: FAILED, HTTP 200*"]
    )


def test_the_seed_makes_callids_reproducible(pytester: pytest.Pytester) -> None:
    tests = """
def test_ids(voicecb_provider):
    print("CALLID", send(voicecb_provider))
    voicecb_provider.run_until_idle()
"""
    first = run(pytester, tests, "-s", "--voicecb-seed", "5")
    second = run(pytester, tests, "-s", "--voicecb-seed", "5")
    ids = [line.split("CALLID ")[1][:36] for line in first.outlines if "CALLID " in line]
    assert len(ids) == 1
    assert ids == [line.split("CALLID ")[1][:36] for line in second.outlines if "CALLID " in line]


def test_the_fixture_module_imports_nothing_heavy() -> None:
    import json
    import subprocess
    import sys

    code = (
        "import json, sys, pytest_voicecb._provider_fixtures; "
        "print(json.dumps(sorted({m if m.startswith('pytest_voicecb') else m.split('.')[0] for m in sys.modules})))"
    )
    loaded = set(
        json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True, text=True).stdout)
    )
    heavy = {"werkzeug", "pydantic", "tencentcloud", "flask", "faker"}
    assert loaded.isdisjoint(heavy), sorted(loaded & heavy)
    assert "pytest_voicecb.provider" not in loaded


PATHS_APP = """
hooks = Flask("hooks")


@hooks.post("/hooks/voice")
@hooks.post("/hooks/keys")
def hook():
    hooks.config.setdefault("paths", []).append(request.path)
    return jsonify(result=0, errmsg="OK")
"""

HOOKS_TARGET = """
@pytest.fixture
def voicecb_target():
    return hooks


def test_path(voicecb_provider):
    send(voicecb_provider)
    voicecb_provider.run_until_idle()
"""


def test_the_voicecb_path_setting_is_where_callbacks_go(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nvoicecb_path = /hooks/voice\n")
    tests = PATHS_APP + HOOKS_TARGET + '    assert hooks.config["paths"] == ["/hooks/voice"]\n'
    run(pytester, tests).assert_outcomes(passed=1)


def test_a_wrong_path_is_named_once_with_the_setting(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nvoicecb_path = /hooks/nope\n")
    tests = PATHS_APP + HOOKS_TARGET
    result = run(pytester, tests)
    result.assert_outcomes(passed=1, errors=1)
    text = result.stdout.str()
    # In the error's own section; pytest's short summary repeats its first line (its whole text under CI=true).
    section = text.partition("short test summary info")[0]
    assert section.count("never acknowledged") == 1, text
    assert section.count("answered HTTP 404 at http://localhost:8000/hooks/nope") == 1
    assert "voicecb_path ini option or --voicecb-path" in text


def test_a_callback_client_target_is_used_as_it_is_paths_included(pytester: pytest.Pytester) -> None:
    tests = (
        PATHS_APP
        + """
from pytest_voicecb import CallbackClient


@pytest.fixture
def voicecb_target():
    with CallbackClient(hooks, path="/hooks/voice", paths={"keypress": "/hooks/keys"}) as client:
        yield client


def test_client(voicecb_provider):
    send(voicecb_provider, "+8613900000003")  # presses 1
    voicecb_provider.run_until_idle()
    assert hooks.config["paths"] == ["/hooks/keys", "/hooks/voice"]


def test_deliver_to_paths(voicecb_provider):
    hooks.config["paths"] = []
    voicecb_provider.deliver_to(hooks, path="/hooks/voice", paths={"keypress": "/hooks/keys"})
    send(voicecb_provider, "+8613900000003")
    voicecb_provider.run_until_idle()
    assert hooks.config["paths"] == ["/hooks/keys", "/hooks/voice"]
"""
    )
    run(pytester, tests).assert_outcomes(passed=2)
