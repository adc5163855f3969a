"""Hypothesis strategies for voice callbacks: valid payloads, request bodies and malformed input.

``callbacks(kind=None, **fixed)`` draws valid payloads of every documented variant, built from
Hypothesis primitives over the contract's value spaces (``st.fixed_dictionaries``, ``st.sampled_from``,
``st.integers`` ...), so that shrinking walks a failing payload field by field down to its minimal
form: the first nationcode, the shortest caller, the earliest time, ``"0"`` before ``""``.
``@every_variant()`` adds the factory's documented variants as explicit examples, so each documented
shape is tried before anything random. ``bodies()`` encodes payloads as the provider sends them, and
``malformed(expect=None)`` draws ``Case`` objects: the fixed corpus and mutations of valid payloads
(a dropped field, a wrong JSON type, a boundary value, odd unicode in a digit field).

The contract's models get strategies with ``st.from_type`` through Hypothesis' ``hypothesis`` entry
point (``_hypothesis_setup_hook`` in ``_hypothesis_hook``), so they cost nothing until Hypothesis loads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import hypothesis
from hypothesis import strategies as st

from pytest_voicecb.contract import (
    ANSWERED,
    CALLBACK_MODELS,
    FAILURE_CODES,
    JSON_CONTENT_TYPE,
    RESULTS,
    Callback,
    ReplyBody,
    encode,
    kind_info,
    kind_named,
    parse_callback,
    registered_kinds,
)
from pytest_voicecb.factory import _MOBILE_PLANS, PayloadFactory
from pytest_voicecb.integrations._versions import require
from pytest_voicecb.malformed import cases
from pytest_voicecb.values import MISSING, Case, Handling

__all__ = [
    "bodies",
    "callbacks",
    "every_variant",
    "malformed",
    "models",
    "register_strategies",
    "replies",
]

require("hypothesis", hypothesis.__version__, (6, 0), "hypothesis", "strategies registered by entry point")

_F = TypeVar("_F", bound=Callable[..., Any])

VARIANT_SEED = 0
"""The factory seed of the variants and corpus drawn from: fixed, as Hypothesis needs to replay draws."""

# The contract's value spaces, drawn with as few primitive draws as possible: Hypothesis' cost is per
# draw (each costs about half a PayloadFactory payload), so related choices share one integer, split
# with divmod. Shrinking the integer still shrinks every part towards its simplest value: the first
# result, nationcode and prefix, the earliest time, no caller id, no extra field.
_EPOCH_FROM, _EPOCH_TO = 1_672_531_200, 1_767_225_600  # the factory's window, 2023 to 2026 UTC
_SHARED_FIELDS = ("call_from", "callid", "mobile", "nationcode")
_KEYPAD = "0123456789*#"

# Free text from a fixed alphabet (the provider's own Chinese reasons, ASCII letters, a space): an
# explicit alphabet needs no Unicode tables built, which Hypothesis would otherwise do per project.
_TEXT_ALPHABET = "".join(sorted({*"".join(code.reason for code in FAILURE_CODES.values()), *"abcXYZ019 _-"}))
_texts = st.text(alphabet=_TEXT_ALPHABET, max_size=12)

# Every (nationcode, prefix, digits) of the factory's numbering plans, "86" first: one draw picks one.
_PREFIXES: tuple[tuple[str, str, int], ...] = tuple(
    (plan.nationcode, prefix, plan.digits) for plan in _MOBILE_PLANS for prefix in plan.prefixes
)
_PREFIXES_OF: dict[str, tuple[tuple[str, str, int], ...]] = {
    plan.nationcode: tuple(entry for entry in _PREFIXES if entry[0] == plan.nationcode) for plan in _MOBILE_PLANS
}
_RESULTS = tuple(RESULTS)
_starts = st.integers(_EPOCH_FROM, _EPOCH_TO)
_result_starts = st.integers(0, len(_RESULTS) * (_EPOCH_TO - _EPOCH_FROM + 1) - 1)  # result and start in one
_RINGS, _TALKS = 61, 3601  # ringing 0 to 60 s, talking 0 to 3600 s: one draw for both
_durations = st.integers(0, _RINGS * _TALKS - 1)
# An unanswered call's accept and end times (CONTRACT.md: "0" and "" are both seen), both in one draw.
_unset = st.sampled_from((("0", "0"), ("", ""), ("0", ""), ("", "0")))
_CALLERS = 10**13  # 0 is the empty caller id, anything else its digits
_callids = st.integers(0, 2**129 - 1)  # the low bit picks the format, the other 128 are the id
_keypresses = st.text(alphabet=_KEYPAD, min_size=1, max_size=3)
_failure_codes = st.sampled_from(tuple(FAILURE_CODES))
# The prefix and the digits after it are two draws: in one integer, a failure that needs one prefix
# holds only for every len(prefixes)-th value, which integer shrinking cannot walk down.
_any_prefix = st.integers(0, len(_PREFIXES) - 1)
_number_digits = st.integers(0, 10**8 - 1)  # a plan has at most 8 digits after its prefix
_other_digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
_EXTRAS: tuple[dict[str, Any], ...] = (
    {},
    {"future_field": "forward compatible"},
    {"sessionid": ""},
    {"ext": {"nested": [1, "two", None]}},
    {"sign": None, "version": 3},
)
_extra_callers = st.integers(0, len(_EXTRAS) * _CALLERS - 1)  # extra fields and caller id in one draw


def _callid(bits: int) -> str:
    """32 hex characters (the legacy API) or a version-4 UUID (API 3.0), from 129 drawn bits."""
    h = f"{bits >> 1:032x}"
    if not bits & 1:
        return h
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _value(draw: st.DrawFn, value: Any) -> Any:
    """A fixed value, or one drawn when the value is a strategy."""
    return draw(value) if isinstance(value, st.SearchStrategy) else value


def _number(draw: st.DrawFn, nationcode: Any) -> tuple[str, str]:
    """(nationcode, mobile) valid for each other: from the factory's plans, or digits for another code."""
    if nationcode is MISSING:
        code, prefix, digits = _PREFIXES[draw(_any_prefix)]
    else:
        nationcode = _value(draw, nationcode)
        entries = _PREFIXES_OF.get(nationcode, ()) if isinstance(nationcode, str) else ()
        if not entries:  # a nationcode without a plan: digits, as the factory does
            return nationcode, draw(_other_digits)
        code, prefix, digits = entries[draw(st.integers(0, len(entries) - 1))]
    return code, prefix + str(draw(_number_digits) % 10**digits).zfill(digits)


