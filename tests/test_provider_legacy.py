"""The legacy send API, driven by the real ``qcloudsms_py`` voice senders pointed at the simulator (``url=``).

``qcloudsms_py`` 0.1.4 cannot read any response on Python >= 3.9 (its ``HTTPResponse.json`` passes
``encoding=`` to ``json.loads``), so the senders get its own ``HTTPSimpleClient`` through their public
``httpclient`` argument, with only the response decoding fixed; the requests are the library's own.
"""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("qcloudsms_py")

from qcloudsms_py import CodeVoiceSender, PromptVoiceSender, TtsVoiceSender
from qcloudsms_py.httpclient import HTTPSimpleClient

from pytest_voicecb.provider import Provider
from pytest_voicecb.provider.legacy.responses import legacy_sig
from pytest_voicecb.server import CallbackServer


class _Response:
    def __init__(self, response: Any) -> None:
        self.response = response

    def ok(self) -> bool:
        return bool(self.response.ok())

    def json(self) -> Any:
        return json.loads(self.response.body)


class Client(HTTPSimpleClient):  # type: ignore[misc]
    """The library's HTTP client, its response decoding working on Python 3.9+."""

    def fetch(self, req: Any) -> _Response:
        return _Response(super().fetch(req))


CLIENT = Client()


@pytest.fixture
def receiver() -> Iterator[CallbackServer]:
    with CallbackServer() as server:
        yield server


@pytest.fixture
def provider(receiver: CallbackServer) -> Iterator[Provider]:
    with Provider(receiver.url, seed=11) as sim:
        yield sim


def test_the_real_prompt_sender_places_a_call_and_gets_its_callback(
    provider: Provider, receiver: CallbackServer
) -> None:
    sender = PromptVoiceSender(int(provider.sdkappid), provider.appkey, CLIENT)
    result = sender.send(86, "13800138000", 2, "your parcel ships today", ext="order-7", url=provider.legacy_url())
    assert result["result"] == 0
    assert result["errmsg"] == "OK"
    assert result["ext"] == "order-7"
    assert len(result["callid"]) == 32
    int(result["callid"], 16)
    provider.run_until_idle()
    (record,) = receiver.wait_for(1, callid=result["callid"])
    assert record.json["voiceprompt_callback"]["mobile"] == "13800138000"


def test_code_and_tts_senders(provider: Provider, receiver: CallbackServer) -> None:
    code = CodeVoiceSender(int(provider.sdkappid), provider.appkey, CLIENT)
    result = code.send(86, "13800138000", "2048", url=provider.legacy_url("sendcvoice"))
    assert result["result"] == 0
    tts = TtsVoiceSender(int(provider.sdkappid), provider.appkey, CLIENT)
    assert tts.send(1001, ["x"], "13800138001", url=provider.legacy_url("sendtvoice"))["result"] == 0
    provider.run_until_idle()
    assert receiver.wait_for(1, kind="code")[0].json["voicecode_callback"]["callid"] == result["callid"]


def test_a_wrong_appkey_unknown_sdkappid_and_magic_refusals_get_result_numbers(provider: Provider) -> None:
    url = provider.legacy_url()
    assert (
        PromptVoiceSender(int(provider.sdkappid), "wrong", CLIENT).send(86, "13800138000", 2, "x", url=url)["result"]
        == 1001
    )
    assert (
        PromptVoiceSender(1400999999, provider.appkey, CLIENT).send(86, "13800138000", 2, "x", url=url)["result"]
        == 1019
    )
    sender = PromptVoiceSender(int(provider.sdkappid), provider.appkey, CLIENT)
    assert sender.send(86, "13900000202", 2, "x", url=url)["result"] == 1031
    assert sender.send(86, "12345", 2, "x", url=url)["result"] == 1016
    assert [s.ok for s in provider.sends] == [False, False, False, False]


def raw(provider: Provider, path: str, body: bytes) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


@pytest.mark.parametrize(
    ("path", "body", "result"),
    [
        ("/v5/tlsvoicesvr/sendvoiceprompt?sdkappid=1400000000&random=1", b"{oops", 1004),
        ("/v5/tlsvoicesvr/sendvoiceprompt", b"{}", 1004),
        ("/v5/tlsvoicesvr/sendfax?sdkappid=1400000000&random=1", b"{}", 1011),
        ("/v5/tlsvoicesvr/sendvoiceprompt?sdkappid=1400000000&random=1", b'{"tel": 5}', 1004),
        (
            "/v5/tlsvoicesvr/sendvoiceprompt?sdkappid=1400000000&random=1",
            b'{"tel": {"nationcode": "86", "mobile": "1"}}',
            1003,
        ),
    ],
)
def test_garbage_gets_a_result_number_never_a_500(provider: Provider, path: str, body: bytes, result: int) -> None:
    status, data = raw(provider, path, body)
    assert status == 200
    assert data["result"] == result


def test_an_old_time_is_refused(provider: Provider) -> None:
    stamp = int(time.time()) - 3600
    body = {
        "tel": {"nationcode": "86", "mobile": "13800138000"},
        "prompttype": 2,
        "promptfile": "x",
        "sig": legacy_sig(provider.appkey, "42", stamp, "13800138000"),
        "time": stamp,
    }
    path = f"/v5/tlsvoicesvr/sendvoiceprompt?sdkappid={provider.sdkappid}&random=42"
    assert raw(provider, path, json.dumps(body).encode())[1]["result"] == 1021
