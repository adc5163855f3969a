"""The Flask handler against the provider's contract: a few behaviours spelled out, then the whole suite."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from werkzeug.serving import make_server

from pytest_voicecb import CallbackClient, PayloadFactory, Report, assert_reply_error, assert_reply_ok


def test_an_answered_call_is_acknowledged(voicecb_client: CallbackClient, voicecb_payload: PayloadFactory) -> None:
    assert_reply_ok(voicecb_client.post(voicecb_payload.answered()))


@pytest.mark.parametrize("kind", ["prompt", "code", "keypress", "failure"])
def test_every_kind_is_acknowledged_at_the_same_url(
    kind: str, voicecb_client: CallbackClient, voicecb_payload: PayloadFactory
) -> None:
    payload = getattr(voicecb_payload, kind)()
    assert_reply_ok(voicecb_client.post(payload))


def test_a_duplicate_is_acknowledged_but_processed_once(
    app: Flask, voicecb_client: CallbackClient, voicecb_payload: PayloadFactory
) -> None:
    payload = voicecb_payload.failure(failure_code=8)
    assert_reply_ok(voicecb_client.post(payload))
    assert_reply_ok(voicecb_client.post(payload))
    store = app.extensions["voice_callbacks"]
    assert len(store) == 1
    assert store.get("voice_failure_callback", payload["voice_failure_callback"]["callid"])["failure_code"] == 8


def test_the_body_is_read_whatever_the_content_type(
    voicecb_client: CallbackClient, voicecb_payload: PayloadFactory
) -> None:
    reply = voicecb_client.post(voicecb_payload.unanswered(), content_type="text/plain")
    assert_reply_ok(reply)


def test_a_form_encoded_body_gets_a_contract_error(voicecb_client: CallbackClient) -> None:
    reply = voicecb_client.post(b"result=0&callid=1", content_type="application/x-www-form-urlencoded")
    assert_reply_error(reply, result=1, errmsg="not a UTF-8 JSON document")


def test_the_handler_conforms(voicecb_conformance: Callable[..., Report]) -> None:
    """Every rule of the contract, in-process, in the strict profile (questionable input is rejected too).

    On failure the test's message is the report's table: each failed check, why, and a curl command.
    """
    voicecb_conformance(strict=True)


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """The same app served over real HTTP on loopback, as ``flask run`` would serve it."""
    import threading

    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.port}/voice/callback"
    server.shutdown()
    server.server_close()


def test_the_handler_conforms_over_http(voicecb_conformance: Callable[..., Report], live_url: str) -> None:
    """What ``voicecb check URL`` runs, from a test: the suite against a live URL."""
    report = voicecb_conformance(live_url, deadline=1.0)
    assert len(report.results) > 100
