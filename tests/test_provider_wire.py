"""The simulator's HTTP layer: keep-alive like the real API, chunked bodies read, limits, a clean stop."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_voicecb.provider import Provider
from pytest_voicecb.provider.v3.signing import authorization_header
from pytest_voicecb.provider.wire import ApiRequest, ApiResponse, ApiServer, json_response
from pytest_voicecb.server import CallbackServer


@pytest.fixture
def provider() -> Iterator[Provider]:
    with CallbackServer() as receiver, Provider(receiver.url, seed=7) as sim:
        yield sim


def tts_body(provider: Provider, number: str = "+8613800138000") -> bytes:
    fields = {
        "TemplateId": "101",
        "TemplateParamSet": ["A-1024"],
        "CalledNumber": number,
        "VoiceSdkAppid": provider.voice_sdk_appid,
    }
    return json.dumps(fields).encode()


def signed(provider: Provider, body: bytes) -> dict[str, str]:
    stamp = int(time.time())
    return {
        "Content-Type": "application/json",
        "Host": provider.endpoint,
        "X-TC-Action": "SendTtsVoice",
        "X-TC-Version": "2020-09-02",
        "X-TC-Timestamp": str(stamp),
        "Authorization": authorization_header(
            provider.secret_id, provider.secret_key, host=provider.endpoint, payload=body, timestamp=stamp
        ),
    }


def exchange(conn: http.client.HTTPConnection, body: Any, headers: dict[str, str]) -> tuple[int, Any, bool]:
    conn.request("POST", "/", body=body, headers=headers)
    response = conn.getresponse()
    return response.status, json.loads(response.read()), response.will_close


def test_sends_share_one_kept_alive_connection(provider: Provider) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
    try:
        replies, sockets = [], []
        for number in ("+8613800138000", "+8613800138001", "+8613800138002"):
            body = tts_body(provider, number)
            replies.append(exchange(conn, body, signed(provider, body)))
            sockets.append(conn.sock)
    finally:
        conn.close()
    assert [status for status, _, _ in replies] == [200, 200, 200]
    assert all(data["Response"]["SendStatus"]["CallId"] for _, data, _ in replies)
    assert not any(will_close for _, _, will_close in replies)
    assert sockets[0] is sockets[1] is sockets[2]  # never reconnected: the server kept the connection open


def test_a_chunked_v3_request_is_read_whole_and_its_signature_checked(provider: Provider) -> None:
    body = tts_body(provider)
    headers = signed(provider, body)
    conn = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
    try:
        pieces = iter([body[:10], body[10:40], body[40:]])
        status, data, _ = exchange(conn, pieces, headers)  # an iterable: http.client sends it chunked
    finally:
        conn.close()
    assert status == 200
    assert "Error" not in data["Response"], data
    assert data["Response"]["SendStatus"]["CallId"]
    assert len(provider.calls) == 1


def test_a_chunked_body_over_the_limit_once_decoded_gets_the_apis_size_error(provider: Provider) -> None:
    big = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    conn = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
    try:
        pieces = (big[i : i + 65536] for i in range(0, len(big), 65536))
        status, data, _ = exchange(conn, pieces, signed(provider, b"{}"))
    finally:
        conn.close()
    assert status == 200
    assert data["Response"]["Error"]["Code"] == "RequestSizeLimitExceeded"


def test_the_handler_sees_the_host_header_and_a_crash_is_a_500_that_names_it() -> None:
    seen: list[ApiRequest] = []

    def handler(request: ApiRequest) -> ApiResponse:
        seen.append(request)
        if request.path == "/boom":
            raise ValueError("broken on purpose")
        return json_response({"host": request.header("Host")})

    server = ApiServer(handler)
    server.start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        conn.request("GET", "/", headers={"Host": "vms.tencentcloudapi.com"})
        response = conn.getresponse()
        assert json.loads(response.read()) == {"host": "vms.tencentcloudapi.com"}
        assert response.getheader("Content-Type") == "application/json"
        conn.request("GET", "/boom")
        crashed = conn.getresponse()
        assert crashed.status == 500
        assert "simulator bug: ValueError: broken on purpose" in json.loads(crashed.read())["error"]
        conn.close()
    finally:
        server.stop()
    assert [r.path for r in seen] == ["/", "/boom"]


def test_connections_over_the_limit_get_a_503_and_stop_closes_open_ones() -> None:
    server = ApiServer(lambda request: json_response({"ok": True}), max_connections=2)
    server.start()
    held = [socket.create_connection(("127.0.0.1", server.port), timeout=10) for _ in range(2)]
    try:
        for sock in held:  # each connection admitted and served once, then kept open
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as extra:
            refused = extra.recv(65536)
        assert refused.startswith(b"HTTP/1.1 503")
        assert b"limit of 2 open connections" in refused
    finally:
        server.stop()
    for sock in held:
        assert sock.recv(65536) == b""  # closed by stop(), not left hanging
        sock.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", server.port), timeout=10)
