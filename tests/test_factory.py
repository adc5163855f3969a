"""PayloadFactory: valid, realistic, reproducible payloads of every kind."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from datetime import datetime, timezone
from typing import Any

import phonenumbers
import pytest

from pytest_voicecb.contract import (
    CODE,
    FAILURE,
    FAILURE_CODES,
    KEYPRESS,
    KINDS,
    PROMPT,
    SHORT_NAMES,
    encode,
    parse_callback,
)
from pytest_voicecb.factory import MISSING, NATIONCODES, PayloadFactory, Variant
from pytest_voicecb.malformed import cases

HEX32 = re.compile(r"^[0-9a-f]{32}$")
UUID4 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
DECADE = (
    int(datetime(2020, 1, 1, tzinfo=timezone.utc).timestamp()),
    int(datetime(2030, 1, 1, tzinfo=timezone.utc).timestamp()),
)
DRAWS = 2000


def inner(payload: dict[str, Any]) -> dict[str, Any]:
    (fields,) = payload.values()
    assert isinstance(fields, dict)
    return fields


@pytest.fixture
def factory() -> PayloadFactory:
    return PayloadFactory(7)


def mixed(factory: PayloadFactory, n: int) -> list[dict[str, Any]]:
    """n payloads of every kind and outcome, in a fixed order."""
    builders = [factory.prompt, factory.code, factory.keypress, factory.failure, factory.unanswered, factory.failed]
    return [builders[i % len(builders)]() for i in range(n)]


# ---- validity -----------------------------------------------------------------------------------------


def test_every_payload_of_every_kind_and_outcome_passes_the_contract(factory: PayloadFactory) -> None:
    for payload in mixed(factory, 6 * DRAWS):
        parse_callback(payload)
        parse_callback(factory.body(payload))


def test_variants_are_valid_with_unique_readable_ids(factory: PayloadFactory) -> None:
    variants = factory.variants()
    assert all(isinstance(v, Variant) for v in variants)
    ids = [v.id for v in variants]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"(prompt|code|keypress|failure)/[a-z0-9_-]+", i) for i in ids), ids
    for variant in variants:
        assert parse_callback(variant.payload).kind == kind_of(variant.id)


def kind_of(variant_id: str) -> str:
    return SHORT_NAMES[variant_id.split("/")[0]]


def test_variants_cover_every_documented_shape(factory: PayloadFactory) -> None:
    variants = factory.variants()
    status = [inner(v.payload) for v in variants if kind_of(v.id) in (PROMPT, CODE)]
    assert {f["result"] for f in status} == {"0", "1", "2"}
    for result in ("1", "2"):
        times = {(f["accept_time"], f["end_calltime"]) for f in status if f["result"] == result}
        assert {("0", "0"), ("", "")} <= times
    for kind in KINDS:
        of_kind = [inner(v.payload) for v in variants if kind_of(v.id) == kind]
        assert any(f["call_from"] == "" for f in of_kind)
        assert any(f["call_from"] != "" for f in of_kind)
        assert any(HEX32.match(f["callid"]) for f in of_kind)
        assert any(UUID4.match(f["callid"]) for f in of_kind)
        assert any("future_field" in f for f in of_kind)
        assert {f["nationcode"] for f in of_kind} >= set(NATIONCODES)
    failure_codes = {inner(v.payload)["failure_code"] for v in variants if kind_of(v.id) == FAILURE}
    assert failure_codes == set(FAILURE_CODES)
    keys = {inner(v.payload)["keypress"] for v in variants if kind_of(v.id) == KEYPRESS}
    assert keys == set("0123456789*#")


@pytest.mark.parametrize("name", ["prompt", "voiceprompt_callback", "failure"])
def test_variants_of_one_kind(factory: PayloadFactory, name: str) -> None:
    variants = factory.variants(name)
    assert variants
    assert {kind_of(v.id) for v in variants} == {SHORT_NAMES.get(name, name)}


# ---- realism ------------------------------------------------------------------------------------------


def test_mobile_numbers_are_valid_mobiles_for_their_nationcode(factory: PayloadFactory) -> None:
    mobile_types = {phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE}
    drawn = [inner(p) for p in mixed(factory, DRAWS)]
    shares = Counter(fields["nationcode"] for fields in drawn)
    assert set(shares) == set(NATIONCODES)
    assert shares["86"] > DRAWS / 2  # China dominates, as it does for the provider
    drawn += [inner(factory.prompt(nationcode=code)) for code in NATIONCODES for _ in range(300)]
    for fields in drawn:
        number = phonenumbers.parse(f"+{fields['nationcode']}{fields['mobile']}")
        assert phonenumbers.is_valid_number(number), fields
        assert phonenumbers.number_type(number) in mobile_types, fields
        assert str(number.country_code) == fields["nationcode"]


def test_a_nationcode_without_a_plan_still_gets_a_digit_mobile(factory: PayloadFactory) -> None:
    fields = inner(factory.keypress(nationcode="49"))
    assert fields["nationcode"] == "49"
    assert fields["mobile"].isdigit()
    parse_callback(factory.keypress(nationcode="49"))


def test_answered_calls_have_consistent_times_in_this_decade_and_a_fee_per_started_minute(
    factory: PayloadFactory,
) -> None:
    for _ in range(DRAWS):
        fields = inner(factory.answered())
        start, accept, end = (int(fields[k]) for k in ("start_calltime", "accept_time", "end_calltime"))
        assert DECADE[0] <= start <= accept <= end < DECADE[1]
        assert 3 <= accept - start <= 40  # ringing
        assert 4 <= end - accept <= 150  # talking
        assert fields["fee"] == str(math.ceil((end - accept) / 60))


def test_unanswered_and_failed_calls_bill_nothing_and_hold_zero_or_empty_times(factory: PayloadFactory) -> None:
    times: Counter[str] = Counter()
    for build, result in ((factory.unanswered, "1"), (factory.failed, "2")):
        for _ in range(500):
            fields = inner(build())
            assert fields["result"] == result
            assert fields["fee"] == "0"
            assert fields["accept_time"] == fields["end_calltime"]
            times[fields["accept_time"]] += 1
            assert DECADE[0] <= int(fields["start_calltime"]) < DECADE[1]
    assert set(times) == {"0", ""}


def test_failure_reason_matches_failure_code(factory: PayloadFactory) -> None:
    codes: Counter[int] = Counter()
    for _ in range(DRAWS):
        fields = inner(factory.failure())
        assert fields["failure_reason"] == FAILURE_CODES[fields["failure_code"]].reason
        codes[fields["failure_code"]] += 1
    assert set(codes) == set(FAILURE_CODES)
    assert inner(factory.failure(failure_code=2))["failure_reason"] == "占线"
    assert inner(factory.failure(failure_code="8"))["failure_reason"] == "空号"  # a malformed code keeps its meaning
    assert inner(factory.failure(failure_code=14))["failure_reason"] == "其他"  # undocumented: "other"
    assert inner(factory.failure(failure_code=2, failure_reason="x"))["failure_reason"] == "x"


def test_callids_come_in_both_documented_formats_and_callers_are_digits_or_empty(factory: PayloadFactory) -> None:
    fields = [inner(p) for p in mixed(factory, DRAWS)]
    formats = Counter(
        "hex32" if HEX32.match(f["callid"]) else "uuid" if UUID4.match(f["callid"]) else "?" for f in fields
    )
    assert set(formats) == {"hex32", "uuid"}
    callers = Counter(
        "empty" if f["call_from"] == "" else "digits" if f["call_from"].isdigit() else "?" for f in fields
    )
    assert set(callers) == {"empty", "digits"}


# ---- overrides ----------------------------------------------------------------------------------------


def test_overrides_set_remove_and_add_fields(factory: PayloadFactory) -> None:
    fields = inner(factory.prompt(call_from="", fee=MISSING, future={"x": 1}))
    assert fields["call_from"] == ""
    assert "fee" not in fields
    assert fields["future"] == {"x": 1}
    assert repr(MISSING) == "MISSING"


@pytest.mark.parametrize("kind", KINDS)
def test_an_override_changes_only_the_field_it_names(kind: str) -> None:
    plain, overridden = PayloadFactory(3), PayloadFactory(3)
    for _ in range(50):
        a, b = inner(plain.build(kind)), inner(overridden.build(kind, call_from="1", mobile=MISSING))
        assert b.pop("call_from") == "1"
        assert "mobile" not in b
        assert {k: v for k, v in a.items() if k not in ("call_from", "mobile")} == b


@pytest.mark.parametrize("time_field", ["start_calltime", "accept_time", "end_calltime"])
def test_overriding_one_time_keeps_the_others_consistent(factory: PayloadFactory, time_field: str) -> None:
    for offset in range(0, 3000, 100):
        given = str(1_750_000_000 + offset)
        fields = inner(factory.prompt(**{time_field: given}))
        assert fields[time_field] == given
        parse_callback({PROMPT: fields})
        talk = int(fields["end_calltime"]) - int(fields["accept_time"])
        assert fields["fee"] == str(math.ceil(talk / 60))


def test_build_names_the_kind_short_or_full() -> None:
    assert PayloadFactory(4).build("keypress", keypress="#") == PayloadFactory(4).keypress(keypress="#")
    assert PayloadFactory(4).build("voice_failure_callback") == PayloadFactory(4).failure()
    assert PayloadFactory(4).build() == PayloadFactory(4).prompt()
    with pytest.raises(ValueError, match="unknown callback kind 'sms'"):
        PayloadFactory(4).build("sms")


def test_outcome_shorthands(factory: PayloadFactory) -> None:
    assert inner(factory.answered(result="2"))["result"] == "0"
    assert inner(factory.unanswered())["result"] == "1"
    assert inner(factory.failed())["result"] == "2"
    assert PayloadFactory(1)() == PayloadFactory(1).prompt()


# ---- batch --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["prompt", "code", "keypress", "failure", "voice_failure_callback"])
def test_batch_gives_distinct_callids(factory: PayloadFactory, kind: str) -> None:
    payloads = factory.batch(500, kind=kind, nationcode="86")
    assert len(payloads) == 500
    assert len({inner(p)["callid"] for p in payloads}) == 500
    assert all(inner(p)["nationcode"] == "86" for p in payloads)
    assert {next(iter(p)) for p in payloads} == {SHORT_NAMES.get(kind, kind)}


def test_batch_refuses_nonsense(factory: PayloadFactory) -> None:
    assert factory.batch(0) == []
    for bad in (-1, 2.0, True, "3"):
        with pytest.raises(ValueError, match="batch\\(n\\) needs a whole number >= 0"):
            factory.batch(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="do not override callid"):
        factory.batch(2, callid="x")
    with pytest.raises(ValueError, match="unknown callback kind 'sms'"):
        factory.batch(2, kind="sms")


# ---- seeding ------------------------------------------------------------------------------------------


def test_same_seed_same_payloads_different_seed_different_payloads() -> None:
    first, again, other = PayloadFactory(42), PayloadFactory(42), PayloadFactory(43)
    stream = mixed(first, 300) + first.batch(20, kind="failure")
    assert stream == mixed(again, 300) + again.batch(20, kind="failure")
    other_stream = mixed(other, 300) + other.batch(20, kind="failure")
    assert all(inner(a)["callid"] != inner(b)["callid"] for a, b in zip(stream, other_stream, strict=True))
    assert PayloadFactory(42).variants() == PayloadFactory(42).variants()


def test_seeds_may_be_any_value_with_a_stable_text() -> None:
    assert (
        PayloadFactory((1, "tests/test_x.py::test_a")).prompt()
        == PayloadFactory((1, "tests/test_x.py::test_a")).prompt()
    )
    assert (
        PayloadFactory((1, "tests/test_x.py::test_a")).prompt()
        != PayloadFactory((1, "tests/test_x.py::test_b")).prompt()
    )
    assert repr(PayloadFactory("abc")) == "PayloadFactory(seed='abc')"


def test_without_a_seed_a_random_one_is_drawn_and_kept() -> None:
    factory = PayloadFactory()
    assert isinstance(factory.seed, int)
    assert PayloadFactory(factory.seed).prompt() == factory.prompt()


def test_known_payload_for_a_known_seed() -> None:
    """Pins the stream: a change here changes every user's seeded payloads, so it must be deliberate."""
    assert encode(PayloadFactory(1).prompt()) == (
        b'{"voiceprompt_callback":{"result":"0","accept_time":"1717818611","call_from":"",'
        b'"callid":"145e268c-162b-486a-a488-4a4eb2b32f50","end_calltime":"1717818632","fee":"1",'
        b'"mobile":"13000132795","nationcode":"86","start_calltime":"1717818607"}}'
    )


