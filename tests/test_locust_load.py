"""What the Locust user posts and how it judges replies, tested in-process (without importing Locust,
which patches the standard library for gevent)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from typing import Any

import pytest

from pytest_voicecb._text import media_type
from pytest_voicecb.client import Reply
from pytest_voicecb.conformance import verdict
from pytest_voicecb.conformance.verdict import Expect
from pytest_voicecb.contract import CODE, FAILURE, KEYPRESS, PROMPT, encode, parse_callback
from pytest_voicecb.factory import PayloadFactory
from pytest_voicecb.integrations.load import CallbackMix, Post, ReplyJudge, no_reply, stable

OK = b'{"result":0,"errmsg":"OK"}'
URL = "http://127.0.0.1:8000/voice/callback"


def test_the_mix_posts_every_kind_in_its_shares_with_duplicates() -> None:
    mix = CallbackMix(PayloadFactory(3), duplicate_share=0.2, failure_share=0.1)
    deliveries = [mix.next() for _ in range(5000)]
    names = Counter(d.name for d in deliveries)
    duplicates = [d for d in deliveries if d.duplicate]
    assert 0.17 < len(duplicates) / len(deliveries) < 0.23
    firsts = [d for d in deliveries if not d.duplicate]
    assert 0.07 < names[FAILURE] / len(firsts) < 0.13
    assert {PROMPT, CODE, KEYPRESS, FAILURE} <= set(names)
    assert all(d.name.endswith(" (duplicate)") for d in duplicates)
    bodies = {d.body for d in firsts}
    assert all(d.body in bodies for d in duplicates)  # a duplicate repeats a callback already sent
    results = Counter(parse_callback(d.body).model_dump().get("result") for d in firsts if d.name == PROMPT)
    assert set(results) == {"0", "1", "2"}
    assert results["0"] > results["1"] > results["2"]


def test_one_seed_replays_the_same_traffic() -> None:
    def traffic(seed: int) -> list[bytes]:
        mix = CallbackMix(PayloadFactory(seed))
        return [mix.next().body for _ in range(200)]

    assert traffic(1) == traffic(1)
    assert traffic(1) != traffic(2)


def test_shares_outside_zero_to_one_are_clear_errors() -> None:
    with pytest.raises(ValueError, match=r"duplicate_share must be a share from 0 to 1 .* got 1\.5"):
        CallbackMix(duplicate_share=1.5)
    with pytest.raises(ValueError, match="failure_share must be a share from 0 to 1"):
        CallbackMix(failure_share="0.1")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="memory must be a whole number"):
        CallbackMix(memory=0)


def delivery(duplicate: bool = False, valid: bool = True) -> Post:
    payload = PayloadFactory(5).prompt(result="1", accept_time="")
    return Post(PROMPT, PayloadFactory.body(payload), payload, duplicate, valid)


def test_every_delivery_of_the_mix_is_a_valid_callback_as_it_claims() -> None:
    mix = CallbackMix(PayloadFactory(8), duplicate_share=0.3)
    for _ in range(2000):
        sent = mix.next()
        assert sent.valid
        parse_callback(sent.body)
        assert sent.body == encode(sent.payload)  # the bytes the provider sends, as contract.encode writes them


def test_a_success_in_time_passes() -> None:
    assert ReplyJudge(URL)(delivery(), 200, OK, 0.01) is None


@pytest.mark.parametrize(
    ("status", "body", "duplicate", "expected"),
    [
        (200, b'{"result":"0","errmsg":"OK"}', False, "rule 1 (valid input gets success)"),
        (500, b"<html>Internal Server Error</html>", False, "HTTP status 500"),
        (200, b"", False, "rule 1"),
        (200, b'{"result":1,"errmsg":"callback 0d5e03138b71966ad2022cdf04896bdc was done"}', True, "rule 4"),
    ],
)
def test_a_reply_that_breaks_the_contract_fails_with_a_stable_cause(
    status: int, body: bytes, duplicate: bool, expected: str
) -> None:
    judge = ReplyJudge(URL)
    judge(delivery(), 200, OK, 0.01)  # a success remembered does not excuse anything else
    cause = judge(delivery(duplicate), status, body, 0.01)
    assert cause is not None
    assert expected in cause
    assert "0d5e0313" not in cause  # ids are blanked so Locust counts one cause, not one per callid


def test_a_remembered_success_is_still_held_to_the_deadline_and_only_for_valid_callbacks() -> None:
    judge = ReplyJudge(URL, deadline=2.0, strict=True)
    assert judge(delivery(), 200, OK, 0.01) is None
    assert judge(delivery(), 200, OK, 2.5) == "CONTRACT.md rule 6 (answer promptly): replied after the 2 s deadline"
    invalid = Post(PROMPT, b'{"voiceprompt_callback":{}}', {"voiceprompt_callback": {}}, valid=False)
    cause = judge(invalid, 200, OK, 0.01)  # strict: input that breaks the contract must be rejected
    assert cause is not None
    assert "rule 2" in cause or "rule 3" in cause


def test_a_header_rule_applies_to_load_replies_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The judge hands the verdict the reply's headers, so a rule on a header holds under load as in the
    suite, also for a success remembered with other headers."""
    real = verdict.reply_problems

    def with_a_header_rule(reply: Reply, expect: Expect, **given: Any) -> list[str]:
        problems = real(reply, expect, **given)
        if media_type(reply.content_type) != "application/json":
            problems.append(f"Content-Type {reply.content_type!r}: the contract reply is JSON")
        return problems

    monkeypatch.setattr(verdict, "reply_problems", with_a_header_rule)
    judge = ReplyJudge(URL)
    json_reply = {"Content-Type": "application/json; charset=utf-8", "Date": "Sun, 06 Dec 2026 12:00:00 GMT"}
    assert judge(delivery(), 200, OK, 0.01, json_reply) is None
    assert judge(delivery(), 200, OK, 0.01, {**json_reply, "Date": "Sun, 06 Dec 2026 12:00:01 GMT"}) is None
    cause = judge(delivery(), 200, OK, 0.01, {"Content-Type": "text/html", "Date": json_reply["Date"]})
    assert cause == (
        "CONTRACT.md rule 1 (valid input gets success): expected a success reply: "
        "Content-Type 'text/html': the contract reply is JSON"
    )


