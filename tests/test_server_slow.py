"""CallbackServer against slow, aborted and crowding senders (issue 9): deadlines for heads and bodies, a
cap on open connections, an accept loop that does not spin at the file-descriptor limit, and records
of exactly what arrived. Every test checks that everyone else is still served."""

from __future__ import annotations

import http.client
import json
import os
import resource
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from test_server import assert_serves, body_of, post, read_until_closed, request_bytes, status_of

from pytest_voicecb import contract
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.server import CallbackServer

_FACTORY = PayloadFactory(909)
BODY = _FACTORY.body(_FACTORY.prompt())
HEAD = "POST /voice/callback HTTP/1.1\r\nHost: x\r\n"


@pytest.fixture
def factory() -> PayloadFactory:
    return PayloadFactory(11)


@pytest.fixture
def server() -> Iterator[CallbackServer]:
    with CallbackServer(timeout=0.5, header_timeout=0.6) as running:
        yield running


def eventually(condition: Callable[[], bool], timeout: float = 3.0) -> None:
    """Poll ``condition`` until it holds or ``timeout`` passes (then fail)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def connect(server: CallbackServer, timeout: float = 5.0) -> socket.socket:
    return socket.create_connection((server.host, server.port), timeout=timeout)


# ---- heads that never complete ----------------------------------------------------------------------


def test_a_head_trickled_a_byte_at_a_time_is_cut_off_at_the_header_deadline(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    sock = connect(server)
    stop = threading.Event()

    def trickle() -> None:  # each byte within the 0.5 s stall timeout; the head never ends
        for byte in (HEAD + "X-Slow: " + "a" * 100).encode():
            if stop.wait(0.1):
                return
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                return

    dripper = threading.Thread(target=trickle)
    started = time.monotonic()
    dripper.start()
    assert_serves(server, factory)
    assert read_until_closed(sock) == b"", "closed without an answer"
    held = time.monotonic() - started
    stop.set()
    dripper.join()
    sock.close()
    assert 0.5 < held < 3, f"the head was cut off after {held:.2f} s (header_timeout 0.6 s)"
    eventually(lambda: server.aborted == 1)
    assert len(server.requests) == 1, "only the normal sender is recorded"
    assert_serves(server, factory)


def test_a_connection_closed_in_the_middle_of_its_headers_is_counted_not_recorded(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    for _ in range(50):
        with connect(server) as sock:
            sock.sendall(f"{HEAD}Content-Type: application/js".encode())
            sock.shutdown(socket.SHUT_WR)
            raw = read_until_closed(sock)
        assert status_of(raw) == 400
        assert "closed before the request head was complete" in contract.parse_reply(body_of(raw)).errmsg
    eventually(lambda: server.aborted == 50)
    assert server.requests == [], "no phantom empty POST answered 200"
    with pytest.raises(AssertionError, match="50 requests aborted before the headers were complete"):
        server.wait_for(timeout=0)
    server.clear()
    assert server.aborted == 0, "clear() resets the tally"
    assert_serves(server, factory)
    with connect(server) as sock:  # a reset connection (RST) mid-head: no record either
        sock.sendall(HEAD.encode())
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    eventually(lambda: server.aborted == 1)
    server.reset()
    assert server.aborted == 0, "reset() resets the tally"
    assert len(server.requests) == 0


def test_an_unreadable_request_line_is_refused_and_counted(server: CallbackServer, factory: PayloadFactory) -> None:
    with connect(server) as sock:
        sock.sendall(b"\x1b[2J HELLO\r\n\r\n")
        raw = read_until_closed(sock)
    assert status_of(raw) == 400
    assert "\\x1b" in contract.parse_reply(body_of(raw)).errmsg, "the request line is quoted escaped"
    eventually(lambda: server.aborted == 1)
    assert server.requests == []
    assert_serves(server, factory)


# ---- bodies that never (fully) arrive ---------------------------------------------------------------


@pytest.mark.parametrize("sent", [0, 40], ids=["never-starts", "stops-halfway"])
def test_a_body_that_never_fully_arrives_is_recorded_as_truncated(
    server: CallbackServer, factory: PayloadFactory, sent: int
) -> None:
    with connect(server) as sock:
        sock.sendall(f"{HEAD}Content-Length: {len(BODY)}\r\n\r\n".encode() + BODY[:sent])
        started = time.monotonic()
        raw = read_until_closed(sock)
    assert time.monotonic() - started < 3, "cut off by the body deadline, not left hanging"
    assert status_of(raw) == 400
    [record] = server.wait_for(timeout=2)
    assert record.truncated
    assert record.body == BODY[:sent]
    assert not record.valid
    assert f"the body did not arrive within 0.5 s after {sent}" in str(record.error)
    assert "truncated" in record.describe()
    assert_serves(server, factory)
    assert not server.requests[-1].truncated


# ---- folded headers ---------------------------------------------------------------------------------


def test_folded_header_lines_are_joined_and_a_fold_with_nothing_to_continue_is_a_400(
    server: CallbackServer, factory: PayloadFactory
) -> None:
    with connect(server) as sock:
        sock.sendall(request_bytes(BODY, extra="X-Folded: first\r\n  second\r\n\tthird\r\n"))
        raw = sock.recv(65536)
    assert status_of(raw) == 200
    [record] = server.requests
    assert record.valid
    assert record.headers["X-Folded"] == "first second third"

    raw = read_until_closed_after(server, b"POST /voice/callback HTTP/1.1\r\n folded: first\r\n\r\n")
    assert status_of(raw) == 400, "never a 500 of our own"
    assert "folded header line with no header before it" in contract.parse_reply(body_of(raw)).errmsg
    assert server.wait_for(2)[1].reply.status_code == 400  # type: ignore[union-attr]
    server.expect_invalid()
    assert_serves(server, factory)


def read_until_closed_after(server: CallbackServer, data: bytes) -> bytes:
    with connect(server) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


# ---- a cap on open connections ----------------------------------------------------------------------


def test_connections_over_max_connections_get_an_immediate_503_and_a_close(factory: PayloadFactory) -> None:
    with CallbackServer(max_connections=3, timeout=5) as server:
        held = [connect(server) for _ in range(3)]
        started = time.monotonic()
        status, body = post(server.url, BODY)
        assert time.monotonic() - started < 1, "refused at once, not left hanging"
        assert status == 503
        reply = contract.parse_reply(body)
        assert reply.result != 0
        assert "limit of 3 open connections" in reply.errmsg
        assert server.requests == [], "a refused connection sent no request the server read"

        held.pop().close()

        def served() -> bool:
            return post(server.url, BODY)[0] == 200

        eventually(served)
        for sock in held:
            sock.close()
        assert server.wait_for(valid=True)[0].body == BODY
        assert server.max_connections == 3


def test_the_default_max_connections_is_well_under_the_descriptor_limit() -> None:
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    default = CallbackServer().max_connections
    assert 16 <= default <= 4096
    assert default <= max(soft // 2, 16)
    with pytest.raises(ValueError, match="max_connections must be a whole number at least 1"):
        CallbackServer(max_connections=0)
    with pytest.raises(ValueError, match="header_timeout must be a positive number of seconds"):
        CallbackServer(header_timeout=-1)


# ---- a thousand slow connections --------------------------------------------------------------------


def test_a_normal_sender_is_served_quickly_while_1000_slow_connections_are_held(factory: PayloadFactory) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 2200:
        if hard != resource.RLIM_INFINITY and hard < 2200:
            pytest.skip(f"needs 2,200 file descriptors, the hard limit is {hard}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (2200, hard))
    with CallbackServer(max_connections=1100, timeout=10, header_timeout=10) as server:
        slow = []
        try:
            for _ in range(1000):
                sock = connect(server)
                sock.sendall(HEAD.encode() + b"X-Slow: ")
                slow.append(sock)
            times = []
            conn = http.client.HTTPConnection(server.host, server.port, timeout=5)
            for i in range(20):  # half on fresh connections, half keep-alive
                started = time.perf_counter()
                if i % 2:
                    conn.request("POST", "/voice/callback", body=BODY)
                    response = conn.getresponse()
                    assert (response.status, json.loads(response.read())) == (200, contract.ok_reply())
                else:
                    assert post(server.url, BODY)[0] == 200
                times.append(time.perf_counter() - started)
            conn.close()
            times.sort()
            assert times[len(times) // 2] < 0.1, f"median {times[len(times) // 2] * 1000:.0f} ms"
            assert times[-1] < 2.0, f"slowest {times[-1] * 1000:.0f} ms"
            assert threading.active_count() < 200, "slow heads wait in the selector, not in threads"
        finally:
            for sock in slow:
                sock.close()
        started = time.perf_counter()  # all 1,000 closing at once must not cause an outage
        assert post(server.url, BODY)[0] == 200
        assert time.perf_counter() - started < 1.0, "served while 1,000 slow connections close"
        assert len(server.wait_for(21)) == 21
        eventually(lambda: server.aborted == 1000)
        assert threading.active_count() < 200, "their closes are answered on the accept thread"


# ---- the file-descriptor limit ----------------------------------------------------------------------

CHILD = textwrap.dedent(
    """
    import resource, sys
    from pytest_voicecb.server import CallbackServer
    server = CallbackServer(max_connections=1000, timeout=30).start()
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    print(server.port, flush=True)
    sys.stdin.readline()
    print(len(server.requests), flush=True)
    """
)


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as file:
        fields = file.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads CPU time from /proc")
def test_at_the_descriptor_limit_the_accept_loop_waits_instead_of_spinning(factory: PayloadFactory) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", CHILD]
    held: list[socket.socket] = []
    with subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env) as child:
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            serve_at_the_limit(child, held)
        finally:
            for sock in held:
                sock.close()
            child.kill()


def serve_at_the_limit(child: subprocess.Popen[str], held: list[socket.socket]) -> None:
    assert child.stdin is not None
    assert child.stdout is not None
    port = int(child.stdout.readline())
    for _ in range(90):  # more than the 64 descriptors the server may open
        held.append(socket.create_connection(("127.0.0.1", port), timeout=5))
    eventually(lambda: len(os.listdir(f"/proc/{child.pid}/fd")) >= 60)  # at the limit
    before = cpu_seconds(child.pid)
    time.sleep(1.0)
    spent = cpu_seconds(child.pid) - before
    assert spent < 0.3, f"the server used {spent:.2f} s of CPU in 1 s at the limit: it spins"

    for sock in held:
        sock.close()
    held.clear()
    started = time.monotonic()
    status, _ = post(f"http://127.0.0.1:{port}/voice/callback", BODY, timeout=5)
    assert status == 200
    assert time.monotonic() - started < 2, "served once descriptors are free again"
    child.stdin.write("\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "1"
