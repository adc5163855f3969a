"""CallbackServer reply scripting: every way a receiver can answer, so senders' retry logic can be tested."""

from __future__ import annotations

import http.client
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from test_server import exchange, post, request_bytes, status_of
from werkzeug.wrappers import Response

from pytest_voicecb import contract
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.server import CallbackServer


def send(server: CallbackServer, factory: PayloadFactory, timeout: float = 5.0) -> tuple[int, Any]:
    status, body = post(server.url, factory.body(factory.prompt()), timeout=timeout)
    return status, json.loads(body) if body.startswith(b"{") else body


OK = (200, contract.ok_reply())


@pytest.fixture
def factory() -> PayloadFactory:
    return PayloadFactory(7)


@pytest.fixture
def server() -> Iterator[CallbackServer]:
    with CallbackServer(timeout=2.0) as running:
        yield running


def test_reply_with_times_answers_the_next_requests_then_the_default(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    server.reply_with(result=1, errmsg="busy", times=2)
    assert [send(server, factory) for _ in range(3)] == [(200, {"result": 1, "errmsg": "busy"})] * 2 + [OK]
    assert [r.reply.json for r in server.requests if r.reply] == [{"result": 1, "errmsg": "busy"}] * 2 + [
        contract.ok_reply()
    ]


def test_reply_with_times_none_answers_every_request_until_changed(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    server.reply_with(result=7, errmsg="quota exceeded")
    server.reply_with(status=503, times=1)  # queued answers come first
    assert send(server, factory) == (503, {"result": 1, "errmsg": "scripted failure (result 1, HTTP 503)"})
    assert send(server, factory) == (200, {"result": 7, "errmsg": "quota exceeded"})
    assert post(server.url, b"garbage")[1] == b'{"result":7,"errmsg":"quota exceeded"}', "scripts answer invalid too"
    server.reply_with(result=0)
    assert send(server, factory) == OK
    server.reset()
    assert json.loads(post(server.url, b"garbage")[1])["result"] == 1, "reset() brings back the contract default"
    server.expect_invalid()


def test_reply_sequence_is_used_in_order_then_the_default(server: CallbackServer, factory: PayloadFactory) -> None:
    server.reply_sequence(
        [
            {"result": 1, "errmsg": "busy"},
            {"status": 500},
            Response("teapot", status=418, headers={"X-Why": "short and stout"}),
            {"status": 202, "body": {"accepted": True}},
            {"drop": True},
            {"result": 0, "delay": 0.2},
        ]
    )
    assert send(server, factory) == (200, {"result": 1, "errmsg": "busy"})
    assert send(server, factory) == (500, {"result": 1, "errmsg": "scripted failure (result 1, HTTP 500)"})
    assert send(server, factory) == (418, b"teapot")
    assert send(server, factory) == (202, {"accepted": True})
    with pytest.raises(http.client.RemoteDisconnected):
        send(server, factory)
    started = time.monotonic()
    assert send(server, factory) == OK
    assert time.monotonic() - started >= 0.2
    assert send(server, factory) == OK

    replies = [r.reply for r in server.requests]
    assert replies[2] is not None
    assert replies[2].headers["X-Why"] == "short and stout"
    assert replies[4] is None, "a dropped connection is recorded with no reply"
    assert all(r.valid for r in server.requests)


def test_a_bad_sequence_item_is_refused_whole_with_its_index(server: CallbackServer, factory: PayloadFactory) -> None:
    with pytest.raises(TypeError, match=r"reply_sequence item 1 \(\{'reslt': 1\}\): unknown key reslt"):
        server.reply_sequence([{"result": 1}, {"reslt": 1}])
    with pytest.raises(ValueError, match=r"item 0 .*status must be a whole number from 100 to 599"):
        server.reply_sequence([{"status": 42}])
    with pytest.raises(TypeError, match="takes a list of replies"):
        server.reply_sequence({"result": 1})  # type: ignore[dict-item]
    assert send(server, factory) == OK, "nothing of a refused sequence was queued"


def test_reply_raw_sends_exactly_what_it_is_given(server: CallbackServer, factory: PayloadFactory) -> None:
    server.reply_raw(200, b'{"result":"0"}', {"Content-Type": "text/html", "X-Trace": "raw"}, times=1)
    server.reply_raw(200, {"result": 0}, times=1)
    server.reply_raw(204, times=1)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    answers = []
    for _ in range(3):
        conn.request("POST", "/voice/callback", body=factory.body(factory.prompt()))
        response = conn.getresponse()
        answers.append((response.status, response.getheader("Content-Type"), response.read()))
    conn.close()
    assert answers == [
        (200, "text/html", b'{"result":"0"}'),
        (200, "application/json", b'{"result":0}'),
        (204, None, b""),
    ]
    first = server.requests[0].reply
    assert first is not None
    assert first.headers["X-Trace"] == "raw"


def test_reply_raw_with_a_lying_content_length_then_closes_the_connection(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    server.reply_raw(200, b'{"result":0,"errmsg":"OK"}', {"Content-Length": "500"}, times=1)
    raw = exchange(server, request_bytes(factory.body(factory.prompt())), finish=False)
    assert b"Content-Length: 500\r\n" in raw
    assert raw.endswith(b'{"result":0,"errmsg":"OK"}')
    assert status_of(raw) == 200
    assert send(server, factory) == OK


def test_drop_connection_closes_without_a_reply_and_the_sender_can_retry(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    server.drop_connection(times=2)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    body = factory.body(factory.prompt())
    outcomes: list[int | str] = []
    for _ in range(3):  # a sender that retries on the same HTTPConnection (it reconnects)
        try:
            conn.request("POST", "/voice/callback", body=body)
            response = conn.getresponse()
            outcomes.append(response.status)
            response.read()
        except (http.client.RemoteDisconnected, ConnectionResetError):
            outcomes.append("dropped")
            conn.close()
    conn.close()
    assert outcomes == ["dropped", "dropped", 200]
    assert [r.reply is None for r in server.requests] == [True, True, False]
    assert len({r.body for r in server.requests}) == 1, "the same callback, delivered three times"


def test_a_delay_makes_a_sender_with_a_short_timeout_give_up(server: CallbackServer, factory: PayloadFactory) -> None:
    server.reply_with(delay=0.5, times=1)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        send(server, factory, timeout=0.1)
    assert time.monotonic() - started < 0.45
    server.drop_connection(delay=0.2)
    started = time.monotonic()
    with pytest.raises(http.client.RemoteDisconnected):
        send(server, factory)
    assert time.monotonic() - started >= 0.2
    assert len(server.wait_for(2)) == 2, "a timed-out delivery is still recorded: it did arrive"


def test_reset_wakes_a_delayed_request_at_once_and_the_delay_does_not_leak(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    server.reply_with(result=1, errmsg="slow", delay=60, times=None)
    results: list[tuple[int, Any]] = []
    sender = threading.Thread(target=lambda: results.append(send(server, factory, timeout=30)))
    sender.start()
    server.wait_for(1, timeout=5)  # recorded, now sleeping in its delay

    started = time.monotonic()
    server.reset()
    assert time.monotonic() - started < 0.5, "reset() must not wait for the sleeping request"
    sender.join(5)
    assert not sender.is_alive()
    assert time.monotonic() - started < 2
    assert results == [(200, {"result": 1, "errmsg": "slow"})], "the old request got its scripted answer early"

    started = time.monotonic()
    assert send(server, factory) == OK
    assert time.monotonic() - started < 1, "no delay after reset()"
    assert len(server.requests) == 1


def test_a_request_begun_before_reset_is_not_recorded_after_it(server: CallbackServer, factory: PayloadFactory) -> None:
    server.reply_with(result=1, errmsg="old script", times=None)
    body = factory.body(factory.prompt())
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(request_bytes(body)[: -len(body) // 2])
        time.sleep(0.1)  # headers read, body half sent
        server.reset()
        server.reply_with(result=1, errmsg="new script", times=1)
        sock.sendall(request_bytes(body)[-len(body) // 2 :])
        sock.settimeout(5)
        answer = sock.recv(65536)
    assert status_of(answer) == 200
    assert answer.endswith(contract.encode(contract.ok_reply()))
    assert server.requests == [], "it belongs to the test before the reset"
    assert send(server, factory) == (200, {"result": 1, "errmsg": "new script"}), "the new script is untouched"


def test_stop_wakes_requests_sleeping_in_a_delay(factory: PayloadFactory) -> None:
    server = CallbackServer().start()
    server.reply_with(delay=60)
    outcome: list[object] = []

    def deliver() -> None:
        try:
            outcome.append(send(server, factory, timeout=30))
        except (ConnectionError, http.client.HTTPException) as exc:  # the server went away: fine
            outcome.append(exc)

    sender = threading.Thread(target=deliver, daemon=True)
    sender.start()
    server.wait_for(timeout=5)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1
    sender.join(5)
    assert not sender.is_alive(), "the sender was released, not left hanging"
    assert len(outcome) == 1


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda s: s.reply_with(result="0"), TypeError, "result must be an integer"),
        (lambda s: s.reply_with(result=True), TypeError, "result must be an integer"),
        (lambda s: s.reply_with(errmsg=1), TypeError, "errmsg must be a string"),
        (lambda s: s.reply_with(status=42), ValueError, "status must be a whole number from 100 to 599"),
        (lambda s: s.reply_with(delay=-1), ValueError, "delay must be a number of seconds >= 0"),
        (lambda s: s.reply_with(times=0), ValueError, "times must be a whole number at least 1"),
        (lambda s: s.reply_raw(200, 3), TypeError, "body must be bytes, str, a dict or a list"),
        (lambda s: s.reply_raw(200, b"", {"X-A": "1\r\nX-B: 2"}), ValueError, "not a valid HTTP header"),
        (lambda s: s.reply_raw(200, b"", {"X-A": "回调"}), ValueError, "characters HTTP/1.1 cannot carry"),
        (lambda s: s.reply_raw(200, b"", ["X-A"]), TypeError, "headers must be a mapping"),
        (lambda s: s.drop_connection(times=-1), ValueError, "times must be a whole number at least 1"),
    ],
)
def test_bad_scripts_are_refused_with_a_clear_message(call: Any, error: type[Exception], message: str) -> None:
    server = CallbackServer()
    with pytest.raises(error, match=message):
        call(server)
