"""The web console and the HTML report against their targets (issue 12), in one run.

1. ``voicecb serve --console`` with a browser-like watcher polling the console API (every 0.6 s, as the
   page does, plus one expanded row) against ``voicecb serve`` without it: 8 keep-alive senders, both as
   subprocesses, alternating rounds, median rates. Target: ratio >= 0.9.
2. ``Report.to_html()`` for 216 checks opened in headless Chromium (system chromium, Playwright): time to
   the load event. Target: <= 1 s.
3. The HTML file for 1,000 checks (the hostile handler's mix of failures, warnings and passes), next to
   the JSON report of the same checks. Target: < 1 MiB.

    python benchmarks/bench_console.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_serve_log import THREADS, load

from pytest_voicecb import PayloadFactory
from pytest_voicecb.conformance import run_conformance


def start(*args: str) -> tuple[subprocess.Popen[str], int, str | None]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_voicecb", "serve", "--port", "0", "--quiet", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    port = int(first.split()[2].rstrip(",").split(":")[2].split("/")[0])
    console = proc.stdout.readline().split()[2] if "--console" in args else None
    return proc, port, console


def watch(port: int, token: str, stop: threading.Event) -> int:
    """Poll the console API as the page does; returns the number of polls."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"X-Voicecb-Token": token}
    last, polls = 0, 0
    while not stop.is_set():
        conn.request("GET", f"/_voicecb/api/callbacks?after={last}&limit=200", headers=headers)
        data = json.loads(conn.getresponse().read())
        if data["items"]:
            last = data["items"][0]["seq"]
            conn.request("GET", f"/_voicecb/api/callbacks/{last}", headers=headers)
            conn.getresponse().read()
        polls += 1
        stop.wait(0.6)
    conn.close()
    return polls


def rate(args: list[str], bodies: list[list[bytes]], seconds: float) -> float:
    proc, port, console = start(*args)
    stop = threading.Event()
    watcher = None
    try:
        if console is not None:
            token = console.split("token=")[1]
            watcher = threading.Thread(target=watch, args=(port, token, stop), daemon=True)
            watcher.start()
        load(port, bodies, 0.3)
        return load(port, bodies, seconds) / seconds
    finally:
        stop.set()
        if watcher is not None:
            watcher.join(5)
        proc.terminate()
        proc.wait(10)


HOSTILE = b'<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'


def hostile_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
    if b"keypress" in body or b"prompt" in body:
        start_response("500 Oops", [("Content-Type", "text/html")])
        return [HOSTILE]
    start_response("200 OK", [("Content-Type", "application/json")])
    return [b'{"result":0,"errmsg":"OK"}']


def render_time(html: str) -> float | None:
    """Seconds from navigation to the load event in headless Chromium, or None without one."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if chromium is None:
        return None
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        file = Path(tmp) / "report.html"
        file.write_text(html, encoding="utf-8")
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        times = []
        for _ in range(3):
            page = browser.new_page()
            page.route(
                "**/*", lambda route: route.continue_() if route.request.url.startswith("file:") else route.abort()
            )
            page.goto(file.as_uri(), wait_until="load")
            times.append(page.evaluate("performance.timing.loadEventEnd - performance.timing.navigationStart") / 1000)
            page.close()
        browser.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()

    factory = PayloadFactory(1)
    bodies = [[factory.body(p) for p in factory.batch(2000)] for _ in range(THREADS)]
    rates: dict[str, list[float]] = {"serve": [], "serve --console, watched": []}
    for r in range(options.rounds):
        order = [("serve", []), ("serve --console, watched", ["--console"])]
        for name, args in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
            rates[name].append(rate(args, bodies, options.seconds))
        print(f"round {r + 1}: " + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items()), flush=True)
    median = {k: statistics.median(v) for k, v in rates.items()}
    ratio = median["serve --console, watched"] / median["serve"]
    print(f"\nvoicecb serve, {THREADS} keep-alive senders, {options.seconds:g} s x {options.rounds} rounds (median):")
    for key, value in median.items():
        print(f"  {key:<26} {value:8,.0f} callbacks/s")
    print(f"ratio console watched / no console: {ratio:.2f}; target >= 0.90: {'met' if ratio >= 0.9 else 'NOT met'}")

    report = run_conformance(hostile_app, seed=7)
    results = [dataclasses.replace(r, id=f"{r.id}-{n}") for n in range(4) for r in report.results]
    small = dataclasses.replace(report, results=tuple(results[:216]))
    big = dataclasses.replace(report, results=tuple(results[:1000]))
    began = time.perf_counter()
    page = small.to_html()
    built = time.perf_counter() - began
    seconds = render_time(page)
    shown = "no chromium/playwright here" if seconds is None else f"{seconds * 1000:.0f} ms"
    verdict = "" if seconds is None else f"; target <= 1000 ms: {'met' if seconds <= 1 else 'NOT met'}"
    print(f"\nreport of 216 checks: built in {built * 1000:.1f} ms, loaded in Chromium in {shown}{verdict}")
    html_size = len(big.to_html().encode())
    json_size = len(big.to_json().encode())
    print(
        f"report of 1,000 checks: HTML {html_size:,} bytes, JSON {json_size:,} bytes (ratio HTML/JSON "
        f"{html_size / json_size:.2f}); target < 1 MiB: {'met' if html_size < 1024 * 1024 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
