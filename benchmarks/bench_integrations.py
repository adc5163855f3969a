"""The Faker, Hypothesis and Locust integrations, each against what a user would write instead, same run.

(a) ``fake.voiceprompt_callback()`` (``VoiceCallbackProvider``) vs the same dict built field by field
    from Faker's own providers (times in order, fee from talk time, empty caller 30% of the time,
    callid as hex or UUID, nationcode by the factory's weights, a mobile number from its numbering
    plan). Target: >= 10x.
(b) A valid callback drawn from ``strategies.callbacks()`` inside ``@given`` vs ``PayloadFactory.prompt()``
    inside the same ``@given`` overhead (``st.integers()`` drawn, the factory called). Target: <= 2x.
(c) Callbacks per second of one Locust worker running ``VoiceCallbackUser`` (every reply judged by the
    contract) vs Locust's plain ``FastHttpUser`` posting one constant body, against the same fast
    server on loopback, one process each, in turn. Target: ratio >= 0.8.

    python benchmarks/bench_integrations.py [--seconds 0.3] [--only faker,strategies,locust]

(a) and (b) count CPU time of this process (best of five rounds, and of three runs), so that other work
on a shared machine does not skew the ratio. (c) counts requests per CPU second of the Locust process
while the test runs, the best of ``--rounds`` alternating runs of ``--locust-seconds`` each. Compare the
ratios; absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

TARGETS = {"faker": 10.0, "strategies": 2.0, "locust": 0.8}


def rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per second: the best of five rounds of about ``seconds`` each."""
    call()
    batch = 1
    while True:  # size a batch to take about seconds / 5
        began = time.process_time()
        for _ in range(batch):
            call()
        took = time.process_time() - began
        if took > seconds / 5:
            break
        batch *= 2
    batch = max(1, int(batch * seconds / took))
    best = float("inf")
    for _ in range(5):
        began = time.process_time()
        for _ in range(batch):
            call()
        best = min(best, time.process_time() - began)
    return batch / best


def row(measure: str, ours: str, alternative: str, ratio: str, target: str) -> None:
    print(f"{measure:<44} {ours:>12}  {alternative:<44} {ratio:>7}  {target}")


# ---- (a) Faker ----------------------------------------------------------------------------------------