def _shared(draw: st.DrawFn, fixed: dict[str, Any]) -> tuple[str, str, str, str, int]:
    """call_from, callid, mobile and nationcode, which every kind has, and which extra fields to add."""
    nationcode, mobile = _number(draw, fixed.get("nationcode", MISSING))
    caller, extras = divmod(draw(_extra_callers), len(_EXTRAS))
    return ("" if caller == 0 else str(caller)), _callid(draw(_callids)), mobile, nationcode, extras


def _call_status(draw: st.DrawFn, fixed: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A call status' fields (prompt, code): result, times and fee agreeing with each other."""
    result = _value(draw, fixed.get("result", MISSING))
    if result is MISSING:
        start, index = divmod(draw(_result_starts), len(_RESULTS))
        result, start = _RESULTS[index], _EPOCH_FROM + start
    else:
        start = draw(_starts)
    if result == ANSWERED:
        ring, talk = divmod(draw(_durations), _TALKS)
        accept_time, end_calltime = str(start + ring), str(start + ring + talk)
        fee = str(-(-talk // 60))  # a started minute is billed whole
    else:
        (accept_time, end_calltime), fee = draw(_unset), "0"
    call_from, callid, mobile, nationcode, extras = _shared(draw, fixed)
    fields = {
        "result": result,
        "accept_time": accept_time,
        "call_from": call_from,
        "callid": callid,
        "end_calltime": end_calltime,
        "fee": fee,
        "mobile": mobile,
        "nationcode": nationcode,
        "start_calltime": str(start),
    }
    return fields, extras


def _keypress(draw: st.DrawFn, fixed: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A key press' fields."""
    call_from, callid, mobile, nationcode, extras = _shared(draw, fixed)
    keypress = draw(_keypresses)
    return {
        "call_from": call_from,
        "callid": callid,
        "keypress": keypress,
        "mobile": mobile,
        "nationcode": nationcode,
    }, (extras)


def _failure(draw: st.DrawFn, fixed: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """A failure's fields: a documented code, its reason or free text."""
    code = _value(draw, fixed.get("failure_code", MISSING))
    if code is MISSING:
        code = draw(_failure_codes)
    known = FAILURE_CODES.get(code) if isinstance(code, int) else None
    call_from, callid, mobile, nationcode, extras = _shared(draw, fixed)
    # free text that need not match the table (a real capture says 其他 for code 11)
    reason = draw(_texts) if draw(st.booleans()) else (known or FAILURE_CODES[11]).reason
    fields = {
        "call_from": call_from,
        "callid": callid,
        "failure_code": code,
        "failure_reason": reason,
        "mobile": mobile,
        "nationcode": nationcode,
    }
    return fields, extras


_Drawer = Callable[[st.DrawFn, dict[str, Any]], tuple[dict[str, Any], int]]
_DRAWERS: dict[frozenset[str], _Drawer] = {
    frozenset({"result", "accept_time", "end_calltime", "fee", "start_calltime"}): _call_status,
    frozenset({"keypress"}): _keypress,
    frozenset({"failure_code", "failure_reason"}): _failure,
}
"""How to draw a kind's fields, by the fields its model adds to those every kind has (``Callback``'s):
a registered kind shaped like a documented one is drawn like it."""


def _drawer(kind: str) -> _Drawer:
    own = frozenset(kind_info(kind).model.model_fields) - frozenset(Callback.model_fields)
    drawer = _DRAWERS.get(own)
    if drawer is None:
        raise ValueError(
            f"no strategy draws a {kind} (its fields {', '.join(sorted(own))} match no documented kind's); "
            "build its payloads with PayloadFactory.build instead"
        )
    return drawer


@st.composite
def _payload(draw: st.DrawFn, kind: str, fixed: dict[str, Any]) -> dict[str, Any]:
    """One payload of ``kind``: its fields drawn to agree with each other and with the fixed ones."""
    fields, extras = _drawer(kind)(draw, fixed)
    for name, value in _EXTRAS[extras].items():
        fields.setdefault(name, value)
    steering = kind_info(kind).steering
    for name, value in fixed.items():
        if name in steering and value is not MISSING:
            continue
        value = _value(draw, value)
        if value is MISSING:
            fields.pop(name, None)
        else:
            fields[name] = value
    return {kind: fields}


def _documented_variants(kind: str | None) -> list[dict[str, Any]]:
    return [variant.payload for variant in PayloadFactory(VARIANT_SEED).variants(kind)]


def callbacks(kind: str | None = None, **fixed: Any) -> st.SearchStrategy[dict[str, Any]]:
    """Valid callback payloads (``{kind: {...}}``) of ``kind`` (a short or full name), or of all four kinds.

    ``fixed`` sets fields to a value or to a strategy of values; ``result``, ``nationcode`` and
    ``failure_code`` steer the draw so the other fields agree (an unanswered call's times, a mobile
    number of that country, the documented reason). ``MISSING`` removes a field. Fixed values are yours:
    the payload is valid unless they make it invalid. Without ``kind``, only the fields every kind has
    (``call_from``, ``callid``, ``mobile``, ``nationcode``) can be fixed.
    """
    if kind is None:
        others = sorted(set(fixed) - set(_SHARED_FIELDS))
        if others:
            raise ValueError(
                f"callbacks() without a kind can fix only the fields every kind has ({', '.join(_SHARED_FIELDS)}); "
                f"got {', '.join(others)}: pass kind=..., e.g. callbacks('prompt', {others[0]}=...)"
            )
        return st.one_of([callbacks(k.key, **fixed) for k in registered_kinds()])
    # No branch sampling the documented variants here: a payload drawn from such a branch cannot shrink
    # field by field (@every_variant runs them first instead, as explicit examples).
    full = kind_named(kind)
    _drawer(full)  # an unknown kind, or one no strategy can draw, says so now rather than at the first draw
    return _payload(full, fixed)


def bodies(kind: str | None = None, **fixed: Any) -> st.SearchStrategy[bytes]:
    """Valid callbacks encoded as the provider sends them: compact JSON, UTF-8."""
    return callbacks(kind, **fixed).map(encode)


def every_variant(kind: str | None = None, *, argname: str | None = None) -> Callable[[_F], _F]:
    """A decorator adding each documented variant (``PayloadFactory.variants``) as an explicit example.

    Hypothesis runs explicit examples first, so every documented shape is tried before random ones.
    Put it under ``@given``; ``argname`` names the test's argument when ``@given`` passes it by keyword.
    """

    def decorate(test: _F) -> _F:
        for payload in reversed(_documented_variants(kind)):
            test = hypothesis.example(**{argname: payload})(test) if argname else hypothesis.example(payload)(test)
        return test

    return decorate


# ---- malformed input ------------------------------------------------------------------------------


# Values in the right field but the wrong JSON type (CONTRACT.md rule 3: questionable, not unusable).
_WRONG_TYPES: tuple[tuple[str, Any], ...] = (
    ("number", 0),
    ("float", 1.5),
    ("boolean", True),
    ("array", ["0"]),
    ("object", {"value": "0"}),
)
# Boundary values of the digit-string fields that are not digits or not whole.
_BOUNDARIES: tuple[tuple[str, str], ...] = (
    ("negative", "-1"),
    ("decimal", "1.5"),
    ("exponent", "1e3"),
    ("spaces", " 86 "),
    ("plus", "+86"),
    ("hex", "0x1f"),
)
_FAILURE_CODE_BOUNDARIES: tuple[tuple[str, Any], ...] = (("zero", 0), ("negative", -1), ("as-string", "8"))
# Characters that look like digits or nothing at all (CONTRACT.md: digits are ASCII 0-9).
_ODD_UNICODE: tuple[tuple[str, str], ...] = (
    ("fullwidth-digits", "\uff11\uff13\uff18"),
    ("arabic-indic-digits", "\u0661\u0663\u0668"),
    ("zero-width-space", "86\u200b"),
    ("right-to-left-mark", "\u200f86"),
    ("nul", "86\x00"),
    ("emoji", "8\U0001f4de6"),
    ("combining-mark", "8\u03036"),
)
_DIGIT_FIELDS = ("accept_time", "end_calltime", "fee", "mobile", "nationcode", "start_calltime")


def _fields_of(kind: str) -> tuple[str, ...]:
    return tuple(CALLBACK_MODELS[kind].model_fields)


def _mutant(kind: str, fields: dict[str, Any], change: str, name: str, value: Any, expect: Handling) -> Case:
    mutated = dict(fields)
    if value is MISSING:
        mutated.pop(name)
    else:
        mutated[name] = value
    short = kind_named(kind, short=True)
    why = {
        "missing": f"{name} is required in every {kind}",
        "null": f"{name} is null",
        "lone-surrogate": "a lone surrogate cannot be UTF-8: the body is not valid UTF-8",
    }.get(change, f"{name} holds {value!r}, which the contract does not allow")
    return Case(f"mutation/{short}/{name}-{change}", encode({kind: mutated}), JSON_CONTENT_TYPE, expect, why, kind)


@st.composite
def _mutations(draw: st.DrawFn, expect: Handling | None) -> Case:
    """A valid payload with one field changed so the contract refuses it, judged as the corpus judges."""
    payload = draw(callbacks())
    ((kind, fields),) = payload.items()
    names = [name for name in _fields_of(kind) if name in fields]
    digit_names = [name for name in names if name in _DIGIT_FIELDS]
    changes: list[str] = []
    if expect in (None, "reject"):
        changes += ["missing", "callid-empty", "lone-surrogate"]
    if expect in (None, "robust"):
        changes += ["wrong-type", "null", "boundary", "odd-unicode"]
    change = draw(st.sampled_from(changes))
    if change == "missing":
        return _mutant(kind, fields, "missing", draw(st.sampled_from(names)), MISSING, "reject")
    if change == "callid-empty":
        return _mutant(kind, fields, "empty", "callid", "", "reject")
    if change == "lone-surrogate":
        name = draw(st.sampled_from(names))
        return _mutant(kind, fields, "lone-surrogate", name, "\ud83d", "reject")
    if change == "null":
        # a null callid or result is as good as a missing one (the corpus rejects those): not robust
        name = draw(st.sampled_from([n for n in names if n not in ("callid", "result")]))
        return _mutant(kind, fields, "null", name, None, "robust")
    if change == "wrong-type":
        name = draw(st.sampled_from(names))
        label, value = draw(st.sampled_from(_WRONG_TYPES))
        if name == "failure_code" and label == "number":
            label, value = "string", "8"
        return _mutant(kind, fields, f"as-{label}", name, value, "robust")
    if change == "boundary":
        if "failure_code" in fields:
            label, value = draw(st.sampled_from(_FAILURE_CODE_BOUNDARIES))
            return _mutant(kind, fields, f"boundary-{label}", "failure_code", value, "robust")
        label, value = draw(st.sampled_from(_BOUNDARIES))
        return _mutant(kind, fields, f"boundary-{label}", draw(st.sampled_from(digit_names)), value, "robust")
    label, value = draw(st.sampled_from(_ODD_UNICODE))
    return _mutant(kind, fields, f"odd-unicode-{label}", draw(st.sampled_from(digit_names)), value, "robust")


def malformed(expect: Handling | None = None) -> st.SearchStrategy[Case]:
    """Malformed deliveries as ``Case`` objects: the fixed corpus and mutations of valid payloads.

    ``expect`` keeps only cases a correct handler must ``"reject"`` (CONTRACT.md rule 2) or may accept
    but must answer in the contract shape (``"robust"``, rule 3). ``parse_callback`` refuses every
    mutation and every corpus body except four: the valid body sent as form data, and the three whose
    only fault is an extra key (``_id``, ``__proto__``, ``constructor``: extra fields are legal); see
    ``pytest_voicecb.malformed``.
    """
    if expect not in (None, "reject", "robust"):
        raise ValueError(f'malformed(expect=...) takes None, "reject" or "robust", got {expect!r}')
    corpus = [case for case in cases(PayloadFactory(VARIANT_SEED)) if expect is None or case.expect == expect]
    return st.one_of(_mutations(expect), st.sampled_from(corpus))


# ---- models and replies ------------------------------------------------------------------------------


def models(kind: str | None = None) -> st.SearchStrategy[Callback]:
    """Validated contract models (``PromptCallback`` ...) of ``kind``, or of any kind."""
    return callbacks(kind).map(parse_callback)


def replies(ok: bool | None = None) -> st.SearchStrategy[ReplyBody]:
    """Contract-shaped handler replies: success (``ok=True``), failure (``ok=False``) or either."""
    success = st.builds(ReplyBody, result=st.just(0), errmsg=st.sampled_from(("OK", "ok", "")))
    failure = st.builds(ReplyBody, result=st.integers().filter(bool), errmsg=_texts)
    return success if ok is True else failure if ok is False else st.one_of(success, failure)


def register_strategies() -> None:
    """Register ``st.from_type`` strategies for the contract's models (the entry point calls this)."""
    st.register_type_strategy(Callback, models())
    for kind, model in CALLBACK_MODELS.items():
        st.register_type_strategy(model, models(kind))
    st.register_type_strategy(ReplyBody, replies())
