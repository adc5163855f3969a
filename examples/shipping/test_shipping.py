"""The whole loop: the shop sends through the official SDK, the simulator calls back, the shop follows."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask

from pytest_voicecb.provider import Provider
from shipping.app import Settings, create_app

PHONE = "+8613800138000"

# The official SDK calls datetime.utcfromtimestamp, deprecated since Python 3.12.
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcfromtimestamp:DeprecationWarning")


def ship(app: Flask, order_id: str = "A-1", phone: str = PHONE) -> tuple[int, Any]:
    response = app.test_client().post(f"/orders/{order_id}/ship", json={"phone": phone})
    return response.status_code, response.get_json()


def order(app: Flask, order_id: str = "A-1") -> dict[str, Any]:
    data: dict[str, Any] = app.test_client().get(f"/orders/{order_id}").get_json()
    return data


def test_an_answered_call_marks_the_order_answered(app: Flask, voicecb_provider: Provider) -> None:
    status, body = ship(app)
    assert status == 200
    assert order(app)["status"] == "calling"
    voicecb_provider.run_until_idle()
    assert order(app)["status"] == "answered"
    assert voicecb_provider.find_deliveries(callid=body["callid"])[0].acknowledged


def test_an_unanswered_call_is_redialled_once(app: Flask, voicecb_provider: Provider) -> None:
    voicecb_provider.on(PHONE).no_answer(times=1)
    ship(app)
    voicecb_provider.run_until_idle()
    shipped = order(app)
    assert shipped["redials"] == 1
    assert len(shipped["calls"]) == 2
    assert shipped["status"] == "answered"
    assert [call.outcome.status for call in voicecb_provider.calls] == ["no_answer", "answered"]


def test_a_failed_call_records_the_failure_code(app: Flask, voicecb_provider: Provider) -> None:
    voicecb_provider.on(PHONE).fail(code=8)
    ship(app)
    voicecb_provider.run_until_idle()
    assert order(app)["status"] == "call-failed"
    assert order(app)["failure_code"] == 8


def test_pressing_1_confirms_the_delivery(app: Flask, voicecb_provider: Provider) -> None:
    voicecb_provider.on(PHONE).press("1")
    ship(app)
    voicecb_provider.run_until_idle()
    assert order(app)["confirmed"] is True


def test_a_duplicate_status_callback_is_acknowledged_and_processed_once(app: Flask, voicecb_provider: Provider) -> None:
    ship(app, phone="+8613900000005")  # the magic number whose status callback comes twice
    voicecb_provider.run_until_idle()
    statuses = voicecb_provider.find_deliveries(kind="prompt")
    assert [d.duplicate for d in statuses] == [False, True]
    assert all(d.acknowledged for d in statuses)
    assert order(app)["events"] == ["voiceprompt_callback"]


def test_a_500_during_an_outage_is_retried_and_the_retry_is_processed(app: Flask, voicecb_provider: Provider) -> None:
    ship(app)
    app.extensions["shop"].db.outage(1)
    voicecb_provider.run_until_idle()
    (status,) = voicecb_provider.find_deliveries(kind="prompt")
    first, retry = status.attempts
    assert first.reply is not None
    assert first.reply.status == 500
    assert retry.acknowledged
    assert order(app)["status"] == "answered"


@pytest.mark.parametrize(
    ("refusal", "status"),
    [
        ("LimitExceeded.DeliveryFrequencyLimit", "notify-later"),
        ("FailedOperation.InsufficientBalanceInVoicePackage", "notify-failed"),
    ],
)
def test_a_refused_send_is_recorded_on_the_order(
    app: Flask, voicecb_provider: Provider, refusal: str, status: str
) -> None:
    voicecb_provider.on(PHONE).refuse(refusal)
    code, body = ship(app)
    assert code == 502
    assert body == {"status": status, "error": refusal}
    assert voicecb_provider.calls == []


def test_a_wrong_secret_is_a_signature_failure(settings: Settings, voicecb_provider: Provider) -> None:
    settings.secret_key = "rotated-yesterday"
    app = create_app(settings)
    code, body = ship(app)
    assert code == 502
    assert body["error"] == "AuthFailure.SignatureFailure"
    assert voicecb_provider.sends[0].error is not None
