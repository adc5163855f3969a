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
from typing import Any, Literal, TypeVar

import hypothesis
from hypothesis import strategies as st

from pytest_voicecb.contract import (
    CALLBACK_MODELS,
    CODE,
    FAILURE,
    FAILURE_CODES,
    JSON_CONTENT_TYPE,
    KEYPRESS,
    KINDS,
    PROMPT,
    Callback,
    ReplyBody,
    encode,
    kind_named,
    parse_callback,
)
from pytest_voicecb.factory import _MOBILE_PLANS, PayloadFactory
from pytest_voicecb.integrations._versions import require
from pytest_voicecb.malformed import cases
from pytest_voicecb.values import MISSING, Case

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

# The contract's value spaces. Times lie in the factory's window (2023-01-01 to 2026-01-01 UTC);
# shrinking moves them to its start.
_EPOCH_FROM, _EPOCH_TO = 1_672_531_200, 1_767_225_600
_SHARED_FIELDS = ("call_from", "callid", "mobile", "nationcode")
_KEYPAD = "0123456789*#"
_UNSET_TIMES = ("0", "")  # what an unanswered call's accept and end times hold (CONTRACT.md: both seen)

# Free text from a fixed alphabet (the provider's own Chinese reasons, ASCII letters, a space): an
# explicit alphabet needs no Unicode tables built, which Hypothesis would otherwise do per project.
_TEXT_ALPHABET = "".join(sorted({*"".join(code.reason for code in FAILURE_CODES.values()), *"abcXYZ019 _-"}))
_texts = st.text(alphabet=_TEXT_ALPHABET, max_size=12)
_digits = st.text(alphabet="0123456789", min_size=1, max_size=12)
_callers = st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=3, max_size=13))
_callids = st.one_of(
    st.integers(0, 2**128 - 1).map(lambda bits: f"{bits:032x}"),  # the legacy API: 32 hex characters
    st.uuids(version=4).map(str),  # API 3.0
)
_extras = st.dictionaries(
    st.sampled_from(("future_field", "sessionid", "ext", "sign")),
    st.one_of(_texts, st.integers(), st.booleans(), st.none()),
    max_size=2,
)


def _numbers(plan: Any) -> st.SearchStrategy[tuple[str, str]]:
    """(nationcode, mobile) pairs from one of the factory's numbering plans."""
    return st.tuples(
        st.just(plan.nationcode),
        st.builds(
            lambda prefix, number: prefix + str(number).zfill(plan.digits),
            st.sampled_from(plan.prefixes),
            st.integers(0, 10**plan.digits - 1),
        ),
    )


# Plans in the factory's order ("86" first): one_of shrinks towards its first branch.
_any_number = st.one_of([_numbers(plan) for plan in _MOBILE_PLANS])
_PLANS = {plan.nationcode: plan for plan in _MOBILE_PLANS}


def _number_for(nationcode: object) -> st.SearchStrategy[tuple[str, str]]:
    """(nationcode, mobile) pairs for a fixed nationcode (a value or a strategy), or for any plan."""
    if nationcode is MISSING:
        return _any_number
    if isinstance(nationcode, st.SearchStrategy):
        return nationcode.flatmap(_number_for)
    plan = _PLANS.get(nationcode) if isinstance(nationcode, str) else None
    if plan is None:  # a nationcode without a plan: digits, as the factory does
        return st.tuples(st.just(nationcode), _digits)
    return _numbers(plan)


