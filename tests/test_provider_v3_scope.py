"""The TC3 credential scope's service as every official SDK computes it: ``vms`` (Python, Go) or the first
label of the endpoint (Node.js, Java, PHP: ``127`` for ``127.0.0.1:PORT``), over real HTTP to a simulator."""

from __future__ import annotations

import http.client
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_voicecb.provider import Provider
from pytest_voicecb.provider.v3.signing import authorization_header, scope_services
from pytest_voicecb.server import CallbackServer


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with CallbackServer() as receiver, Provider(receiver.url, seed=3) as sim:
        yield sim


def send(
    provider: Provider,
    *,
    host: str,
    service: str,
    secret_id: str | None = None,
    secret_key: str | None = None,
    stamp: int | None = None,
    tamper: bool = False,
    signed_host: str | None = None,
) -> dict[str, Any]:
    """A SendTtsVoice signed for ``service`` and sent with ``Host: host``; the ``Response`` object."""
    body = json.dumps(
        {"TemplateId": "1", "CalledNumber": "+8613800138000", "VoiceSdkAppid": provider.voice_sdk_appid}
    ).encode()
    stamp = int(time.time()) if stamp is None else stamp
    auth = authorization_header(
        secret_id or provider.secret_id,
        secret_key or provider.secret_key,
        host=host if signed_host is None else signed_host,
        payload=body,
        timestamp=stamp,
        service=service,
    )
    headers = {
        "Content-Type": "application/json",
        "Host": host,
        "X-TC-Action": "SendTtsVoice",
        "X-TC-Version": "2020-09-02",
        "X-TC-Timestamp": str(stamp),
        "Authorization": auth,
    }
    connection = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
    try:
        connection.request("POST", "/", body=body + (b" " if tamper else b""), headers=headers)
        response: dict[str, Any] = json.loads(connection.getresponse().read())["Response"]
        return response
    finally:
        connection.close()


def code(response: dict[str, Any]) -> str | None:
    error = response.get("Error")
    return None if error is None else str(error["Code"])


def test_the_scope_services_are_vms_or_the_hosts_first_label_and_nothing_else() -> None:
    assert scope_services("127.0.0.1:8080", "vms") == ("vms", "127")
    assert scope_services("localhost:8080", "vms") == ("vms", "localhost:8080", "localhost")
    assert scope_services("vms.tencentcloudapi.com", "vms") == ("vms",)
    assert scope_services("[::1]:8080", "vms") == ("vms", "[::1]:8080", "[::1]")
    assert scope_services("", "vms") == ("vms",)


@pytest.mark.parametrize(
    ("host", "service"),
    [
        ("{endpoint}", "vms"),  # the Python and Go SDKs
        ("{endpoint}", "127"),  # Node.js, Java, PHP with the printed endpoint 127.0.0.1:PORT
        ("localhost:{port}", "localhost:{port}"),  # the same SDKs with endpoint localhost:PORT
        ("localhost:{port}", "localhost"),
    ],
)
def test_a_send_signed_for_vms_or_the_hosts_first_label_goes_through(
    provider: Provider, host: str, service: str
) -> None:
    port = provider.server.port
    response = send(
        provider, host=host.format(endpoint=provider.endpoint, port=port), service=service.format(port=port)
    )
    assert code(response) is None, response
    assert response["SendStatus"]["CallId"]


@pytest.mark.parametrize(
    ("host", "service"),
    [("{endpoint}", "cvm"), ("{endpoint}", "localhost"), ("localhost:{port}", "127"), ("{endpoint}", "127.0.0.1")],
)
def test_any_other_service_is_a_signature_failure_naming_both_accepted_scopes(
    provider: Provider, host: str, service: str
) -> None:
    port = provider.server.port
    sent_to = host.format(endpoint=provider.endpoint, port=port)
    response = send(provider, host=sent_to, service=service)
    assert code(response) == "AuthFailure.SignatureFailure"
    message = response["Error"]["Message"]
    label = sent_to.split(".")[0]
    assert f"/{service}/tc3_request` does not match" in message
    assert "/vms/tc3_request`" in message
    assert f"/{label}/tc3_request`" in message


def test_a_wrong_date_key_secret_id_or_body_is_still_refused_with_the_host_label(provider: Provider) -> None:
    host = provider.endpoint
    yesterday = send(provider, host=host, service="127", stamp=int(time.time()) - 86400)
    assert code(yesterday) == "AuthFailure.SignatureExpire"
    assert code(send(provider, host=host, service="127", secret_key="not-the-key")) == "AuthFailure.SignatureFailure"
    assert code(send(provider, host=host, service="127", secret_id="AKIDunknown")) == "AuthFailure.SecretIdNotFound"
    assert code(send(provider, host=host, service="127", tamper=True)) == "AuthFailure.SignatureFailure"


def test_a_scope_dated_another_day_is_refused_naming_the_expected_date(provider: Provider) -> None:
    stamp = int(time.time())
    body = b"{}"
    auth = authorization_header(
        provider.secret_id, provider.secret_key, host=provider.endpoint, payload=body, timestamp=stamp, service="127"
    )
    date = time.strftime("%Y-%m-%d", time.gmtime(stamp))
    headers = {
        "Content-Type": "application/json",
        "Host": provider.endpoint,
        "X-TC-Action": "SendTtsVoice",
        "X-TC-Version": "2020-09-02",
        "X-TC-Timestamp": str(stamp),
        "Authorization": auth.replace(f"/{date}/", "/2001-01-01/"),
    }
    connection = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
    try:
        connection.request("POST", "/", body=body, headers=headers)
        response = json.loads(connection.getresponse().read())["Response"]
    finally:
        connection.close()
    assert response["Error"]["Code"] == "AuthFailure.SignatureFailure"
    assert f"`{date}/vms/tc3_request` or `{date}/127/tc3_request`" in response["Error"]["Message"]


def test_a_host_signed_without_its_port_as_the_node_sdk_signs_it_is_accepted_and_no_other(provider: Provider) -> None:
    sent_to = provider.endpoint  # 127.0.0.1:PORT; the Node.js SDK signs host:127.0.0.1 (URL.hostname)
    assert code(send(provider, host=sent_to, service="127", signed_host="127.0.0.1")) is None
    assert code(send(provider, host=sent_to, service="127", signed_host="127.0.0.2")) == "AuthFailure.SignatureFailure"
