"""API 3.0 of the simulator, driven by the official SDK (tencentcloud-sdk-python-vms) over real HTTP."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("tencentcloud.vms.v20200902")

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vms.v20200902 import models, vms_client

from pytest_voicecb.provider import Provider
from pytest_voicecb.provider.v3.signing import authorization_header
from pytest_voicecb.server import CallbackServer

# The official SDK calls datetime.utcfromtimestamp, deprecated since Python 3.12.
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcfromtimestamp:DeprecationWarning")


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackServer]:
    with CallbackServer() as server:
        yield server


@pytest.fixture
def provider(receiver: CallbackServer) -> Iterator[Provider]:
    receiver.reset()
    with Provider(receiver.url, seed=7) as sim:
        yield sim


def sdk(provider: Provider, secret_id: str | None = None, secret_key: str | None = None) -> vms_client.VmsClient:
    cred = credential.Credential(secret_id or provider.secret_id, secret_key or provider.secret_key)
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=provider.endpoint, reqTimeout=10))
    return vms_client.VmsClient(cred, "ap-guangzhou", profile)


def tts(provider: Provider, number: str = "+8613800138000", **fields: Any) -> models.SendTtsVoiceRequest:
    request = models.SendTtsVoiceRequest()
    request.TemplateId = "101"
    request.TemplateParamSet = ["A-1024"]
    request.CalledNumber = number
    request.VoiceSdkAppid = provider.voice_sdk_appid
    request.SessionContext = "order-1024"
    for name, value in fields.items():
        setattr(request, name, value)
    return request


def refused(call: Any) -> TencentCloudSDKException:
    with pytest.raises(TencentCloudSDKException) as info:
        call()
    return info.value


def test_the_real_sdk_sends_a_tts_voice_and_its_callback_is_delivered(
    provider: Provider, receiver: CallbackServer
) -> None:
    response = sdk(provider).SendTtsVoice(tts(provider))
    callid = response.SendStatus.CallId
    assert response.SendStatus.SessionContext == "order-1024"
    assert len(callid) == 36
    assert response.RequestId
    assert provider.call(callid).number == "+8613800138000"
    assert receiver.requests == []  # nothing until the test moves time
    attempts = provider.run_until_idle()
    assert [a.acknowledged for a in attempts] == [True]
    (record,) = receiver.wait_for(1, callid=callid)
    fields = record.json["voiceprompt_callback"]
    assert fields["result"] == "0"
    assert fields["mobile"] == "13800138000"
    assert fields["nationcode"] == "86"
    start, accept, end = int(fields["start_calltime"]), int(fields["accept_time"]), int(fields["end_calltime"])
    assert start <= accept <= end
    assert fields["fee"] == str(-(-(end - accept) // 60))


def test_the_real_sdk_sends_a_code_voice_which_yields_a_voicecode_callback(
    provider: Provider, receiver: CallbackServer
) -> None:
    request = models.SendCodeVoiceRequest()
    request.CodeMessage = "4096"
    request.CalledNumber = "+8613800138000"
    request.VoiceSdkAppid = provider.voice_sdk_appid
    callid = sdk(provider).SendCodeVoice(request).SendStatus.CallId
    provider.run_until_idle()
    (record,) = receiver.wait_for(1, kind="code")
    assert record.json["voicecode_callback"]["callid"] == callid


def test_a_wrong_secret_key_is_a_signature_failure_raised_by_the_sdk(provider: Provider) -> None:
    error = refused(lambda: sdk(provider, secret_key="not-the-key").SendTtsVoice(tts(provider)))
    assert error.code == "AuthFailure.SignatureFailure"
    assert error.requestId
    assert provider.calls == []
    assert provider.sends[-1].error is not None


def test_an_unknown_secret_id_is_secret_id_not_found(provider: Provider) -> None:
    error = refused(lambda: sdk(provider, secret_id="AKIDunknown").SendTtsVoice(tts(provider)))
    assert error.code == "AuthFailure.SecretIdNotFound"


def test_a_timestamp_outside_the_window_is_signature_expire(provider: Provider) -> None:
    provider.api_time = lambda: time.time() + 3600  # the service's clock an hour ahead of the SDK's
    error = refused(lambda: sdk(provider).SendTtsVoice(tts(provider)))
    assert error.code == "AuthFailure.SignatureExpire"
    assert "differs from the server time" in error.message


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"TemplateId": None}, "MissingParameter"),
        ({"PlayTimes": "2"}, "InvalidParameter"),
        ({"PlayTimes": 9}, "InvalidParameterValue"),
        ({"CalledNumber": "13800138000"}, "InvalidParameterValue.CalledNumberVerifyFail"),
        ({"CalledNumber": "+861380013"}, "InvalidParameterValue.CalledNumberVerifyFail"),
        ({"VoiceSdkAppid": "1400999999"}, "InvalidParameterValue.SdkAppidNotExist"),
        ({"TemplateId": "tpl"}, "FailedOperation.TemplateIncorrectOrUnapproved"),
    ],
)
def test_missing_and_wrong_parameters_get_the_services_codes(
    provider: Provider, fields: dict[str, Any], code: str
) -> None:
    error = refused(lambda: sdk(provider).SendTtsVoice(tts(provider, **fields)))
    assert error.code == code


def test_refusals_scripted_per_number_and_by_magic_number(provider: Provider) -> None:
    client = sdk(provider)
    provider.on("+8613800138000").refuse("FailedOperation.InsufficientBalanceInVoicePackage", times=1)
    assert (
        refused(lambda: client.SendTtsVoice(tts(provider))).code == "FailedOperation.InsufficientBalanceInVoicePackage"
    )
    assert client.SendTtsVoice(tts(provider)).SendStatus.CallId  # times=1: the next send goes through
    magic = refused(lambda: client.SendTtsVoice(tts(provider, CalledNumber="+8613900000201")))
    assert magic.code == "LimitExceeded.DeliveryFrequencyLimit"
    provider.run_until_idle()


def post(provider: Provider, body: bytes, headers: dict[str, str], path: str = "/") -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def signed_headers(provider: Provider, body: bytes, action: str = "SendTtsVoice") -> dict[str, str]:
    stamp = int(time.time())
    auth = authorization_header(
        provider.secret_id, provider.secret_key, host=provider.endpoint, payload=body, timestamp=stamp
    )
    return {
        "Content-Type": "application/json",
        "Host": provider.endpoint,
        "X-TC-Action": action,
        "X-TC-Version": "2020-09-02",
        "X-TC-Timestamp": str(stamp),
        "Authorization": auth,
    }


@pytest.mark.parametrize(
    ("body", "action", "code"),
    [
        (b'{"TemplateId": "1"}', "SendSms", "InvalidAction"),
        (b"{not json", "SendTtsVoice", "FailedOperation.JsonParseFail"),
        (b"[1, 2]", "SendTtsVoice", "FailedOperation.JsonParseFail"),
        (b'{"Foo": 1}', "SendTtsVoice", "UnknownParameter"),
        (b"\xff\xfe garbage", "SendCodeVoice", "FailedOperation.JsonParseFail"),
    ],
)
def test_garbage_requests_get_the_error_shape_never_a_500(
    provider: Provider, body: bytes, action: str, code: str
) -> None:
    status, data = post(provider, body, signed_headers(provider, body, action))
    assert status == 200
    assert data["Response"]["Error"]["Code"] == code
    assert data["Response"]["RequestId"]


def test_unsigned_oversized_and_headerless_requests_are_refused_and_the_server_keeps_serving(
    provider: Provider,
) -> None:
    assert (
        post(provider, b"{}", {"Content-Type": "application/json"})[1]["Response"]["Error"]["Code"]
        == "MissingParameter"
    )
    headers = signed_headers(provider, b"{}")
    headers["Authorization"] = "Basic abc"
    assert post(provider, b"{}", headers)[1]["Response"]["Error"]["Code"] == "AuthFailure.InvalidAuthorization"
    big = b'{"x": "' + b"a" * (2 * 1024 * 1024) + b'"}'
    assert (
        post(provider, big, signed_headers(provider, b"{}"))[1]["Response"]["Error"]["Code"]
        == "RequestSizeLimitExceeded"
    )
    assert sdk(provider).SendTtsVoice(tts(provider)).SendStatus.CallId
    provider.run_until_idle()


def test_callids_and_request_ids_are_deterministic_under_the_seed(receiver: CallbackServer) -> None:
    ids = []
    for _ in range(2):
        with Provider(receiver.url, seed=99) as sim:
            response = sdk(sim).SendTtsVoice(tts(sim))
            ids.append((response.SendStatus.CallId, response.RequestId))
    assert ids[0] == ids[1]


def test_the_old_signature_methods_are_refused_with_a_clear_message(provider: Provider) -> None:
    cred = credential.Credential(provider.secret_id, provider.secret_key)
    http = HttpProfile(protocol="http", endpoint=provider.endpoint, reqTimeout=10)
    client = vms_client.VmsClient(cred, "ap-guangzhou", ClientProfile(signMethod="HmacSHA256", httpProfile=http))
    error = refused(lambda: client.SendTtsVoice(tts(provider)))
    assert error.code == "UnsupportedProtocol"
    assert "TC3-HMAC-SHA256" in error.message