def test_the_reply_reproduces_with_curl() -> None:
    reply = ReplyJudge(URL).reply(delivery(), 500, {"X": "1"}, b"", 0.1)
    assert reply.curl().startswith(f"curl -sS -i -X POST {URL}")
    assert reply.headers["X"] == "1"


def test_a_bad_deadline_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="deadline must be a positive number of seconds"):
        ReplyJudge(URL, deadline=0)


def test_no_reply_and_stable_say_what_happened_safely() -> None:
    assert no_reply(ConnectionRefusedError(111, "Connection refused")) == (
        "no reply (the provider would retry): ConnectionRefusedError: [Errno 111] Connection refused"
    )
    assert no_reply(TimeoutError()) == "no reply (the provider would retry): TimeoutError()"
    assert stable("id 5675f2f4-e86f-4a7b-a6d0-bf54889c9492 at 1713638430\x1b[2J") == "id … at …\\x1b[2J"


def test_importing_the_load_module_does_not_import_locust() -> None:
    assert "locust" not in sys.modules
    assert "gevent" not in sys.modules


def test_the_plugin_and_the_integrations_package_import_none_of_the_libraries() -> None:
    code = """
import json, sys
import pytest_voicecb.plugin, pytest_voicecb.integrations
print(json.dumps(sorted({m.split(".")[0] for m in sys.modules})))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded = set(json.loads(done.stdout))
    assert loaded.isdisjoint({"locust", "gevent", "faker", "hypothesis", "factory"}), loaded
