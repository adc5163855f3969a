"""CallbackServer: recording, waiting, concurrency and lifecycle, driven by real HTTP clients on loopback.

The small HTTP helpers at the top are shared with the other ``test_server_*`` modules.
"""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from werkzeug.datastructures import Headers
from werkzeug.wrappers import Response

from pytest_voicecb import contract
from pytest_voicecb.contract import CodeCallback, PromptCallback
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.server import CallbackServer, RecordedCallback

# ---- helpers shared by the test_server_* modules ----------------------------------------------------


def post(url: str, body: bytes, *, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    """POST with urllib, as a simple sender would; an HTTP error status is returned, not raised."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read()


def exchange(server: CallbackServer, data: bytes, *, finish: bool = True, timeout: float = 5.0) -> bytes:
    """Send raw bytes on a fresh connection and read until the server closes it (or ``timeout``).

    ``finish`` half-closes our side after sending, as a client that has nothing more to say.
    """
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        sock.sendall(data)
        if finish:
            sock.shutdown(socket.SHUT_WR)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def status_of(raw: bytes) -> int:
    """The status code of the first non-1xx response in raw bytes."""
    for line in raw.split(b"\r\n"):
        if line.startswith(b"HTTP/1.") and not line.split()[1].startswith(b"1"):
            return int(line.split()[1])
    raise AssertionError(f"no HTTP response in {raw[:200]!r}")


def body_of(raw: bytes) -> bytes:
    return raw.rsplit(b"\r\n\r\n", 1)[1]


def request_bytes(body: bytes, *, path: str = "/voice/callback", extra: str = "") -> bytes:
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return (head + extra + "\r\n").encode() + body


def assert_serves(server: CallbackServer, factory: PayloadFactory) -> None:
    """The server still answers a normal sender, and records what it sent."""
    payload = factory.prompt()
    status, body = post(server.url, factory.body(payload))
    assert (status, json.loads(body)) == (200, contract.ok_reply())
    callid = payload["voiceprompt_callback"]["callid"]
    assert server.wait_for(callid=callid, timeout=2)[0].valid


@pytest.fixture
def factory() -> PayloadFactory:
    return PayloadFactory(20240601)


@pytest.fixture
def server() -> Iterator[CallbackServer]:
    with CallbackServer(timeout=2.0) as running:
        yield running


# ---- recording --------------------------------------------------------------------------------------


def test_a_valid_callback_is_recorded_with_everything_a_test_asserts_on(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    payload = factory.prompt()
    before = time.time()
    status, reply = post(server.url + "?token=s3cret", factory.body(payload), headers={"X-Trace": "t-1"})

    assert status == 200
    assert json.loads(reply) == {"result": 0, "errmsg": "OK"}
    [record] = server.requests
    assert isinstance(record, RecordedCallback)
    assert (record.method, record.path, record.query) == ("POST", "/voice/callback", "token=s3cret")
    assert isinstance(record.headers, Headers)
    assert record.headers["X-Trace"] == "t-1"
    assert record.headers["content-type"] == "application/json"
    assert record.body == factory.body(payload)
    assert record.json == payload
    assert record.kind == "voiceprompt_callback"
    assert isinstance(record.callback, PromptCallback)
    assert record.callback.callid == payload["voiceprompt_callback"]["callid"]
    assert record.valid
    assert record.error is None
    assert record.problems == ()
    assert isinstance(record.reply, Response)
    assert (record.reply.status_code, record.reply.json) == (200, contract.ok_reply())
    assert before <= record.received_at <= time.time()


def test_every_documented_variant_is_recorded_as_valid_over_one_keep_alive_connection(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    variants = factory.variants()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    conn.connect()
    first_socket = conn.sock
    for variant in variants:
        conn.request("POST", "/voice/callback", body=factory.body(variant.payload))
        response = conn.getresponse()
        assert response.getheader("Connection") is None, "the server must keep the connection open"
        assert (response.status, json.loads(response.read())) == (200, contract.ok_reply()), variant.id
    assert conn.sock is first_socket, "every request travelled on the same connection"
    conn.close()

    records = server.requests
    assert [r.json for r in records] == [v.payload for v in variants]
    assert all(r.valid for r in records), [r.summary() for r in records if not r.valid]
    assert {r.kind for r in records} == set(contract.KINDS)


def test_an_invalid_callback_is_recorded_and_answered_with_the_contract_error(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    payload = factory.code(fee="one")
    status, reply = post(server.url, factory.body(payload))

    answer = contract.parse_reply(reply)
    assert status == 200
    assert answer.result != 0
    assert "$.voicecode_callback.fee" in answer.errmsg
    [record] = server.requests
    assert not record.valid
    assert record.callback is None
    assert record.kind == "voicecode_callback"
    assert [p.path for p in record.problems] == ["$.voicecode_callback.fee"]
    assert isinstance(record.error, contract.CallbackError)
    assert record.fields["callid"] == payload["voicecode_callback"]["callid"]
    assert record.reply is not None
    assert record.reply.json == json.loads(reply)


def test_every_malformed_case_is_recorded_and_answered_in_the_contract_shape(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    cases = factory.malformed()
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    for case in cases:
        conn.request("POST", "/voice/callback", body=case.body, headers={"Content-Type": case.content_type})
        response = conn.getresponse()
        body = response.read()
        assert response.status in (200, 413), case.id
        contract.parse_reply(body)
        if response.getheader("Connection") == "close":
            conn.close()
    conn.close()

    records = server.requests
    assert len(records) == len(cases)
    for case, record in zip(cases, records, strict=False):
        assert record.headers["Content-Type"] == case.content_type
        if case.expect == "reject":
            assert not record.valid, case.id
        assert record.reply is not None
        assert (contract.parse_reply(record.reply.get_data()).result == 0) == record.valid, case.id


def test_any_method_and_path_is_recorded(server: CallbackServer) -> None:
    status, _ = post(server.url_for("/other/%E5%9B%9E%E8%B0%83?x=1&y=2"), b"{}")
    assert status == 200
    with urllib.request.urlopen(server.url_for("/health"), timeout=5) as response:
        assert response.status == 200
        assert contract.parse_reply(response.read()).result != 0

    first, second = server.requests
    assert (first.method, first.path, first.query) == ("POST", "/other/回调", "x=1&y=2")
    assert (second.method, second.path, second.body) == ("GET", "/health", b"")
    assert not second.valid
    assert "empty" in str(second.error)


def test_url_host_port_and_path() -> None:
    server = CallbackServer(path="/hooks/voice")
    with pytest.raises(RuntimeError, match="not been started"):
        server.url  # noqa: B018
    with server:
        assert server.host == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}/hooks/voice"
        assert server.url_for("x") == f"http://127.0.0.1:{server.port}/x"
        assert "running" in repr(server)
    assert server.url.endswith("/hooks/voice"), "the last URL stays readable after stop()"
    assert "stopped" in repr(server)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"path": "voice"}, "path must be a string starting with '/'"),
        ({"port": 70000}, "port must be a whole number from 0 to 65,535"),
        ({"max_body_size": -1}, "max_body_size must be a whole number at least 0"),
        ({"timeout": 0}, "timeout must be a positive number"),
    ],
)
def test_bad_options_are_refused_with_a_clear_message(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CallbackServer(**options)
    with pytest.raises(TypeError, match="on_callback must be callable"):
        CallbackServer(on_callback="print")  # type: ignore[arg-type]


def test_a_port_in_use_is_an_oserror_naming_the_address(server: CallbackServer) -> None:
    with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        CallbackServer(port=server.port).start()
    with pytest.raises(RuntimeError, match="already running"):
        server.start()


# ---- waiting ----------------------------------------------------------------------------------------


def test_wait_for_matches_on_kind_fields_path_validity_and_predicates(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    sent = [
        factory.prompt(callid="a" * 32),
        factory.code(callid="b" * 32, mobile="13800000000"),
        factory.keypress(callid="c" * 32, keypress="2"),
        factory.failure(callid="d" * 32, failure_code=5),
    ]
    for payload in sent:
        post(server.url, factory.body(payload))
    post(server.url_for("/elsewhere"), factory.body(factory.prompt(callid="e" * 32, fee="x")))

    def callids(records: list[RecordedCallback]) -> list[str]:
        return [r.fields["callid"] for r in records]

    assert callids(server.wait_for(kind="keypress")) == ["c" * 32]
    assert callids(server.wait_for(kind="voicecode_callback")) == ["b" * 32]
    assert callids(server.wait_for(mobile="13800000000")) == ["b" * 32]
    assert callids(server.wait_for(failure_code=5)) == ["d" * 32]
    assert callids(server.wait_for(keypress="2", callid="c" * 32)) == ["c" * 32]
    assert callids(server.wait_for(valid=False)) == ["e" * 32]
    assert callids(server.wait_for(path="/elsewhere")) == ["e" * 32]
    assert callids(server.wait_for(kind="prompt", valid=True)) == ["a" * 32]
    assert callids(server.wait_for(4, valid=True)) == callids(server.requests[:4])
    assert callids(server.wait_for(callid=lambda c: c[0] in "ab", count=2)) == ["a" * 32, "b" * 32]
    assert callids(server.wait_for(where=lambda r: r.kind == "voice_failure_callback")) == ["d" * 32]
    assert len(server.wait_for(0, callid="nobody")) == 0
    with pytest.raises(ValueError, match="unknown callback kind 'prompts'"):
        server.wait_for(kind="prompts")
    with pytest.raises(ValueError, match="count must be"):
        server.wait_for(-1)


def test_wait_for_blocks_until_a_late_sender_delivers(server: CallbackServer, factory: PayloadFactory) -> None:
    payloads = factory.batch(3)
    sender = threading.Timer(0.2, lambda: [post(server.url, factory.body(p)) for p in payloads])
    sender.start()
    started = time.monotonic()
    records = server.wait_for(3, timeout=10)
    assert 0.15 < time.monotonic() - started < 5
    assert [r.json for r in records] == payloads
    sender.join()


def test_wait_for_timeout_says_what_it_waited_for_and_what_arrived(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    with pytest.raises(AssertionError) as empty:
        server.wait_for(timeout=0.05)
    assert "waited 0.05 s for 1 callback at http://127.0.0.1:" in str(empty.value)
    assert "Nothing arrived" in str(empty.value)

    payload = factory.prompt()
    post(server.url, factory.body(payload))
    post(server.url, b"not json")
    with pytest.raises(AssertionError) as excinfo:
        server.wait_for(2, timeout=0.05, callid="f" * 32, kind="code")
    message = str(excinfo.value)
    assert "for 2 callbacks matching callid='fff" in message
    assert "kind='voicecode_callback'" in message
    assert "0 matched" in message
    assert "2 requests arrived:" in message
    assert f"#1 POST /voice/callback voiceprompt_callback callid={payload['voiceprompt_callback']['callid']}" in message
    assert "#2 POST /voice/callback 8 bytes INVALID ($: not JSON" in message


def test_callbacks_is_a_snapshot_and_clear_forgets(server: CallbackServer, factory: PayloadFactory) -> None:
    post(server.url, factory.body(factory.prompt()))
    snapshot = server.requests
    post(server.url, factory.body(factory.prompt()))
    assert len(snapshot) == 1
    assert len(server.requests) == 2
    server.clear()
    assert server.requests == []
    with pytest.raises(AssertionError, match="Nothing arrived"):
        server.wait_for(timeout=0.01)
    assert_serves(server, factory)


# ---- concurrency ------------------------------------------------------------------------------------


def test_concurrent_keep_alive_senders_lose_and_duplicate_nothing(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    senders, per_sender = 8, 40
    payloads = factory.batch(senders * per_sender)
    bodies = [factory.body(p) for p in payloads]
    statuses: list[int] = []
    reconnects: list[int] = []

    def send(share: list[bytes]) -> None:
        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        sockets = set()
        for body in share:
            conn.request("POST", "/voice/callback", body=body)
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
            sockets.add(id(conn.sock))
        reconnects.append(len(sockets) - 1)
        conn.close()

    threads = [threading.Thread(target=send, args=(bodies[i::senders],)) for i in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    records = server.wait_for(len(payloads), timeout=10)
    assert statuses == [200] * len(payloads)
    assert reconnects == [0] * senders
    received = [r.fields["callid"] for r in records]
    assert len(received) == len(payloads)
    assert sorted(received) == sorted(p["voiceprompt_callback"]["callid"] for p in payloads)
    assert all(r.valid for r in records)


# ---- lifecycle --------------------------------------------------------------------------------------


def test_stop_is_quick_with_idle_keep_alive_connections_open(factory: PayloadFactory) -> None:
    server = CallbackServer().start()
    conns = [http.client.HTTPConnection(server.host, server.port, timeout=5) for _ in range(5)]
    for conn in conns:
        conn.request("POST", "/voice/callback", body=factory.body(factory.prompt()))
        conn.getresponse().read()
    silent = socket.create_connection((server.host, server.port))  # connected, never says a word
    half = socket.create_connection((server.host, server.port))
    half.sendall(b"POST /voice/callback HTTP/1.1\r\nContent-Length: 100\r\n\r\n{")  # stuck mid-body

    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 1.0
    for sock in (silent, half):
        sock.settimeout(2)
        assert read_until_closed(sock) == b"", "stop() closes every open connection"
        sock.close()

    def resend() -> None:
        conns[0].request("POST", "/voice/callback", body=b"{}")
        conns[0].getresponse()

    with pytest.raises((ConnectionError, http.client.HTTPException)):
        resend()
    for conn in conns:
        conn.close()
    answered = server.wait_for(5, valid=True, timeout=2)
    assert len(answered) == 5, "records survive stop()"
    # The request cut mid-body is recorded if its headers were read before stop(), which is a race.
    for cut in server.requests[5:]:
        assert "Content-Length said 100 bytes, the server stopped after 1" in str(cut.error)


def test_a_stopped_server_starts_again_with_its_records(factory: PayloadFactory) -> None:
    server = CallbackServer()
    with server:
        assert_serves(server, factory)
    server.stop()  # a second stop is harmless
    with server:
        assert server.running
        assert_serves(server, factory)
    assert len(server.requests) == 2
    assert not server.running


def test_usable_as_a_plain_context_manager_without_pytest() -> None:
    script = """
import json, sys, urllib.request
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.server import CallbackServer
factory = PayloadFactory(1)
with CallbackServer() as server:
    body = factory.body(factory.failure())
    reply = urllib.request.urlopen(urllib.request.Request(server.url, data=body), timeout=5).read()
    [record] = server.wait_for(kind="failure")
print(json.dumps([json.loads(reply), record.kind, record.valid, "pytest" in sys.modules]))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert json.loads(done.stdout) == [contract.ok_reply(), "voice_failure_callback", True, False]


# ---- on_callback ------------------------------------------------------------------------------------


def test_on_callback_runs_before_the_reply_is_written(factory: PayloadFactory) -> None:
    entered, release = threading.Event(), threading.Event()
    seen: list[tuple[RecordedCallback, int]] = []
    recorder = CallbackServer()

    def hold(record: RecordedCallback) -> None:
        seen.append((record, len(recorder.requests)))
        entered.set()
        release.wait(10)

    recorder.on_callback = hold
    with recorder:
        results: list[tuple[int, bytes]] = []
        sender = threading.Thread(target=lambda: results.append(post(recorder.url, factory.body(factory.code()))))
        sender.start()
        assert entered.wait(5)
        time.sleep(0.1)
        assert results == [], "the sender must not be answered before on_callback returns"
        release.set()
        sender.join(5)
        assert results[0][0] == 200
        [(record, recorded_before)] = seen
        assert isinstance(record.callback, CodeCallback)
        assert recorded_before == 0, "on_callback runs before the record is listed"
        assert recorder.requests == [record]


def test_a_failing_on_callback_answers_500_records_why_and_keeps_serving(factory: PayloadFactory) -> None:
    calls = []

    def flaky(record: RecordedCallback) -> None:
        calls.append(record)
        if len(calls) == 1:
            raise OSError("disk full")

    with CallbackServer(on_callback=flaky) as server:
        status, body = post(server.url, factory.body(factory.prompt()))
        assert status == 500
        reply = contract.parse_reply(body)
        assert reply.result != 0
        assert "on_callback raised OSError: disk full" in reply.errmsg
        [failed] = server.requests
        assert failed.server_error == "on_callback raised OSError: disk full"
        assert failed.valid
        assert failed.reply is not None
        assert failed.reply.status_code == 500
        assert_serves(server, factory)
        assert server.requests[1].server_error is None


def test_a_bug_in_the_server_costs_one_500_not_the_server(
    server: CallbackServer, factory: PayloadFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(body: object, **options: object) -> None:
        raise RuntimeError("validator exploded")

    monkeypatch.setattr(contract, "parse_callback", broken)
    status, body = post(server.url, factory.body(factory.prompt()))
    assert status == 500
    assert "the callback server failed: RuntimeError: validator exploded" in contract.parse_reply(body).errmsg
    monkeypatch.undo()
    assert_serves(server, factory)
