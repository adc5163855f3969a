"""``voicecb check`` and ``send`` on the client's total deadline and the suite's warnings: a trickling handler
times out, a lenient one warns, kinds go to their own paths, secrets stay out of the output."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from pytest_voicecb.server import CallbackServer
from tests.handlers.flask_app import create_app as handler_app
from tests.handlers.serve import serving
from tests.test_cli import PATH, assert_one_line_error, free_port, voicecb

OK_REPLY = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 26\r\n\r\n{"result":0,"errmsg":"OK"}'


@contextmanager
def trickling(every: float = 0.2) -> Iterator[str]:
    """A handler that reads the request, then answers a correct reply one byte every ``every`` seconds."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.05)
    stop = threading.Event()

    def answer(conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5)
            try:
                data = b""
                while b"\r\n\r\n" not in data:
                    data += conn.recv(65536)
                for byte in OK_REPLY:
                    if stop.wait(every):
                        return
                    conn.sendall(bytes([byte]))
            except OSError:
                return  # the client gave up: what the test wants

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=answer, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}{PATH}"
    finally:
        stop.set()
        listener.close()
        thread.join(5)


def test_send_timeout_bounds_the_whole_delivery_of_a_trickling_reply() -> None:
    """The defect: one byte a second made ``send --timeout 2`` wait 26 s and then say ``verdict: ok``."""
    with trickling() as url:
        began = time.monotonic()
        proc = voicecb("send", url, "--timeout", "1")
        elapsed = time.monotonic() - began
    assert_one_line_error(proc, "no reply", "1 s")
    assert "verdict: ok" not in proc.stdout
    assert elapsed < 4, f"took {elapsed:.1f} s"


def test_check_timeout_bounds_each_delivery_of_a_trickling_reply() -> None:
    """The defect: ``check --timeout 2 --deadline 1`` against a trickling handler hung until killed at 120 s."""
    with trickling() as url:
        began = time.monotonic()
        proc = voicecb("check", url, "--timeout", "1", "--deadline", "0.5")
        elapsed = time.monotonic() - began
    assert_one_line_error(proc, "no reply", "1 s")
    assert elapsed < 4, f"took {elapsed:.1f} s"


@pytest.fixture(scope="module")
def lenient_url() -> Iterator[str]:
    """A handler that acknowledges any object under a known key: the suite warns about it, fails it only if strict."""
    with serving(handler_app("lenient")) as base:
        yield base + PATH


def test_check_shows_warnings_and_passes_unless_strict(lenient_url: str) -> None:
    proc = voicecb("check", lenient_url, "--skip", "valid/*", "--skip", "duplicate*", "--skip", "sibling/*")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert any(line.startswith("WARN") for line in proc.stdout.splitlines()), proc.stdout
    assert proc.stdout.strip().splitlines()[-1].startswith("PASSED with warnings")
    strict = voicecb("check", lenient_url, "--strict", "--skip", "valid/*", "--skip", "duplicate*")
    assert strict.returncode == 1, strict.stdout
    assert strict.stdout.strip().splitlines()[-1].startswith("FAILED")


def test_send_shows_a_warning_verdict(lenient_url: str) -> None:
    proc = voicecb("send", lenient_url, "--unset", "fee")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith("verdict: ok with a WARNING: "), last
    assert "--strict makes it a failure" in last
    strict = voicecb("send", lenient_url, "--unset", "fee", "--strict")
    assert strict.returncode == 1
    assert strict.stdout.strip().splitlines()[-1].startswith("verdict: FAILED")


def test_check_path_for_posts_a_kind_to_its_own_path() -> None:
    with CallbackServer() as server:
        proc = voicecb(
            "check",
            server.url,
            "--path-for",
            "keypress=/voice/keys",
            "--path-for",
            "voice_failure_callback=/voice/failures",
            "--skip",
            "robust/*",
            "--skip",
            "reject/*",
        )
        server.expect_invalid()
        recorded = server.requests
    assert proc.returncode == 0, proc.stdout + proc.stderr
    paths = {(r.kind, r.path) for r in recorded if r.kind is not None}
    assert ("voicekey_callback", "/voice/keys") in paths
    assert ("voice_failure_callback", "/voice/failures") in paths
    assert ("voiceprompt_callback", PATH) in paths
    assert not {path for kind, path in paths if kind == "voicekey_callback"} - {"/voice/keys"}


@pytest.mark.parametrize("value", ["sms=/x", "keypress", "keypress=no-slash"])
def test_check_path_for_needs_a_kind_and_a_path(value: str) -> None:
    assert_one_line_error(voicecb("check", "http://127.0.0.1:1/x", "--path-for", value), "--path-for")


def test_send_bad_header_is_exit_2() -> None:
    assert_one_line_error(voicecb("send", "http://127.0.0.1:1/x", "-H", "no colon"), "-H")


def test_secrets_are_redacted_unless_asked_for() -> None:
    with serving(handler_app("crash-on-bad-json")) as base:
        url = base.replace("http://", "http://someone:hunter2@") + PATH
        args = ("send", url, "--case", "envelope/empty-body", "-H", "Authorization: Bearer s3cr3t-token")
        hidden = voicecb(*args)
        shown = voicecb(*args, "--show-secrets")
    assert hidden.returncode == shown.returncode == 1, hidden.stdout + hidden.stderr
    assert "hunter2" not in hidden.stdout + hidden.stderr
    assert "s3cr3t-token" not in hidden.stdout + hidden.stderr
    assert "<redacted>" in hidden.stdout
    assert "s3cr3t-token" in shown.stdout
    refused = voicecb("check", f"http://someone:hunter2@127.0.0.1:{free_port()}{PATH}")
    assert_one_line_error(refused, "connection refused")
    assert "hunter2" not in refused.stderr
