"""HTTPS on the recording server: a test CA's certificate, clients that trust only ``ca_path``, a wrong CA
refused with its fix, a silent client that stalls nobody, and the fixture over HTTPS as users run it."""

from __future__ import annotations

import json
import os
import socket
import ssl
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import trustme

from pytest_voicecb import _tls
from pytest_voicecb.client import CallbackClient, DeliveryError
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.server import CallbackServer

pytest_plugins = ["pytester"]

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


@pytest.fixture(scope="module")
def server() -> Iterator[CallbackServer]:
    with CallbackServer(tls=True, header_timeout=0.5) as running:
        yield running


@pytest.fixture(autouse=True)
def _fresh(server: CallbackServer) -> None:
    server.reset()


def payload() -> dict[str, object]:
    return PayloadFactory(3).answered()


def test_the_server_serves_https_with_a_ca_clients_trust_alone(server: CallbackServer) -> None:
    assert server.url.startswith("https://127.0.0.1:")
    assert server.ca_path is not None
    assert Path(server.ca_path).read_text().startswith("-----BEGIN CERTIFICATE-----")
    with CallbackClient(server.url, cacert=server.ca_path) as client:
        replies = [client.post(payload()) for _ in range(3)]  # one keep-alive TLS connection
    assert [reply.status for reply in replies] == [200, 200, 200]
    assert json.loads(replies[0].body) == {"result": 0, "errmsg": "OK"}
    assert [record.valid for record in server.wait_for(3)] == [True, True, True]


