"""One reading of a reply for every client: cut short, over the limit or not final is never a reply.

The upstreams here are raw sockets on loopback that break HTTP on purpose, one scripted reply per
request; ``CallbackClient`` (what ``check``, ``send`` and the provider deliver with), ``voicecb send``
and the ``--forward-to`` relay all meet them.
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_voicecb import CallbackClient, CallbackServer, PayloadFactory
from pytest_voicecb.cli.forward import Forwarder
from pytest_voicecb.errors import DeliveryError
from tests.raw_upstream import raw_server, read_request

ROOT = Path(__file__).resolve().parents[1]
OK = b'{"result": 0, "errmsg": "OK"}'  # 29 bytes
GOOD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 29\r\n\r\n" + OK
CUT_SHORT = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n" + OK
CHUNKED_CUT = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n1d\r\n" + OK
SWITCHING = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
EARLY_HINTS = b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n"


@contextlib.contextmanager
def upstream(*replies: bytes) -> Iterator[str]:
    """A misbehaving handler: the n-th request gets ``replies[n]`` written raw; a reply that is not whole
    (cut short, interim) closes the connection after it, as a crashing server would."""
    queue = list(replies)

    def answer(conn: socket.socket, stopping: threading.Event) -> None:
        buf = bytearray()
        with conn:
            while queue and read_request(conn, buf):
                reply = queue.pop(0)
                conn.sendall(reply)
                if reply != GOOD:
                    return

    with raw_server(answer, "/voice/callback") as url:
        yield url


def oversize(size: int) -> bytes:
    return b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size + b" " * size


def test_a_reply_cut_short_is_a_delivery_error_saying_what_arrived_and_the_next_one_works() -> None:
    with upstream(CUT_SHORT, GOOD) as url, CallbackClient(url) as client:
        with pytest.raises(DeliveryError) as caught:
            client.post(PayloadFactory(1).answered())
        assert client.post(PayloadFactory(2).answered()).json == {"result": 0, "errmsg": "OK"}
    reason = caught.value.reason
    assert "cut short: HTTP 200, Content-Length said 100 bytes, the connection closed after 29 bytes" in reason
    assert '{"result": 0, "errmsg": "OK"}' in reason
    assert not caught.value.timed_out


def test_a_chunked_reply_cut_short_is_a_delivery_error() -> None:
    with upstream(CHUNKED_CUT) as url, CallbackClient(url) as client, pytest.raises(DeliveryError) as caught:
        client.post(PayloadFactory(1).answered())
    assert "cut short: HTTP 200, its chunked body ended before the last chunk" in caught.value.reason
    assert "after 29 bytes" in caught.value.reason


@pytest.mark.parametrize(
    ("raw", "status"),
    [(SWITCHING, "101 Switching Protocols"), (EARLY_HINTS, "103 Early Hints")],
    ids=["101", "103"],
)
def test_an_interim_status_is_not_a_reply(raw: bytes, status: str) -> None:
    with upstream(raw, GOOD) as url, CallbackClient(url) as client:
        with pytest.raises(DeliveryError, match=f"status is {status}, an interim"):
            client.post(PayloadFactory(1).answered())
        assert client.post(PayloadFactory(1).answered()).status == 200  # a new connection, not the switched one


def test_voicecb_send_counts_a_reply_cut_short_as_no_reply() -> None:
    with upstream(CUT_SHORT) as url:
        proc = subprocess.run(
            [sys.executable, "-m", "pytest_voicecb", "send", url],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
    assert proc.returncode != 0, proc.stdout
    assert "cut short" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (CUT_SHORT, "Content-Length said 100 bytes, the connection closed after 29 bytes"),
        (oversize(1024 * 1024 + 10), "HTTP 200 with more than 1,048,576 bytes (the read limit); not relayed"),
        (SWITCHING, "101 Switching Protocols, an interim (1xx) status"),
    ],
    ids=["cut-short", "oversize", "switching"],
)
def test_forward_to_answers_502_in_the_contract_shape_never_a_partial_reply(raw: bytes, says: str) -> None:
    with upstream(raw, GOOD) as url:
        forwarder = Forwarder(url, timeout=5)
        with CallbackServer(answer=forwarder) as server, CallbackClient(server.url) as sender:
            bad = sender.post(PayloadFactory(1).answered())
            good = sender.post(PayloadFactory(2).answered())  # the same sender connection, the relay's renewed
        forwarder.close()
    assert bad.status == 502
    answer = json.loads(bad.body)
    assert set(answer) == {"result", "errmsg"}
    assert answer["result"] != 0
    assert says in answer["errmsg"]
    assert good.status == 200
    assert good.json == {"result": 0, "errmsg": "OK"}


def test_the_provider_counts_a_reply_cut_short_as_a_failed_attempt_and_retries() -> None:
    from pytest_voicecb.provider import Provider

    with upstream(CUT_SHORT, GOOD, GOOD, GOOD) as url, Provider(url, seed=3) as provider:
        provider.backend.place("3.0", "SendTtsVoice", "86", "13800138000", {})
        first, *retries = provider.run_until_idle()
    assert not first.acknowledged
    assert first.reply is None
    assert first.error is not None
    assert "cut short: HTTP 200, Content-Length said 100 bytes" in first.error
    assert retries
    assert retries[0].acknowledged
