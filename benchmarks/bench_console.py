"""The web console and the HTML report against their targets (issue 12), in one run.

1. ``voicecb serve --console`` with a browser-like watcher polling the console API (every 0.6 s, as the
   page does, plus one expanded row; in its own process, as a browser is) against ``voicecb serve``
   without it: 8 keep-alive senders, both as subprocesses, rounds alternating who goes first; the figure
   is the median of the rounds' ratios. Target: ratio >= 0.9.
2. ``Report.to_html()`` for 216 checks opened in headless Chromium (system chromium, Playwright): time to
   the load event. Target: <= 1 s.
3. The HTML file for 1,000 checks (the hostile handler's mix of failures, warnings and passes), next to
   the JSON report of the same checks. Target: < 1 MiB.

    python benchmarks/bench_console.py [--seconds 3] [--rounds 7]
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench_serve_log import THREADS, load

from pytest_voicecb import PayloadFactory
from pytest_voicecb.conformance import run_conformance
from tests.handlers.report_apps import failing_app, hostile_app


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


def watch(port: int, token: str) -> None:
    """Poll the console API as the page does, until killed (run in its own process, as a browser is)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    headers = {"X-Voicecb-Token": token}
    last = 0
    while True:
        conn.request("GET", f"/_voicecb/api/callbacks?after={last}&limit=200", headers=headers)
        data = json.loads(conn.getresponse().read())
        if data["items"]:
            last = data["items"][0]["seq"]
            conn.request("GET", f"/_voicecb/api/callbacks/{last}", headers=headers)
            conn.getresponse().read()
        time.sleep(0.6)


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rate(args: list[str], bodies: list[list[bytes]], seconds: float) -> tuple[float, float]:
    """(callbacks answered per second, the server's CPU microseconds per callback)."""
    proc, port, console = start(*args)
    watcher = None
    try:
        if console is not None:
            token = console.split("token=")[1]
            watcher = subprocess.Popen([sys.executable, __file__, "--watch", str(port), token])
        load(port, bodies, 0.3)
        cpu = cpu_seconds(proc.pid)
        count = load(port, bodies, seconds)
        return count / seconds, (cpu_seconds(proc.pid) - cpu) / max(count, 1) * 1e6
    finally:
        if watcher is not None:
            watcher.kill()
            watcher.wait(10)
        proc.terminate()
        proc.wait(10)


def poll_times() -> str:
    """What a browser's asks cost with 100,000 callbacks kept (the page polls every 0.6 s)."""
    from pytest_voicecb.console.feed import Feed
    from pytest_voicecb.log import record_of
    from pytest_voicecb.server import CallbackServer

    with CallbackServer() as server:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        for payload in PayloadFactory(3).batch(50):
            conn.request("POST", server.path, json.dumps(payload).encode(), {"Content-Type": "application/json"})
            conn.getresponse().read()
        conn.close()
    recorded = [(callback, record_of(callback)) for callback in server.requests]
    feed = Feed()
    began = time.perf_counter()
    for n in range(100_000):
        feed.add(*recorded[n % len(recorded)])
    feed.summaries(limit=1)
    kept = time.perf_counter() - began
    asks = {
        "live poll (200 new)": {"after": 99_800},
        "a page back (500)": {"before": 50_000, "limit": 500},
        "a page towards now (500)": {"after": 20_000, "limit": 500, "oldest": True},
        "filtered by callid": {"callid": "no-such-callid", "limit": 200},
    }
    timings = []
    for name, ask in asks.items():
        began = time.perf_counter()
        for _ in range(5):
            feed.summaries(**ask)  # type: ignore[arg-type]
        timings.append(f"{name} {(time.perf_counter() - began) / 5 * 1000:.1f} ms")
    return f"\nconsole feed, 100,000 callbacks kept (added and judged in {kept:.2f} s): " + ", ".join(timings)


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
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--watch", nargs=2, metavar=("PORT", "TOKEN"), help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.watch:
        watch(int(options.watch[0]), options.watch[1])
        return

    factory = PayloadFactory(1)
    bodies = [[factory.body(p) for p in factory.batch(2000)] for _ in range(THREADS)]
    rates: dict[str, list[float]] = {"serve": [], "serve --console, watched": []}
    cpus: dict[str, list[float]] = {"serve": [], "serve --console, watched": []}
    for r in range(options.rounds):
        order = [("serve", []), ("serve --console, watched", ["--console"])]
        for name, args in order if r % 2 == 0 else order[::-1]:  # alternate who goes first
            answered, cpu = rate(args, bodies, options.seconds)
            rates[name].append(answered)
            cpus[name].append(cpu)
        print(
            f"round {r + 1}: "
            + ", ".join(f"{k} {v[-1]:,.0f}/s ({cpus[k][-1]:.0f} us CPU each)" for k, v in rates.items()),
            flush=True,
        )
    median = {k: statistics.median(v) for k, v in rates.items()}
    cpu_median = {k: statistics.median(v) for k, v in cpus.items()}
    # Each round runs both back to back, so the ratio within a round cancels the shared machine's slow
    # swings in load; the median of those ratios is the figure (the ratio of medians is printed too).
    paired = [w / s for w, s in zip(rates["serve --console, watched"], rates["serve"], strict=True)]
    ratio = statistics.median(paired)
    print(f"\nvoicecb serve, {THREADS} keep-alive senders, {options.seconds:g} s x {options.rounds} rounds (median):")
    for key, value in median.items():
        print(f"  {key:<26} {value:8,.0f} callbacks/s   server CPU {cpu_median[key]:5.0f} us per callback")
    cpu_ratio = cpu_median["serve"] / cpu_median["serve --console, watched"]
    print(f"  ratio in each round: {', '.join(f'{r:.2f}' for r in paired)}")
    print(
        f"ratio console watched / no console (median of rounds): {ratio:.2f}; target >= 0.90: "
        f"{'met' if ratio >= 0.9 else 'NOT met'}"
    )
    print(
        f"  (ratio of the medians: {median['serve --console, watched'] / median['serve']:.2f}; by the server's CPU "
        f"per callback: {cpu_ratio:.2f})"
    )

    print(poll_times())

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
    failing = run_conformance(failing_app, seed=7)
    results = [dataclasses.replace(r, id=f"{r.id}-{n}") for n in range(4) for r in failing.results]
    worst = dataclasses.replace(failing, results=tuple(results[:1000]))
    html_size = len(worst.to_html().encode())
    json_size = len(worst.to_json().encode())
    print(
        f"  the same, every check failing with a 20 KB error page and a traceback: HTML {html_size:,} bytes, "
        f"JSON {json_size:,} bytes; target < 1 MiB: {'met' if html_size < 1024 * 1024 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
