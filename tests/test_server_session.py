"""The keep-alive HTTP layer's reading of request heads (what test_server_http11.py does not cover)."""

from __future__ import annotations

import socket

from pytest_voicecb.server import CallbackServer


def exchange(server: CallbackServer, raw: bytes) -> bytes:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(raw)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
        return received


def test_a_bare_cr_inside_a_header_is_refused_with_a_400_and_the_server_keeps_serving() -> None:
    with CallbackServer() as server:
        answer = exchange(
            server, b"POST /voice/callback HTTP/1.1\r\nHost: x\r\nX-Evil: a\rb\r\nContent-Length: 2\r\n\r\n{}"
        )
        assert answer.startswith(b"HTTP/1.1 400")
        assert b"a bare CR in header line" in answer
        ok = exchange(
            server, b"POST /voice/callback HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}"
        )
        assert ok.startswith(b"HTTP/1.1 200")
        assert server.requests[-1].headers["Host"] == "x"


def test_repeated_and_differently_cased_framing_headers_are_read_as_one() -> None:
    with CallbackServer() as server:
        conflicting = exchange(
            server,
            b"POST /voice/callback HTTP/1.1\r\nHost: x\r\ncontent-length: 2\r\nCONTENT-LENGTH: 3\r\n\r\n{}x",
        )
        assert conflicting.startswith(b"HTTP/1.1 400")
        assert b"conflicting Content-Length headers: 2, 3" in conflicting
        chunked = exchange(
            server,
            b"POST /voice/callback HTTP/1.1\r\nHost: x\r\ntransfer-ENCODING: chunked\r\nConnection: close\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n",
        )
        assert chunked.startswith(b"HTTP/1.1 200")
        assert server.requests[-1].body == b"{}"
