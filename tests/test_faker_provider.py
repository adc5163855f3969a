"""The Faker provider: Faker's seeding governs it, the factory's overrides work, factory_boy can use it."""

from __future__ import annotations

import json
from typing import Any

import factory
import factory.random
import pytest
from faker import Faker

from pytest_voicecb.contract import CODE, FAILURE, KEYPRESS, KINDS, PROMPT, parse_callback
from pytest_voicecb.integrations import _versions
from pytest_voicecb.integrations.faker_provider import VoiceCallbackProvider
from pytest_voicecb.values import MISSING

METHODS = {
    PROMPT: "voiceprompt_callback",
    CODE: "voicecode_callback",
    KEYPRESS: "voicekey_callback",
    FAILURE: "voice_failure_callback",
}


@pytest.fixture
def fake() -> Faker:
    fake = Faker("zh_CN")
    fake.add_provider(VoiceCallbackProvider)
    fake.seed_instance(2024)
    return fake


def inner(payload: dict[str, Any]) -> dict[str, Any]:
    (fields,) = payload.values()
    assert isinstance(fields, dict)
    return fields


@pytest.mark.parametrize(("kind", "method"), METHODS.items())
def test_each_method_builds_valid_callbacks_of_its_kind(fake: Faker, kind: str, method: str) -> None:
    for _ in range(300):
        payload = getattr(fake, method)()
        assert list(payload) == [kind]
        assert parse_callback(payload).kind == kind


def test_voice_callback_draws_every_kind_or_the_one_named(fake: Faker) -> None:
    drawn = {next(iter(fake.voice_callback())) for _ in range(200)}
    assert drawn == set(KINDS)
    assert all(list(fake.voice_callback("keypress")) == [KEYPRESS] for _ in range(20))
    assert list(fake.voice_callback(FAILURE)) == [FAILURE]
    with pytest.raises(ValueError, match="unknown callback kind 'bogus'"):
        fake.voice_callback("bogus")


def test_the_factorys_overrides_work_including_missing(fake: Faker) -> None:
    unanswered = inner(fake.voiceprompt_callback(result="1"))
    assert unanswered["result"] == "1"
    assert unanswered["fee"] == "0"
    parse_callback({PROMPT: unanswered})
    assert "fee" not in inner(fake.voicecode_callback(fee=MISSING))
    assert inner(fake.voicekey_callback(keypress="#"))["keypress"] == "#"
    failure = inner(fake.voice_failure_callback(failure_code=8))
    assert (failure["failure_code"], failure["failure_reason"]) == (8, "空号")
    assert inner(fake.voice_callback(callid="abc"))["callid"] == "abc"


def test_fakers_seed_governs_the_payloads_interleaved_with_other_fakes() -> None:
    def session(seed: int) -> list[Any]:
        fake = Faker("zh_CN")
        fake.add_provider(VoiceCallbackProvider)
        fake.seed_instance(seed)
        return [fake.name(), fake.voiceprompt_callback(), fake.phone_number(), fake.voice_callback(), fake.address()]

    assert session(1) == session(1)
    first, other = session(1), session(2)
    assert first[1] != other[1]
    assert first[3] != other[3]


def test_faker_seed_class_method_governs_the_shared_random() -> None:
    fake = Faker()
    fake.add_provider(VoiceCallbackProvider)
    Faker.seed(77)
    before = [fake.voice_callback() for _ in range(5)]
    Faker.seed(77)
    assert [fake.voice_callback() for _ in range(5)] == before


def test_seed_instance_after_first_use_rebinds_to_the_new_stream(fake: Faker) -> None:
    fake.voiceprompt_callback()
    fake.seed_instance(9)
    again = fake.voiceprompt_callback()
    fake.seed_instance(9)
    assert fake.voiceprompt_callback() == again


def test_locale_nationcode_takes_the_country_of_fakers_phone_numbers() -> None:
    for locale, code in (("ja_JP", "81"), ("zh_CN", "86"), ("en_GB", "44"), ("en_US", "1")):
        fake = Faker(locale)
        fake.add_provider(VoiceCallbackProvider)
        payload = fake.voiceprompt_callback(nationcode="locale")
        assert inner(payload)["nationcode"] == code, locale
        parse_callback(payload)


def test_a_locale_without_a_numbering_plan_is_a_clear_error() -> None:
    fake = Faker("de_DE")
    fake.add_provider(VoiceCallbackProvider)
    with pytest.raises(ValueError, match=r"Faker locale 'de_DE' is not of a country .* pass a nationcode"):
        fake.voicekey_callback(nationcode="locale")


class CallFactory(factory.DictFactory):
    """What a factory_boy user writes: a record holding a callback payload."""

    order = factory.Sequence(lambda n: n)
    callback = factory.Faker("voiceprompt_callback", result="1")
    any_callback = factory.Faker("voice_callback")


def test_factory_boy_uses_the_provider_and_its_reseeding() -> None:
    factory.Faker.add_provider(VoiceCallbackProvider)
    factory.random.reseed_random(5)
    first = CallFactory.build_batch(3)
    factory.random.reseed_random(5)
    assert [row["callback"] for row in CallFactory.build_batch(3)] == [row["callback"] for row in first]
    for row in first:
        assert inner(row["callback"])["result"] == "1"
        parse_callback(row["callback"])
        parse_callback(row["any_callback"])
    factory.random.reseed_random(6)
    assert CallFactory.build()["callback"] != first[0]["callback"]


def test_an_old_library_gets_a_message_naming_the_version_needed() -> None:
    with pytest.raises(ImportError, match=r'needs Faker>=4\.0 for .* found Faker 3\.0\.1.* pip install "Faker>=4\.0"'):
        _versions.require("Faker", "3.0.1", (4, 0), "faker", "the per-instance random")
    with pytest.raises(ImportError, match=r"found locust \(unknown version\)"):
        _versions.require("locust", "", (2, 0), "load", "FastHttpUser")
    _versions.require("hypothesis", "6.170.17", (6, 0), "hypothesis", "strategies")
    assert _versions.parse("2.0b1") == (2, 0)


FAKER_AND_PAYLOAD_TEST = """
import json
from pytest_voicecb.integrations.faker_provider import VoiceCallbackProvider

def test_both(faker, voicecb_payload):
    faker.add_provider(VoiceCallbackProvider)
    print("DRAWN", json.dumps([faker.voiceprompt_callback(), voicecb_payload()]))
"""


def test_the_faker_fixture_and_voicecb_payload_replay_under_one_randomly_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_both=FAKER_AND_PAYLOAD_TEST)

    def drawn(seed: int) -> list[Any]:
        result = pytester.runpytest("-p", "randomly", f"--randomly-seed={seed}", "-s", "-q")
        result.assert_outcomes(passed=1)
        line = next(line for line in result.outlines if line.startswith("DRAWN "))
        loaded: list[Any] = json.loads(line.removeprefix("DRAWN "))
        return loaded

    first = drawn(5)
    assert drawn(5) == first
    other = drawn(6)
    assert other[0] != first[0]
    assert other[1] != first[1]
