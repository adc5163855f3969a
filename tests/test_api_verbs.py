"""``clear`` and ``reset`` mean one thing on the server and the provider: ``clear()`` forgets what was
recorded and keeps what the test scripted; ``reset()`` starts over as a new object. Driven over real HTTP
(urllib to the server, the official SDK to the provider)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.provider import Provider
from pytest_voicecb.server import CallbackServer
from tests.test_server import post

pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcfromtimestamp:DeprecationWarning")


@pytest.fixture
def server() -> Iterator[CallbackServer]:
    with CallbackServer() as recorder:
        yield recorder


def send_prompt(server: CallbackServer) -> int:
    status, _ = post(server.url, json.dumps(PayloadFactory(1).prompt()).encode())
    return status


def test_server_clear_keeps_scripts_and_expectations_reset_drops_them(server: CallbackServer) -> None:
    server.reply_with(status=503)
    server.expect("prompt", count=2)
    assert send_prompt(server) == 503
    server.clear()
    assert server.requests == []
    assert server.aborted == 0
    assert send_prompt(server) == 503  # the script stays
    assert len(server.expectations) == 1
    with pytest.raises(AssertionError, match="exactly 2 callbacks matching kind='voiceprompt_callback'; 1 arrived"):
        server.check_assertions()
    server.reset()
    assert server.requests == []
    assert server.expectations == []
    assert send_prompt(server) == 200  # the contract's answer again
    server.check()


def test_provider_clear_keeps_scripts_reset_drops_them(server: CallbackServer) -> None:
    pytest.importorskip("tencentcloud.vms.v20200902")
    from tests.test_provider_v3 import sdk, tts

    with Provider(server.url, seed=4) as provider:
        provider.on("+8613800138000").no_answer()
        sdk(provider).SendTtsVoice(tts(provider))
        assert len(provider.sends) == 1
        assert len(provider.deliveries) == 1
        provider.clear()
        assert provider.sends == []
        assert provider.calls == []
        assert provider.deliveries == []
        provider.run_until_idle()
        assert server.requests == []  # what was owed before the clear is never delivered
        callid = sdk(provider).SendTtsVoice(tts(provider)).SendStatus.CallId
        assert provider.call(callid).outcome.status == "no_answer"  # the script stays
        provider.reset()
        assert provider.sends == []
        callid = sdk(provider).SendTtsVoice(tts(provider)).SendStatus.CallId
        assert provider.call(callid).outcome.status == "answered"
        provider.run_until_idle()
        [delivered] = server.find(kind="prompt", callid=callid)
        assert delivered.fields["result"] == "0"
