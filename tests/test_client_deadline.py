"""One deadline per delivery: connect, send, the reply's status line, headers and body all fit in ``timeout``.

The servers here are raw sockets on loopback that trickle their reply a byte at a time, each byte
well within the timeout, so only a deadline for the whole exchange can stop them.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pytest_voicecb.client import CallbackClient, DeliveryError, Reply
from tests.raw_upstream import raw_server, read_request

OK_BODY = b'{"result":0,"errmsg":"OK"}'
STATUS = b"HTTP/1.1 200 OK\r\n"
HEADERS = b"Content-Type: application/json\r\nContent-Length: %d\r\nX-Padding: " % len(OK_BODY)


@contextmanager
def trickling(quick: bytes, slow: bytes, *, every: float = 0.05) -> Iterator[str]:
    """A server answering each connection with ``quick`` at once, then ``slow`` one byte every ``every`` s."""

    def answer(conn: socket.socket, stop: threading.Event) -> None:
        with conn:
            try:
                read_request(conn)
                conn.sendall(quick)
                for byte in slow:
                    if stop.wait(every):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up: good

    with raw_server(answer) as url:
        yield url


def trickled_body(padding: int) -> tuple[bytes, bytes]:
    """A reply whose body ends in ``padding`` spaces that come slowly."""
    head = b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % (len(OK_BODY) + padding)
    return STATUS + head + OK_BODY, b" " * padding


# 100 bytes at 20 per second: 5 s to send, each byte 50 ms after the last (a per-read timeout never fires)
SLOW_STATUS = b"HTTP/1.1 200 " + b"O" * 85 + b"\r\n"
CASES = {
    "status-line": (b"", SLOW_STATUS + HEADERS + b"x\r\n\r\n" + OK_BODY),
    "headers": (STATUS, HEADERS + b"p" * 100 + b"\r\n\r\n" + OK_BODY),
    "body": trickled_body(100),
}


PHASES = {
    "status-line": "the reply's status line and headers were still arriving",
    "headers": "the reply's status line and headers were still arriving",
    "body": "the reply's body was still arriving",
}


@pytest.mark.parametrize(("quick", "slow", "phase"), [(*CASES[n], PHASES[n]) for n in CASES], ids=list(CASES))
def test_a_trickled_reply_times_out_at_the_deadline(quick: bytes, slow: bytes, phase: str) -> None:
    with trickling(quick, slow) as url, CallbackClient(url, timeout=0.6) as client:
        began = time.monotonic()
        with pytest.raises(DeliveryError, match=r"no reply within 0\.6 s") as caught:
            client.post({})
        took = time.monotonic() - began
    assert caught.value.timed_out
    assert caught.value.reason == f"no reply within 0.6 s ({phase})"
    assert took < 1.5, f"the deadline held only after {took:.1f} s"


def test_post_timeout_overrides_the_clients_and_bounds_the_whole_exchange() -> None:
    quick, slow = CASES["body"]
    with trickling(quick, slow) as url, CallbackClient(url, timeout=30) as client:
        began = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            client.post({}, timeout=0.4)
    assert caught.value.timed_out
    assert time.monotonic() - began < 1.3


def test_concurrent_deliveries_share_the_deadline() -> None:
    quick, slow = CASES["headers"]
    with trickling(quick, slow) as url, CallbackClient(url, timeout=0.5) as client:
        began = time.monotonic()
        results = client.post_concurrently([b"1", b"2"])
    assert all(isinstance(result, DeliveryError) and result.timed_out for result in results)
    assert time.monotonic() - began < 1.5


def test_a_slow_reply_inside_the_deadline_is_a_reply() -> None:
    quick, slow = trickled_body(5)
    with trickling(quick, slow, every=0.02) as url, CallbackClient(url, timeout=2) as client:
        reply = client.post({})
        assert isinstance(reply, Reply)
        assert reply.status == 200
        assert reply.json == {"result": 0, "errmsg": "OK"}
        assert reply.elapsed >= 0.08
        again = client.post({}, timeout=None)  # no deadline: each read blocks until the reply is whole
        assert again.status == 200
