"""Messages for the person whose test failed: the user's own line in tracebacks, nothing raw from the network."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from pytest_voicecb.assertions import assert_reply_ok
from pytest_voicecb.client import CallbackClient, DeliveryError

ESCAPES = ("\x1b", "\x9b", "\x07", "\r")


@contextmanager
def answering(raw: bytes) -> Iterator[str]:
    """A server answering every request with ``raw`` bytes, then closing."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while True:
            conn, _ = listener.accept()
            with conn:
                if stop.is_set():
                    return
                conn.recv(65536)
                conn.sendall(raw)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}/cb"
    finally:
        stop.set()
        socket.create_connection(listener.getsockname(), timeout=5).close()
        thread.join(5)
        listener.close()


def assert_no_escapes(message: str) -> None:
    for char in ESCAPES:
        assert char not in message, f"{char!r} reached the terminal: {message!r}"


def test_a_hostile_reply_is_escaped_in_the_failure_message() -> None:
    body = b'{"result": "\x1b[2J\x1b]0;pwned\x07", "errmsg": "\xc2\x9b31m"}'
    raw = (
        b"HTTP/1.1 500 \x1b[31mFAKE\r\nContent-Type: text/\x1b[32mjson\r\nContent-Length: %d\r\n"
        b"Connection: close\r\n\r\n" % len(body)
    ) + body
    with answering(raw) as url, CallbackClient(url, timeout=2) as client:
        reply = client.post({})
    with pytest.raises(AssertionError) as caught:
        assert_reply_ok(reply)
    message = str(caught.value)
    assert_no_escapes(message)
    assert "\\x1b[2J" in message


def test_a_reply_that_is_not_http_is_escaped_in_the_delivery_error() -> None:
    garbage = b"\x1b[2J\x1b[31mSSH-2.0-OpenSSH\r\n\r\n"
    with (
        answering(garbage) as url,
        CallbackClient(url, timeout=2) as client,
        pytest.raises(DeliveryError, match="the reply is not HTTP") as caught,
    ):
        client.post({})
    assert_no_escapes(str(caught.value))
    assert "\\x1b[31mSSH" in str(caught.value)


def test_what_an_in_process_app_logged_is_escaped() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        environ["wsgi.errors"].write("logged \x1b]0;title\x07\n")
        raise RuntimeError("bad \x1b[31mred\x1b[0m \x9b2J")

    with CallbackClient(app) as client:
        reply = client.post({})
    assert reply.status == 500
    with pytest.raises(AssertionError) as caught:
        assert_reply_ok(reply)
    assert_no_escapes(str(caught.value))
    assert "RuntimeError: bad \\x1b[31mred" in str(caught.value)
    assert "logged \\x1b]0;title\\x07" in str(caught.value)


def test_a_delivery_error_points_at_the_users_line_not_at_our_internals(pytester: pytest.Pytester) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    pytester.makepyfile(
        f"""
        from flask import Flask
        from pytest_voicecb.client import CallbackClient

        hung = Flask("hung")

        @hung.post("/voice/callback")
        def never():
            import threading
            threading.Event().wait(5)

        def test_unreachable():
            client = CallbackClient("http://127.0.0.1:{port}/cb", timeout=2)
            client.post({{}})  # THE USER'S LINE

        def test_hung_in_process():
            client = CallbackClient(hung, timeout=0.2)
            client.post({{}})  # THE USER'S OTHER LINE

        def test_concurrent_garbage():
            client = CallbackClient("http://127.0.0.1:{port}/cb", timeout=2)
            client.post_concurrently([object()])  # A BAD ITEM
        """
    )
    result = pytester.runpytest("-p", "no:randomly", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)
    output = result.stdout.str()
    assert "client.post({})  # THE USER'S LINE" in output
    assert "client.post({})  # THE USER'S OTHER LINE" in output
    assert "DeliveryError: no reply from http://127.0.0.1" in output
    for internal in ("_transports.py:", "pytest_voicecb/client.py:", "def deliver(", "def post("):
        assert internal not in output, f"{internal} shown in the traceback:\n{output}"


def test_headers_http_cannot_carry_are_refused_clearly_and_secrets_stay_hidden() -> None:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"result": 0, "errmsg": "OK"}']

    with CallbackClient(app) as client:
        with pytest.raises(ValueError, match="holds a line break or NUL"):
            client.post({}, headers={"X-Injected": "a\r\nSet-Cookie: x=1"})
        with pytest.raises(ValueError, match="beyond latin-1") as caught:
            client.post({}, headers={"Authorization": "Bearer 秘密"})
        assert "秘密" not in str(caught.value)
        with pytest.raises(ValueError, match="not an HTTP token"):
            client.post({}, headers={"Bad Name": "x"})
        with pytest.raises(ValueError, match="line break"):
            client.post({}, content_type="application/json\r\nX: y")
        assert client.post({}, headers={"X-Latin": "café"}).status == 200  # latin-1 is fine
