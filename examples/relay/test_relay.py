"""The relay's retries against a receiver that fails, then recovers; and its provider-facing side."""

from __future__ import annotations

from collections.abc import Callable

from pytest_voicecb import CallbackClient, CallbackServer, PayloadFactory, Report, assert_reply_error, assert_reply_ok
from relay.relay import Relay


def test_retries_a_500_and_a_dropped_connection_then_delivers_once(
    relay: Relay, voicecb_server: CallbackServer, voicecb_payload: PayloadFactory
) -> None:
    voicecb_server.reply_sequence([{"status": 500}, {"drop": True}])  # then the default: success
    body = voicecb_payload.body(voicecb_payload.answered())

    delivery = relay.deliver(voicecb_server.url, body)

    assert delivery.ok
    assert delivery.attempts == 3
    received = voicecb_server.requests
    assert len(received) == 3, [r.summary() for r in received]
    assert all(r.body == body for r in received)
    assert [r.reply.status_code if r.reply else None for r in received] == [500, None, 200]


def test_backs_off_exponentially(voicecb_server: CallbackServer, voicecb_payload: PayloadFactory) -> None:
    pauses: list[float] = []
    relay = Relay(lambda kind, fields: [], attempts=4, backoff=0.5, sleep=pauses.append)
    voicecb_server.reply_with(status=503)

    delivery = relay.deliver(voicecb_server.url, voicecb_payload.body(voicecb_payload.keypress()))

    assert not delivery.ok
    assert delivery.attempts == 4
    assert delivery.status == 503
    assert pauses == [0.5, 1.0, 2.0]
    assert len(voicecb_server.requests) == 4


def test_does_not_retry_a_rejection(
    relay: Relay, voicecb_server: CallbackServer, voicecb_payload: PayloadFactory
) -> None:
    voicecb_server.reply_with(result=1, errmsg="unknown callid")

    delivery = relay.deliver(voicecb_server.url, voicecb_payload.body(voicecb_payload.failure()))

    assert not delivery.ok
    assert delivery.attempts == 1
    assert delivery.error is not None
    assert "unknown callid" in delivery.error
    assert len(voicecb_server.requests) == 1


def test_acknowledges_the_provider_then_forwards_in_the_background(
    relay: Relay, voicecb_client: CallbackClient, voicecb_server: CallbackServer, voicecb_payload: PayloadFactory
) -> None:
    voicecb_server.reply_sequence([{"status": 502}])
    payload = voicecb_payload.code()

    assert_reply_ok(voicecb_client.post(payload))
    assert_reply_ok(voicecb_client.post(payload))  # the provider's retry: acknowledged, not forwarded again
    relay.join()

    forwarded = voicecb_server.wait_for(2, callid=payload["voicecode_callback"]["callid"])
    assert [r.reply.status_code for r in forwarded if r.reply] == [502, 200]
    assert forwarded[-1].callback is not None
    assert forwarded[-1].callback.envelope() == payload
    assert len(voicecb_server.requests) == 2


def test_fans_out_to_every_customer(voicecb_server: CallbackServer, voicecb_payload: PayloadFactory) -> None:
    customers = [voicecb_server.url_for("/customer-a"), voicecb_server.url_for("/customer-b")]
    with Relay(lambda kind, fields: customers, backoff=0.01) as relay:
        client = CallbackClient(relay)
        assert_reply_ok(client.post(voicecb_payload.keypress()))
        relay.join()
    assert sorted(r.path for r in voicecb_server.wait_for(2)) == ["/customer-a", "/customer-b"]


def test_an_invalid_callback_is_refused_and_not_forwarded(
    relay: Relay, voicecb_client: CallbackClient, voicecb_server: CallbackServer, voicecb_payload: PayloadFactory
) -> None:
    case = next(case for case in voicecb_payload.malformed() if case.expect == "reject")
    assert_reply_error(voicecb_client.post(case))
    relay.join()
    assert voicecb_server.requests == []


def test_the_provider_facing_side_conforms(
    relay: Relay, voicecb_conformance: Callable[..., Report], voicecb_server: CallbackServer
) -> None:
    voicecb_conformance(strict=True)  # strict: a questionable callback is refused, not passed on
    relay.join()
    assert all(r.valid for r in voicecb_server.requests)  # only valid callbacks were passed on
