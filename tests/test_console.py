"""``voicecb serve``'s live console at ``/_voicecb/``: the API's guards, the feed's bounds, and the page in a
real headless Chromium watching real callbacks arrive from real HTTP deliveries (``voicecb serve`` runs as
a subprocess, as a user runs it)."""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pytest_voicecb import PayloadFactory
from pytest_voicecb.console.app import PREFIX, ConsoleApp
from pytest_voicecb.console.feed import Feed
from pytest_voicecb.server import CallbackServer
from tests.console_browser import browser_fixture, open_live  # noqa: F401  (the browser fixture)

ROOT = Path(__file__).resolve().parents[1]
PATH = "/voice/callback"
HOSTILE_CALLID = "<img src=x onerror=window.pwned=1>"


def request(
    port: int, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body, headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def console() -> Iterator[tuple[CallbackServer, ConsoleApp]]:
    """A recording server with the console mounted, fed by its on_callback hook (as serve does)."""
    from pytest_voicecb.log import record_of

    feed = Feed(capacity=1000)
    app = ConsoleApp(feed, token="secret-token")
    server = CallbackServer(on_callback=lambda recorded: feed.add(recorded, record_of(recorded)), mounts={PREFIX: app})
    app.server = server
    with server:
        feed.url = f"http://127.0.0.1:{server.port}"
        yield server, app


def test_the_console_is_not_a_callback_and_its_api_needs_the_token(console: tuple[CallbackServer, ConsoleApp]) -> None:
    server, app = console
    body = PayloadFactory(1).answered()
    assert request(server.port, "POST", PATH, json.dumps(body).encode())[0] == 200
    status, page = request(server.port, "GET", PREFIX)
    assert status == 200
    assert b"live console" in page
    assert len(server.requests) == 1  # the page was not recorded
    assert request(server.port, "GET", PREFIX + "api/callbacks")[0] == 403
    status, data = request(server.port, "GET", PREFIX + "api/callbacks", headers={"X-Voicecb-Token": "secret-token"})
    assert status == 200
    assert [item["seq"] for item in json.loads(data)["items"]] == [1]
    assert f"token={app.token}" in app.url()


@pytest.mark.parametrize(
    ("headers", "why"),
    [
        ({"Host": "attacker.example:80"}, b"is not this server's address"),  # DNS rebinding
        ({"Origin": "http://attacker.example"}, b"another site"),  # CSRF from another page
    ],
)
def test_other_sites_are_refused(
    console: tuple[CallbackServer, ConsoleApp], headers: dict[str, str], why: bytes
) -> None:
    server, _ = console
    sent = {"X-Voicecb-Token": "secret-token", "Content-Type": "application/json", **headers}
    status, body = request(server.port, "POST", PREFIX + "api/script", b'{"reply": "drop"}', sent)
    assert status == 403
    assert why in body
    assert (
        request(server.port, "POST", PATH, json.dumps(PayloadFactory(2).answered()).encode())[0] == 200
    )  # not scripted


def test_garbage_to_the_api_is_a_clear_400(console: tuple[CallbackServer, ConsoleApp]) -> None:
    server, _ = console
    sent = {"X-Voicecb-Token": "secret-token", "Content-Type": "application/json"}
    for body in (b"{", b'{"reply": "explode"}', b'{"reply": "ok", "times": -1}', b"\xff\xfe"):
        status, data = request(server.port, "POST", PREFIX + "api/script", body, sent)
        assert status == 400, body
        assert json.loads(data)["error"]
    status, _ = request(server.port, "GET", PREFIX + "api/callbacks?after=x", headers=sent)
    assert status == 400
    assert request(server.port, "GET", PREFIX + "api/callbacks/999", headers=sent)[0] == 404


def test_each_row_has_the_servers_latency_a_scripted_delay_included(
    console: tuple[CallbackServer, ConsoleApp],
) -> None:
    server, _ = console
    sent = {"X-Voicecb-Token": "secret-token"}
    server.reply_with(delay=0.3, times=1)
    body = json.dumps(PayloadFactory(4).answered()).encode()
    begin = time.monotonic()
    for _ in range(2):
        request(server.port, "POST", PATH, body, {"Content-Type": "application/json"})
    deadline = time.monotonic() + 5  # the latency is set just after the reply is written: poll for it
    while True:
        items = json.loads(request(server.port, "GET", PREFIX + "api/callbacks", headers=sent)[1])["items"]
        if all(item["latency"] is not None for item in items) or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    plain, delayed = items  # newest first
    assert 0.3 <= delayed["latency"] < time.monotonic() - begin
    assert 0 < plain["latency"] < 0.3
    assert [r.latency for r in server.requests] == [delayed["latency"], plain["latency"]]
    status, detail = request(server.port, "GET", PREFIX + f"api/callbacks/{delayed['seq']}", headers=sent)
    assert status == 200
    assert json.loads(detail)["latency"] == delayed["latency"]


def test_binary_and_huge_bodies_are_shown_safely(console: tuple[CallbackServer, ConsoleApp]) -> None:
    server, app = console
    request(server.port, "POST", PATH, b"\xff\x00\x1b[31m binary", {"Content-Type": "application/json"})
    request(server.port, "POST", PATH, b"x" * 200_000, {"Content-Type": "application/json"})
    binary, huge = app.feed.detail(1), app.feed.detail(2)
    assert binary is not None
    assert huge is not None
    assert "\x1b" not in binary["body"]
    assert binary["body_hex"].startswith("ff 00 1b")
    assert binary["verdict"] == "fail"
    assert len(huge["body"]) < 5000
    assert "over 64 KiB" in huge["curl"]


def test_a_hundred_thousand_callbacks_page_by_number() -> None:  # how fast: benchmarks/bench_console.py
    from pytest_voicecb.log import record_of

    server = CallbackServer()
    feed = Feed()
    with server:
        request(server.port, "POST", PATH, json.dumps(PayloadFactory(3).answered()).encode())
    recorded = server.requests[0]
    record = record_of(recorded)
    for _ in range(100_000):
        feed.add(recorded, record)
    newest = feed.summaries(limit=200)
    older = feed.summaries(before=50_000, limit=200)
    fresh = feed.summaries(after=feed.last - 3)
    towards_now = feed.summaries(after=60_000, limit=3, oldest=True)
    assert [item["seq"] for item in fresh] == [100_000, 99_999, 99_998]
    assert newest[0]["seq"] == 100_000
    assert older[0]["seq"] == 49_999
    assert [item["seq"] for item in towards_now] == [60_003, 60_002, 60_001]
    assert newest[0]["verdict"] == "warn"  # the same body again: a duplicate


def test_a_poll_copies_only_what_is_new_and_rows_share_repeated_headers() -> None:
    from pytest_voicecb.console.feed import HEADERS, REPLY_HEADERS
    from pytest_voicecb.log import record_of

    server = CallbackServer()
    feed = Feed(capacity=50_000)
    factory = PayloadFactory(5)
    with server:
        for payload in factory.batch(3):
            request(server.port, "POST", PATH, json.dumps(payload).encode(), {"Content-Type": "application/json"})
    for recorded in server.requests * 20_000:
        feed.add(recorded, record_of(recorded))
    assert len(feed) == 50_000
    assert feed.summaries(limit=1)[0]["seq"] == 60_000
    assert [item["seq"] for item in feed.summaries(after=59_998, limit=200)] == [60_000, 59_999]
    assert [item["seq"] for item in feed.summaries(after=30_000, before=30_003)] == [30_002, 30_001]
    assert feed.summaries(after=0, before=10_001, limit=5) == []  # gone: only the newest 50,000 are kept
    assert [item["seq"] for item in feed.summaries(before=10_005, limit=5)] == [10_004, 10_003, 10_002, 10_001]
    rows = feed._window(59_990, None)
    assert rows[0][REPLY_HEADERS] is rows[1][REPLY_HEADERS]  # one copy of the repeated reply headers
    assert rows[0][HEADERS] is rows[3][HEADERS]


# ---- in the browser, against voicecb serve ------------------------------------------------------


@pytest.fixture
def serve() -> Iterator[tuple[int, str]]:
    """``voicecb serve --port 0 --console`` as a subprocess: (its port, the console URL it printed)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_voicecb", "serve", "--port", "0", "--console"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert proc.stdout is not None
        listening = proc.stdout.readline().decode()
        console_line = proc.stdout.readline().decode()
        assert listening.startswith("listening on "), listening
        assert console_line.startswith("live console: http://127.0.0.1:"), console_line
        port = int(listening.split(":")[2].split("/")[0])
        yield port, console_line.split()[2]
    finally:
        proc.terminate()
        proc.communicate(timeout=10)  # reads and closes its pipes


def test_the_console_shows_callbacks_live_in_chromium(serve: tuple[int, str], browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    port, url = serve
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(url)
    expect(page.locator("#status")).to_have_attribute("data-live", "1")
    factory = PayloadFactory(11)
    call = factory.answered()
    callid = next(iter(call.values()))["callid"]
    keys = factory.keypress(callid=callid)
    bodies = [json.dumps(call).encode(), json.dumps(keys).encode(), b'{"voicekey_callback": {"callid": 1}}']
    hostile = json.dumps({"voiceprompt_callback": {"callid": HOSTILE_CALLID}}).encode()
    for body in [*bodies, hostile]:
        request(port, "POST", PATH, body, {"Content-Type": "application/json"})
    # Rows appear without a reload, newest first.
    rows = page.locator("tr.row")
    expect(rows).to_have_count(4)
    expect(rows.first.locator("td.callid")).to_have_text(HOSTILE_CALLID)  # text, not markup
    assert page.evaluate("window.pwned") is None
    expect(page.locator("tr.row .badge.fail")).to_have_count(2)
    expect(page.locator("tr.row td.latency", has_text=" ms")).to_have_count(4)  # the reply's latency, once written
    # The reply column says what the reply means: the contract error serve answers is not "HTTP 200" alone.
    expect(page.locator("tr.row td.reply", has_text="result 0: acknowledged")).to_have_count(2)
    expect(page.locator("tr.row td.reply", has_text="result 1: an error")).to_have_count(2)
    expect(page.locator("#status")).to_contain_text(" UTC")  # one clock, labelled, as the rows' times
    expect(rows.first.locator("td").nth(1)).to_contain_text(" UTC")
    expect(page.locator("tr.row td", has_text="keypress")).to_have_count(2)  # the CLI's names, not "voicekey"
    expect(page.locator("#f-kind option", has_text="voicekey")).to_have_count(0)
    page.screenshot(path=str(tmp_path / "console-rows.png"))
    # Filter: failures only, then one call's story.
    page.select_option("#f-verdict", "fail")
    expect(rows).to_have_count(2)
    page.select_option("#f-verdict", "")
    page.fill("#f-callid", callid)
    expect(rows).to_have_count(2)
    page.check("#f-group")
    expect(page.locator("tr.group")).to_have_count(1)
    expect(page.locator("tr.group")).to_contain_text("2 callbacks")
    # Expand one: body, headers, reply, curl; copy the curl.
    rows.first.click()
    detail = page.locator("tr.detail")
    expect(detail.locator("pre.curl")).to_contain_text("curl -sS -i -X POST")
    expect(detail).to_contain_text('"result":0')
    expect(detail.locator("h4", has_text="reply: HTTP 200 after")).to_contain_text(" ms")
    detail.locator("button.copy").click()
    expect(detail.locator("button.copy")).to_have_attribute("data-copied", "1")
    assert page.evaluate("navigator.clipboard.readText()") == detail.locator("pre.curl").inner_text()
    page.screenshot(path=str(tmp_path / "console-expanded.png"))
    # Script the next reply from the page: the next callback gets an error.
    page.click("#script button[data-reply=error]")
    expect(page.locator("#scripted")).to_contain_text("the next 1 reply: an error")
    _, reply = request(port, "POST", PATH, bodies[0], {"Content-Type": "application/json"})
    assert json.loads(reply)["result"] == 1
    assert errors == []
    context.close()


def send_many(port: int, count: int) -> None:
    """``count`` valid callbacks over one keep-alive connection."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for payload in PayloadFactory(21).batch(count):
            conn.request("POST", PATH, json.dumps(payload).encode(), {"Content-Type": "application/json"})
            assert conn.getresponse().read()
    finally:
        conn.close()


def test_a_burst_between_polls_leaves_no_hole_and_paging_reaches_every_callback(
    serve: tuple[int, str], browser: Any, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    port, url = serve
    page, errors = open_live(browser, url)
    send_many(port, 5)
    rows = page.locator("tr.row")
    expect(rows).to_have_count(5)
    # 450 more arrive while the page waits for its next poll's answer: more than one poll brings (200).
    burst = {"armed": True}

    def hold_the_poll(route: Any) -> None:
        if burst.pop("armed", False):
            send_many(port, 450)
        route.continue_()

    page.route("**/_voicecb/api/callbacks?after=*", hold_the_poll)
    expect(rows.first.locator("td").first).to_have_text("455")

    def shown() -> list[int]:
        return [int(seq) for seq in page.locator("tr.row td:first-child").all_inner_texts()]

    # One unbroken run, newest first: the rows below the burst are let go rather than shown after a hole.
    assert shown() == list(range(455, 255, -1))
    expect(page.locator("#older")).to_be_visible()
    page.screenshot(path=str(tmp_path / "console-after-burst.png"))
    # Paging back reaches every callback the burst skipped over, and pauses the live view.
    page.click("#older")
    expect(rows.first.locator("td").first).to_have_text("255")
    assert shown() == list(range(255, 0, -1))
    expect(page.locator("#status")).to_have_attribute("data-mode", "paged")
    expect(page.locator("#older")).to_be_hidden()  # #1 is shown: nothing older
    expect(page.locator("#status")).to_contain_text("200 newer since")
    send_many(port, 3)  # while paused, new ones are counted but do not push the page away
    expect(page.locator("#status")).to_contain_text("203 newer since")
    assert shown()[0] == 255
    page.screenshot(path=str(tmp_path / "console-paged.png"))
    # "newer" pages towards now; the last page goes live again, with what arrived meanwhile.
    page.click("#newer")
    expect(page.locator("#status")).to_have_attribute("data-mode", "live")
    expect(rows.first.locator("td").first).to_have_text("458")
    assert errors == []
    page.close()


def test_mounts_are_checked_and_a_failing_mounted_app_is_a_500() -> None:
    def broken(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        raise RuntimeError("boom")

    with pytest.raises(ValueError, match="starting and ending with '/'"):
        CallbackServer(mounts={"_voicecb": broken})
    with pytest.raises(TypeError, match="WSGI app"):
        CallbackServer(mounts={"/_voicecb/": "not an app"})  # type: ignore[dict-item]
    with CallbackServer(mounts={"/_voicecb/": broken}) as server:
        status, body = request(server.port, "GET", PREFIX)
        assert status == 500
        assert b"the app mounted at /_voicecb/ failed" in body
        assert request(server.port, "POST", PATH, json.dumps(PayloadFactory(4).answered()).encode())[0] == 200
        assert len(server.requests) == 1
