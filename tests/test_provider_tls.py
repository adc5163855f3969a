"""The simulator over HTTPS with only the test CA trusted: the official Python SDK (``HttpProfile(certification=)``)
and Node.js SDK (``NODE_EXTRA_CA_CERTS``) with their default ``https``, directly and through the proxy mode with
the real endpoint; callbacks delivered to an ``https://`` handler with ``cacert``, and refused without it."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("tencentcloud.vms.v20200902")

from tencentcloud.common import credential
from tencentcloud.common.exception.tencent_cloud_sdk_exception import TencentCloudSDKException
from tencentcloud.common.profile.client_profile import ClientProfile
from tencentcloud.common.profile.http_profile import HttpProfile
from tencentcloud.vms.v20200902 import models, vms_client

from pytest_voicecb.provider import Provider, proxy
from pytest_voicecb.server import CallbackServer
from tests.node_project import node_project, running_provider


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackServer]:
    with CallbackServer(tls=True) as server:
        yield server


@pytest.fixture
def provider(receiver: CallbackServer) -> Iterator[Provider]:
    receiver.reset()
    with Provider(receiver.url, seed=4, tls=True, cacert=receiver.ca_path) as simulator:
        yield simulator


def sdk(settings: dict[str, str], *, endpoint: str | None = None, via: str | None = None) -> vms_client.VmsClient:
    """The Python SDK with its default protocol (https), trusting the printed ``ca_path`` only."""
    http = HttpProfile(
        endpoint=endpoint or settings["endpoint"], certification=settings.get("ca_path"), proxy=via, reqTimeout=10
    )
    secret = credential.Credential(settings["secret_id"], settings["secret_key"])
    return vms_client.VmsClient(secret, "ap-guangzhou", ClientProfile(httpProfile=http))


def tts(settings: dict[str, str], number: str = "+8613800138000") -> models.SendTtsVoiceRequest:
    request = models.SendTtsVoiceRequest()
    request.TemplateId, request.CalledNumber, request.VoiceSdkAppid = "1", number, settings["voice_sdk_appid"]
    return request


def test_the_python_sdk_sends_over_https_and_the_callback_reaches_an_https_handler(
    provider: Provider, receiver: CallbackServer
) -> None:
    assert provider.url.startswith("https://")
    settings = provider.settings()
    assert settings["ca_path"] == provider.ca_path
    callid = sdk(settings).SendTtsVoice(tts(settings)).SendStatus.CallId
    (delivery,) = provider.run_until_idle()
    assert delivery.acknowledged, delivery.error
    assert receiver.wait_for(1, callid=callid)[0].valid


def test_the_python_sdk_through_the_proxy_keeps_the_real_endpoint_and_https(provider: Provider) -> None:
    settings = provider.settings()
    via = f"http://{provider.endpoint}"  # plain to the proxy, then TLS for vms.tencentcloudapi.com inside CONNECT
    callid = sdk(settings, endpoint=proxy.REAL_ENDPOINT, via=via).SendTtsVoice(tts(settings)).SendStatus.CallId
    assert [send.ok for send in provider.sends] == [True]
    assert provider.calls[0].callid == callid


def test_the_python_sdk_without_the_test_ca_is_refused(provider: Provider) -> None:
    settings = provider.settings()
    del settings["ca_path"]  # certification=None: the SDK's own CA bundle (certifi)
    with pytest.raises(TencentCloudSDKException, match="CERTIFICATE_VERIFY_FAILED"):
        sdk(settings).SendTtsVoice(tts(settings))
    assert provider.sends == []


def test_a_delivery_to_https_without_its_ca_fails_saying_which_host_and_the_fix(receiver: CallbackServer) -> None:
    receiver.reset()
    with Provider(receiver.url, seed=4) as simulator:
        settings = simulator.settings()
        http = HttpProfile(protocol="http", endpoint=simulator.endpoint, reqTimeout=10)
        secret = credential.Credential(settings["secret_id"], settings["secret_key"])
        client = vms_client.VmsClient(secret, "ap-guangzhou", ClientProfile(httpProfile=http))
        client.SendTtsVoice(tts(settings))
        attempts = simulator.run_until_idle()
        simulator.expect_undelivered()
    assert attempts
    error = attempts[0].error or ""
    assert f"the TLS certificate of 127.0.0.1:{receiver.port} is not trusted" in error
    assert "--cacert FILE" in error
    assert receiver.requests == []


def test_voicecb_provider_tls_with_the_python_sdk_and_an_https_callback_url(receiver: CallbackServer) -> None:
    receiver.reset()
    assert receiver.ca_path is not None
    with running_provider(receiver.url, "--tls", "--cacert", receiver.ca_path, "--scale", "200") as settings:
        callid = sdk(settings).SendTtsVoice(tts(settings)).SendStatus.CallId
        assert receiver.wait_for(1, callid=callid, timeout=30)[0].valid


# ---- the official Node.js SDK (examples/node-express/send.js) -------------------------------------------


def node_send(settings: dict[str, str], tmp_path: Path, *numbers: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``node send.js NUMBERS`` with the printed keys; ``env`` adds VMS_ENDPOINT, VMS_PROXY, NODE_EXTRA_CA_CERTS."""
    variables = {
        **os.environ,
        "TENCENTCLOUD_SECRET_ID": settings["secret_id"],
        "TENCENTCLOUD_SECRET_KEY": settings["secret_key"],
        "VMS_SDK_APPID": settings["voice_sdk_appid"],
        "DATA_DIR": str(tmp_path),
        **env,
    }
    return subprocess.run(
        ["node", "send.js", *numbers], cwd=node_project(), env=variables, capture_output=True, text=True, timeout=60
    )


