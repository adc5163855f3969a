"""``voicecb provider --console``: the page at ``/voicecb-api/console``, driven in headless Chromium. Its
outcome buttons script the next call through the control API, the app's callbacks arrive accordingly, and
"redeliver" sends a delivery's callback again (``POST /voicecb-api/redeliver``)."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_voicecb.provider import Provider
from pytest_voicecb.server import CallbackServer
from tests.console_browser import browser_fixture, open_live  # noqa: F401  (the browser fixture)
from tests.provider_calls import place_call

ROOT = Path(__file__).resolve().parents[1]
NO_ANSWER = "+8613900000001"  # the simulator's number that never answers, unless scripted otherwise


def test_redeliver_queues_a_copy_of_a_delivery() -> None:
    with CallbackServer() as receiver, Provider(receiver.url) as provider:
        provider.on().answer()
        port = int(provider.endpoint.rpartition(":")[2])
        callid = place_call({**provider.settings(), "endpoint": provider.endpoint}, "+8613900000009")
        provider.run_until_idle()
        first = provider.find_deliveries(callid=callid)[0]
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request(
            "POST", "/voicecb-api/redeliver", json.dumps({"seq": first.seq}), {"Content-Type": "application/json"}
        )
        answer = json.loads(conn.getresponse().read())
        conn.request("POST", "/voicecb-api/redeliver", json.dumps({"seq": "x"}), {"Content-Type": "application/json"})
        refused = conn.getresponse()
        refused_body = refused.read()
        conn.close()
        provider.run_until_idle()
        copies = [d for d in provider.find_deliveries(callid=callid) if d.kind == first.kind]
    assert answer["seq"] > first.seq
    assert len(copies) == 2
    assert copies[1].duplicate
    assert copies[1].acknowledged
    assert refused.status == 400
    assert b"seq must be a delivery number" in refused_body


@pytest.fixture
def provider_cli() -> Iterator[tuple[CallbackServer, dict[str, str], str]]:
    """``voicecb provider --console`` delivering to a recording server: (receiver, settings, console URL)."""
    with CallbackServer() as receiver:
        command = [sys.executable, "-m", "pytest_voicecb", "provider", "--callback-url", receiver.url]
        command += ["--scale", "1000", "--seed", "5", "--console", "--quiet"]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert process.stdout is not None
            lines = [process.stdout.readline() for _ in range(9)]
            settings = dict(line.strip().split(" = ") for line in lines[1:8])
            assert lines[8].startswith("console: http://127.0.0.1:"), lines
            yield receiver, settings, lines[8].split()[1]
        finally:
            process.send_signal(signal.SIGTERM)
            process.communicate(timeout=10)


def test_the_provider_console_drives_the_app_from_the_browser(
    provider_cli: tuple[CallbackServer, dict[str, str], str], browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    receiver, settings, url = provider_cli
    page, errors = open_live(browser, url)
    # "answer" for the next call to a number that never answers on its own.
    page.fill("#number", NO_ANSWER)
    page.click("#panel button[data-outcome=answer]")
    expect(page.locator("#scripted")).to_contain_text(f"to {NO_ANSWER}: answer")
    callid = place_call(settings, NO_ANSWER)
    card = page.locator(f'.card[data-callid="{callid}"]')
    expect(card).to_be_visible()
    expect(card.locator(".outcome")).to_contain_text("answered")
    expect(card.locator(".state.acknowledged")).to_have_count(1)
    (record,) = receiver.wait_for(1, callid=callid, timeout=10)
    assert record.json["voiceprompt_callback"]["result"] == "0"  # answered, as the button said
    page.screenshot(path=str(tmp_path / "provider-card.png"))
    # Redeliver: the app gets the same callback again.
    card.locator("button.redeliver").first.click()
    receiver.wait_for(2, callid=callid, timeout=10)
    expect(card.locator(".delivery")).to_have_count(2)
    expect(card.locator(".state.acknowledged")).to_have_count(2)
    page.screenshot(path=str(tmp_path / "provider-redelivered.png"))
    assert errors == []
    page.close()


def test_the_console_page_refuses_a_foreign_host(provider_cli: tuple[CallbackServer, dict[str, str], str]) -> None:
    _, settings, _ = provider_cli
    host, port = settings["endpoint"].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/voicecb-api/console", headers={"Host": "rebound.example"})
    response = conn.getresponse()
    assert response.status == 403
    assert b"not this simulator's address" in response.read()
    conn.request("GET", "/voicecb-api/console")
    page = conn.getresponse()
    assert page.status == 200
    assert b"voicecb provider" in page.read()
    conn.close()


def _control(endpoint: str, method: str, path: str, headers: dict[str, str], body: bytes = b"") -> tuple[int, bytes]:
    host, port = endpoint.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body or None, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_the_console_refuses_other_sites_and_browsers_without_the_token(
    provider_cli: tuple[CallbackServer, dict[str, str], str],
) -> None:
    _, settings, url = provider_cli
    endpoint = settings["endpoint"]
    token = url.partition("token=")[2]
    assert len(token) >= 20
    assert "/voicecb-api/console?token=" in url
    script = json.dumps({"outcome": "no_answer", "number": "+8613900000042"}).encode()
    json_type = {"Content-Type": "application/json"}
    cases = [
        # (headers, status, what the answer says)
        ({"Host": "rebound.example", **json_type}, 403, b"not this simulator's address"),  # DNS rebinding
        ({"Origin": "http://evil.example", **json_type}, 403, b"is another site"),  # a form on another site
        ({"Origin": f"http://{endpoint}", **json_type}, 403, b"missing or wrong token"),  # our page, no token
        (
            {
                "Origin": f"http://{endpoint}",
                "X-Voicecb-Token": token[:-1] + ("y" if token.endswith("x") else "x"),
                **json_type,
            },
            403,
            b"wrong token",
        ),
        ({"Origin": f"http://{endpoint}", "X-Voicecb-Token": token, **json_type}, 200, b'"ok":true'),  # the page
        (json_type, 200, b'"ok":true'),  # a test or a script: no browser, no token needed
    ]
    for headers, status, says in cases:
        got, body = _control(endpoint, "POST", "/voicecb-api/script", headers, script)
        assert (got, says in body) == (status, True), (headers, got, body)
    status, body = _control(endpoint, "GET", "/voicecb-api/state", {"Host": "rebound.example"})
    assert status == 403, body  # a rebound page cannot read the calls either
    status, body = _control(endpoint, "GET", "/voicecb-api/state", {})
    assert status == 200
    assert b'"calls"' in body


def test_the_control_api_refuses_a_post_from_another_site_without_the_console() -> None:
    with CallbackServer() as receiver, Provider(receiver.url) as provider:
        callid = place_call({**provider.settings(), "endpoint": provider.endpoint}, "+8613900000009")
        foreign = {"Content-Type": "text/plain", "Origin": "http://evil.example"}  # a form on another site
        status, body = _control(provider.endpoint, "POST", "/voicecb-api/reset", foreign)
        assert status == 403
        assert b"another site" in body
        assert [call.callid for call in provider.calls] == [callid]  # not reset
        own = {"Origin": f"http://{provider.endpoint}"}
        status, body = _control(provider.endpoint, "POST", "/voicecb-api/reset", own)
        assert status == 200, body
        assert provider.calls == []


def test_answer_on_a_held_calls_card_sends_the_apps_callbacks(
    provider_cli: tuple[CallbackServer, dict[str, str], str], browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    receiver, settings, url = provider_cli
    page, errors = open_live(browser, url)
    callid = place_call(settings, "+8613900000007")  # the held number: it rings until decided
    card = page.locator(f'.card[data-callid="{callid}"]')
    expect(card.locator(".outcome")).to_contain_text("held")
    expect(card.locator(".delivery")).to_have_count(0)
    assert [r for r in receiver.requests if callid in r.body.decode("utf-8", "replace")] == []
    page.screenshot(path=str(tmp_path / "provider-held.png"))
    card.locator("button[data-decide=answer]").click()
    (record,) = receiver.wait_for(1, callid=callid, timeout=10)
    assert record.json["voiceprompt_callback"]["result"] == "0"
    expect(card.locator(".outcome")).to_contain_text("answered")
    expect(card.locator(".state.acknowledged")).to_have_count(1)
    expect(card.locator("button[data-decide]")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "provider-decided.png"))
    assert errors == []
    page.close()


def test_the_console_shows_refused_sends_and_the_clis_kind_names(
    provider_cli: tuple[CallbackServer, dict[str, str], str], browser: Any
) -> None:
    from playwright.sync_api import expect

    _receiver, settings, url = provider_cli
    page, errors = open_live(browser, url)
    with pytest.raises(KeyError):  # the send is refused: no SendStatus
        place_call(settings, "+8613900000201")
    refused = page.locator(".card.refused")
    expect(refused).to_have_count(1)
    expect(refused).to_contain_text("LimitExceeded.DeliveryFrequencyLimit")
    expect(page.locator("#status")).to_contain_text("1 refused send")
    callid = place_call(settings, "+8613900000003")  # presses 1
    card = page.locator(f'.card[data-callid="{callid}"]')
    expect(card.locator(".delivery")).to_have_count(2)
    expect(card).to_contain_text("keypress")
    expect(card).not_to_contain_text("voicekey")
    assert errors == []
    page.close()
