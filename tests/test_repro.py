"""Reproducers: the printed curl command sends exactly the same bytes, hides credentials, and pastes as is.

Every command is run with ``bash -c`` against a real recording server on loopback, and the body the
server received is compared byte for byte with what the client sent.
"""

from __future__ import annotations

import random
import subprocess
from collections.abc import Iterator

import pytest
from werkzeug.datastructures import Headers

from pytest_voicecb import repro
from pytest_voicecb.assertions import assert_reply_ok, explain
from pytest_voicecb.client import CallbackClient, DeliveryError, SentRequest, TargetError, describe_target
from pytest_voicecb.errors import REPRODUCE
from pytest_voicecb.server import CallbackServer

SECRETS = {"Authorization": "Bearer tok-AUTH-1", "Cookie": "session=tok-COOKIE-2", "Proxy-Authorization": "tok-PROXY-3"}


@pytest.fixture(scope="module")
def server() -> Iterator[CallbackServer]:
    with CallbackServer() as running:
        yield running


@pytest.fixture
def recorder(server: CallbackServer) -> CallbackServer:
    server.reset()
    return server


def run(command: str) -> subprocess.CompletedProcess[bytes]:
    done = subprocess.run(["bash", "-c", command], capture_output=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    return done


def pasted(message: str) -> str:
    """What a reader copies from a message: everything after the ``reproduce (paste as is):`` line."""
    lines = message.splitlines()
    return "\n".join(lines[lines.index(REPRODUCE) + 1 :])


BODIES = {
    "every-byte-value": bytes(range(256)),
    "every-byte-value-twice-reversed": bytes(range(255, -1, -1)) * 2,
    "binary-starting-with-dash-n": b"-n\x00\xff-e\n",
    "text-starting-with-dash": b"-n -e --data x",
    "quote-percent-backslash-newlines-utf8": "it's 100% \\ \\n \n\n line\r\n \t 中文 é \u202e".encode(),
    "trailing-newlines": b'{"a": 1}\n\n',
    "at-sign": b"@/etc/passwd",
    "random-64-kib": random.Random(9).randbytes(64 * 1024),
    "empty": b"",
    "nul-only": b"\x00",
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_the_curl_command_sends_the_same_bytes(recorder: CallbackServer, body: bytes) -> None:
    with CallbackClient(recorder.url) as client:
        reply = client.post(body, content_type="application/octet-stream")
    command = reply.curl()
    assert "@body.bin" not in command
    run(command)
    sent, replayed = recorder.wait_for(2, timeout=5)
    assert sent.body == body
    assert replayed.body == body
    assert replayed.headers.get("Content-Type") == "application/octet-stream"


def test_a_body_starting_with_dash_goes_through_printf_without_an_option_error() -> None:
    request = SentRequest("POST", "http://127.0.0.1:9/cb", Headers(), b"-n\xff")
    command = repro.curl(request)
    assert command.startswith("printf '\\055n\\377' | curl ")


def test_a_failure_message_pastes_as_is(recorder: CallbackServer) -> None:
    body = b'{"callid": "a\nb\'c"}\n  indented line\n'
    recorder.reply_with(1, "no")
    with CallbackClient(recorder.url) as client:
        reply = client.post(body)
    with pytest.raises(AssertionError) as caught:
        assert_reply_ok(reply)
    command = pasted(str(caught.value))
    assert command == reply.curl()
    run(command)
    assert [record.body for record in recorder.wait_for(2, timeout=5)] == [body, body]


def test_a_delivery_error_pastes_as_is(recorder: CallbackServer) -> None:
    body = b"line one\n line two with a leading space\n"
    request = SentRequest("POST", recorder.url, Headers({"Content-Type": "text/plain"}), body)
    error = DeliveryError(request, "connection refused")
    message = str(error)
    assert "\n" + REPRODUCE + "\n" in message
    run(pasted(message))
    assert recorder.wait_for(1, timeout=5)[0].body == body


def test_credentials_are_redacted_by_default_and_shown_on_request(recorder: CallbackServer) -> None:
    with CallbackClient(recorder.url) as client:
        reply = client.post({}, headers=SECRETS)
    received = recorder.wait_for(1, timeout=5)[0]
    assert all(received.headers[name] == value for name, value in SECRETS.items())  # sent in full
    shown = [reply.curl(), explain(reply, "headline"), str(DeliveryError(reply.request, "refused"))]
    for text in shown:
        assert "tok-" not in text
        assert text.count(repro.REDACTED) == 3
    assert all(value in reply.curl(redact=False) for value in SECRETS.values())
    with CallbackClient(recorder.url, redact=False) as client:
        unredacted = client.post({}, headers=SECRETS)
    assert all(value in unredacted.curl() for value in SECRETS.values())
    assert all(value in explain(unredacted, "headline") for value in SECRETS.values())


def test_url_credentials_are_sent_as_basic_auth_and_never_shown(recorder: CallbackServer) -> None:
    url = recorder.url.replace("http://", "http://ann:pa%3Ass@")
    with CallbackClient(url) as client:
        reply = client.post({})
        assert "pa%3Ass" not in repr(client)
        assert "pa%3Ass" not in client.url
    assert recorder.wait_for(1, timeout=5)[0].headers["Authorization"] == "Basic YW5uOnBhOnNz"  # ann:pa:ss
    assert "Basic" not in reply.curl()
    assert "Basic YW5uOnBhOnNz" in reply.curl(redact=False)
    assert describe_target(url) == url.replace("ann:pa%3Ass@", "<redacted>@")
    with pytest.raises(TargetError) as caught:
        CallbackClient("http://ann:s3cret@127.0.0.1:99999/x")
    assert "s3cret" not in str(caught.value)
    assert repro.redact_url("http://u@h/") == "http://<redacted>@h/"
    assert repro.redact_url("http://[::1") == "http://[::1"  # unparseable: as is


def test_unprintable_header_values_are_quoted_for_bash(recorder: CallbackServer) -> None:
    request = SentRequest("POST", recorder.url, Headers({"X-Odd": "a\x1bb\u00a0c'd", "X-Empty": ""}), b"{}")
    command = repro.curl(request)
    assert "\x1b" not in command
    run(command)
    received = recorder.wait_for(1, timeout=5)[0]
    assert received.headers["X-Odd"] == "a\x1bb\u00a0c'd"  # the bytes http.client sends: latin-1
    assert received.headers["X-Empty"] == ""