def test_python_http_clients_trust_it_through_the_usual_variables(
    server: CallbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert server.ca_path is not None
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", server.ca_path)
    assert requests.post(server.url, json=payload(), timeout=10).json() == {"result": 0, "errmsg": "OK"}
    monkeypatch.setenv("SSL_CERT_FILE", server.ca_path)
    request = urllib.request.Request(server.url, data=json.dumps(payload()).encode(), method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200
    assert len(server.wait_for(2)) == 2


def test_a_wrong_ca_is_refused_with_the_host_and_the_option_that_fixes_it(
    server: CallbackServer, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    for options in ({"cacert": str(other)}, {}):  # another CA, and the system's CAs
        with CallbackClient(server.url, **options) as client, pytest.raises(DeliveryError) as caught:
            client.post(payload())
        reason = caught.value.reason
        assert f"the TLS certificate of 127.0.0.1:{server.port} is not trusted" in reason
        assert "--cacert FILE" in reason
        assert "cacert=FILE" in reason
    assert server.requests == []


def test_insecure_skips_verification_when_asked_in_so_many_words(server: CallbackServer) -> None:
    with CallbackClient(server.url, insecure=True) as client:
        assert client.post(payload()).status == 200


def test_a_missing_ca_file_is_a_clear_error(server: CallbackServer, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no such file"):
        CallbackClient(server.url, cacert=tmp_path / "nowhere.pem")


def test_a_client_that_connects_and_sends_nothing_stalls_no_other_connection(server: CallbackServer) -> None:
    silent = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
    try:
        with CallbackClient(server.url, cacert=server.ca_path) as client:
            assert client.post(payload()).status == 200
    finally:
        for sock in silent:
            sock.close()
    assert len(server.requests) == 1


def test_a_handshake_that_stalls_is_cut_at_header_timeout_and_counted(server: CallbackServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port)) as stalled:
        stalled.sendall(b"\x16\x03\x01\x00\xff")  # a ClientHello's record header, then nothing
        stalled.settimeout(10)
        assert stalled.recv(100) == b""  # closed by the server after header_timeout (0.5 s)
    server_ok = CallbackClient(server.url, cacert=server.ca_path)
    with server_ok:
        assert server_ok.post(payload()).status == 200
    assert server.aborted == 1


def test_plain_http_on_the_https_port_is_answered_saying_so(server: CallbackServer) -> None:
    with CallbackClient(server.url.replace("https://", "http://")) as client:
        reply = client.post(payload())
    assert reply.status == 400
    assert "speaks HTTPS: use an https:// URL" in json.loads(reply.body)["errmsg"]
    assert server.requests == []


def test_your_own_server_context_is_used_as_given(tmp_path: Path) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    with CallbackServer(tls=context) as own, CallbackClient(own.url, cacert=tmp_path / "ca.pem") as client:
        assert own.ca_path is None
        assert client.post(payload()).status == 200


def test_without_trustme_tls_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tls, "_ca", None)
    monkeypatch.setitem(sys.modules, "trustme", None)
    with pytest.raises(ImportError, match=r"pip install 'pytest-voicecb\[tls\]'"):
        CallbackServer(tls=True).start()


def test_a_relay_posts_to_voicecb_server_over_https(pytester: pytest.Pytester) -> None:
    """The example relay (``http.client`` with the default context) against the HTTPS fixture, trusting
    only ``ca_path`` through ``SSL_CERT_FILE``; and ``voicecb_server_factory(tls=True)``."""
    pytester.syspathinsert(EXAMPLES)
    pytester.makeini("[pytest]\nvoicecb_server_tls = true\n")
    pytester.makepyfile(
        """
        from relay.relay import Relay


        def test_relay(voicecb_server, voicecb_payload, monkeypatch):
            assert voicecb_server.url.startswith("https://")
            monkeypatch.setenv("SSL_CERT_FILE", voicecb_server.ca_path)
            relay = Relay(lambda kind, fields: [], attempts=1, backoff=0.01, timeout=5.0)
            body = voicecb_payload.body(voicecb_payload.answered())
            delivery = relay.deliver(voicecb_server.url, body)
            assert delivery.ok, delivery
            (record,) = voicecb_server.wait_for(1)
            assert record.body == body


        def test_factory(voicecb_server_factory, voicecb_payload, monkeypatch):
            server = voicecb_server_factory(tls=True, path="/hooks/voice")
            assert server.url.startswith("https://") and server.url.endswith("/hooks/voice")
            monkeypatch.setenv("SSL_CERT_FILE", server.ca_path)
            relay = Relay(lambda kind, fields: [], attempts=1, backoff=0.01, timeout=5.0)
            assert relay.deliver(server.url, voicecb_payload.body(voicecb_payload.keypress())).ok
            server.wait_for(1, kind="keypress")


        def test_without_the_ca_the_relay_cannot_deliver(voicecb_server, voicecb_payload):
            relay = Relay(lambda kind, fields: [], attempts=1, backoff=0.01, timeout=5.0)
            delivery = relay.deliver(voicecb_server.url, voicecb_payload.body(voicecb_payload.answered()))
            assert not delivery.ok
            assert "CERTIFICATE_VERIFY_FAILED" in delivery.error
        """
    )
    env_file = os.environ.get("SSL_CERT_FILE")
    assert env_file is None or "voicecb-ca" not in env_file
    result = pytester.runpytest("-p", "no:randomly")
    result.assert_outcomes(passed=3)


def test_a_quiet_keep_alive_tls_connection_is_served_again_after_waiting_in_the_selector(
    server: CallbackServer,
) -> None:
    """A worker hands a connection quiet for 0.25 s back to the selector; over TLS its next request is
    still read there and answered."""
    context = ssl.create_default_context(cafile=server.ca_path)
    body = json.dumps(payload()).encode()
    head = f"POST /voice/callback HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    raw = socket.create_connection(("127.0.0.1", server.port))
    with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        tls.settimeout(10)
        for _ in range(2):
            tls.sendall(head + body)
            reply = b""
            while not reply.endswith(b'"errmsg":"OK"}'):
                chunk = tls.recv(65536)
                assert chunk, reply
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200")
            threading.Event().wait(0.5)  # past the keep-alive grace: back in the selector
    assert len(server.wait_for(2)) == 2


def test_a_tls_body_that_stalls_is_cut_at_timeout_and_recorded_truncated() -> None:
    """Deadlines hold inside TLS: a read past its time must end (a kernel receive timeout under OpenSSL
    would be retried for ever), so the stalled body is answered 400 and recorded as truncated."""
    with CallbackServer(tls=True, timeout=0.5) as stalling:
        context = ssl.create_default_context(cafile=stalling.ca_path)
        raw = socket.create_connection(("127.0.0.1", stalling.port))
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.settimeout(20)
            tls.sendall(b"POST /voice/callback HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"{" * 10)
            reply = tls.recv(65536)
        assert reply.startswith(b"HTTP/1.1 400"), reply
        (record,) = stalling.wait_for(1)
        assert record.truncated
        assert record.body == b"{" * 10