@pytest.fixture(scope="module")
def tls_settings(receiver: CallbackServer) -> Iterator[dict[str, str]]:
    node_project()
    assert receiver.ca_path is not None
    with running_provider(receiver.url, "--tls", "--cacert", receiver.ca_path, "--scale", "200") as printed:
        yield printed


@pytest.mark.parametrize("way", ["endpoint", "proxy"])
def test_the_node_sdk_sends_over_https_trusting_only_the_test_ca(
    way: str, tls_settings: dict[str, str], receiver: CallbackServer, tmp_path: Path
) -> None:
    """With the printed endpoint, or the real one through the proxy (plain to the proxy, then TLS for
    vms.tencentcloudapi.com inside its CONNECT); VMS_PROTOCOL unset: the SDK's default https://."""
    receiver.reset()
    where = (
        {"VMS_ENDPOINT": tls_settings["endpoint"]}
        if way == "endpoint"
        else {"VMS_PROXY": f"http://{tls_settings['endpoint']}"}  # VMS_ENDPOINT unset: vms.tencentcloudapi.com
    )
    sent = node_send(tls_settings, tmp_path, "+8613800138000", NODE_EXTRA_CA_CERTS=tls_settings["ca_path"], **where)
    assert sent.returncode == 0, sent.stderr
    assert receiver.wait_for(1, callid=json.loads(sent.stdout)["callid"], timeout=30)[0].valid


def test_the_node_sdk_without_the_test_ca_is_refused(tls_settings: dict[str, str], tmp_path: Path) -> None:
    sent = node_send(tls_settings, tmp_path, "+8613800138000", VMS_ENDPOINT=tls_settings["endpoint"])
    assert sent.returncode == 1
    assert sent.stdout == ""
    assert "certificate" in sent.stderr


def test_the_node_sdk_through_the_proxy_with_the_real_endpoint_over_http(
    receiver: CallbackServer, tmp_path: Path
) -> None:
    """Issue 18 item 3's "through the proxy": the Node SDK's proxy agent always tunnels (CONNECT), even for http."""
    node_project()
    receiver.reset()
    with running_provider(receiver.url, "--cacert", str(receiver.ca_path), "--scale", "200") as settings:
        sent = node_send(
            settings, tmp_path, "+8613800138000", VMS_PROTOCOL="http://", VMS_PROXY=f"http://{settings['endpoint']}"
        )
        assert sent.returncode == 0, sent.stderr
        assert receiver.wait_for(1, callid=json.loads(sent.stdout)["callid"], timeout=30)[0].valid
