"""``voicecb serve`` with ``--log`` (each callback fsynced before its reply) against the same server without it.

A fifth configuration prints to a pipe nobody reads: the server must keep answering (lines are dropped).

Load: 8 threads, each a keep-alive ``http.client`` connection posting distinct valid callbacks for a fixed
time. Each configuration runs as a subprocess, as users run it, in alternating rounds; the median rate of
each is compared. Target: the logged rate is at least half the unlogged one.

    python benchmarks/bench_serve_log.py [--seconds 3] [--rounds 3]
"""

from __future__ import annotations

import argparse
import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from pytest_voicecb import PayloadFactory

THREADS = 8
PATH = "/voice/callback"


def start(*args: str, drain: bool = True) -> tuple[subprocess.Popen[str], int]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_voicecb", "serve", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    first = proc.stdout.readline()
    if not first.startswith("listening on "):
        proc.kill()
        raise SystemExit(f"voicecb serve did not start: {first!r}")
    port = int(first.split()[2].rstrip(",").split(":")[2].split("/")[0])
    if drain:  # read every printed line, as a terminal would
        threading.Thread(target=lambda: [None for _ in proc.stdout or ()], daemon=True).start()
    return proc, port


def load(port: int, bodies: list[list[bytes]], seconds: float) -> int:
    """Requests answered 200 by all threads in ``seconds``."""
    counts = [0] * THREADS
    go = threading.Event()
    end = [0.0]

    def sender(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        mine = bodies[i]
        n = 0
        go.wait()
        while time.perf_counter() < end[0]:
            conn.request("POST", PATH, mine[n % len(mine)], {"Content-Type": "application/json"})
            response = conn.getresponse()
            response.read()
            if response.status == 200:
                n += 1
        counts[i] = n
        conn.close()

    threads = [threading.Thread(target=sender, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    end[0] = time.perf_counter() + seconds
    go.set()
    for thread in threads:
        thread.join()
    return sum(counts)


def run(args: list[str], bodies: list[list[bytes]], seconds: float, drain: bool = True) -> float:
    proc, port = start(*args, drain=drain)
    try:
        load(port, bodies, 0.3)  # warm up: connections, imports, first fsyncs
        return load(port, bodies, seconds) / seconds
    finally:
        proc.terminate()
        proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    factory = PayloadFactory(1)
    bodies = [[factory.body(p) for p in factory.batch(2000)] for _ in range(THREADS)]
    rates: dict[str, list[float]] = {
        "no log": [],
        "--log": [],
        "no log, printing": [],
        "--log, printing": [],
        "printing, unread": [],
    }
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(options.rounds):
            log = os.path.join(tmp, f"round{r}.jsonl")
            rates["no log"].append(run(["--quiet"], bodies, options.seconds))
            rates["--log"].append(run(["--quiet", "--log", log], bodies, options.seconds))
            rates["no log, printing"].append(run([], bodies, options.seconds))
            rates["--log, printing"].append(run(["--log", log + ".2"], bodies, options.seconds))
            rates["printing, unread"].append(run([], bodies, options.seconds, drain=False))
            with open(log, "rb") as f:
                logged = sum(1 for _ in f)
            print(
                f"round {r + 1}: "
                + ", ".join(f"{k} {v[-1]:,.0f}/s" for k, v in rates.items())
                + f" ({logged:,} lines logged)",
                flush=True,
            )
    median = {k: statistics.median(v) for k, v in rates.items()}
    print(f"\nvoicecb serve, {THREADS} keep-alive senders, {options.seconds:g} s x {options.rounds} rounds (median):")
    for key, value in median.items():
        print(f"  {key:<18} {value:8,.0f} callbacks/s")
    quiet = median["--log"] / median["no log"]
    printing = median["--log, printing"] / median["no log, printing"]
    print(
        f"ratio --log / no log: {quiet:.2f} (quiet), {printing:.2f} (printing a line per callback); "
        f"target >= 0.50: {'met' if min(quiet, printing) >= 0.5 else 'NOT met'}"
    )
    unread = median["printing, unread"] / median["no log, printing"]
    print(f"ratio stdout never read / read: {unread:.2f} (a stuck stdout drops lines, never replies)")


if __name__ == "__main__":
    main()
