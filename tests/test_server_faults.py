"""CallbackServer under bad input and misbehaving senders: a clean error or a closed connection, a record
where there was a request, and the next sender is served normally."""

from __future__ import annotations

import http.client
import json
import random
import socket
import struct
import threading
import time
from collections.abc import Iterator

import pytest
from test_server import assert_serves, exchange, post, read_until_closed, request_bytes, status_of

from pytest_voicecb import contract
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.server import CallbackServer

TIMEOUT = 0.5  # the server's socket timeout in these tests: how long a stalled sender may hold on

_FACTORY = PayloadFactory(99)
BODY = _FACTORY.body(_FACTORY.prompt())
HEAD = "POST /voice/callback HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture
def factory() -> PayloadFactory:
    return PayloadFactory(3)


@pytest.fixture
def server() -> Iterator[CallbackServer]:
    with CallbackServer(timeout=TIMEOUT) as running:
        yield running


# (id, bytes sent, half-close after sending, expected status or None for "closed without a reply",
#  the recorded error (a substring) or None when nothing is recorded)
FAULTS = [
    ("garbage-line", b"\x00\xff\xfe garbage \x01\x02\r\n\r\n", True, 400, None),
    ("random-bytes", random.Random(5).randbytes(4096), True, (400, None), None),
    ("tls-hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + bytes(40), True, (400, None), None),
    ("http2-preface", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", True, 505, None),
    ("request-line-70kb", f"POST /{'a' * 70_000} HTTP/1.1\r\n\r\n".encode(), True, 414, None),
    ("endless-header", f"{HEAD}X-Filler: {'a' * 70_000}\r\n\r\n".encode(), True, 431, "Line too long"),
    (
        "too-many-headers",
        (HEAD + "".join(f"X-{i}: {i}\r\n" for i in range(150)) + "\r\n").encode(),
        True,
        431,
        "Too many headers",
    ),
    (
        "truncated-body",
        f"{HEAD}Content-Length: 500\r\n\r\n".encode() + BODY[:100],
        True,
        400,
        "body truncated: Content-Length said 500 bytes, the connection ended after 100",
    ),
    (
        "content-length-longer-held-open",
        f"{HEAD}Content-Length: 500\r\n\r\n".encode() + BODY[:100],
        False,
        400,
        f"body truncated: Content-Length said 500 bytes, the body did not arrive within {TIMEOUT:g} s after 100",
    ),
    (
        "content-length-not-a-number",
        f"{HEAD}Content-Length: 12abc\r\n\r\n".encode(),
        True,
        400,
        "Content-Length '12abc' is not a byte count",
    ),
    ("content-length-negative", f"{HEAD}Content-Length: -5\r\n\r\n".encode(), True, 400, "is not a byte count"),
    (
        "content-length-conflicting",
        f"{HEAD}Content-Length: 3\r\nContent-Length: 4\r\n\r\n{{}}".encode(),
        True,
        400,
        "conflicting Content-Length headers: 3, 4",
    ),
    (
        "transfer-encoding-gzip",
        f"{HEAD}Transfer-Encoding: gzip\r\n\r\n".encode(),
        True,
        501,
        "Transfer-Encoding 'gzip' is not supported",
    ),
    (
        "chunk-size-not-hex",
        f"{HEAD}Transfer-Encoding: chunked\r\n\r\nzz\r\n".encode(),
        True,
        400,
        "malformed chunk size b'zz'",
    ),
    (
        "chunked-truncated",
        f"{HEAD}Transfer-Encoding: chunked\r\n\r\n400\r\n".encode() + BODY,
        True,
        400,
        "body truncated: a chunk header said 1,024 bytes",
    ),
    (
        "invalid-utf8-body",
        request_bytes(BODY.replace(b'"call_from":"', b'"call_from":"\xff\xfe')),
        True,
        200,
        "not valid UTF-8",
    ),
]


@pytest.mark.parametrize(
    ("data", "finish", "status", "recorded"), [pytest.param(*case[1:], id=case[0]) for case in FAULTS]
)
def test_a_fault_gets_a_clean_answer_and_the_next_sender_is_served(
    server: CallbackServer,
    factory: PayloadFactory,
    data: bytes,
    finish: bool,
    status: int | tuple[int | None, ...] | None,
    recorded: str | None,
) -> None:
    started = time.monotonic()
    raw = exchange(server, data, finish=finish)
    assert time.monotonic() - started < TIMEOUT + 2, "the server answered or closed in time"
    got = status_of(raw) if raw else None
    assert got in (status if isinstance(status, tuple) else (status,)), raw[:300]
    if got is not None:
        reply = contract.parse_reply(raw.split(b"\r\n\r\n", 1)[1])
        assert reply.result != 0, "errors are answered in the contract's shape"

    if recorded is None:
        assert server.requests == []
    else:
        [record] = server.wait_for(timeout=2)
        assert not record.valid
        assert recorded in str(record.error)
        assert record.method == "POST"
        assert record.path == "/voice/callback"
    server.clear()
    assert_serves(server, factory)


def test_a_shorter_content_length_records_the_cut_body_and_closes_on_the_leftover(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    raw = exchange(server, f"{HEAD}Content-Length: 10\r\n\r\n".encode() + BODY)
    first, leftover = raw.split(b"HTTP/1.1 ", 2)[1:]
    assert first.startswith(b"200 "), "the first 10 bytes are answered as a callback"
    assert b'"result":1' in first
    assert leftover.startswith(b"400 "), "the rest of the body is not a request"
    [record] = server.requests
    assert record.body == BODY[:10]
    assert "not JSON" in str(record.error)
    assert_serves(server, factory)


def test_a_client_that_resets_mid_body_is_recorded_as_truncated(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    sock = socket.create_connection((server.host, server.port))
    sock.sendall(f"{HEAD}Content-Length: 1000\r\n\r\n".encode() + BODY[:50])
    time.sleep(0.05)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()  # RST, not FIN
    [record] = server.wait_for(timeout=2)
    assert "body truncated: Content-Length said 1,000 bytes, the connection ended after 50" in str(record.error)
    assert record.body == BODY[:50]
    assert_serves(server, factory)


def test_a_path_that_is_not_utf8_is_recorded_as_sent(server: CallbackServer) -> None:
    raw = exchange(server, request_bytes(BODY, path="/cb/\xff\xfe").replace(b"\xc3\xbf\xc3\xbe", b"\xff\xfe"))
    assert status_of(raw) == 200
    [record] = server.requests
    assert record.path == "/cb/\xff\xfe"
    assert record.valid


# ---- size limit -------------------------------------------------------------------------------------


def test_a_body_over_the_limit_gets_413_unread_and_is_recorded_as_invalid(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    big = b'{"voiceprompt_callback":{"pad":"' + b"x" * (contract.MAX_BODY_SIZE + 10) + b'"}}'
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    conn.request("POST", "/voice/callback", body=big, headers={"Content-Type": "application/json"})
    response = conn.getresponse()
    assert response.status == 413
    assert response.getheader("Connection") == "close"
    reply = contract.parse_reply(response.read())
    assert reply.result != 0
    assert "over the 1,048,576-byte limit" in reply.errmsg
    conn.close()

    [record] = server.requests
    assert not record.valid
    assert record.body == b"", "the body is refused unread"
    assert f"body is {len(big):,} bytes (Content-Length), over the 1,048,576-byte limit" in str(record.error)
    assert record.reply is not None
    assert record.reply.status_code == 413
    server.clear()
    assert_serves(server, factory)


def test_a_chunked_body_growing_past_a_small_limit_gets_413(factory: PayloadFactory) -> None:
    with CallbackServer(max_body_size=100, timeout=TIMEOUT) as server:
        body = factory.body(factory.prompt())
        assert len(body) > 100
        status, reply = post(server.url, body)
        assert status == 413
        assert b"over the 100-byte limit" in reply

        conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
        conn.request("POST", "/voice/callback", body=iter([body[:60], body[60:]]), encode_chunked=True)
        response = conn.getresponse()
        assert response.status == 413
        assert b"chunked body grew past the 100-byte limit" in response.read()
        conn.close()
        assert [r.valid for r in server.requests] == [False, False]


def test_a_chunked_body_within_the_limit_is_a_normal_callback(server: CallbackServer, factory: PayloadFactory) -> None:
    payload = factory.keypress()
    body = factory.body(payload)
    conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
    for _ in range(2):  # and the connection stays usable after a chunked request
        conn.request("POST", "/voice/callback", body=iter([body[:7], body[7:30], body[30:]]), encode_chunked=True)
        response = conn.getresponse()
        assert (response.status, json.loads(response.read())) == (200, contract.ok_reply())
    conn.close()
    assert [r.json for r in server.requests] == [payload, payload]


def test_expect_100_continue_is_answered_only_for_a_body_within_the_limit(server: CallbackServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        sock.sendall(f"{HEAD}Expect: 100-continue\r\nContent-Length: {len(BODY)}\r\n\r\n".encode())
        assert sock.recv(100) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(BODY)
        assert status_of(sock.recv(65536)) == 200
    raw = exchange(server, f"{HEAD}Expect: 100-continue\r\nContent-Length: 5000000\r\n\r\n".encode(), finish=False)
    assert raw.startswith(b"HTTP/1.1 413 "), "no 100 Continue for a body that will be refused"
    assert [r.valid for r in server.wait_for(2, timeout=2)] == [True, False]


# ---- slow and idle senders --------------------------------------------------------------------------


def test_a_slow_sender_does_not_hold_up_others_and_is_cut_off_after_the_timeout(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    slow = socket.create_connection((server.host, server.port), timeout=5)
    slow.sendall(b"POST /voice/callback HTTP/1.1\r\nHost: x\r\n")  # ... and nothing more
    trickle = socket.create_connection((server.host, server.port), timeout=5)
    trickle.sendall(f"{HEAD}Content-Length: {len(BODY)}\r\n\r\n".encode())

    def drip() -> None:  # one byte every 0.1 s: each read is within the timeout, the whole body is not
        for byte in BODY[:20]:
            try:
                trickle.sendall(bytes([byte]))
            except OSError:
                return
            time.sleep(0.1)

    dripper = threading.Thread(target=drip)
    dripper.start()
    started = time.monotonic()
    for _ in range(3):
        assert_serves(server, factory)
    assert time.monotonic() - started < TIMEOUT, "other senders are served while the slow ones hang on"

    assert read_until_closed(slow) == b"", "an idle half-request is closed after the timeout"
    trickled = read_until_closed(trickle)
    assert time.monotonic() - started < TIMEOUT + 1.5
    assert status_of(trickled) == 400
    dripper.join()
    slow.close()
    trickle.close()
    [cut] = server.wait_for(valid=False, timeout=2)
    assert f"the body did not arrive within {TIMEOUT:g} s" in str(cut.error)


def test_http_1_0_and_head_requests_are_answered_correctly(server: CallbackServer, factory: PayloadFactory) -> None:
    raw = exchange(server, f"POST /voice/callback HTTP/1.0\r\nContent-Length: {len(BODY)}\r\n\r\n".encode() + BODY)
    assert status_of(raw) == 200
    assert b"Connection: close" in raw
    with socket.create_connection((server.host, server.port), timeout=5) as sock:
        head = f"POST /voice/callback HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: {len(BODY)}\r\n\r\n"
        sock.sendall(head.encode() + BODY)
        answer = sock.recv(65536)
        assert b"Connection: keep-alive" in answer
        sock.sendall(b"HEAD /voice/callback HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(65536)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert answer.endswith(b"\r\n\r\n"), "HEAD: headers, no body"
    assert [r.method for r in server.requests] == ["POST", "POST", "HEAD"]
    server.expect_invalid()  # the HEAD request carries no callback
    assert_serves(server, factory)
