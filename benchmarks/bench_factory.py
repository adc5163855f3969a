"""Payload factory, plugin import and contract parsing, each against what a user would reach for instead.

(a) ``PayloadFactory.prompt()`` vs polyfactory's ``ModelFactory.build()`` for a model with the
    ``voiceprompt_callback`` fields (targets: >= 50x and >= 100,000 payloads/s), with Faker for scale:
    ``phone_number()`` alone, and a prompt callback built field by field from Faker providers.
(b) ``import pytest_voicecb.plugin`` in a fresh interpreter, from bytecode, after ``import pytest``
    (target: < 5 ms of its own, none of werkzeug / pydantic / faker imported).
(c) ``parse_callback`` of a valid prompt body (target: >= 100,000/s) vs the pydantic code a user
    would write: ``json.loads`` + ``model_validate`` of the inner object, and an envelope model's
    ``model_validate_json``.

    python benchmarks/bench_factory.py [--seconds 0.3]

Rates are the best of five timed rounds; compare the ratios, the absolute numbers depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any, Literal

from faker import Faker
from polyfactory.factories.pydantic_factory import ModelFactory
from pydantic import BaseModel

from pytest_voicecb.contract import CallbackError, PromptCallback, encode, parse_callback
from pytest_voicecb.factory import PayloadFactory

HEAVY = ("werkzeug", "pydantic", "faker")


class PromptFields(BaseModel):
    """The nine fields of a ``voiceprompt_callback`` as a user would declare them for polyfactory."""

    result: Literal["0", "1", "2"]
    accept_time: str
    call_from: str
    callid: str
    end_calltime: str
    fee: str
    mobile: str
    nationcode: str
    start_calltime: str


class PromptFieldsFactory(ModelFactory[PromptFields]):
    __model__ = PromptFields


class PromptFactory(ModelFactory[PromptCallback]):
    """polyfactory on our own model, patterns included (its cross-field rule makes many builds fail)."""

    __model__ = PromptCallback


class Envelope(BaseModel):
    voiceprompt_callback: PromptCallback


def rate(call: Callable[[], object], seconds: float) -> float:
    """Calls per second: the best of five rounds of about ``seconds`` each."""
    call()
    batch = 1
    while True:  # size a batch to take about seconds / 5
        began = time.perf_counter()
        for _ in range(batch):
            call()
        took = time.perf_counter() - began
        if took > seconds / 5:
            break
        batch *= 2
    batch = max(1, int(batch * seconds / took))
    best = float("inf")
    for _ in range(5):
        began = time.perf_counter()
        for _ in range(batch):
            call()
        best = min(best, time.perf_counter() - began)
    return batch / best


def faker_prompt(fake: Faker) -> Callable[[], dict[str, Any]]:
    """A prompt callback from Faker providers, what one would write with Faker instead of PayloadFactory."""

    def build() -> dict[str, Any]:
        start = fake.unix_time(start_datetime="-2y")
        accept = start + fake.random_int(3, 40)
        end = accept + fake.random_int(4, 150)
        return {
            "voiceprompt_callback": {
                "result": "0",
                "accept_time": str(int(accept)),
                "call_from": fake.numerify("0755########"),
                "callid": fake.uuid4(),
                "end_calltime": str(int(end)),
                "fee": str(-(-int(end - accept) // 60)),
                "mobile": fake.phone_number(),
                "nationcode": "86",
                "start_calltime": str(int(start)),
            }
        }

    return build


def valid_share(payloads: list[Any]) -> float:
    """The share of payloads the contract accepts."""
    ok = 0
    for payload in payloads:
        try:
            parse_callback(payload)
            ok += 1
        except CallbackError:
            pass
    return ok / len(payloads)


def build_or_fail(factory: type[ModelFactory[Any]]) -> Callable[[], object]:
    def build() -> object:
        try:
            return factory.build()
        except Exception as exc:  # polyfactory surfaces the model validator's error
            return exc

    return build


def import_cost(runs: int = 5) -> tuple[float, float, list[str]]:
    """(plugin's own ms, pytest's ms, heavy modules loaded), best of ``runs``, from bytecode."""
    with tempfile.TemporaryDirectory() as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        code = (
            "import sys, json; import pytest; import pytest_voicecb.plugin; "
            f"print(json.dumps([m for m in {list(HEAVY)!r} if m in sys.modules]))"
        )
        command = [sys.executable, "-X", "importtime", "-c", code]
        subprocess.run(command, env=env, capture_output=True, check=True)  # writes the bytecode
        own, base = float("inf"), float("inf")
        heavy: list[str] = []
        for _ in range(runs):
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            heavy = json.loads(done.stdout)
            total = {
                name.strip(): int(cumulative)
                for cumulative, name in re.findall(r"import time:\s+\d+ \|\s+(\d+) \|(.*)", done.stderr)
            }
            own = min(own, (total["pytest_voicecb.plugin"] + total.get("pytest_voicecb", 0)) / 1000)
            base = min(base, total["pytest"] / 1000)
    return own, base, heavy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=0.3, help="length of one timed round (default 0.3)")
    seconds = parser.parse_args().seconds

    factory = PayloadFactory(2024)
    ours = rate(factory.prompt, seconds)
    poly_plain = rate(PromptFieldsFactory.build, seconds)
    poly_model = rate(build_or_fail(PromptFactory), seconds)
    poly_best = max(poly_plain, poly_model)
    fake = Faker("zh_CN")
    fake.seed_instance(2024)
    faker_phone = rate(fake.phone_number, seconds)
    faker_payload = rate(faker_prompt(fake), seconds)

    poly_samples = [build_or_fail(PromptFactory)() for _ in range(200)]
    poly_valid = (
        valid_share([s.envelope() for s in poly_samples if isinstance(s, PromptCallback)])
        * sum(isinstance(s, PromptCallback) for s in poly_samples)
        / len(poly_samples)
    )
    plain_valid = valid_share([{"voiceprompt_callback": PromptFieldsFactory.build().model_dump()} for _ in range(200)])
    ours_valid = valid_share([factory.prompt() for _ in range(2000)])

    own_ms, pytest_ms, heavy = import_cost()

    body = encode(factory.prompt())
    inner = json.dumps(json.loads(body)["voiceprompt_callback"]).encode()
    parse = rate(lambda: parse_callback(body), seconds)
    loads_validate = rate(lambda: PromptCallback.model_validate(json.loads(body)["voiceprompt_callback"]), seconds)
    loads_validate_json = rate(
        lambda: PromptCallback.model_validate_json(json.dumps(json.loads(body)["voiceprompt_callback"])), seconds
    )
    envelope_json = rate(lambda: Envelope.model_validate_json(body), seconds)
    inner_json = rate(lambda: PromptCallback.model_validate_json(inner), seconds)

    def row(what: str, value: str, versus: str = "", ratio: str = "", verdict: str = "") -> None:
        print(f"{what:<44} {value:>13}  {versus:<46} {ratio:>8}  {verdict}")

    def per_s(x: float) -> str:
        return f"{x:,.0f}/s"

    def check(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    print(f"Python {sys.version.split()[0]}, {seconds:.2f} s rounds, best of 5\n")
    row("measure", "ours", "alternative", "ratio", "target")
    row(
        "(a) PayloadFactory.prompt()",
        per_s(ours),
        f"polyfactory, plain str fields {per_s(poly_plain)}",
        f"{ours / poly_plain:,.0f}x",
    )
    row(
        "",
        "",
        f"polyfactory, PromptCallback {per_s(poly_model)}",
        f"{ours / poly_model:,.0f}x",
        f">=50x and >=100,000/s: {check(ours / poly_best >= 50 and ours >= 100_000)}",
    )
    row("", "", f"Faker phone_number() alone {per_s(faker_phone)}", f"{ours / faker_phone:,.1f}x")
    row("", "", f"Faker-built prompt payload {per_s(faker_payload)}", f"{ours / faker_payload:,.1f}x")
    row(
        "    valid per parse_callback",
        f"{ours_valid:.0%}",
        f"polyfactory: plain {plain_valid:.0%}, PromptCallback {poly_valid:.0%} (rest raise)",
    )
    row(
        "(b) import pytest_voicecb.plugin (own)",
        f"{own_ms:.2f} ms",
        f"import pytest {pytest_ms:.1f} ms",
        f"{own_ms / pytest_ms:.1%}",
        f"<5 ms: {check(own_ms < 5)}",
    )
    row(
        "    heavy modules imported",
        ", ".join(heavy) or "none",
        "",
        "",
        f"none of {'/'.join(HEAVY)}: {check(not heavy)}",
    )
    row(
        "(c) parse_callback(valid prompt body)",
        per_s(parse),
        f"json.loads + model_validate {per_s(loads_validate)}",
        f"{parse / loads_validate:.2f}x",
        f">=100,000/s: {check(parse >= 100_000)}",
    )
    row("", "", f"json.loads + model_validate_json {per_s(loads_validate_json)}", f"{parse / loads_validate_json:.2f}x")
    row("", "", f"Envelope.model_validate_json {per_s(envelope_json)}", f"{parse / envelope_json:.2f}x")
    row("", "", f"(inner only) model_validate_json {per_s(inner_json)}", f"{parse / inner_json:.2f}x")


if __name__ == "__main__":
    main()
