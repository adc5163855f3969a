"""CallbackServer against the servers a user would pick instead, in one run, as ratios.

Three measurements (issue 3), each repeated for a few rounds on a shared, noisy machine; medians:

1. start() + stop() with idle keep-alive connections still open (target: under 50 ms), next to
   pytest-httpserver's HTTPServer and a bare werkzeug ``make_server(threaded=True)``.
2. Recording throughput and server CPU per callback: 8 threads in a separate process, each with one
   http.client keep-alive connection, POST distinct callbacks as fast as they are answered; the CPU
   time this process spends meanwhile is the server's (goal: <= 1.2x the stdlib floor's, with the same
   listen backlog of 1,024). Against a bare werkzeug threaded
   server answering a constant reply (target >= 0.9x), pytest-httpserver threaded (target >= 1x) and,
   as the floor of Python HTTP, a stdlib ``http.server`` keep-alive handler answering a constant reply.
   Every callback is counted: none lost, none duplicated.
3. Per-test overhead of a test that sends one callback and waits for it, voicecb_server against
   pytest-httpserver's httpserver fixture: two pytest runs of N such tests, minus a run of N empty tests.
4. Throughput under slow peers (issue 9): the senders of 2. while N connections (N = 0, 100, 1,000) hold
   an unfinished request head open, as a ratio to N = 0 (target >= 0.8 at N = 1,000).

Run: ``python benchmarks/bench_server.py [--rounds 5] [--requests 1500] [--tests 300] [--only 1,2,3,4]``
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import http.server
import itertools
import json
import logging
import os
import resource
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

from pytest_voicecb import contract
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.server import CallbackServer

OK_BODY = contract.encode(contract.ok_reply())
SENDERS = 8
SEED = 3

# A server under test: a context manager yielding (url, count of requests it has seen so far).
Serve = Callable[[], contextlib.AbstractContextManager[tuple[str, Callable[[], int], Any]]]


# ---- the servers ------------------------------------------------------------------------------------


@contextlib.contextmanager
def voicecb() -> Iterator[tuple[str, Callable[[], int], Any]]:
    with CallbackServer() as server:
        yield server.url, lambda: len(server.requests), server


@contextlib.contextmanager
def werkzeug_bare() -> Iterator[tuple[str, Callable[[], int], Any]]:
    """werkzeug's threaded server with HTTP/1.1, a WSGI app answering a constant reply."""
    from werkzeug.serving import WSGIRequestHandler, make_server
    from werkzeug.wrappers import Request, Response

    seen = itertools.count()
    counted = [0]

    @Request.application
    def app(request: Request) -> Response:
        request.get_data()
        counted[0] = next(seen) + 1
        return Response(OK_BODY, content_type="application/json")

    class Handler(WSGIRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_request(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, threaded=True, request_handler=Handler)
    with serving_in_a_thread(server, lambda: counted[0]) as served:
        yield served


@contextlib.contextmanager
def httpserver() -> Iterator[tuple[str, Callable[[], int], Any]]:
    """pytest-httpserver in threaded mode, answering the contract's OK as JSON."""
    from pytest_httpserver import HTTPServer

    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.expect_request("/voice/callback", method="POST").respond_with_json(contract.ok_reply())
    server.start()
    try:
        yield server.url_for("/voice/callback"), lambda: len(server.log), server
    finally:
        server.stop()


@contextlib.contextmanager
def stdlib_floor(reply: bytes = OK_BODY) -> Iterator[tuple[str, Callable[[], int], Any]]:
    """The floor: stdlib http.server, HTTP/1.1 keep-alive, read the body, answer a constant JSON ``reply``."""
    seen = itertools.count()
    counted = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            counted[0] = next(seen) + 1
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 1024  # a realistic listen backlog (socketserver's default is 5), as CallbackServer's

    server = Server(("127.0.0.1", 0), Handler)
    with serving_in_a_thread(server, lambda: counted[0]) as served:
        yield served


@contextlib.contextmanager
def serving_in_a_thread(
    server: socketserver.TCPServer, count: Callable[[], int]
) -> Iterator[tuple[str, Callable[[], int], Any]]:
    """``serve_forever`` in a thread; ``shutdown()`` (which waits out its 0.5 s poll) at the end."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/voice/callback", count, server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# ---- 1. start and stop ------------------------------------------------------------------------------


def idle_connections(url: str) -> list[Any]:
    """8 keep-alive connections that each sent one callback and sit idle, and 2 that never spoke."""
    parts = urlsplit(url)
    factory = PayloadFactory(1)
    conns: list[Any] = []
    for _ in range(8):
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=5)
        conn.request("POST", parts.path, body=factory.body(factory.prompt()))
        conn.getresponse().read()
        conns.append(conn)
    conns += [socket.create_connection((parts.hostname, parts.port or 80)) for _ in range(2)]
    time.sleep(0.1)  # let the server settle: stop() meets an idle server, not one busy accepting
    return conns


def start_stop(serve: Serve) -> float:
    """Seconds spent starting one server and stopping it with idle connections open."""
    serving = serve()
    started = time.perf_counter()
    url, _, _ = serving.__enter__()
    spent = time.perf_counter() - started
    conns = idle_connections(url)
    started = time.perf_counter()
    serving.__exit__(None, None, None)
    spent += time.perf_counter() - started
    for conn in conns:
        conn.close()
    return spent


# ---- 2. throughput ----------------------------------------------------------------------------------


def load(url: str, requests: int, senders: int) -> dict[str, Any]:
    """Run in a child process: ``senders`` threads, one keep-alive connection each, distinct callbacks."""
    factory = PayloadFactory(SEED)
    bodies = [factory.body(payload) for payload in factory.batch(requests)]
    parts = urlsplit(url)
    barrier = threading.Barrier(senders + 1)
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    lock = threading.Lock()

    def send(share: list[bytes]) -> None:
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
        got: Counter[int] = Counter()
        barrier.wait()
        for body in share:
            try:
                conn.request("POST", parts.path, body=body, headers={"Content-Type": "application/json"})
                response = conn.getresponse()
                response.read()
                got[response.status] += 1
            except (OSError, http.client.HTTPException) as exc:
                errors.append(repr(exc))
                conn.close()
        conn.close()
        with lock:
            statuses.update(got)

    threads = [threading.Thread(target=send, args=(bodies[i::senders],)) for i in range(senders)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    return {"elapsed": elapsed, "statuses": dict(statuses), "errors": errors[:3], "error_count": len(errors)}


def run_load(url: str, requests: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--load", url, "--requests", str(requests)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def throughput(name: str, serve: Serve, requests: int) -> tuple[float, float]:
    """(requests per second, server CPU seconds per 1,000 callbacks): the load runs in another process, so
    this process's CPU time over the run is the server's."""
    with serve() as (url, count, server):
        cpu = time.process_time()
        result = run_load(url, requests)
        cpu = time.process_time() - cpu
        if isinstance(server, CallbackServer):
            records = server.wait_for(requests, timeout=10)
            expected = [p["voiceprompt_callback"]["callid"] for p in PayloadFactory(SEED).batch(requests)]
            got = [r.fields["callid"] for r in records]
            lost, duplicated = len(set(expected) - set(got)), len(got) - len(set(got))
            if lost or duplicated or not all(r.valid for r in records):
                raise SystemExit(f"{name}: {lost} callbacks lost, {duplicated} duplicated")
        seen = count()
    if result["statuses"] != {"200": requests} or seen != requests:
        raise SystemExit(f"{name}: {seen} of {requests} requests seen, answers {result}")
    return requests / float(result["elapsed"]), cpu / requests * 1000


# ---- 4. throughput under slow peers -----------------------------------------------------------------

SLOW_COUNTS = (0, 100, 1000)


def raise_fd_limit(needed: int) -> None:
    """Raise RLIMIT_NOFILE's soft limit towards the hard one: N slow peers cost two descriptors each here."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < needed:
        raise SystemExit(f"needs {needed} file descriptors; raise the hard limit (ulimit -Hn)")


def throughput_with_slow_peers(slow: int, requests: int) -> float:
    """req/s of the 8 keep-alive senders while ``slow`` connections each hold half a request head."""
    with CallbackServer(max_connections=slow + 64, timeout=60, header_timeout=60) as server:
        held = []
        try:
            for _ in range(slow):
                sock = socket.create_connection((server.host, server.port))
                sock.sendall(b"POST /voice/callback HTTP/1.1\r\nHost: x\r\nX-Slow: ")
                held.append(sock)
            result = run_load(server.url, requests)
            records = server.wait_for(requests, timeout=10)
        finally:
            for sock in held:
                sock.close()
    if result["statuses"] != {"200": requests} or len(records) != requests:
        raise SystemExit(f"{slow} slow peers: {len(records)} of {requests} recorded, answers {result}")
    return requests / float(result["elapsed"])


# ---- 3. per-test overhead ---------------------------------------------------------------------------

TEST_PREAMBLE = """
import json, urllib.request
import pytest
from pytest_voicecb.factory import PayloadFactory

_factory = PayloadFactory(5)
PAYLOADS = _factory.batch({n})
BODIES = [_factory.body(p) for p in PAYLOADS]
CALLIDS = [p["voiceprompt_callback"]["callid"] for p in PAYLOADS]
OK = {{"result": 0, "errmsg": "OK"}}


def send(url, body):
    request = urllib.request.Request(url, data=body, headers={{"Content-Type": "application/json"}})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read()) == OK
"""

TEST_BODIES = {
    "empty": """
@pytest.mark.parametrize("i", range({n}))
def test_callback(i):
    assert BODIES[i]
""",
    "voicecb": """
@pytest.mark.parametrize("i", range({n}))
def test_callback(voicecb_server, i):
    send(voicecb_server.url, BODIES[i])
    voicecb_server.wait_for(callid=CALLIDS[i])
""",
    "httpserver": """
@pytest.mark.parametrize("i", range({n}))
def test_callback(httpserver, i):
    httpserver.expect_request("/voice/callback", method="POST").respond_with_json(OK)
    send(httpserver.url_for("/voice/callback"), BODIES[i])
    [(request, response)] = httpserver.log
    assert json.loads(request.get_data())["voiceprompt_callback"]["callid"] == CALLIDS[i]
    httpserver.check_assertions()
""",
}


TIMING_CONFTEST = """
import json, os, time
import pytest

TIMES = []


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    started = time.perf_counter()
    yield
    TIMES.append(time.perf_counter() - started)


def pytest_sessionfinish(session):
    with open(os.environ["VOICECB_BENCH_TIMES"], "w") as file:
        json.dump(TIMES, file)
"""


def pytest_run(directory: str, name: str, n: int) -> tuple[float, float]:
    """One pytest run in a subprocess: (time spent in its tests, their median), in seconds.

    The time in tests is every test's setup, call and teardown, so it includes the session-scoped
    server's start (in the first test) and stop (in the last); pytest's own start-up is left out.
    """
    path = os.path.join(directory, f"test_{name}.py")
    if not os.path.exists(path):
        with open(path, "w") as file:
            file.write(TEST_PREAMBLE.format(n=n) + TEST_BODIES[name].format(n=n))
        with open(os.path.join(directory, "conftest.py"), "w") as file:
            file.write(TIMING_CONFTEST)
    times_file = os.path.join(directory, f"{name}.json")
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "-p", "no:cacheprovider", path]
    env = {**os.environ, "VOICECB_BENCH_TIMES": times_file}
    done = subprocess.run(command, capture_output=True, text=True, cwd=directory, env=env, timeout=600)
    if done.returncode != 0 or f"{n} passed" not in done.stdout:
        raise SystemExit(f"pytest run {name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    with open(times_file) as file:
        times = json.load(file)
    return sum(times), statistics.median(times)


# ---- the report -------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--requests", type=int, default=1500, help="callbacks per throughput run")
    parser.add_argument("--tests", type=int, default=300, help="tests per pytest run")
    parser.add_argument("--pytest-rounds", type=int, default=3, help="pytest runs of each kind")
    parser.add_argument("--only", default="1,2,3,4", help="which measurements to run, e.g. 2,4")
    parser.add_argument("--load", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    only = {part.strip() for part in args.only.split(",")}
    if args.load:
        print(json.dumps(load(args.load, args.requests, SENDERS)))
        return
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no access log on stderr for any server
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores; {args.rounds} rounds, medians\n")

    if "1" in only:
        start_and_stop(args.rounds)
    if "2" in only:
        throughputs(args.rounds, args.requests)
    if "3" in only:
        per_test_overhead(args.tests, args.pytest_rounds)
    if "4" in only:
        slow_peers(args.rounds, args.requests)


def start_and_stop(rounds: int) -> None:
    contenders: dict[str, Serve] = {"voicecb": voicecb, "pytest-httpserver": httpserver, "werkzeug bare": werkzeug_bare}
    stops: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds * 2):
        for name, serve in contenders.items():
            stops[name].append(start_stop(serve))
    ours = median(stops["voicecb"])
    print("1. start() + stop(), 8 idle keep-alive + 2 silent connections open   (target: voicecb < 50 ms)")
    print(f"   {'server':<34}{'median ms':>10}{'max ms':>9}{'voicecb is':>14}")
    for name, times in stops.items():
        ratio = f"{median(times) / ours:.1f}x faster" if name != "voicecb" else ""
        print(f"   {name:<34}{median(times) * 1000:>10.1f}{max(times) * 1000:>9.1f}{ratio:>14}")


def throughputs(rounds: int, requests: int) -> None:
    servers: dict[str, Serve] = {
        "voicecb (recording, validating)": voicecb,
        "werkzeug bare threaded, constant": werkzeug_bare,
        "pytest-httpserver threaded": httpserver,
        "stdlib http.server keep-alive": stdlib_floor,
    }
    rates: dict[str, list[float]] = {name: [] for name in servers}
    cpus: dict[str, list[float]] = {name: [] for name in servers}
    order = list(servers)
    for round_ in range(rounds):
        for name in order[round_ % len(order) :] + order[: round_ % len(order)]:
            rate, cpu = throughput(name, servers[name], requests)
            rates[name].append(rate)
            cpus[name].append(cpu)
    ours, our_cpu = median(rates[order[0]]), median(cpus[order[0]])
    print(f"\n2. throughput: {SENDERS} keep-alive senders in another process, {requests} distinct callbacks a run")
    print("   (targets: >= 0.9x werkzeug bare, >= 1.0x pytest-httpserver; none lost or duplicated)")
    print(f"   {'server':<34}{'median req/s':>13}{'voicecb / it':>14}{'CPU s/1000':>12}{'voicecb / it':>14}")
    for name in servers:
        rate, cpu = median(rates[name]), median(cpus[name])
        print(f"   {name:<34}{rate:>13.0f}{ours / rate:>13.2f}x{cpu:>12.3f}{our_cpu / cpu:>13.2f}x")
    print(f"   voicecb: {requests * rounds} callbacks recorded, 0 lost, 0 duplicated, all valid")
    floor = median(cpus[order[-1]])
    ratios = [a / b for a, b in zip(cpus[order[0]], cpus[order[-1]], strict=True)]  # within a round: same load
    ratio = median(ratios)
    print(
        f"   server CPU per callback: voicecb {our_cpu:.3f} s per 1,000, the stdlib keep-alive constant server "
        f"{floor:.3f} (backlog 1,024); rounds' ratios {' '.join(f'{r:.2f}' for r in ratios)}"
    )
    print(f"   voicecb / stdlib CPU per callback: {ratio:.2f}x, median of the rounds (goal <= 1.2x): ", end="")
    print("MET" if ratio <= 1.2 else "NOT MET")


def per_test_overhead(n: int, pytest_rounds: int) -> None:
    with tempfile.TemporaryDirectory() as directory:
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in TEST_BODIES}
        for _ in range(pytest_rounds):
            for name in TEST_BODIES:
                runs[name].append(pytest_run(directory, name, n))
    total = {name: median([t for t, _ in values]) for name, values in runs.items()}
    typical = {name: median([m for _, m in values]) for name, values in runs.items()}
    overhead = {name: (total[name] - total["empty"]) / n * 1000 for name in TEST_BODIES}
    print(f"\n3. per-test overhead: a test that sends one callback and waits for it; {n} tests a pytest run")
    print("   (time in tests minus a run of empty tests, divided by n; target: voicecb <= pytest-httpserver)")
    print(f"   {'fixture':<34}{'s in tests':>11}{'median test ms':>16}{'overhead ms':>13}")
    for name, label in (
        ("empty", "(empty tests)"),
        ("voicecb", "voicecb_server"),
        ("httpserver", "httpserver (pytest-httpserver)"),
    ):
        extra = f"{overhead[name]:>13.2f}" if name != "empty" else ""
        print(f"   {label:<34}{total[name]:>11.2f}{typical[name] * 1000:>16.2f}{extra}")
    print(
        f"   voicecb overhead / pytest-httpserver's: {overhead['voicecb'] / overhead['httpserver']:.2f}x"
        f" (steady state, median test minus empty: "
        f"{(typical['voicecb'] - typical['empty']) / (typical['httpserver'] - typical['empty']):.2f}x)"
    )


def slow_peers(rounds: int, requests: int) -> None:
    raise_fd_limit(2 * max(SLOW_COUNTS) + 256)
    rates: dict[int, list[float]] = {n: [] for n in SLOW_COUNTS}
    for round_ in range(rounds):
        for n in SLOW_COUNTS[round_ % 3 :] + SLOW_COUNTS[: round_ % 3]:
            rates[n].append(throughput_with_slow_peers(n, requests))
    base = median(rates[0])
    print(f"\n4. throughput while N connections hold an unfinished request head; {SENDERS} keep-alive senders")
    print("   (target: >= 0.8x of N = 0 at N = 1,000)")
    print(f"   {'slow connections':<34}{'median req/s':>13}{'ratio to N=0':>14}   runs (req/s)")
    for n, values in rates.items():
        listing = " ".join(f"{v:.0f}" for v in values)
        print(f"   {n:<34,}{median(values):>13.0f}{median(values) / base:>13.2f}x   {listing}")


if __name__ == "__main__":
    main()