@st.composite
def _call_status(draw: st.DrawFn, fixed: dict[str, Any]) -> dict[str, Any]:
    """The nine fields of a prompt or code callback, times and fee agreeing with the result."""
    result = draw(_fixed_or(fixed, "result", st.sampled_from(("0", "1", "2"))))
    start = draw(st.integers(_EPOCH_FROM, _EPOCH_TO))
    if result == "0":
        ring = draw(st.integers(0, 60))
        talk = draw(st.integers(0, 3600))
        accept_time, end_calltime = str(start + ring), str(start + ring + talk)
        fee = str(-(-talk // 60))  # a started minute is billed whole
    else:
        accept_time = draw(st.sampled_from(_UNSET_TIMES))
        end_calltime = draw(st.sampled_from(_UNSET_TIMES))
        fee = "0"
    nationcode, mobile = draw(_number_for(fixed.get("nationcode", MISSING)))
    return {
        "result": result,
        "accept_time": accept_time,
        "call_from": draw(_callers),
        "callid": draw(_callids),
        "end_calltime": end_calltime,
        "fee": fee,
        "mobile": mobile,
        "nationcode": nationcode,
        "start_calltime": str(start),
    }


@st.composite
def _keypress(draw: st.DrawFn, fixed: dict[str, Any]) -> dict[str, Any]:
    nationcode, mobile = draw(_number_for(fixed.get("nationcode", MISSING)))
    return {
        "call_from": draw(_callers),
        "callid": draw(_callids),
        "keypress": draw(st.text(alphabet=_KEYPAD, min_size=1, max_size=3)),
        "mobile": mobile,
        "nationcode": nationcode,
    }


@st.composite
def _failure(draw: st.DrawFn, fixed: dict[str, Any]) -> dict[str, Any]:
    code = draw(_fixed_or(fixed, "failure_code", st.sampled_from(tuple(FAILURE_CODES))))
    known = FAILURE_CODES.get(code) if isinstance(code, int) else None
    documented = (known or FAILURE_CODES[11]).reason  # "other" for a code the table lacks
    nationcode, mobile = draw(_number_for(fixed.get("nationcode", MISSING)))
    return {
        "call_from": draw(_callers),
        "callid": draw(_callids),
        "failure_code": code,
        # free text that need not match the table (a real capture says 其他 for code 11)
        "failure_reason": draw(st.one_of(st.just(documented), _texts)),
        "mobile": mobile,
        "nationcode": nationcode,
    }


_BUILDERS: dict[str, Callable[[dict[str, Any]], st.SearchStrategy[dict[str, Any]]]] = {
    PROMPT: _call_status,
    CODE: _call_status,
    KEYPRESS: _keypress,
    FAILURE: _failure,
}


def _fixed_or(fixed: dict[str, Any], name: str, default: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The strategy for a field: the fixed value (or strategy) given for it, else ``default``.

    ``MISSING`` counts as not given here: the field is drawn, then removed by the overlay.
    """
    value = fixed.get(name, MISSING)
    if value is MISSING:
        return default
    return value if isinstance(value, st.SearchStrategy) else st.just(value)


# Fixed fields that steer the draw of a kind (so the other fields agree), rather than being laid over it.
_STEERING: dict[str, frozenset[str]] = {
    PROMPT: frozenset({"result", "nationcode"}),
    CODE: frozenset({"result", "nationcode"}),
    KEYPRESS: frozenset({"nationcode"}),
    FAILURE: frozenset({"failure_code", "nationcode"}),
}


def _envelope(kind: str, fixed: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """Payloads of one kind: fields drawn, extra fields sometimes, then the fixed values laid over."""
    steering = _STEERING[kind]
    overlay = {
        name: _fixed_or(fixed, name, st.just(MISSING))
        for name in fixed
        if name not in steering or fixed[name] is MISSING
    }

    def assemble(parts: tuple[dict[str, Any], dict[str, Any], dict[str, Any]]) -> dict[str, Any]:
        fields, extra, chosen = parts
        fields = {**fields, **{k: v for k, v in extra.items() if k not in fields}}
        for name, value in chosen.items():
            if value is MISSING:
                fields.pop(name, None)
            else:
                fields[name] = value
        return {kind: fields}

    return st.tuples(_BUILDERS[kind](fixed), _extras, st.fixed_dictionaries(overlay)).map(assemble)


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
        return st.one_of([callbacks(k, **fixed) for k in KINDS])
    # No branch sampling the documented variants here: a payload drawn from such a branch cannot shrink
    # field by field (@every_variant runs them first instead, as explicit examples).
    return _envelope(kind_named(kind), fixed)


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

Expectation = Literal["reject", "robust"]

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


def _mutant(kind: str, fields: dict[str, Any], change: str, name: str, value: Any, expect: Expectation) -> Case:
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
def _mutations(draw: st.DrawFn, expect: Expectation | None) -> Case:
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
        if kind == FAILURE:
            label, value = draw(st.sampled_from(_FAILURE_CODE_BOUNDARIES))
            return _mutant(kind, fields, f"boundary-{label}", "failure_code", value, "robust")
        label, value = draw(st.sampled_from(_BOUNDARIES))
        return _mutant(kind, fields, f"boundary-{label}", draw(st.sampled_from(digit_names)), value, "robust")
    label, value = draw(st.sampled_from(_ODD_UNICODE))
    return _mutant(kind, fields, f"odd-unicode-{label}", draw(st.sampled_from(digit_names)), value, "robust")


def malformed(expect: Expectation | None = None) -> st.SearchStrategy[Case]:
    """Malformed deliveries as ``Case`` objects: the fixed corpus and mutations of valid payloads.

    ``expect`` keeps only cases a correct handler must ``"reject"`` (CONTRACT.md rule 2) or may accept
    but must answer in the contract shape (``"robust"``, rule 3). Every case's body is refused by
    ``parse_callback`` except the corpus' valid body sent as form data.
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
