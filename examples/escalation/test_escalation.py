"""The escalation handler: one call per failed callid, whatever the provider delivers and however often."""

from __future__ import annotations

from escalation.app import Dialler, create_app
from pytest_voicecb import CallbackClient, PayloadFactory, assert_reply_error, assert_reply_ok, run_conformance


def test_an_unanswered_call_is_escalated_once(
    voicecb_client: CallbackClient, voicecb_payload: PayloadFactory, dialler: Dialler
) -> None:
    payload = voicecb_payload.unanswered()
    assert_reply_ok(voicecb_client.post(payload))
    assert_reply_ok(voicecb_client.post(payload))  # the provider retried: acknowledged, not dialled again
    fields = payload["voiceprompt_callback"]
    assert dialler.placed == [(fields["callid"], fields["mobile"])]


def test_an_answered_call_is_not_escalated(
    voicecb_client: CallbackClient, voicecb_payload: PayloadFactory, dialler: Dialler
) -> None:
    assert_reply_ok(voicecb_client.post(voicecb_payload.answered()))
    assert dialler.placed == []


def test_status_and_failure_of_one_failed_call_arriving_together_dial_once(
    voicecb_client: CallbackClient, voicecb_payload: PayloadFactory, dialler: Dialler
) -> None:
    status = voicecb_payload.failed()
    fields = status["voiceprompt_callback"]
    failure = voicecb_payload.failure(callid=fields["callid"], mobile=fields["mobile"], nationcode=fields["nationcode"])
    for reply in voicecb_client.post_concurrently([status, failure, status]):
        assert not isinstance(reply, AssertionError), reply
        assert_reply_ok(reply)
    assert dialler.placed == [(fields["callid"], fields["mobile"])]


def test_garbage_is_rejected_and_dials_nothing(voicecb_client: CallbackClient, dialler: Dialler) -> None:
    assert_reply_error(voicecb_client.post(b"{not json"))
    assert dialler.placed == []


def test_the_handler_conforms_and_its_side_effects_too(voicecb_payload: PayloadFactory) -> None:
    """The whole suite with ``effects``: duplicates (one by one and at once) and unprocessable or rejected
    input must leave the list of placed calls unchanged."""
    dialler = Dialler()
    report = run_conformance(create_app(dialler), effects=lambda: list(dialler.placed), factory=voicecb_payload)
    assert report.ok, report.format()
    assert not report.warnings, report.format()
    assert dialler.placed, "the failed calls among the checks were escalated"
