"""What ``voicecb`` prints: serve never waits on its stdout, nothing from the network reaches the terminal raw,
and the rough edges a new user found (one message said once, JSON alone on stdout, typos caught)."""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pytest_voicecb import PayloadFactory
from tests.handlers.flask_app import create_app as handler_app
from tests.handlers.serve import serving
from tests.test_cli import PATH, ROOT, assert_one_line_error, post, served, voicecb

F_SETPIPE_SZ = 1031  # Linux: shrink a pipe, so a reader that stops reading blocks the writer sooner


def start_serve(*args: str, stdout: int, port: int = 0) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "pytest_voicecb", "serve", "--port", str(port), *args],
        stdout=stdout,
        stderr=subprocess.PIPE,
        cwd=ROOT,
    )


def first_line(fd: int, timeout: float = 15) -> str:
    """Read one line from ``fd`` byte by byte (no buffering: nothing after it is consumed)."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        assert time.monotonic() < deadline, f"no line within {timeout} s: {data!r}"
        chunk = os.read(fd, 1)
        assert chunk, f"the stream ended: {data!r}"
        data += chunk
    return data.decode()


def port_of(listening: str) -> int:
    assert listening.startswith("listening on "), listening
    return int(listening.split()[2].rstrip(",").split(":")[2].split("/")[0])


def post_many(port: int, bodies: list[bytes], timeout: float) -> list[int]:
    """Post each body on one keep-alive connection; any reply slower than ``timeout`` fails the test."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    statuses = []
    try:
        for body in bodies:
            conn.request("POST", PATH, body, {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            statuses.append(response.status)
    finally:
        conn.close()
    return statuses


def test_a_reader_that_stops_reading_never_holds_up_a_reply() -> None:
    """The defect: every print happened under one lock, so a full stdout pipe froze the whole server."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(read_end, F_SETPIPE_SZ, 4096)
    proc = start_serve(stdout=write_end)
    os.close(write_end)
    try:
        port = port_of(first_line(read_end))
        factory = PayloadFactory(8)
        bodies = [factory.body(p) for p in factory.batch(400)]  # ~40 lines fill the pipe; nobody reads on
        began = time.monotonic()
        assert post_many(port, bodies, timeout=1.0) == [200] * len(bodies)
        assert time.monotonic() - began < 10
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        assert proc.stderr is not None
        stderr = proc.stderr.read().decode()
        assert "stopped after 400 callbacks" in stderr
        assert "printed lines dropped (stdout is not being read)" in stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        os.close(read_end)
        if proc.stderr is not None:
            proc.stderr.close()


@pytest.mark.skipif(not shutil.which("stdbuf") or not shutil.which("head"), reason="needs coreutils' stdbuf and head")
def test_serve_piped_into_head_keeps_answering_and_exits_0() -> None:
    """The defect: after ``| head -2`` exited, every callback got a 500 after being logged as 200."""
    serve = start_serve(stdout=subprocess.PIPE)
    assert serve.stdout is not None
    # stdbuf -oL: head passes each line on at once, so the port can be read from what it prints.
    head = subprocess.Popen(["stdbuf", "-oL", "head", "-2"], stdin=serve.stdout, stdout=subprocess.PIPE)
    serve.stdout.close()  # head holds the only reader now
    try:
        assert head.stdout is not None
        port = port_of(first_line(head.stdout.fileno()))
        factory = PayloadFactory(2)
        bodies = [factory.body(p) for p in factory.batch(6)]
        assert post_many(port, bodies[:1], timeout=5) == [200]
        assert head.wait(timeout=10) == 0  # it read its two lines and left
        assert post_many(port, bodies[1:], timeout=5) == [200] * 5
        serve.send_signal(signal.SIGTERM)
        assert serve.wait(timeout=10) == 0
        assert serve.stderr is not None
        stderr = serve.stderr.read().decode()
        assert stderr.count("stdout was closed; callbacks are still answered") == 1, stderr
        assert "stopped after 6 callbacks" in stderr
        assert "Traceback" not in stderr
    finally:
        for proc in (serve, head):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
            for pipe in (proc.stdout, proc.stderr):
                if pipe is not None:
                    pipe.close()


def test_a_callid_with_a_newline_and_escape_sequences_cannot_forge_a_line() -> None:
    forged = "x\x1b[2J\n12:00:00.000  prompt   forged 0    valid  -> 200\x1b]0;owned\x07"
    factory = PayloadFactory(6)
    valid = factory.answered(callid=forged)
    invalid = factory.answered(callid=forged, fee=forged)
    with served() as server:
        assert post(server.port, factory.body(valid))[0] == 200
        assert post(server.port, factory.body(invalid))[0] == 200
        server.wait_for_line("INVALID")
        code, _ = server.stop()
    assert code == 0
    text = "\n".join(server.lines)
    assert "\x1b" not in text
    assert "\x07" not in text
    assert len(server.lines) == 4, server.lines  # listening, two callbacks, stopped
    assert not any(line.startswith("12:00:00.000") for line in server.lines)
    assert "x\\x1b[2J\\n12:00:00.000" in server.lines[1]


@contextmanager
def raw_http(reply: bytes) -> Iterator[str]:
    """A server on loopback that answers every request with the bytes ``reply``, whatever they are."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)  # so the loop sees ``stop`` soon
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(2)
                data = b""
                try:
                    while b"\r\n\r\n" not in data:
                        data += conn.recv(65536)
                    length = int(data.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                    while len(data.split(b"\r\n\r\n", 1)[1]) < length:
                        data += conn.recv(65536)
                    conn.sendall(reply)
                except (OSError, IndexError, ValueError):
                    pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{PATH}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_send_escapes_what_a_hostile_server_answers() -> None:
    body = b"\x1b[2J\x1b]0;owned\x07<h1>hi</h1>\r\nverdict: ok (forged)"
    reply = (
        b"HTTP/1.1 200 \x1b[31mOK\r\nContent-Type: text/html\x1b[0m\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\nConnection: close\r\n\r\n"
        + body
    )
    with raw_http(reply) as url:
        proc = voicecb("send", url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    assert "\x07" not in proc.stdout + proc.stderr
    assert "\\x1b[2J" in proc.stdout
    assert not any(line.startswith("verdict: ok") for line in proc.stdout.splitlines())


def test_send_escapes_a_broken_status_line_in_its_error() -> None:
    with raw_http(b"HTTP/1.1 2\x1b[31m00 OK\r\n\r\n") as url:
        proc = voicecb("send", url)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "\x1b" not in proc.stdout + proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# ---- rough edges --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def handler_url() -> Iterator[str]:
    with serving(handler_app()) as base:
        yield base + PATH


def test_check_json_dash_prints_only_json_on_stdout(handler_url: str) -> None:
    proc = voicecb("check", handler_url, "--json", "-", "--skip", "robust/*", "--skip", "reject/*")
    assert proc.returncode in (0, 1), proc.stderr
    report = json.loads(proc.stdout)
    assert report["results"]
    assert "PASSED" in proc.stderr or "FAILED" in proc.stderr


def test_send_warns_about_an_unknown_field_and_suggests_the_right_one(handler_url: str) -> None:
    proc = voicecb("send", handler_url, "--set", "calid=abc", "--set", "extra_thing=1")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    warnings = proc.stderr.strip().splitlines()
    assert len(warnings) == 2, proc.stderr
    assert "no field 'calid'" in warnings[0]
    assert "did you mean 'callid'?" in warnings[0]
    assert "no field 'extra_thing'" in warnings[1]
    assert "did you mean" not in warnings[1]


def test_send_says_a_failure_once() -> None:
    with serving(handler_app("crash-on-bad-json")) as base:
        proc = voicecb("send", base + PATH, "--case", "envelope/empty-body")
    assert proc.returncode == 1
    assert proc.stdout.count("expected an error reply: CONTRACT.md rule 2") == 1, proc.stdout


def test_a_url_without_a_scheme_is_http(handler_url: str) -> None:
    proc = voicecb("send", handler_url.removeprefix("http://"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip().splitlines()[-1].startswith("verdict: ok")


def test_the_busy_port_message_is_said_once() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        line = assert_one_line_error(voicecb("serve", "--port", str(port)), f"127.0.0.1:{port}", "in use")
    assert line.count("cannot listen") == 1, line
    assert line.count(str(port)) == 1, line


@pytest.mark.parametrize("command", [(), ("check",), ("send",), ("serve",)], ids=["voicecb", "check", "send", "serve"])
def test_every_help_documents_exit_status_2(command: tuple[str, ...]) -> None:
    proc = voicecb(*command, "--help")
    assert proc.returncode == 0
    status = proc.stdout.split("exit status:")[1]
    assert "2 usage" in " ".join(status.split())