def bench_faker(seconds: float) -> None:
    from faker import Faker

    from pytest_voicecb.factory import _MOBILE_PLANS
    from pytest_voicecb.integrations.faker_provider import VoiceCallbackProvider

    fake = Faker("zh_CN")
    fake.add_provider(VoiceCallbackProvider)
    fake.seed_instance(1)
    # The factory's numbering plans (nationcode weights, mobile prefixes and lengths), for Faker to draw from.
    weights = OrderedDict((plan.nationcode, plan.weight / 100) for plan in _MOBILE_PLANS)
    patterns = {plan.nationcode: [p + "#" * plan.digits for p in plan.prefixes] for plan in _MOBILE_PLANS}

    def by_hand() -> dict[str, Any]:
        """The same answered prompt callback, field by field from Faker's providers."""
        start = fake.random_int(1_672_531_200, 1_767_225_600)
        nationcode = fake.random_element(weights)
        accept = start + fake.random_int(3, 40)
        end = accept + fake.random_int(4, 150)
        return {
            "voiceprompt_callback": {
                "result": "0",
                "accept_time": str(accept),
                "call_from": "" if fake.boolean(30) else fake.numerify("0755########"),
                "callid": fake.uuid4() if fake.boolean() else fake.hexify("^" * 32),
                "end_calltime": str(end),
                "fee": str(-(-(end - accept) // 60)),
                "mobile": fake.numerify(fake.random_element(patterns[nationcode])),
                "nationcode": nationcode,
                "start_calltime": str(start),
            }
        }

    ours = rate(fake.voiceprompt_callback, seconds)
    theirs = rate(by_hand, seconds)
    ratio = ours / theirs
    verdict = "ok" if ratio >= TARGETS["faker"] else "MISSED"
    row(
        "(a) fake.voiceprompt_callback()",
        f"{ours:,.0f}/s",
        f"Faker field by field {theirs:,.0f}/s",
        f"{ratio:.1f}x",
        f">={TARGETS['faker']:g}x: {verdict}",
    )


# ---- (b) Hypothesis --------------------------------------------------------------------------------


def per_example(strategy: Any, body: Callable[[Any], object], examples: int) -> float:
    """Seconds per example of ``@given(strategy)`` running ``body``: the best of three runs."""
    from hypothesis import HealthCheck, Phase, given, settings

    calls = 0

    @settings(
        max_examples=examples,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def run(value: Any) -> None:
        nonlocal calls
        calls += 1
        body(value)

    best = float("inf")
    for _ in range(3):
        calls = 0
        began = time.process_time()
        run()
        best = min(best, (time.process_time() - began) / max(calls, 1))
    return best


def bench_strategies(examples: int) -> None:
    from hypothesis import strategies as st

    from pytest_voicecb.contract import parse_callback
    from pytest_voicecb.factory import PayloadFactory
    from pytest_voicecb.integrations.strategies import callbacks

    ours = per_example(callbacks("prompt"), lambda payload: None, examples)
    theirs = per_example(st.integers(0, 2**32 - 1), lambda seed: PayloadFactory(seed).prompt(), examples)
    ratio = ours / theirs
    verdict = "ok" if ratio <= TARGETS["strategies"] else "MISSED"
    row(
        "(b) @given(callbacks('prompt')) per example",
        f"{ours * 1e6:,.0f} µs",
        f"@given(integers) + PayloadFactory {theirs * 1e6:,.0f} µs",
        f"{ratio:.2f}x",
        f"<={TARGETS['strategies']:g}x: {verdict}",
    )
    any_kind = per_example(callbacks(), parse_callback, examples)
    row("    @given(callbacks()) + parse_callback", f"{any_kind * 1e6:,.0f} µs", "(every kind, validated)", "", "")


# ---- (c) Locust ------------------------------------------------------------------------------------

# Both locustfiles print the CPU seconds their process spent between the start and the stop of the
# test, so the comparison leaves out start-up (importing pydantic is ours alone, and not per request).
CPU_METER = """
import time
from locust import events

_began = []

@events.test_start.add_listener
def _start(**kwargs):
    _began.append(time.process_time())

@events.test_stop.add_listener
def _stop(**kwargs):
    print("CPU_SECONDS", time.process_time() - _began[0], flush=True)
"""

OURS_LOCUSTFILE = (
    CPU_METER
    + """
from pytest_voicecb.integrations.locust_users import VoiceCallbackUser
"""
)

PLAIN_LOCUSTFILE = (
    CPU_METER
    + """
from locust import task
from locust.contrib.fasthttp import FastHttpUser

BODY = {body!r}


class PlainUser(FastHttpUser):
    @task
    def post(self):
        self.client.post("/voice/callback", data=BODY, headers={{"Content-Type": "application/json"}})
"""
)

OK_REPLY = b'{"result":0,"errmsg":"OK"}'


def serve(port: int) -> None:
    """A keep-alive HTTP/1.1 server answering every request with the success reply (asyncio, one process):
    fast enough that the Locust worker, not the server, sets the pace."""
    import asyncio

    response = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
        + str(len(OK_REPLY)).encode()
        + b"\r\n\r\n"
        + OK_REPLY
    )

    class Answer(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                head, sep, rest = self.buffer.partition(b"\r\n\r\n")
                if not sep:
                    return
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                if len(rest) < length:
                    return
                self.buffer = rest[length:]
                self.transport.write(response)

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Answer, "127.0.0.1", port)
        await server.serve_forever()

    asyncio.run(main())


def locust_rate(locustfile: str, host: str, seconds: int, users: int) -> tuple[float, int]:
    """Requests per CPU second of one Locust process during the test, and its failure count. CPU
    seconds, not wall seconds: on a shared machine the worker does not always have a core, and what is
    measured is how much work one request costs the worker."""
    import json
    import subprocess

    command = [sys.executable, "-m", "locust", "-f", locustfile, "--headless", "--only-summary", "--json"]
    command += ["-u", str(users), "-r", str(users), "-t", f"{seconds}s", "--host", host, "--loglevel", "ERROR"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    lines = done.stdout.splitlines()
    used = float(next(line.split()[1] for line in lines if line.startswith("CPU_SECONDS")))
    entries = json.loads("\n".join(lines[lines.index("[") : lines.index("]") + 1]))
    requests = sum(entry["num_requests"] for entry in entries)
    failures = sum(entry["num_failures"] for entry in entries)
    return requests / used, failures


def bench_locust(seconds: int, users: int, rounds: int) -> None:
    import socket
    import subprocess
    import tempfile
    from pathlib import Path

    from pytest_voicecb.factory import PayloadFactory

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port)])
    try:
        with tempfile.TemporaryDirectory() as folder:
            plain, ours_file = Path(folder) / "plain_locustfile.py", Path(folder) / "ours_locustfile.py"
            plain.write_text(PLAIN_LOCUSTFILE.format(body=PayloadFactory(1).body(PayloadFactory(1).prompt())))
            ours_file.write_text(OURS_LOCUSTFILE)
            host = f"http://127.0.0.1:{port}"
            time.sleep(0.5)  # the server binds
            ours_rates, theirs_rates, failures = [], [], 0
            for _ in range(rounds):  # alternate, best of each, against the machine's noise
                rate, failed = locust_rate(str(ours_file), host, seconds, users)
                ours_rates.append(rate)
                failures += failed
                theirs_rates.append(locust_rate(str(plain), host, seconds, users)[0])
            ours, theirs = max(ours_rates), max(theirs_rates)
    finally:
        server.terminate()
        server.wait(5)
    ratio = ours / theirs
    verdict = "ok" if ratio >= TARGETS["locust"] else "MISSED"
    row(
        "(c) VoiceCallbackUser, one worker (per CPU s)",
        f"{ours:,.0f}/s",
        f"plain FastHttpUser, constant body {theirs:,.0f}/s",
        f"{ratio:.2f}",
        f">={TARGETS['locust']:g}: {verdict}",
    )
    row("    contract failures in our runs", f"{failures}", "(every reply judged; success verdicts remembered)", "", "")
    pairs = zip(ours_rates, theirs_rates, strict=True)
    print("    every run, ours / plain:", " ".join(f"{o:,.0f}/{t:,.0f}" for o, t in pairs))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one timed round")
    parser.add_argument("--examples", type=int, default=1000, help="examples per @given run")
    parser.add_argument("--locust-seconds", type=int, default=8, help="length of each Locust run")
    parser.add_argument("--users", type=int, default=10, help="Locust users per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating Locust runs of each kind")
    parser.add_argument("--only", default="faker,strategies,locust", help="comma-separated sections")
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    print(f"Python {sys.version.split()[0]}, {args.seconds:.2f} s rounds, best of 5")
    print()
    row("measure", "ours", "alternative", "ratio", "target")
    if "faker" in sections:
        bench_faker(args.seconds)
    if "strategies" in sections:
        bench_strategies(args.examples)
    if "locust" in sections:
        bench_locust(args.locust_seconds, args.users, args.rounds)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
