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

Rates are the best of five timed rounds (the Locust runs: one run of ``--locust-seconds`` each);
compare the ratios, the absolute numbers depend on the machine.
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one timed round")
    parser.add_argument("--examples", type=int, default=1000, help="examples per @given run")
    parser.add_argument("--locust-seconds", type=int, default=8, help="length of each Locust run")
    parser.add_argument("--only", default="faker,strategies,locust", help="comma-separated sections")
    args = parser.parse_args(argv)
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    print(f"Python {sys.version.split()[0]}, {args.seconds:.2f} s rounds, best of 5")
    print()
    row("measure", "ours", "alternative", "ratio", "target")
    if "faker" in sections:
        bench_faker(args.seconds)
    if "strategies" in sections:
        bench_strategies(args.examples)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
