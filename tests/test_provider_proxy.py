"""Proxy mode: the official SDK keeps the real endpoint and reaches the simulator as its HTTP proxy."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

pytest.importorskip("tencentcloud.vms.v20200902")

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vms.v20200902 import models, vms_client

from pytest_voicecb.provider import Provider
from pytest_voicecb.server import CallbackServer

# The official SDK calls datetime.utcfromtimestamp, deprecated since Python 3.12.
pytestmark = pytest.mark.filterwarnings("ignore:datetime.datetime.utcfromtimestamp:DeprecationWarning")


@pytest.fixture
def provider() -> Iterator[Provider]:
    """A simulator delivering to a recording server on loopback."""
    with CallbackServer() as receiver, Provider(receiver.url, seed=11) as sim:
        yield sim


def through_proxy(
    provider: Provider, endpoint: str = "vms.tencentcloudapi.com", protocol: str = "http"
) -> vms_client.VmsClient:
    """The SDK as a team configures it for production, plus only the proxy."""
    http = HttpProfile(protocol=protocol, endpoint=endpoint, reqTimeout=10, proxy=provider.url)
    cred = credential.Credential(provider.secret_id, provider.secret_key)
    return vms_client.VmsClient(cred, "ap-guangzhou", ClientProfile(httpProfile=http))


def tts(provider: Provider) -> models.SendTtsVoiceRequest:
    request = models.SendTtsVoiceRequest()
    request.TemplateId, request.TemplateParamSet = "101", ["A-1024"]
    request.CalledNumber, request.VoiceSdkAppid = "+8613800138000", provider.voice_sdk_appid
    return request


def raw(provider: Provider, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", provider.server.port), timeout=10) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received and received.endswith(b"}"):
                break
        return received


@pytest.mark.parametrize("endpoint", ["vms.tencentcloudapi.com", "vms.ap-guangzhou.tencentcloudapi.com"])
def test_the_sdk_with_the_real_endpoint_and_the_simulator_as_proxy_places_a_call(
    provider: Provider, endpoint: str
) -> None:
    status = through_proxy(provider, endpoint).SendTtsVoice(tts(provider)).SendStatus
    assert status.CallId
    [attempt] = provider.run_until_idle()
    assert attempt.acknowledged  # by the recording server, over HTTP
    assert json.loads(attempt.body)["voiceprompt_callback"]["callid"] == status.CallId


def test_another_host_through_the_proxy_is_a_clear_403_and_nothing_is_forwarded(provider: Provider) -> None:
    answer = raw(provider, b"GET http://example.com/secret HTTP/1.1\r\nHost: example.com\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 403")
    error = json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"]
    assert "not a proxy" in error
    assert "example.com" in error
    assert "vms.tencentcloudapi.com" in error
    assert provider.sends == []


def test_the_legacy_host_through_the_proxy_reaches_the_legacy_api(provider: Provider) -> None:
    target = b"http://cloud.tim.qq.com/v5/tlsvoicesvr/sendvoiceprompt?sdkappid=1&random=2"
    answer = raw(provider, b"POST " + target + b" HTTP/1.1\r\nHost: cloud.tim.qq.com\r\nContent-Length: 2\r\n\r\n{}")
    assert answer.startswith(b"HTTP/1.1 200")
    assert "result" in json.loads(answer.split(b"\r\n\r\n", 1)[1])  # the legacy API's own refusal


def test_connect_is_refused_saying_to_use_the_sdks_http_protocol(provider: Provider) -> None:
    answer = raw(provider, b"CONNECT vms.tencentcloudapi.com:443 HTTP/1.1\r\nHost: vms.tencentcloudapi.com:443\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 405 CONNECT refused: the voicecb simulator speaks plain http")
    with pytest.raises(TencentCloudSDKException) as caught:
        through_proxy(provider, protocol="https").SendTtsVoice(tts(provider))
    assert "set the SDK's protocol to http" in str(caught.value)
    assert provider.sends == []


def test_the_command_prints_the_proxy_next_to_its_address() -> None:
    command = [sys.executable, "-m", "pytest_voicecb", "provider", "--callback-url", "http://127.0.0.1:9/cb"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy()
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=10)
    assert first.startswith("provider listening on http://127.0.0.1:")
    assert "(also the SDK's proxy: keep endpoint vms.tencentcloudapi.com, protocol http)" in first
