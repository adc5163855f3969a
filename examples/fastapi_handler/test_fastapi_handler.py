"""The FastAPI handler conforms; the naive pydantic-model version does not, and the suite says why."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import FastAPI

from pytest_voicecb import CallbackClient, PayloadFactory, Report, assert_reply_error, assert_reply_ok


def test_an_unanswered_call_is_acknowledged(voicecb_client: CallbackClient, voicecb_payload: PayloadFactory) -> None:
    assert_reply_ok(voicecb_client.post(voicecb_payload.unanswered(accept_time="", end_calltime="")))


def test_a_duplicate_is_processed_once(
    app: FastAPI, voicecb_client: CallbackClient, voicecb_payload: PayloadFactory
) -> None:
    payload = voicecb_payload.keypress()
    assert_reply_ok(voicecb_client.post(payload))
    assert_reply_ok(voicecb_client.post(payload))
    assert len(app.state.store) == 1


def test_bad_input_gets_the_contract_shape_not_422(voicecb_client: CallbackClient) -> None:
    reply = voicecb_client.post(b'{"voiceprompt_callback": null}')
    assert reply.status == 200
    assert_reply_error(reply, result=1)


def test_the_handler_conforms(voicecb_conformance: Callable[..., Report]) -> None:
    voicecb_conformance()


def test_the_naive_pydantic_model_fails_conformance(voicecb_conformance: Callable[..., Report]) -> None:
    """A body model answers 422 {"detail": ...} to bad input, and refuses three of the four kinds."""
    from fastapi_handler.naive import app as naive

    report = voicecb_conformance(naive, assert_ok=False)
    assert not report.ok
    rejected = report["reject/envelope/empty-body"]
    assert not rejected.passed
    assert rejected.reply is not None
    assert rejected.reply.status == 422
    assert not report["valid/keypress/typical"].passed
    assert report["valid/prompt/typical"].passed
