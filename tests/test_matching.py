"""One matcher behind the server's and the provider's queries: the same criteria select the same records,
on requests sent over real HTTP to a ``CallbackServer`` and on sends the official SDK makes to a ``Provider``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.matching import Matcher
from pytest_voicecb.provider import Provider
from pytest_voicecb.server import CallbackServer
from tests.test_server import post


@pytest.fixture(scope="module")
def server() -> Iterator[CallbackServer]:
    with CallbackServer() as recorder:
        yield recorder


@pytest.fixture
def records(server: CallbackServer) -> CallbackServer:
    """The server after a prompt (callid p-1, result "1"), a key press (callid k-1) and a non-JSON body."""
    server.reset()
    factory = PayloadFactory(3)
    for payload in (factory.prompt(callid="p-1", result="1"), factory.keypress(callid="k-1")):
        status, body = post(server.url, json.dumps(payload).encode())
        assert status == 200, body
    post(server.url, b"not json")
    return server


def test_kind_by_short_or_full_name_fields_callables_and_where(records: CallbackServer) -> None:
    assert [r.fields["callid"] for r in records.find(kind="prompt")] == ["p-1"]
    assert records.find(kind="prompt") == records.find(kind="voiceprompt_callback")
    assert [r.kind for r in records.find(callid=lambda c: c.endswith("-1"))] == [
        "voiceprompt_callback",
        "voicekey_callback",
    ]
    assert records.find(result="1", callid="p-1") == records.find(kind="prompt")
    assert records.find(result="1", callid="k-1") == []  # a field the record lacks never matches
    assert [r.body for r in records.find(valid=False)] == [b"not json"]
    assert len(records.find(where=lambda r: r.method == "POST")) == 3
    assert records.find() == records.requests


def test_an_unknown_kind_or_a_where_that_is_no_callable_is_refused_at_once(records: CallbackServer) -> None:
    with pytest.raises(ValueError, match="nokind"):
        records.find(kind="nokind")
    with pytest.raises(ValueError, match="nokind"):
        records.expect(kind="nokind")
    with pytest.raises(TypeError, match="where must be a callable"):
        records.wait_for(where="kind")  # type: ignore[arg-type]


def test_wait_for_and_expect_use_the_same_criteria(records: CallbackServer) -> None:
    assert records.wait_for(1, timeout=1, kind="keypress", callid="k-1") == records.find(kind="keypress")
    records.expect("prompt", result="1")
    records.expect(valid=False)
    records.check()


def test_the_matcher_says_what_it_wants_with_full_kind_names() -> None:
    assert Matcher({"kind": "code", "callid": "c-1"}).wanted == "kind='voicecode_callback', callid='c-1'"
    assert Matcher({}, where=bool).wanted == "where=..."
    assert repr(Matcher({})) == "Matcher(anything)"


# -- the provider: the same matcher on deliveries and sends, sends made by the official SDK ------------------


pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcfromtimestamp:DeprecationWarning")


@pytest.fixture
def provider(server: CallbackServer) -> Iterator[Provider]:
    pytest.importorskip("tencentcloud.vms.v20200902")
    server.reset()
    with Provider(server.url, seed=5) as simulator:
        yield simulator


def sdk_send(provider: Provider, number: str) -> str:
    from tests.test_provider_v3 import sdk, tts

    return str(sdk(provider).SendTtsVoice(tts(provider, number)).SendStatus.CallId)


def test_find_deliveries_and_find_sends_take_the_servers_criteria(provider: Provider) -> None:
    answered = sdk_send(provider, "+8613900000000")
    missed = sdk_send(provider, "+8613900000001")
    provider.run_until_idle()
    assert [d.callid for d in provider.find_deliveries(kind="prompt", result="1")] == [missed]
    assert provider.find_deliveries(kind="voiceprompt_callback", callid=answered) == provider.find_deliveries(
        callid=answered
    )
    assert all(d.acknowledged for d in provider.find_deliveries(state="acknowledged"))
    assert len(provider.find_deliveries(where=lambda d: d.callid in (answered, missed))) == 2
    assert [s.call.callid for s in provider.find_sends(CalledNumber="+8613900000001") if s.call] == [missed]
    assert provider.find_sends(action="SendTtsVoice", ok=True) == provider.sends
    with pytest.raises(ValueError, match="nokind"):
        provider.find_deliveries(kind="nokind")


def test_wait_for_sends_waits_for_a_send_from_another_thread(provider: Provider) -> None:
    sender = threading.Thread(target=sdk_send, args=(provider, "+8613900000003"))
    sender.start()
    try:
        [send] = provider.wait_for_sends(1, timeout=30, action="SendTtsVoice", CalledNumber="+8613900000003")
    finally:
        sender.join(30)
    assert send.ok
    assert send.call is not None
    assert send.call.number == "+8613900000003"


def test_wait_for_sends_says_what_it_waited_for_and_what_came(provider: Provider) -> None:
    sdk_send(provider, "+8613900000000")
    with pytest.raises(AssertionError) as info:
        provider.wait_for_sends(1, timeout=0, CalledNumber="+8613900000009")
    message = str(info.value)
    assert "for 1 sends matching CalledNumber='+8613900000009'; 0 matched" in message
    assert "3.0 SendTtsVoice accepted" in message
    with pytest.raises(AssertionError, match="no deliveries at all"):
        Provider().wait_for_deliveries(1, timeout=0, kind="keypress")
