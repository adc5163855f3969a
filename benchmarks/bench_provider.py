"""The provider simulator: what a send costs a test, and what the simulation adds to plain delivery.

Run: ``python benchmarks/bench_provider.py [--sends 300] [--rounds 5] [--bulk 1000] [--tls-sends 200]
[--only 1,2,3]`` from the repository root (``pip install -e ".[bench]"`` installs what it needs); about 30 s.

1. One send through the official SDK plus its callback, to an in-process Flask handler: ``SendTtsVoice``
   over loopback HTTP with its TC3 signature checked, then ``run_until_idle()`` delivering the status
   callback. Against the least a test could do instead: the same SDK call to a keep-alive stub answering
   a canned response (stdlib ``http.server``, HTTP/1.1), plus the same callback posted directly with
   ``CallbackClient`` to the same handler. Goal: <= 1.3x. Each round alternates the two send by send; the verdict
   is the median of the rounds' ratios of medians (a shared machine's noise hits both sides alike).
   pytest-httpserver (werkzeug's server, a new connection per send) is shown for reference.
2. Simulation overhead: sends placed on the backend (in-process, no HTTP: the simulation's own cost) with
   their callbacks delivered in-process and judged, versus posting the same callbacks directly with
   ``CallbackClient`` to the same handler. Goal: <= 2x.
3. Both official SDKs, over HTTP and over HTTPS (``Provider(tls=True)``, the SDK trusting only the test CA;
   the callbacks then go to an HTTPS ``CallbackServer`` with ``cacert``): the median send, plus the
   callbacks of those sends delivered with ``run_until_idle()`` (per call), same run. The Node.js SDK runs
   ``benchmarks/node_sends.js`` (it times its own sends; skipped, with the reason, without node or
   ``npm ci`` in examples/node-express). Goal: HTTPS costs the Python SDK (keep-alive) <= 1.5x HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench_server import stdlib_floor  # noqa: E402
from pytest_httpserver import HTTPServer  # noqa: E402
from tencentcloud.common import credential  # noqa: E402
from tencentcloud.common.profile.client_profile import ClientProfile  # noqa: E402
from tencentcloud.common.profile.http_profile import HttpProfile  # noqa: E402
from tencentcloud.vms.v20200902 import models, vms_client  # noqa: E402

from pytest_voicecb.client import CallbackClient  # noqa: E402
from pytest_voicecb.factory import PayloadFactory  # noqa: E402
from pytest_voicecb.provider import Provider  # noqa: E402
from pytest_voicecb.server import CallbackServer  # noqa: E402
from tests.handlers import flask_app  # noqa: E402

CANNED = json.dumps({"Response": {"SendStatus": {"CallId": "c", "SessionContext": ""}, "RequestId": "r"}}).encode()
WARM_UP = 20


NODE_PROJECT = ROOT / "examples" / "node-express"


def sdk_client(endpoint: str, secret_id: str, secret_key: str, *, ca_path: str | None = None) -> vms_client.VmsClient:
    """The Python SDK: http, or with ``ca_path`` its default https trusting that CA alone."""
    http = HttpProfile(protocol="https" if ca_path else "http", endpoint=endpoint, reqTimeout=10, certification=ca_path)
    profile = ClientProfile(httpProfile=http)
    return vms_client.VmsClient(credential.Credential(secret_id, secret_key), "ap-guangzhou", profile)


def request(appid: str) -> models.SendTtsVoiceRequest:
    req = models.SendTtsVoiceRequest()
    req.TemplateId, req.TemplateParamSet = "1", ["A-1"]
    req.CalledNumber, req.VoiceSdkAppid = "+8613800138000", appid
    return req


@contextlib.contextmanager
def keep_alive_stub() -> Iterator[str]:
    """The send API as a stub would answer it: HTTP/1.1 keep-alive, a canned response, nothing checked."""
    with stdlib_floor(CANNED) as (url, _, _):
        yield urlsplit(url).netloc


def timed(action: Callable[[], object], times: int) -> list[float]:
    samples = []
    for _ in range(times):
        began = time.perf_counter()
        action()
        samples.append(time.perf_counter() - began)
    return samples


def one_send(sends: int, rounds: int) -> None:
    app = flask_app.create_app()
    factory = PayloadFactory(1)
    payloads = [factory.answered() for _ in range(sends)]
    ratios, ours_ms, stub_ms, httpserver_ms = [], [], [], []
    with (
        Provider(app, seed=1, concurrency=1) as provider,
        keep_alive_stub() as stub,
        HTTPServer() as reference,
        CallbackClient(app) as direct,
    ):
        reference.expect_request("/", method="POST").respond_with_data(CANNED, content_type="application/json")
        ours = sdk_client(provider.endpoint, provider.secret_id, provider.secret_key)
        stubbed = sdk_client(stub, "id", "key")
        referenced = sdk_client(f"127.0.0.1:{reference.port}", "id", "key")
        req = request(provider.voice_sdk_appid)

        def simulated() -> None:
            ours.SendTtsVoice(req)
            [attempt] = provider.run_until_idle()
            assert attempt.acknowledged, attempt

        def baseline() -> None:
            stubbed.SendTtsVoice(req)
            assert direct.post(payloads[0]).json == {"result": 0, "errmsg": "OK"}

        timed(simulated, WARM_UP), timed(baseline, WARM_UP), timed(lambda: referenced.SendTtsVoice(req), WARM_UP)
        for _ in range(rounds):
            pairs = [(timed(simulated, 1)[0], timed(baseline, 1)[0]) for _ in range(sends)]  # alternated
            a = statistics.median(x for x, _ in pairs) * 1000
            b = statistics.median(y for _, y in pairs) * 1000
            ours_ms.append(a)
            stub_ms.append(b)
            ratios.append(a / b)
            httpserver_ms.append(statistics.median(timed(lambda: referenced.SendTtsVoice(req), sends // 3)) * 1000)
    ratio = statistics.median(ratios)
    print(f"1. one SDK send + its callback, {sends} per round, {rounds} rounds (medians, ms)")
    print(f"   simulator: SDK send, signature checked, callback delivered     {statistics.median(ours_ms):7.2f}")
    print(f"   stub: SDK send to a keep-alive stub + the callback posted      {statistics.median(stub_ms):7.2f}")
    print(f"   (reference: SDK send alone to pytest-httpserver, no callback   {statistics.median(httpserver_ms):7.2f})")
    print(f"   rounds' ratios: {' '.join(f'{r:.2f}' for r in ratios)}")
    verdict = "MET" if ratio <= 1.3 else "NOT MET"
    print(f"   simulator / stub: {ratio:.2f}x (goal <= 1.3x): {verdict}")


def bulk(count: int) -> None:
    app = flask_app.create_app()
    with Provider(app, seed=2, concurrency=1) as provider:
        backend = provider.backend
        began = time.perf_counter()
        for i in range(count):
            backend.place("3.0", "SendTtsVoice", "86", f"138{i:08d}", {})
        attempts = provider.run_until_idle()
        simulated = time.perf_counter() - began
        assert len(attempts) == count
        assert all(a.acknowledged for a in attempts)
        payloads = [d.payload for d in provider.deliveries]
    app = flask_app.create_app()
    with CallbackClient(app) as client:
        began = time.perf_counter()
        for payload in payloads:
            client.post(payload)
        direct = time.perf_counter() - began
    ratio = simulated / direct
    print(f"\n2. simulation overhead: {count:,} sends placed in-process, their callbacks delivered and judged")
    print(f"   simulated {simulated * 1000:.0f} ms | the same posted with CallbackClient {direct * 1000:.0f} ms")
    print(f"   simulated / direct: {ratio:.2f}x (goal <= 2x): {'MET' if ratio <= 2 else 'NOT MET'}")


def _python_sends(provider: Provider, sends: int) -> list[float]:
    client = sdk_client(provider.endpoint, provider.secret_id, provider.secret_key, ca_path=provider.ca_path)
    req = request(provider.voice_sdk_appid)
    timed(lambda: client.SendTtsVoice(req), WARM_UP)
    return timed(lambda: client.SendTtsVoice(req), sends)


def _node_missing() -> str:
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE_PROJECT / "node_modules" / "tencentcloud-sdk-nodejs").is_dir():
        return f"the Node.js SDK is not installed: run `npm ci` in {NODE_PROJECT}"
    return ""


def _node_sends(provider: Provider, sends: int) -> list[float]:
    env = {
        **os.environ,
        "TENCENTCLOUD_SECRET_ID": provider.secret_id,
        "TENCENTCLOUD_SECRET_KEY": provider.secret_key,
        "VMS_SDK_APPID": provider.voice_sdk_appid,
        "VMS_ENDPOINT": provider.endpoint,
        "VMS_PROTOCOL": "https://" if provider.ca_path else "http://",
        **({"NODE_EXTRA_CA_CERTS": provider.ca_path} if provider.ca_path else {}),
    }
    script = str(ROOT / "benchmarks" / "node_sends.js")
    done = subprocess.run(
        ["node", script, str(WARM_UP), str(sends)], env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise RuntimeError(f"node_sends.js failed: {done.stderr.strip()}")
    return [seconds / 1000 for seconds in json.loads(done.stdout)]


def _send_and_callback(tls: bool, sends: int, node: bool) -> dict[str, tuple[float, float]]:
    """For each SDK: (median send, callback delivery per call) in ms, over HTTP or HTTPS."""
    results: dict[str, tuple[float, float]] = {}
    receiver = CallbackServer(tls=tls).start()
    with receiver, Provider(receiver.url, seed=3, tls=tls, cacert=receiver.ca_path, concurrency=1) as provider:
        for name, place in (("python", _python_sends), ("node", _node_sends)):
            if name == "node" and not node:
                continue
            provider.reset()
            send_times = place(provider, sends)
            began = time.perf_counter()
            attempts = provider.run_until_idle()
            delivered = time.perf_counter() - began
            assert len(attempts) == sends + WARM_UP
            assert all(attempt.acknowledged for attempt in attempts)
            receiver.clear()
            results[name] = (statistics.median(send_times) * 1000, delivered / len(attempts) * 1000)
    return results


def sdks_over_tls(sends: int) -> None:
    missing = _node_missing()
    rows = {
        "http": _send_and_callback(False, sends, not missing),
        "https": _send_and_callback(True, sends, not missing),
    }
    print(f"\n3. both official SDKs, {sends} sends each (+{WARM_UP} warm-up), median send + callback per call (ms)")
    print(f"   {'':<22}{'send':>8}{'callback':>10}{'total':>8}")
    for scheme, found in rows.items():
        for name, (send, callback) in found.items():
            label = f"{'Python' if name == 'python' else 'Node.js'} SDK, {scheme}"
            print(f"   {label:<22}{send:8.2f}{callback:10.2f}{send + callback:8.2f}")
    if missing:
        print(f"   Node.js SDK: skipped ({missing})")
    python = {scheme: sum(found["python"]) for scheme, found in rows.items()}
    ratio = python["https"] / python["http"]
    print(f"   Python SDK https / http: {ratio:.2f}x (goal <= 1.5x): {'MET' if ratio <= 1.5 else 'NOT MET'}")
    if not missing:
        node = {scheme: sum(found["node"]) for scheme, found in rows.items()}
        print(
            f"   Node.js / Python SDK: http {node['http'] / python['http']:.2f}x, "
            f"https {node['https'] / python['https']:.2f}x; "
            f"Node.js https / http: {node['https'] / node['http']:.2f}x"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sends", type=int, default=300, help="SDK sends per round and side in 1")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bulk", type=int, default=1000, help="sends in 2")
    parser.add_argument("--tls-sends", type=int, default=200, help="sends per SDK and protocol in 3")
    parser.add_argument("--only", default="1,2,3", help="which measurements to run, e.g. 1")
    args = parser.parse_args()
    only = {part.strip() for part in args.only.split(",")}
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # pytest-httpserver logs every request
    print(f"python {sys.version.split()[0]}\n")
    if "1" in only:
        one_send(args.sends, args.rounds)
    if "2" in only:
        bulk(args.bulk)
    if "3" in only:
        sdks_over_tls(args.tls_sends)


if __name__ == "__main__":
    main()
