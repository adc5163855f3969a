"""Declarative expectations on CallbackServer (``expect``, ``expect_ordered``, ``fail_on_unexpected``),
driven by a real urllib sender on loopback, and the ``voicecb_server`` teardown that enforces them."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.server import CallbackServer
from tests.test_server import post

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def _server() -> Iterator[CallbackServer]:
    with CallbackServer() as server:
        yield server


@pytest.fixture
def server(_server: CallbackServer) -> CallbackServer:
    _server.reset()
    return _server


@pytest.fixture
def factory() -> PayloadFactory:
    return PayloadFactory(7)


def send(server: CallbackServer, payload: object) -> None:
    status, body = post(server.url, json.dumps(payload).encode())
    assert status == 200, body


def failure_of(server: CallbackServer) -> str:
    with pytest.raises(AssertionError) as caught:
        server.check()
    return str(caught.value)


def test_exact_count_met_and_missed(server: CallbackServer, factory: PayloadFactory) -> None:
    server.expect(kind="prompt", count=2)
    server.expect("keypress", callid="k-1")
    send(server, factory.prompt())
    send(server, factory.keypress(callid="k-1"))
    message = failure_of(server)
    assert "expect #1: exactly 2 callbacks matching kind='voiceprompt_callback'; 1 arrived" in message
    assert "expect #2" not in message
    assert "2 requests arrived:" in message
    assert "voicekey_callback" in message
    send(server, factory.prompt())
    server.check()  # both met now
    send(server, factory.prompt())
    assert "exactly 2 callbacks matching kind='voiceprompt_callback'; 3 arrived" in failure_of(server)


def test_count_none_is_at_least_one_and_where_predicates(server: CallbackServer, factory: PayloadFactory) -> None:
    taken = server.expect(count=None, where=lambda record: record.fields.get("callid", "").startswith("a-"))
    message = failure_of(server)
    assert "at least 1 callback matching where=...; 0 arrived" in message
    assert "Nothing arrived" in message
    for callid in ("a-1", "a-2", "a-3"):
        send(server, factory.prompt(callid=callid))
    server.check()
    assert [record.fields["callid"] for record in taken.matched] == ["a-1", "a-2", "a-3"]
    assert taken.met


def test_count_zero_means_none_may_arrive(server: CallbackServer, factory: PayloadFactory) -> None:
    server.expect("failure", count=0)
    server.expect("prompt")
    send(server, factory.prompt())
    server.check()
    send(server, factory.failure(callid="f-1"))
    message = failure_of(server)
    assert "expect #1: exactly 0 callbacks matching kind='voice_failure_callback'; 1 arrived" in message
    assert "f-1" in message


def test_ordered_expectations(server: CallbackServer, factory: PayloadFactory) -> None:
    server.expect_ordered("prompt", callid="first")
    server.expect_ordered("failure", count=2)
    send(server, factory.failure())
    send(server, factory.prompt(callid="first"))
    send(server, factory.failure())
    message = failure_of(server)
    assert "request #1" in message
    assert "matched ordered step 2" in message
    assert "step 1" in message
    assert "expect_ordered #2: exactly 2 callbacks matching kind='voice_failure_callback'; 1 arrived" in message

    server.reset()
    server.expect_ordered("prompt", callid="first")
    server.expect_ordered("failure", count=2)
    send(server, factory.prompt(callid="first"))
    send(server, factory.code())  # unordered traffic in between is fine unless fail_on_unexpected()
    send(server, factory.failure())
    send(server, factory.failure())
    server.check()


def test_fail_on_unexpected_lists_what_no_expectation_matched(server: CallbackServer, factory: PayloadFactory) -> None:
    server.expect("prompt")
    server.fail_on_unexpected()
    send(server, factory.prompt())
    server.check()
    send(server, factory.code(callid="stray-1"))
    message = failure_of(server)
    assert "1 request matched no expectation (fail_on_unexpected):" in message
    assert "stray-1" in message
    server.fail_on_unexpected(False)
    server.check()


def test_invalid_requests_stay_strict_unless_an_expectation_names_valid_false(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    broken = factory.prompt()
    del broken["voiceprompt_callback"]["callid"]
    server.expect("prompt")
    send(server, broken)
    message = failure_of(server)
    assert "received 1 invalid request" in message  # matched by expect(), still an undeclared invalid one
    server.reset()
    server.expect("prompt", valid=False)
    send(server, broken)
    server.check()


def test_reset_forgets_expectations_and_bad_arguments_are_refused(server: CallbackServer) -> None:
    server.expect("prompt", count=3)
    server.fail_on_unexpected()
    server.reset()
    assert server.expectations == []
    server.check()
    with pytest.raises(ValueError, match="unknown callback kind 'nope'"):
        server.expect("nope")
    with pytest.raises(ValueError, match="count"):
        server.expect(count=-1)
    with pytest.raises(TypeError, match="where must be a callable"):
        server.expect(where="x")  # type: ignore[arg-type]
    assert server.expectations == []


def test_voicecb_server_teardown_fails_unmet_expectations(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import json, urllib.request
        from pytest_voicecb.factory import PayloadFactory

        def send(url, payload):
            request = urllib.request.Request(url, data=json.dumps(payload).encode(), method="POST")
            urllib.request.urlopen(request, timeout=10).read()

        def test_met(voicecb_server):
            voicecb_server.expect("prompt", count=2)
            for _ in range(2):
                send(voicecb_server.url, PayloadFactory(1).prompt())

        def test_unmet(voicecb_server):
            voicecb_server.expect("prompt", count=2)
            voicecb_server.expect_ordered("keypress", callid="k-9")
            send(voicecb_server.url, PayloadFactory(2).prompt(callid="only-one"))

        def test_next_test_starts_clean(voicecb_server):
            pass
        """
    )
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)
    result.stdout.fnmatch_lines(
        [
            "*ERROR at teardown of test_unmet*",
            "*did not get what the test expected:",
            "*expect #1: exactly 2 callbacks matching kind='voiceprompt_callback'; 1 arrived",
            "*expect_ordered #2: exactly 1 callback matching kind='voicekey_callback', callid='k-9'; 0 arrived",
            "*1 request arrived:",
            "*#1 POST*voiceprompt_callback*only-one*",
        ]
    )
    assert "allow_invalid" not in result.stdout.str()
