"""The HTTP/1.1 layer on its own, behind a receiver that is not the recording server (as the provider
simulator will use it): everything it learns arrives through ``receive()``, refusals included."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from test_server import read_until_closed, request_bytes, status_of
from werkzeug.wrappers import Response

from pytest_voicecb.server._http11 import Answer, HTTP11Server, Incoming


class Echo:
    """Answers every request with its own body; keeps every ``Incoming``."""

    def __init__(self) -> None:
        self.seen: list[Incoming] = []
        self.lock = threading.Lock()

    def receive(self, incoming: Incoming) -> Answer:
        with self.lock:
            self.seen.append(incoming)
        if incoming.refusal is not None:
            status = incoming.refusal.status
            return Answer(reply=None if status is None else Response(incoming.refusal.message, status))
        return Answer(reply=Response(incoming.body, 201, content_type="text/plain"))


@pytest.fixture
def echo() -> Iterator[tuple[Echo, int]]:
    receiver = Echo()
    listener = socket.create_server(("127.0.0.1", 0))
    server = HTTP11Server(
        receiver,
        listener,
        name="echo",
        error_reply=lambda status, message: Response(message, status),
        max_body_size=100,
        timeout=2.0,
        header_timeout=2.0,
        max_connections=10,
    )
    server.start()
    yield receiver, server.port
    server.stop()


def test_another_receiver_gets_requests_refusals_and_aborted_heads_through_receive(echo: tuple[Echo, int]) -> None:
    receiver, port = echo
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"\r\n" + request_bytes(b"hello", path="/send?x=1"))  # an empty line first is ignored
        raw = sock.recv(65536)
        assert status_of(raw) == 201
        assert raw.endswith(b"hello")
        sock.sendall(request_bytes(b"x" * 101))
        raw = read_until_closed(sock)
        assert status_of(raw) == 413
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"POST /half HTTP/1.1\r\nHost: x\r\n")
        sock.shutdown(socket.SHUT_WR)
        assert status_of(read_until_closed(sock)) == 400

    first, refused, aborted = receiver.seen
    assert (first.method, first.path, first.query, first.body) == ("POST", "/send", "x=1", b"hello")
    assert first.refusal is None
    assert not first.truncated
    assert refused.refusal is not None
    assert refused.refusal.status == 413
    assert "over the 100-byte limit" in refused.refusal.message
    assert aborted.method == "", "a head that never completed carries nothing but the refusal"
    assert aborted.refusal is not None
    assert "closed before the request head was complete" in aborted.refusal.message


def test_a_receiver_that_raises_costs_one_500(echo: tuple[Echo, int], monkeypatch: pytest.MonkeyPatch) -> None:
    receiver, port = echo

    def broken(incoming: Incoming) -> Answer:
        raise KeyError("oops")

    monkeypatch.setattr(receiver, "receive", broken)
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_bytes(b"{}"))
        raw = read_until_closed(sock)
    assert status_of(raw) == 500
    assert b"the echo failed: KeyError: 'oops'" in raw
    monkeypatch.undo()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_bytes(b"again"))
        assert sock.recv(65536).endswith(b"again")