# ---- body and the corpus -------------------------------------------------------------------------------


def test_body_is_the_compact_utf8_json_the_provider_sends(factory: PayloadFactory) -> None:
    payload = factory.failure(failure_code=11)
    body = factory.body(payload)
    assert body == encode(payload)
    assert b" " not in body
    assert "其他".encode() in body
    assert json.loads(body) == payload


def test_malformed_is_the_corpus_for_this_factorys_seed(factory: PayloadFactory) -> None:
    assert factory.malformed() == cases(PayloadFactory(7))
    assert factory.malformed("keypress") == cases(factory, "voicekey_callback")


def test_shapes_seen_in_the_wild_are_valid_variants_of_every_kind() -> None:
    import uuid

    factory = PayloadFactory(2021)
    variants = {variant.id: variant.payload for variant in factory.variants()}
    unix_epoch_in_uuid_ticks = 0x01B21DD213814000
    for short, kind in SHORT_NAMES.items():
        documented = list(factory.build(kind)[kind])
        callid = variants[f"{short}/callid-uuid1"][kind]["callid"]
        parsed = uuid.UUID(callid)
        assert parsed.version == 1
        assert str(parsed) == callid
        assert callid[24:30] == "525400", "the node of the real capture's range"
        seconds = (parsed.time - unix_epoch_in_uuid_ticks) / 10_000_000
        start = variants[f"{short}/callid-uuid1"][kind].get("start_calltime")
        if start is not None:
            assert 0 <= seconds - int(start) < 2, "the callid's time is the call's start"
        window = (datetime(2023, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc))
        assert window[0].timestamp() <= seconds < window[1].timestamp()
        for order in ("keys-reversed", "keys-rotated"):
            fields = variants[f"{short}/{order}"][kind]
            assert list(fields) != documented
            assert sorted(fields) == sorted(documented)
            parse_callback(variants[f"{short}/{order}"])
    assert [v.id for v in PayloadFactory(1).variants()] == list(variants), "ids do not depend on the seed"


def test_build_takes_a_field_named_kind_as_an_override() -> None:
    """Found by Hypothesis: ``build("prompt", kind=1)`` must set a field, not clash with the kind argument."""
    payload = PayloadFactory(1).build("prompt", kind=1)
    assert payload["voiceprompt_callback"]["kind"] == 1
