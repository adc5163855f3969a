"""The provider simulator: what a send costs a test, and what the simulation adds to plain delivery.

Run: ``python benchmarks/bench_provider.py`` (from the repository root; a few seconds). Needs
``tencentcloud-sdk-python-vms`` and pytest-httpserver.

1. One send through the official SDK plus its delivered callbacks, to an in-process Flask handler
   (``SendTtsVoice`` over loopback HTTP with its TC3 signature checked, then ``run_until_idle()``
   delivering the status callback): target median <= 5 ms. Next to it, the same SDK call against
   pytest-httpserver answering a canned response (what a test without the simulator would stub: no
   signature check, no call, no callback).
2. Simulation overhead: 1,000 sends placed on the backend (in-process, no HTTP: the simulation's own
   cost) with their callbacks delivered in-process and judged, versus posting the same 1,000 callbacks
   directly with ``CallbackClient`` to the same handler: target ratio <= 2x.
"""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pytest_httpserver import HTTPServer  # noqa: E402
from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: E402
from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: E402
from tencentcloud.vms.v20200902 import models, vms_client  # noqa: E402

from pytest_voicecb.client import CallbackClient  # noqa: E402
from pytest_voicecb.provider import Provider  # noqa: E402
from tests.handlers import flask_app  # noqa: E402

SENDS = 300
BULK = 1000


def sdk_client(endpoint: str, secret_id: str, secret_key: str) -> vms_client.VmsClient:
    profile = ClientProfile(httpProfile=HttpProfile(protocol="http", endpoint=endpoint, reqTimeout=10))
    return vms_client.VmsClient(credential.Credential(secret_id, secret_key), "ap-guangzhou", profile)


def request(appid: str) -> models.SendTtsVoiceRequest:
    req = models.SendTtsVoiceRequest()
    req.TemplateId, req.TemplateParamSet = "1", ["A-1"]
    req.CalledNumber, req.VoiceSdkAppid = "+8613800138000", appid
    return req


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def one_send() -> None:
    app = flask_app.create_app()
    with Provider(app, seed=1, concurrency=1) as provider:
        client = sdk_client(provider.endpoint, provider.secret_id, provider.secret_key)
        req = request(provider.voice_sdk_appid)
        for _ in range(20):  # warm-up: imports, connections, Flask's first request
            client.SendTtsVoice(req)
            provider.run_until_idle()
        samples = []
        for _ in range(SENDS):
            began = time.perf_counter()
            client.SendTtsVoice(req)
            attempts = provider.run_until_idle()
            samples.append(time.perf_counter() - began)
            assert len(attempts) == 1
            assert attempts[0].acknowledged
    stub_samples = []
    canned = {"Response": {"SendStatus": {"CallId": "c", "SessionContext": ""}, "RequestId": "r"}}
    with HTTPServer() as stub:
        stub.expect_request("/", method="POST").respond_with_data(json.dumps(canned), content_type="application/json")
        client = sdk_client(f"127.0.0.1:{stub.port}", "id", "key")
        req = request("1400000000")
        for _ in range(20):
            client.SendTtsVoice(req)
        for _ in range(SENDS):
            began = time.perf_counter()
            client.SendTtsVoice(req)
            stub_samples.append(time.perf_counter() - began)
    ours, stub_ms = median_ms(samples), median_ms(stub_samples)
    print(
        f"one SDK send + its callback delivered in-process: median {ours:.2f} ms (target <= 5 ms) | "
        f"same SDK call to a pytest-httpserver stub, no callback: median {stub_ms:.2f} ms | ratio {ours / stub_ms:.2f}x"
    )


def bulk() -> None:
    app = flask_app.create_app()
    with Provider(app, seed=2, concurrency=1) as provider:
        backend = provider.backend
        began = time.perf_counter()
        for i in range(BULK):
            backend.place("3.0", "SendTtsVoice", "86", f"138{i:08d}", {})
        attempts = provider.run_until_idle()
        simulated = time.perf_counter() - began
        assert len(attempts) == BULK
        assert all(a.acknowledged for a in attempts)
        payloads = [d.payload for d in provider.deliveries()]
    app = flask_app.create_app()
    with CallbackClient(app) as client:
        began = time.perf_counter()
        for payload in payloads:
            client.post(payload)
        direct = time.perf_counter() - began
    print(
        f"{BULK:,} sends with callbacks delivered in-process: {simulated * 1000:.0f} ms | "
        f"the same {BULK:,} callbacks posted with CallbackClient: {direct * 1000:.0f} ms | "
        f"ratio {simulated / direct:.2f}x (target <= 2x)"
    )


if __name__ == "__main__":
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # pytest-httpserver logs every request
    one_send()
    bulk()
