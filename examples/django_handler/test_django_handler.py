"""The Django view through the project's WSGI application: routing, the view, the shared logic."""

from __future__ import annotations

from collections.abc import Callable

from pytest_voicecb import CallbackClient, PayloadFactory, Report, assert_reply_error, assert_reply_ok


def test_a_keypress_is_acknowledged(voicecb_client: CallbackClient, voicecb_payload: PayloadFactory) -> None:
    assert_reply_ok(voicecb_client.post(voicecb_payload.keypress(keypress="2")))


def test_a_duplicate_is_stored_once(voicecb_client: CallbackClient, voicecb_payload: PayloadFactory) -> None:
    from django_handler.views import STORE

    payload = voicecb_payload.code()
    before = len(STORE)
    for _ in range(3):
        assert_reply_ok(voicecb_client.post(payload))
    assert len(STORE) == before + 1


def test_a_large_body_gets_json_not_djangos_html_400(voicecb_client: CallbackClient) -> None:
    reply = voicecb_client.post(b"{" + b" " * 100_000 + b"}")
    assert reply.status == 413
    assert_reply_error(reply, errmsg="limit")


def test_no_csrf_token_is_needed(voicecb_client: CallbackClient, voicecb_payload: PayloadFactory) -> None:
    reply = voicecb_client.post(voicecb_payload.answered(), headers={"Cookie": "csrftoken=abc"})
    assert_reply_ok(reply)


def test_the_view_conforms(voicecb_conformance: Callable[..., Report]) -> None:
    voicecb_conformance()
