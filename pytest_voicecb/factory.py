"""Realistic, seeded callback payloads: valid ones, every documented variant, and the malformed corpus.

Payloads are plain dicts shaped exactly as the provider sends them (``{kind: {...}}``). They are
built with ``random.Random`` from numbering plans and call timings, not with Faker: a payload costs
a few microseconds, so a test can build thousands, and the same seed always builds the same ones.

Every payload of a kind draws the same number of random values whatever the overrides, so an
override changes only the field it names (and the fields that must agree with it), never the rest
of the payload or the payloads built after it. Only ``random()`` and ``getrandbits()`` are used,
whose streams Python keeps stable across versions.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, NamedTuple

from pytest_voicecb.contract import (
    ANSWERED,
    CODE,
    FAILURE,
    FAILURE_CODES,
    KEYPRESS,
    PROMPT,
    CallbackKind,
    encode,
    kind_info,
    registered_kinds,
)
from pytest_voicecb.malformed import cases
from pytest_voicecb.values import MISSING, Variant

if TYPE_CHECKING:
    from collections.abc import Callable

    from pytest_voicecb.values import Case

__all__ = ["MISSING", "NATIONCODES", "PayloadFactory", "Variant"]


class _NumberingPlan(NamedTuple):
    """A mobile numbering plan: ``prefix`` + ``digits`` random digits is a valid mobile number."""

    nationcode: str
    weight: int
    prefixes: tuple[str, ...]
    digits: int


# Every number built from these plans is a valid mobile number for its nationcode: the prefixes
# were chosen against libphonenumber's metadata, and tests/test_factory.py checks many draws with
# the phonenumbers package (valid, and of type mobile).
# fmt: off
_MOBILE_PLANS: tuple[_NumberingPlan, ...] = (
    _NumberingPlan("86", 80, ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                     "155", "156", "157", "158", "159", "173", "175", "176", "177", "178", "180", "181",
                     "182", "183", "185", "186", "187", "188", "189", "198", "199"), 8),
    _NumberingPlan("852", 5, ("61", "63", "64", "65", "69", "94", "96", "97"), 6),
    # 555 exchanges: the conventional fictitious range, still valid numbers for their area codes.
    _NumberingPlan("1", 4, ("212555", "415555", "646555", "312555", "206555", "617555", "512555", "305555"), 4),
    _NumberingPlan("65", 3, ("81", "82", "83", "84", "85", "86", "87", "88", "90", "91", "92", "93", "94", "96",
                    "97", "98"), 6),
    _NumberingPlan("44", 3, ("7400", "7712", "7800", "7900", "7912", "7922", "7944", "7984"), 6),
    _NumberingPlan("81", 3, ("901", "902", "903", "905", "906", "908", "801", "802", "803", "805", "806", "701",
                    "702", "703", "705"), 7),
    _NumberingPlan("91", 2, ("98", "97", "99", "96", "95", "94", "93", "90", "70", "84"), 8),
)
# fmt: on
_PLAN_BY_CODE: dict[str, _NumberingPlan] = {plan.nationcode: plan for plan in _MOBILE_PLANS}
# One entry per unit of weight, so a weighted draw is one ``random()`` and an index.
_WEIGHTED_PLANS: tuple[_NumberingPlan, ...] = tuple(plan for plan in _MOBILE_PLANS for _ in range(plan.weight))
NATIONCODES: tuple[str, ...] = tuple(_PLAN_BY_CODE)
"""The nationcodes the factory has numbering plans for (others get plain digits)."""

# Caller ids a business shows: empty (the seed document's example), a landline with its area
# code, or a 400/95 service number. All digits, as the contract says.
_CALLERS: tuple[tuple[str, int, int], ...] = tuple(
    (prefix, 10 ** (digits - 1), 9 * 10 ** (digits - 1))
    for prefix, digits in (("0755", 8), ("010", 8), ("021", 8), ("400", 7), ("95", 6))
)
_EMPTY_CALLER_SHARE = 0.3

# Calls happen in a fixed window (2023-01-01 to 2026-01-01 UTC) so a seed reproduces the same
# payloads on any day.
_EPOCH_FROM, _EPOCH_TO = 1_672_531_200, 1_767_225_600
_EPOCH_SPAN = _EPOCH_TO - _EPOCH_FROM
_RING_MIN, _RING_SPAN = 3, 38  # ringing: 3 to 40 seconds
_TALK_MIN, _TALK_SPAN = 4, 147  # a notification is read out, maybe twice: 4 to 150 seconds
_SHORT_TALK_SPAN = 56  # the typical set's short call: at most 59 seconds, one billed minute
_FAILURE_CODE_LIST = tuple(FAILURE_CODES)
_KEYS = "0123456789" + "0123456789" + "*#"
_OTHER_REASON = FAILURE_CODES[11].reason


class PayloadFactory:
    """Builds valid callback payloads of every registered kind from one seeded random stream.

    ``PayloadFactory(seed)`` and another ``PayloadFactory(seed)`` build identical payloads in the
    same order. ``seed`` may be anything with a stable ``str()`` (the plugin passes ``(seed, test id)``).
    """

    is_typical = False
    """Whether incidental values come from the typical set only (see ``typical()``)."""

    def __init__(self, seed: object = None, *, typical: bool = False) -> None:
        if seed is None:
            seed = random.randrange(2**32)
        self.seed = seed
        self.is_typical = bool(typical)
        self.random = random.Random(str(seed))
        self._rnd = self.random.random
        self._bits = self.random.getrandbits

    def __repr__(self) -> str:
        return f"PayloadFactory(seed={self.seed!r}{', typical=True' if self.is_typical else ''})"

    def derive(self, label: str) -> PayloadFactory:
        """An independent stream from the same seed: ``PayloadFactory((label, str(seed)))``.

        What is drawn from one never changes what the other builds, so a part (the malformed corpus,
        a test, a run) gets the same payloads whatever else drew before it.
        """
        if not isinstance(label, str):
            raise TypeError(f"derive(label) takes a str naming the stream, got {label!r}")
        return PayloadFactory((label, str(self.seed)), typical=self.is_typical)

    def typical(self) -> PayloadFactory:
        """The same seed's stream with every incidental value from the typical set: a non-empty
        ``call_from``, a UUIDv4 ``callid``, nationcode 86, a digit key, a short answered call, ``"0"`` for
        an unanswered call's times. What the conformance suite builds on, so that a handler that refuses one
        edge value fails only the checks named after it, whatever the seed."""
        return PayloadFactory(self.seed, typical=True)

    def __call__(self, **overrides: Any) -> dict[str, Any]:
        """A ``voiceprompt_callback`` envelope: an answered call unless ``result`` says otherwise."""
        return self.prompt(**overrides)

    # -- the four kinds ---------------------------------------------------------------------------

    def prompt(self, **overrides: Any) -> dict[str, Any]:
        """A ``voiceprompt_callback``; ``result="1"`` or ``"2"`` builds a consistent unanswered/failed call."""
        return {PROMPT: self.call_status_fields(overrides)}

    def code(self, **overrides: Any) -> dict[str, Any]:
        """A ``voicecode_callback`` (a voice verification code), same fields as ``prompt``."""
        return {CODE: self.call_status_fields(overrides)}

    def keypress(self, **overrides: Any) -> dict[str, Any]:
        """A ``voicekey_callback``: the callee pressed ``keypress``."""
        return {KEYPRESS: self.keypress_fields(overrides)}

    def failure(self, **overrides: Any) -> dict[str, Any]:
        """A ``voice_failure_callback``; ``failure_reason`` matches ``failure_code`` unless overridden."""
        return {FAILURE: self.failure_fields(overrides)}

    def build(self, kind: str = PROMPT, /, **overrides: Any) -> dict[str, Any]:
        """A payload of ``kind``, a short or full name (``"keypress"``): for code that picks the kind at run time.

        Any registered kind (``contract.registered_kinds()``); an unknown one is a ``ValueError``."""
        return self._builder(kind)(**overrides)

    # -- the fields of each shape of callback (what the kind registry's ``build`` hooks call) -----------

    def keypress_fields(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """A key press callback's fields, ``overrides`` applied."""
        key = _KEYS[int(self._rnd() * (20 if self.is_typical else len(_KEYS)))]
        nationcode, mobile = self._number(overrides.get("nationcode"))
        fields = {
            "call_from": self._caller(),
            "callid": self._callid(),
            "keypress": key,
            "mobile": mobile,
            "nationcode": nationcode,
        }
        return _apply(fields, overrides) if overrides else fields

    def failure_fields(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """A failure callback's fields, ``overrides`` applied; ``failure_reason`` matches ``failure_code``."""
        code: Any = _FAILURE_CODE_LIST[int(self._rnd() * len(_FAILURE_CODE_LIST))]
        if overrides.get("failure_code", MISSING) is not MISSING:
            code = overrides["failure_code"]
        nationcode, mobile = self._number(overrides.get("nationcode"))
        fields = {
            "call_from": self._caller(),
            "callid": self._callid(),
            "failure_code": code,
            "failure_reason": _reason(code),
            "mobile": mobile,
            "nationcode": nationcode,
        }
        return _apply(fields, overrides) if overrides else fields

    # -- outcome shorthands -------------------------------------------------------------------------

    def answered(self, **overrides: Any) -> dict[str, Any]:
        """A prompt callback for a call the callee answered (``result "0"``)."""
        return self.prompt(**{**overrides, "result": ANSWERED})

    def unanswered(self, **overrides: Any) -> dict[str, Any]:
        """A prompt callback for a call nobody answered (``result "1"``, nothing billed)."""
        return self.prompt(**{**overrides, "result": "1"})

    def failed(self, **overrides: Any) -> dict[str, Any]:
        """A prompt callback for a call that could not be placed (``result "2"``, nothing billed)."""
        return self.prompt(**{**overrides, "result": "2"})

    # -- many at once -----------------------------------------------------------------------------

    def batch(self, n: int, kind: str = PROMPT, **overrides: Any) -> list[dict[str, Any]]:
        """``n`` payloads of one kind, each with its own ``callid``."""
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"batch(n) needs a whole number >= 0, got {n!r}")
        if "callid" in overrides:
            raise ValueError("batch() gives every payload its own callid; do not override callid")
        build = self._builder(kind)
        payloads: list[dict[str, Any]] = []
        seen: set[str] = set()
        while len(payloads) < n:
            payload = build(**overrides)
            callid = next(iter(payload.values()))["callid"]
            if callid not in seen:
                seen.add(callid)
                payloads.append(payload)
        return payloads

    def variants(self, kind: str | None = None) -> list[Variant]:
        """Every documented valid shape (of every registered kind unless ``kind`` names one): coverage, not
        sampling."""
        kinds = registered_kinds() if kind is None else (kind_info(kind),)
        out: list[Variant] = []
        for k in kinds:
            out += self._variants_of(k)
        for k in kinds:  # drawn after the documented ones, so those stay what they were for a seed
            out += self._wild_variants_of(k)
        return out

    def malformed(self, kind: str | None = None) -> list[Case]:
        """The malformed corpus (see ``pytest_voicecb.malformed``), built on this factory's seed."""
        return cases(self, kind)

    @staticmethod
    def body(payload: Any) -> bytes:
        """The bytes the provider would POST: compact JSON in UTF-8."""
        return encode(payload)

    # -- building blocks --------------------------------------------------------------------------

    def _builder(self, kind: str | CallbackKind) -> Callable[..., dict[str, Any]]:
        """``build(**overrides)`` for one kind: its registry entry's ``build`` wrapped in the envelope."""
        info = kind if isinstance(kind, CallbackKind) else kind_info(kind)

        def build(**overrides: Any) -> dict[str, Any]:
            return {info.key: info.build(self, overrides)}

        return build

    def call_status_fields(self, overrides: dict[str, Any]) -> dict[str, Any]:
        """A call status' fields (prompt, code), ``overrides`` applied: ``result`` other than ``"0"``
        builds a consistent unanswered or failed call."""
        rnd = self._rnd
        start = _EPOCH_FROM + int(rnd() * _EPOCH_SPAN)
        ring = _RING_MIN + int(rnd() * _RING_SPAN)
        talk = _TALK_MIN + int(rnd() * (_SHORT_TALK_SPAN if self.is_typical else _TALK_SPAN))
        # What an unanswered or failed call's times hold is unconfirmed: "0" and "" are both seen.
        unset = "0" if rnd() < 0.5 or self.is_typical else ""
        result = ANSWERED
        if overrides:
            result = overrides.get("result", ANSWERED)
            start, ring, talk = _fit_times(overrides, start, ring, talk, answered=result == ANSWERED)
        if result == ANSWERED:
            accept = start + ring
            accept_time, end_calltime = str(accept), str(accept + talk)
            fee = str(-(-max(talk, 0) // 60))  # a started minute is billed whole
        else:
            accept_time = end_calltime = unset
            fee = "0"
        nationcode, mobile = self._number(overrides.get("nationcode") if overrides else None)
        fields = {
            "result": result,
            "accept_time": accept_time,
            "call_from": self._caller(),
            "callid": self._callid(),
            "end_calltime": end_calltime,
            "fee": fee,
            "mobile": mobile,
            "nationcode": nationcode,
            "start_calltime": str(start),
        }
        return _apply(fields, overrides) if overrides else fields

    def _number(self, nationcode: object = None) -> tuple[str, str]:
        """A (nationcode, mobile) pair valid for each other; a nationcode we have no plan for gets digits."""
        rnd = self._rnd
        pick_plan, pick_prefix, pick_digits = rnd(), rnd(), rnd()
        if isinstance(nationcode, str):
            plan = _PLAN_BY_CODE.get(nationcode)
            if plan is None:
                return nationcode, str(10**9 + int(pick_digits * 9 * 10**9))
        elif self.is_typical:
            plan = _MOBILE_PLANS[0]
        else:
            plan = _WEIGHTED_PLANS[int(pick_plan * len(_WEIGHTED_PLANS))]
        prefixes, digits = plan.prefixes, plan.digits
        number = str(int(pick_digits * 10**digits)).zfill(digits)
        return plan.nationcode, prefixes[int(pick_prefix * len(prefixes))] + number

    def _caller(self) -> str:
        rnd = self._rnd
        empty, pick_prefix, pick_digits = rnd(), rnd(), rnd()
        if empty < _EMPTY_CALLER_SHARE and not self.is_typical:
            return ""
        prefix, low, span = _CALLERS[int(pick_prefix * len(_CALLERS))]
        return prefix + str(low + int(pick_digits * span))

    def _callid(self) -> str:
        """32 hex characters (the legacy API) or a UUID (API 3.0), both as the send API returns them."""
        if self._rnd() < 0.5 and not self.is_typical:
            return f"{self._bits(128):032x}"
        return _uuid(self._bits(128))

    def _variants_of(self, kind: CallbackKind) -> list[Variant]:
        """The shapes every kind has, then the kind's own (its registry entry's ``variants`` hook)."""
        short = kind.short
        build = self._builder(kind)
        out = [Variant(f"{short}/typical", build())]
        out.append(Variant(f"{short}/call_from-empty", build(call_from="")))
        out.append(Variant(f"{short}/call_from-set", build(call_from="075586013388")))
        out.append(Variant(f"{short}/callid-hex32", build(callid=f"{self._bits(128):032x}")))
        out.append(Variant(f"{short}/callid-uuid", build(callid=_uuid(self._bits(128)))))
        out.append(Variant(f"{short}/extra-field", build(future_field="forward compatible")))
        out += [Variant(f"{short}/nationcode-{code}", build(nationcode=code)) for code in NATIONCODES]
        return out + kind.variants(self, kind, build)

    def call_status_variants(self, kind: CallbackKind, build: Callable[..., dict[str, Any]]) -> list[Variant]:
        """A call status kind's own variants: answered calls of several lengths, then each other outcome
        with its times ``"0"`` and ``""``."""
        short = kind.short
        start = _EPOCH_FROM + int(self._rnd() * _EPOCH_SPAN)
        out = [
            Variant(f"{short}/answered", build(result=ANSWERED)),
            Variant(
                f"{short}/answered-long-call",
                build(
                    result=ANSWERED,
                    start_calltime=str(start),
                    accept_time=str(start + 12),
                    end_calltime=str(start + 12 + 425),
                    fee="8",
                ),
            ),
            Variant(
                f"{short}/answered-at-once",
                build(
                    result=ANSWERED,
                    start_calltime=str(start),
                    accept_time=str(start),
                    end_calltime=str(start + 20),
                    fee="1",
                ),
            ),
        ]
        for result, name in kind.outcomes.items():
            if result == ANSWERED:
                continue
            for times, label in (("0", "zero"), ("", "empty")):
                out.append(
                    Variant(
                        f"{short}/{name}-times-{label}",
                        build(result=result, accept_time=times, end_calltime=times, fee="0"),
                    )
                )
        return out

    def keypress_variants(self, kind: CallbackKind, build: Callable[..., dict[str, Any]]) -> list[Variant]:
        """A key press kind's own variants: every keypad key."""
        names = {"*": "star", "#": "hash"}
        return [Variant(f"{kind.short}/key-{names.get(key, key)}", build(keypress=key)) for key in "0123456789*#"]

    def failure_variants(self, kind: CallbackKind, build: Callable[..., dict[str, Any]]) -> list[Variant]:
        """A failure kind's own variants: every documented code, and a reason that does not match its code."""
        out = [Variant(f"{kind.short}/code-{code}", build(failure_code=code)) for code in FAILURE_CODES]
        out.append(Variant(f"{kind.short}/reason-free-text", build(failure_code=5, failure_reason="其他")))
        return out

    def _wild_variants_of(self, info: CallbackKind) -> list[Variant]:
        """Shapes seen in real captures rather than in the documentation: a version-1 UUID callid (its
        time near the call's start), and the fields in other orders than the documented one."""
        short, kind = info.short, info.key
        build = self._builder(info)
        payload = build()
        fields = payload[kind]
        start = _epoch(fields.get("start_calltime")) or _EPOCH_FROM + int(self._rnd() * _EPOCH_SPAN)
        fields["callid"] = _uuid1(start, self._bits(64))
        out = [Variant(f"{short}/callid-uuid1", payload)]
        ordered = build()[kind]
        out.append(Variant(f"{short}/keys-reversed", {kind: dict(reversed(list(ordered.items())))}))
        items = list(build()[kind].items())
        half = len(items) // 2  # the second half first: no kind's fields are in this order in the docs
        out.append(Variant(f"{short}/keys-rotated", {kind: dict(items[half:] + items[:half])}))
        return out


def _uuid1(epoch: int, bits: int) -> str:
    """A version-1 (time-based) UUID as API 3.0 returns it, e.g. ``0bd403fe-ffd6-11eb-935a-5254002ab735``:
    its timestamp ``epoch`` plus under two seconds, a random clock sequence, and a node in the 52:54:00
    (QEMU/KVM) range the real capture shows. Built from ``bits``, not ``uuid.uuid1()``, to follow the seed."""
    ticks = epoch * 10_000_000 + _UUID_EPOCH_OFFSET + (bits & 0xFFFFFF)
    clock_seq = 0x8000 | ((bits >> 24) & 0x3FFF)
    node = 0x525400000000 | ((bits >> 40) & 0xFFFFFF)
    low, mid, high = ticks & 0xFFFFFFFF, (ticks >> 32) & 0xFFFF, (ticks >> 48) & 0x0FFF
    return f"{low:08x}-{mid:04x}-1{high:03x}-{clock_seq:04x}-{node:012x}"


_UUID_EPOCH_OFFSET = 0x01B21DD213814000
"""100-nanosecond ticks from the UUID epoch (1582-10-15) to the Unix epoch."""


def _uuid(bits: int) -> str:
    """A version-4 UUID from 128 random bits (``uuid.uuid4`` would ignore the seed)."""
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _epoch(value: object) -> int | None:
    """``value`` as Unix seconds if it is a plausible digit string, else None."""
    if isinstance(value, str) and 0 < len(value) <= 12 and value.isascii() and value.isdigit():
        return int(value) or None  # "0" stands for "no time" in unanswered calls
    return None


def _fit_times(overrides: dict[str, Any], start: int, ring: int, talk: int, *, answered: bool) -> tuple[int, int, int]:
    """Adjust the drawn (start, ring, talk) so that the times not overridden agree with those that are.

    Only an answered call's accept and end times count: an unanswered call's are placeholders.
    """
    given_start = _epoch(overrides.get("start_calltime"))
    given_accept = _epoch(overrides.get("accept_time")) if answered else None
    given_end = _epoch(overrides.get("end_calltime")) if answered else None
    if given_start is not None:
        start = given_start
    if given_accept is not None:
        if given_start is None:
            start = given_accept - ring
        ring = given_accept - start
    elif given_start is None and given_end is not None:
        start = given_end - talk - ring
    if given_end is not None:
        talk = given_end - start - ring
    return start, ring, talk


def _reason(code: object) -> str:
    """The provider's text for ``code`` (also when sent as a digit string); "other" for unknown codes."""
    if isinstance(code, str) and code.isascii() and code.isdigit() and len(code) < 4:
        code = int(code)
    known = FAILURE_CODES.get(code) if isinstance(code, int) else None
    return known.reason if known else _OTHER_REASON


def _apply(fields: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win; ``MISSING`` removes a field; unknown names are added (extra fields are legal)."""
    for name, value in overrides.items():
        if value is MISSING:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields
