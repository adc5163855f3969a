"""Realistic, seeded callback payloads: valid ones, every documented variant, and the malformed corpus.

Payloads are plain dicts shaped exactly as the provider sends them (``{kind: {...}}``). They are
built with ``random.Random`` from numbering plans and call timings, not with Faker: a payload costs
a few microseconds, so a test can build thousands, and the same seed always builds the same ones.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING, Any, Final, NamedTuple

from pytest_voicecb.contract import CODE, FAILURE, FAILURE_CODES, KEYPRESS, PROMPT, encode, kind_named

if TYPE_CHECKING:
    from pytest_voicecb.malformed import Case

__all__ = ["MISSING", "PayloadFactory", "Variant"]


class _Missing:
    """The type of ``MISSING``."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()
"""Pass as an override to remove a field: ``factory.prompt(fee=MISSING)``."""


class Variant(NamedTuple):
    """One documented valid shape of a callback, with a readable id such as ``prompt/not-answered-times-empty``."""

    id: str
    payload: dict[str, Any]


# Mobile numbering plans: (nationcode, weight, prefixes, digits after the prefix). Every number built
# from these is a valid mobile number for its nationcode (the tests check it with phonenumbers).
_MOBILE_PLANS: tuple[tuple[str, int, tuple[str, ...], int], ...] = (
    ("86", 80, ("130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152",
                "155", "156", "157", "158", "159", "173", "175", "176", "177", "178", "180", "181",
                "182", "183", "185", "186", "187", "188", "189", "198", "199"), 8),
    ("852", 5, ("51", "61", "62", "63", "64", "65", "66", "67", "68", "69", "90", "91", "92", "93",
                "94", "95", "96", "97", "98"), 6),
    ("1", 4, ("212555", "415555", "646555", "312555", "206555", "617555", "512555", "305555"), 4),
    ("65", 3, ("81", "82", "83", "84", "85", "86", "87", "88", "90", "91", "92", "93", "94", "96",
               "97", "98"), 6),
    ("44", 3, ("7400", "7700", "7800", "7900", "7911", "7922", "7944", "7984"), 6),
    ("81", 3, ("90", "80", "70"), 8),
    ("91", 2, ("98", "97", "99", "70", "81", "90", "88"), 8),
)
_PLAN_BY_CODE = {plan[0]: plan for plan in _MOBILE_PLANS}
_PLAN_WEIGHTS = [plan[1] for plan in _MOBILE_PLANS]
NATIONCODES: tuple[str, ...] = tuple(plan[0] for plan in _MOBILE_PLANS)

# Caller ids a business shows: empty (the seed document's example), a landline with its area
# code, or a 400/95 service number. All digits, as the contract says.
_CALLERS: tuple[tuple[str, int], ...] = (("0755", 8), ("010", 8), ("021", 8), ("400", 7), ("95", 6))

# Calls happen in a fixed window (2023-01-01 to 2026-01-01 UTC) so a seed reproduces the same
# payloads on any day.
_EPOCH_FROM, _EPOCH_TO = 1_672_531_200, 1_767_225_600
_FAILURE_CODE_LIST = tuple(FAILURE_CODES)
_KEYS = "0123456789" + "0123456789" + "*#"


class PayloadFactory:
    """Builds valid callback payloads of all four kinds from one seeded random stream.

    ``PayloadFactory(seed)`` and another ``PayloadFactory(seed)`` build identical payloads in the
    same order. ``seed`` may be anything with a stable ``str()`` (the plugin passes ``(seed, test id)``).
    """

    def __init__(self, seed: object = None) -> None:
        if seed is None:
            seed = random.randrange(2**32)
        self.seed = seed
        self.random = random.Random(str(seed))

    def __repr__(self) -> str:
        return f"PayloadFactory(seed={self.seed!r})"

    def __call__(self, **overrides: Any) -> dict[str, Any]:
        """A ``voiceprompt_callback`` envelope: an answered call unless ``result`` says otherwise."""
        return self.prompt(**overrides)

    # -- the four kinds ---------------------------------------------------------------------------

    def prompt(self, **overrides: Any) -> dict[str, Any]:
        """A ``voiceprompt_callback``; ``result="1"`` or ``"2"`` builds a consistent unanswered/failed call."""
        return {PROMPT: self._call_status(overrides)}

    def code(self, **overrides: Any) -> dict[str, Any]:
        """A ``voicecode_callback`` (a voice verification code), same fields as ``prompt``."""
        return {CODE: self._call_status(overrides)}

    def keypress(self, **overrides: Any) -> dict[str, Any]:
        """A ``voicekey_callback``: the callee pressed ``keypress``."""
        rng = self.random
        nationcode, mobile = self._number(overrides.get("nationcode"))
        fields = {
            "call_from": self._caller(),
            "callid": self._callid(),
            "keypress": rng.choice(_KEYS),
            "mobile": mobile,
            "nationcode": nationcode,
        }
        return {KEYPRESS: _apply(fields, overrides)}

    def failure(self, **overrides: Any) -> dict[str, Any]:
        """A ``voice_failure_callback``; ``failure_reason`` matches ``failure_code`` unless overridden."""
        code = overrides.get("failure_code")
        if code is None or code is MISSING:
            code = self.random.choice(_FAILURE_CODE_LIST)
        nationcode, mobile = self._number(overrides.get("nationcode"))
        known = FAILURE_CODES.get(code) if isinstance(code, int) else None
        fields = {
            "call_from": self._caller(),
            "callid": self._callid(),
            "failure_code": code,
            "failure_reason": known.reason if known else "其他",
            "mobile": mobile,
            "nationcode": nationcode,
        }
        return {FAILURE: _apply(fields, overrides)}

    # -- outcome shorthands -------------------------------------------------------------------------

    def answered(self, **overrides: Any) -> dict[str, Any]:
        """A prompt callback for a call the callee answered (``result "0"``)."""
        return self.prompt(**{**overrides, "result": "0"})

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
        """Every documented valid shape (all four kinds unless ``kind`` names one): coverage, not sampling."""
        kinds = (PROMPT, CODE, KEYPRESS, FAILURE) if kind is None else (kind_named(kind),)
        out: list[Variant] = []
        for k in kinds:
            out += self._variants_of(k)
        return out

    def malformed(self, kind: str | None = None) -> list[Case]:
        """The malformed corpus (see ``pytest_voicecb.malformed``), built on this factory's payloads."""
        from pytest_voicecb.malformed import cases

        return cases(self, kind)

    @staticmethod
    def body(payload: Any) -> bytes:
        """The bytes the provider would POST: compact JSON in UTF-8."""
        return encode(payload)

    # -- building blocks --------------------------------------------------------------------------

    def _builder(self, kind: str) -> Any:
        return {PROMPT: self.prompt, CODE: self.code, KEYPRESS: self.keypress, FAILURE: self.failure}[
            kind_named(kind)
        ]

    def _call_status(self, overrides: dict[str, Any]) -> dict[str, Any]:
        rng = self.random
        result = overrides.get("result", "0")
        start = overrides.get("start_calltime")
        start_s = int(start) if isinstance(start, str) and start.isdigit() else rng.randrange(_EPOCH_FROM, _EPOCH_TO)
        if result == "0":
            accept = start_s + rng.randint(3, 40)  # ringing: seconds, rarely near a minute
            talk = rng.randint(4, 150)  # a notification is read out, maybe twice
            end = accept + talk
            accept_time, end_calltime, fee = str(accept), str(end), str(math.ceil(talk / 60))
        else:
            # What an unanswered or failed call's times hold is unconfirmed: "0" and "" are both seen.
            accept_time = end_calltime = rng.choice(("0", ""))
            fee = "0"
        nationcode, mobile = self._number(overrides.get("nationcode"))
        fields = {
            "result": result,
            "accept_time": accept_time,
            "call_from": self._caller(),
            "callid": self._callid(),
            "end_calltime": end_calltime,
            "fee": fee,
            "mobile": mobile,
            "nationcode": nationcode,
            "start_calltime": str(start_s),
        }
        return _apply(fields, overrides)

    def _number(self, nationcode: object = None) -> tuple[str, str]:
        """A (nationcode, mobile) pair valid for each other; a nationcode we have no plan for gets digits."""
        rng = self.random
        if isinstance(nationcode, str) and nationcode not in _PLAN_BY_CODE:
            return nationcode, str(rng.randrange(10**9, 10**10))
        code, _, prefixes, digits = (
            _PLAN_BY_CODE[nationcode] if isinstance(nationcode, str) else rng.choices(_MOBILE_PLANS, _PLAN_WEIGHTS)[0]
        )
        return code, rng.choice(prefixes) + str(rng.randrange(10**digits)).zfill(digits)

    def _caller(self) -> str:
        rng = self.random
        if rng.random() < 0.3:
            return ""
        prefix, digits = rng.choice(_CALLERS)
        return prefix + str(rng.randrange(10 ** (digits - 1), 10**digits))

    def _callid(self) -> str:
        """32 hex characters (the legacy API) or a UUID (API 3.0), both as the send API returns them."""
        if self.random.random() < 0.5:
            return f"{self.random.getrandbits(128):032x}"
        return _uuid(self.random)

    def _variants_of(self, kind: str) -> list[Variant]:
        short = kind_named(kind, short=True)
        build = self._builder(kind)
        out = [Variant(f"{short}/typical", build())]
        out.append(Variant(f"{short}/call_from-empty", build(call_from="")))
        out.append(Variant(f"{short}/call_from-set", build(call_from="075586013388")))
        out.append(Variant(f"{short}/callid-hex32", build(callid=f"{self.random.getrandbits(128):032x}")))
        out.append(Variant(f"{short}/callid-uuid", build(callid=_uuid(self.random))))
        out.append(Variant(f"{short}/extra-field", build(future_field="forward compatible")))
        out += [Variant(f"{short}/nationcode-{code}", build(nationcode=code)) for code in NATIONCODES]
        if kind in (PROMPT, CODE):
            start = str(self.random.randrange(_EPOCH_FROM, _EPOCH_TO))
            out += [
                Variant(f"{short}/answered", build(result="0")),
                Variant(f"{short}/answered-long-call", build(
                    result="0", start_calltime=start, accept_time=str(int(start) + 12),
                    end_calltime=str(int(start) + 12 + 425), fee="8")),
                Variant(f"{short}/answered-at-once", build(
                    result="0", start_calltime=start, accept_time=start, end_calltime=str(int(start) + 20), fee="1")),
            ]
            for result, name in (("1", "not-answered"), ("2", "call-error")):
                for times, label in (("0", "zero"), ("", "empty")):
                    out.append(Variant(f"{short}/{name}-times-{label}", build(
                        result=result, accept_time=times, end_calltime=times, fee="0")))
        elif kind == KEYPRESS:
            out += [Variant(f"{short}/key-{key if key.isdigit() else {'*': 'star', '#': 'hash'}[key]}",
                            build(keypress=key)) for key in "0123456789*#"]
        else:
            out += [Variant(f"{short}/code-{code}", build(failure_code=code)) for code in FAILURE_CODES]
            out.append(Variant(f"{short}/reason-free-text", build(failure_code=5, failure_reason="其他")))
        return out


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (``uuid.uuid4`` would ignore the seed)."""
    bits = f"{rng.getrandbits(128):032x}"
    return f"{bits[:8]}-{bits[8:12]}-4{bits[13:16]}-{'89ab'[int(bits[16], 16) & 3]}{bits[17:20]}-{bits[20:]}"


def _apply(fields: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """Overrides win; ``MISSING`` removes a field; unknown names are added (extra fields are legal)."""
    for name, value in overrides.items():
        if value is MISSING:
            fields.pop(name, None)
        else:
            fields[name] = value
    return fields

