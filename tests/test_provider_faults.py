"""The simulator under fault and abuse: hung handlers, resets mid-flight, concurrency, hostile input."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pytest_voicecb.provider import ManualClock, Provider, RetryPolicy, SystemClock
from pytest_voicecb.server import CallbackServer
from tests.handlers.serve import serving
from tests.test_provider_delivery import send


def post(provider: Provider, path: str, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", provider.server.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers={"Host": provider.endpoint, **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        connection.close()


def legacy_prompt(provider: Provider, stamp: int) -> dict[str, Any]:
    """A signed legacy sendvoiceprompt body (``random=7``), as qcloudsms_py builds it."""
    from pytest_voicecb.provider.legacy.responses import legacy_sig

    return {
        "tel": {"nationcode": "86", "mobile": "13800138000"},
        "sig": legacy_sig(provider.appkey, "7", stamp, "13800138000"),
        "time": stamp,
        "promptfile": "hello",
        "prompttype": 2,
    }


def test_a_hanging_handler_holds_only_its_own_call() -> None:
    """One call's handler hangs 4 s; the other calls' callbacks, due later, arrive while it still hangs."""
    release, hung = threading.Event(), threading.Event()
    order: list[str] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        mobile = json.loads(body)["voiceprompt_callback"]["mobile"]
        order.append(f"arrived {mobile}")
        if mobile == "13800000001":
            hung.set()
            release.wait(4)
            order.append("hung handler returned")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"result":0,"errmsg":"OK"}']

    with serving(app) as url, Provider(url, seed=1, clock=SystemClock(scale=100), retry=RetryPolicy(timeout=6)) as p:
        send(p, "+8613800000001")
        assert hung.wait(10)  # its status fell due (33 simulated s) and its handler hangs
        fast = [send(p, f"+86138000001{i:02d}") for i in range(3)]
        for callid in fast:
            p.wait_for_deliveries(1, timeout=10, callid=callid)
        assert "hung handler returned" not in order  # every other call was delivered while it hung
        release.set()
        p.wait_for_deliveries(4, timeout=10)
    assert order[0] == "arrived 13800000001"
    assert order[-1] == "hung handler returned"


@pytest.fixture
def receiver() -> Iterator[CallbackServer]:
    with CallbackServer() as server:
        yield server


def test_a_delivery_in_flight_during_a_reset_is_never_retried_recorded_or_reported(receiver: CallbackServer) -> None:
    entered, release = threading.Event(), threading.Event()
    reported: list[int] = []

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        entered.set()
        release.wait(5)
        start_response("500 Internal Server Error", [("Content-Type", "application/json")])
        return [b'{"result":1,"errmsg":"down"}']

    with serving(app) as url, Provider(url, seed=1, on_attempt=lambda d, a: reported.append(d.seq)) as p:
        send(p)
        worker = threading.Thread(target=p.run_until_idle)
        worker.start()
        assert entered.wait(5)
        status, _ = post(p, "/voicecb-api/reset", b"{}")
        assert status == 200
        release.set()
        worker.join(10)
        assert p.deliveries == []
        assert p.dispatcher.pending == 0  # the failed attempt was not put back for a retry
        assert p.run_until_idle() == []
        assert reported == []


def test_a_send_finishing_while_another_is_verified_is_reported_once(receiver: CallbackServer) -> None:
    """Send A is held inside its verification (the API's clock) while send B completes: B is reported
    once, by B's own request, and A once, by A's."""
    inside, gate = threading.Event(), threading.Event()
    first = threading.Lock()
    seen: list[str] = []

    def api_time() -> float:
        if first.acquire(blocking=False):  # the first request to verify waits until another was reported
            inside.set()
            gate.wait(5)
        return time.time()

    def on_send(sent: Any) -> None:
        seen.append(sent.call.number)
        gate.set()

    with Provider(receiver.url, seed=1, on_send=on_send, api_time=api_time) as p:
        held = threading.Thread(target=send, args=(p, "+8613800000001"))
        held.start()
        assert inside.wait(5)
        send(p, "+8613800000002")
        held.join(10)
    assert sorted(seen) == ["+8613800000001", "+8613800000002"]


def test_each_send_is_reported_once_under_concurrency(receiver: CallbackServer) -> None:
    seen: list[str] = []
    lock = threading.Lock()

    def on_send(sent: Any) -> None:
        with lock:
            seen.append(sent.request_id)

    with Provider(receiver.url, seed=1, on_send=on_send) as p:
        threads = [threading.Thread(target=send, args=(p,)) for _ in range(400)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(seen) == 400
        assert len(set(seen)) == 400


def test_the_record_keeps_the_latest_calls(receiver: CallbackServer) -> None:
    with Provider(receiver.url, seed=1, keep=3) as p:
        callids = [send(p) for _ in range(5)]
        assert [c.callid for c in p.calls] == callids[2:]
        assert [d.callid for d in p.deliveries] == callids[2:]
        assert len(p.sends) == 3
        assert p.backend.counts == {"sends": 5, "calls": 5}
        assert len(p.run_until_idle()) == 5  # forgotten calls' callbacks are still delivered


V3_NULLS = [
    {"PlayTimes": None},
    {"TemplateParamSet": None},
    {"SessionContext": None},
]


@pytest.mark.parametrize("extra", V3_NULLS, ids=lambda e: next(iter(e)))
def test_a_null_optional_parameter_is_read_as_absent(extra: dict[str, Any], receiver: CallbackServer) -> None:
    from pytest_voicecb.provider.v3.signing import authorization_header

    with Provider(receiver.url, seed=1) as p:
        body = json.dumps(
            {"TemplateId": "1", "CalledNumber": "+8613800138000", "VoiceSdkAppid": p.voice_sdk_appid, **extra}
        )
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "X-TC-Action": "SendTtsVoice",
            "X-TC-Version": "2020-09-02",
            "X-TC-Timestamp": str(stamp),
            "Authorization": authorization_header(
                p.secret_id, p.secret_key, host=p.endpoint, payload=body.encode(), timestamp=stamp
            ),
        }
        status, data = post(p, "/", body.encode(), headers)
        assert status == 200, data
        assert data["Response"]["SendStatus"]["SessionContext"] == ""


def test_hostile_values_get_the_apis_errors_never_a_500(receiver: CallbackServer) -> None:
    with Provider(receiver.url, seed=1, clock=ManualClock(1_700_000_000)) as p:
        legacy = {"tel": {"nationcode": "86", "mobile": "13800138000"}, "sig": "0" * 64, "time": 10**400}
        status, data = post(
            p, "/v5/tlsvoicesvr/sendvoiceprompt?sdkappid=1400000000&random=1", json.dumps(legacy).encode()
        )
        assert (status, data["result"]) == (200, 1021)
        assert "401 digits" in data["errmsg"]
        status, data = post(p, "/voicecb-api/script", json.dumps({"outcome": "slow", "seconds": 1e300}).encode())
        assert status == 400
        assert "up to 600" in data["error"]
        status, data = post(p, "/voicecb-api/advance", json.dumps({"seconds": 1e300}).encode())
        assert status == 400
        assert [s.ok for s in p.sends] == [False]


def test_the_standalones_clock_verbs_answer_over_http(receiver: CallbackServer) -> None:
    with Provider(receiver.url, seed=1, clock=SystemClock(scale=1)) as p:
        send(p, "+8613900000001")  # 60 s of ringing
        status, data = post(p, "/voicecb-api/advance", b'{"seconds": 120}')
        assert status == 200, data
        status, data = post(p, "/voicecb-api/run-until-idle", b"{}")
        assert status == 200, data
        assert p.deliveries[0].acknowledged


def test_the_control_api_answers_only_its_own_host_console_or_not(receiver: CallbackServer) -> None:
    with Provider(receiver.url, seed=1) as p:
        connection = http.client.HTTPConnection("127.0.0.1", p.server.port, timeout=10)
        connection.request("GET", "/voicecb-api/state", headers={"Host": f"rebind.attacker.example:{p.server.port}"})
        response = connection.getresponse()
        assert response.status == 403
        assert "is not this simulator's address" in response.read().decode()
        connection.request("GET", "/voicecb-api/state", headers={"Host": p.endpoint})
        assert connection.getresponse().status == 200
        connection.close()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://attacker.example", "Content-Type": "application/json"},
        {"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json"},
        {"Content-Type": "text/plain;charset=UTF-8"},
        {"Content-Type": "application/x-www-form-urlencoded"},
    ],
    ids=["origin", "sec-fetch-site", "text-plain", "form"],
)
def test_a_browser_page_from_another_site_cannot_place_a_legacy_call(
    headers: dict[str, str], receiver: CallbackServer
) -> None:
    with Provider(receiver.url, seed=1) as p:
        body = legacy_prompt(p, int(time.time()))
        path = f"/v5/tlsvoicesvr/sendvoiceprompt?sdkappid={p.sdkappid}&random=7"
        status, data = post(p, path, json.dumps(body).encode(), headers)
        assert (status, data["result"]) == (200, 1030), data
        assert p.calls == []
        assert [s.ok for s in p.sends] == [False]  # shown as a refused send
        status, data = post(p, path, json.dumps(body).encode(), {"Content-Type": "application/json"})
        assert data["result"] == 0  # what qcloudsms_py sends is served


HOSTILE = [None, True, -1, 0, 10**400, 1e300, float("nan"), "", "x" * 5000, "\u0000\ud800", [], [None], {}, {"a": [1]}]


def test_no_value_in_any_field_of_either_send_api_gets_a_500(receiver: CallbackServer) -> None:
    """Each field of both send APIs, and the control API's numbers, given each hostile JSON value."""
    from pytest_voicecb.provider.v3.signing import authorization_header

    with Provider(receiver.url, seed=1) as p:
        v3 = {"TemplateId": "1", "CalledNumber": "+8613800138000", "VoiceSdkAppid": p.voice_sdk_appid}
        v3.update(PlayTimes=2, TemplateParamSet=["1"], SessionContext="s")
        stamp = int(time.time())
        legacy = {**legacy_prompt(p, stamp), "playtimes": 2, "ext": ""}
        for value in HOSTILE:
            for field in v3:
                body = json.dumps({**v3, field: value}).encode()
                auth = authorization_header(p.secret_id, p.secret_key, host=p.endpoint, payload=body, timestamp=stamp)
                headers = {"Content-Type": "application/json", "X-TC-Action": "SendTtsVoice"}
                headers.update({"X-TC-Version": "2020-09-02", "X-TC-Timestamp": str(stamp), "Authorization": auth})
                status, data = post(p, "/", body, headers)
                assert (status, "Response" in data) == (200, True), (field, value, data)
            for field in [*legacy, "tpl_id", "params", "msg"]:
                path = f"/v5/tlsvoicesvr/{'sendtvoice' if field in ('tpl_id', 'params') else 'sendvoiceprompt'}"
                body = json.dumps({**legacy, field: value}).encode()
                status, data = post(
                    p, f"{path}?sdkappid={p.sdkappid}&random=7", body, {"Content-Type": "application/json"}
                )
                assert (status, "result" in data) == (200, True), (field, value, data)
            for name, args in [("advance", {"seconds": value}), ("script", {"outcome": "answer", "ring": value})]:
                status, data = post(p, f"/voicecb-api/{name}", json.dumps(args).encode())
                assert status in (200, 400), (name, value, data)
